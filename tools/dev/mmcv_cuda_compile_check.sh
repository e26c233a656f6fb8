#!/usr/bin/env bash
# Compile some of mmcv's CUDA sources exactly as `make install` would on a GPU node, on a machine
# without a GPU: proof that the installer's flags (C++ standard, arch list, nvcc) work.
#
#   bash tools/dev/mmcv_cuda_compile_check.sh ARCH [SOURCE ...]
#   e.g. bash tools/dev/mmcv_cuda_compile_check.sh 9.0          (nms, roi_align, focal_loss)
#        bash tools/dev/mmcv_cuda_compile_check.sh 7.0 nms_cuda.cu
#
# 1. nvcc and the CUDA headers for the CUDA version of the venv's torch come from PyPI
#    (nvidia-cuda-nvcc, -runtime, -cccl; for CUDA 13 also nvidia-nvvm, nvidia-cuda-crt), unpacked into a CUDA_HOME of their
#    own under $WORK (nothing is installed into the venv).
# 2. tools/setup_env.sh runs with MMPVT_MMCV_CUDA=1 and TORCH_CUDA_ARCH_LIST=ARCH on the existing
#    venv (MMPVT_STACK / MMPVT_VENV as for make install) and a throwaway wheel cache: it downloads
#    and patches mmcv and starts its CUDA build as on a GPU node.
# 3. A `ninja` placed first on PATH builds only the objects of the SOURCE files (default: those
#    mmdet's RetinaNet and Mask R-CNN call: nms_cuda.cu roi_align_cuda.cu focal_loss_cuda.cu)
#    with the build.ninja torch wrote, prints each nvcc command, its time and result, and stops
#    the build there (so setup_env.sh then reports a failed build, as expected; the venv is
#    unchanged).
#
# Exit 0 when every object compiled. WORK defaults to a new temporary directory.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ $# -ge 1 ] || { sed -n '2,21p' "$0"; exit 2; }
ARCH=$1
SOURCES=("${@:2}")
[ ${#SOURCES[@]} -gt 0 ] || SOURCES=(nms_cuda.cu roi_align_cuda.cu focal_loss_cuda.cu)
STACK="${MMPVT_STACK:-latest}"
VENV="${MMPVT_VENV:-$REPO/.venv$([ "$STACK" = latest ] || printf -- '-%s' "$STACK")}"
WORK="${WORK:-$(mktemp -d /tmp/mmcv_cuda_check.XXXXXX)}"
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "no venv at $VENV: run make install first"; exit 2; }

TORCH_CUDA=$("$PY" -c 'import torch; print(torch.version.cuda or "")')
[ -n "$TORCH_CUDA" ] || { echo "the venv's torch is a CPU build: no CUDA to compile for"; exit 2; }
echo "[cuda_check] torch $("$PY" -c 'import torch; print(torch.__version__)') (CUDA $TORCH_CUDA), arch $ARCH, sources: ${SOURCES[*]}"

# ---- 1. a CUDA_HOME from PyPI ----------------------------------------------------------------
major="${TORCH_CUDA%%.*}"
suffix=""; [ "$major" -lt 13 ] && suffix="-cu$major"   # CUDA 12 packages carry the suffix
split=()  # from CUDA 13 on, cicc (nvvm) and the crt headers are packages of their own
[ "$major" -ge 13 ] && split=("nvidia-nvvm==$TORCH_CUDA.*" "nvidia-cuda-crt==$TORCH_CUDA.*")
mkdir -p "$WORK/wheels" "$WORK/pkgs" "$WORK/cuda"
"$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$WORK/wheels" \
  "nvidia-cuda-nvcc$suffix==$TORCH_CUDA.*" "nvidia-cuda-runtime$suffix==$TORCH_CUDA.*" \
  "nvidia-cuda-cccl$suffix==$TORCH_CUDA.*" "${split[@]}" 2>&1 | grep -v 'is ignored' || true
for w in "$WORK"/wheels/*.whl; do "$PY" -m zipfile -e "$w" "$WORK/pkgs"; done
nvcc=$(find "$WORK/pkgs" -path '*/bin/nvcc' -type f | head -n 1)
if [ -z "$nvcc" ]; then
  echo "[cuda_check] PyPI's CUDA $TORCH_CUDA packages ship no nvcc driver (only: $(find "$WORK/pkgs" -path '*/bin/*' -type f -printf '%f ' ))"
  exit 1
fi
root=$(dirname "$(dirname "$nvcc")")
find "$root" -path '*/bin/*' -type f -exec chmod +x {} +  # wheels keep no file modes
ln -sfn "$root/bin" "$WORK/cuda/bin"
# headers: the nvcc packages' and those of the CUDA libraries torch itself depends on (cuBLAS,
# cuSPARSE, cuSOLVER, ... which ATen's CUDA headers include), already in the venv
mkdir -p "$WORK/cuda/include"
libs=$("$PY" -c 'import nvidia, os; print(" ".join(os.path.join(p, d, "include") for p in nvidia.__path__ for d in os.listdir(p)))' 2>/dev/null || true)
for dir in "$root/include" $libs; do
  [ -d "$dir" ] && cp -rsn "$dir/." "$WORK/cuda/include/"
done
ln -sfn "$root/lib" "$WORK/cuda/lib64"
# nvvm (cicc) ships beside bin in the nvcc package
[ -d "$root/nvvm" ] && ln -sfn "$root/nvvm" "$WORK/cuda/nvvm"
echo "[cuda_check] CUDA_HOME=$WORK/cuda: $("$WORK/cuda/bin/nvcc" --version | tail -n 2 | head -n 1)"

# ---- 2./3. setup_env.sh's CUDA build with a ninja that builds only SOURCES --------------------
mkdir -p "$WORK/path" "$WORK/objects"
cat >"$WORK/path/ninja" <<EOF
#!/usr/bin/env bash
# called by torch.utils.cpp_extension in the build directory: ninja -v [-j N]
real=\$(PATH="\${PATH#$WORK/path:}" command -v ninja)
[ "\${1:-}" = --version ] && exec "\$real" --version
status=0
for source in ${SOURCES[*]}; do
  target=\$(sed -n "s|^build \(.*/\${source%.*}\.o\): cuda_compile .*/\$source\$|\1|p" build.ninja)
  [ -n "\$target" ] || { echo "[cuda_check] \$source: not in build.ninja"; status=1; continue; }
  start=\$(date +%s)
  if "\$real" -v "\$target"; then
    cp "\$target" "$WORK/objects/"  # the build directory is removed when setup_env.sh stops
    size=\$(readelf -S -W "\$target" | awk '{for (i = 1; i < NF; i++) if (\$i == ".nv_fatbin") print \$(i + 4)}')
    fatbin=\$([ -n "\$size" ] && echo \$((16#\$size)))
    echo "[cuda_check] \$source: compiled in \$(( \$(date +%s) - start )) s -> $WORK/objects/\$(basename "\$target") (.nv_fatbin: \${fatbin:-none} bytes)"
  else
    echo "[cuda_check] \$source: FAILED after \$(( \$(date +%s) - start )) s"; status=1
  fi
done
echo "[cuda_check] stopping the build here (status \$status)"
echo \$status > "$WORK/status"
exit 3
EOF
chmod +x "$WORK/path/ninja"
rm -f "$WORK/status"
MMPVT_MMCV_CUDA=1 TORCH_CUDA_ARCH_LIST="$ARCH" CUDA_HOME="$WORK/cuda" PATH="$WORK/path:$PATH" \
  MMPVT_WHEEL_CACHE="$WORK/wheel_cache" MMPVT_STACK="$STACK" MMPVT_VENV="$VENV" \
  bash "$REPO/tools/setup_env.sh" 2>&1 | tee "$WORK/setup_env.log" \
  | grep -E '^\[setup_env\]|^\[cuda_check\]|nvcc |error|fatal' || true
[ -f "$WORK/status" ] || { echo "[cuda_check] the build did not reach ninja (see $WORK/setup_env.log)"; exit 1; }
status=$(cat "$WORK/status")
echo "[cuda_check] $([ "$status" = 0 ] && echo PASS || echo FAIL): arch $ARCH, log $WORK/setup_env.log"
exit "$status"
