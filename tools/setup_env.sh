#!/usr/bin/env bash
# One-command set-up of an mmpvt development environment (what `make install` runs).
#
#   bash tools/setup_env.sh                     # the newest stack, in .venv
#   MMPVT_STACK=oldest bash tools/setup_env.sh  # the oldest supported stack, in .venv-oldest
#
# Creates a virtualenv and installs the exact versions of requirements/stacks/$MMPVT_STACK.txt:
# torch with its torchvision (PyPI's default builds, which run on a CPU too), numpy, mmengine,
# mmcv 2.1.0 with its compiled ops, mmdet, mmsegmentation, mmpretrain, the test and deploy extras,
# then mmpvt (editable).
#
# mmcv: PyPI has only its source. It is compiled once per (python, torch, CUDA ops) and the wheel
# kept in $MMPVT_WHEEL_CACHE, so later installs (and fresh clones) reuse it. On a machine where
# torch sees a GPU, the ops are built for CUDA (for the visible GPUs' architectures) with nvcc
# (CUDA_HOME, or nvcc on PATH), which must match the CUDA torch was built with; elsewhere for the
# CPU only. Or take a prebuilt wheel: MMPVT_MMCV_WHEEL=path, or MMPVT_MMCV_FIND_LINKS=the index
# page OpenMMLab publishes per CUDA and torch (docs/install.md).
#
# Environment variables:
#   MMPVT_STACK            latest (default) or oldest: requirements/stacks/<name>.txt
#   MMPVT_VENV             virtualenv path             (default: <repo>/.venv, .venv-oldest)
#   MMPVT_PYTHON           interpreter for the venv    (default: python3)
#   MMPVT_WHEEL_CACHE      compiled mmcv wheels        (default: ~/.cache/mmpvt/wheels)
#   MMPVT_TORCH_INDEX      extra index for torch, e.g. https://download.pytorch.org/whl/cu118
#   MMPVT_MMCV_CUDA        auto (default: CUDA ops if torch sees a GPU), 1 (CUDA ops without a
#                          GPU; needs TORCH_CUDA_ARCH_LIST) or 0 (CPU ops only)
#   TORCH_CUDA_ARCH_LIST   CUDA architectures to build, e.g. "7.0;9.0" (default: the visible GPUs')
#   MMPVT_MMCV_WHEEL       a prebuilt mmcv wheel to install instead of compiling
#   MMPVT_MMCV_FIND_LINKS  a pip --find-links page with prebuilt mmcv wheels
#   MAX_JOBS               parallel compile jobs for mmcv (default: number of cores)
#   MMPVT_MIN_FREE_GB      free disk space asked for before installing (default: 10; the latest
#                          stack's venv is about 6.4 GB, pip's downloads and mmcv's build come on top)
#
# Re-running it where everything is installed only verifies the versions (a few seconds).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${MMPVT_STACK:-latest}"
STACK_FILE="$REPO/requirements/stacks/$STACK.txt"
DEFAULT_VENV="$REPO/.venv"
[ "$STACK" = latest ] || DEFAULT_VENV="$REPO/.venv-$STACK"
VENV="${MMPVT_VENV:-$DEFAULT_VENV}"
PYTHON="${MMPVT_PYTHON:-python3}"
WHEEL_CACHE="${MMPVT_WHEEL_CACHE:-$HOME/.cache/mmpvt/wheels}"
MMCV_CUDA="${MMPVT_MMCV_CUDA:-auto}"
MIN_FREE_GB="${MMPVT_MIN_FREE_GB:-10}"

say() { printf '[setup_env] %s\n' "$*"; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }
start=$(date +%s)

[ -f "$STACK_FILE" ] || die "MMPVT_STACK=$STACK: expected one of $(ls "$REPO/requirements/stacks" | sed 's/\.txt$//' | tr '\n' ' ')(no $STACK_FILE)"
case "$MMCV_CUDA" in auto|0|1) ;; *) die "MMPVT_MMCV_CUDA must be auto, 0 or 1, got '$MMCV_CUDA'";; esac
[[ "$MIN_FREE_GB" =~ ^[0-9]+$ ]] || die "MMPVT_MIN_FREE_GB must be a whole number of GB, got '$MIN_FREE_GB'"
pin() {  # the exact version the stack file gives a package
  local v
  v=$(sed -n "s/^$1==\([^ #]*\).*/\1/p" "$STACK_FILE")
  [ -n "$v" ] || die "$STACK_FILE pins no $1"
  printf '%s' "$v"
}
TORCH_VERSION=$(pin torch)
TORCHVISION_VERSION=$(pin torchvision)
MMCV_VERSION=$(pin mmcv)

# ---- prerequisites ---------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "no '$PYTHON' found. Install Python 3.10-3.12 (e.g. apt-get install python3 python3-venv python3-dev) or set MMPVT_PYTHON."
"$PYTHON" - <<'EOF' || die "Python 3.10-3.12 is required; found $("$PYTHON" --version 2>&1). Install one and set MMPVT_PYTHON=/path/to/python3.11."
import sys
sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
EOF
"$PYTHON" -c "import venv, ensurepip" 2>/dev/null || die "the Python venv module is missing: apt-get install python3-venv"

# ---- fast path: everything already there ---------------------------------------------------
check_installed() {
  [ -x "$VENV/bin/python" ] || return 1
  local ops=any  # MMPVT_MMCV_CUDA=1: a venv whose mmcv has no CUDA ops is rebuilt
  [ "$MMCV_CUDA" = 1 ] && ops=cuda
  "$VENV/bin/python" "$REPO/tools/check_env.py" --stack "$STACK" --mmcv-ops "$ops" "$REPO"
}
if check_installed; then
  say "everything of the $STACK stack is already installed in $VENV ($(( $(date +%s) - start ))s)."
  exit 0
fi

# ---- disk space -------------------------------------------------------------------------------
# pip stops half-way with 'No space left on device' and leaves a half-filled venv; say it first.
existing_dir() {  # the nearest directory of $1 that exists
  local d="$1"
  while [ ! -d "$d" ]; do d=$(dirname "$d"); done
  printf '%s' "$d"
}
for place in "venv:$VENV" "mmcv wheel cache:$WHEEL_CACHE" "pip's temporary files:${TMPDIR:-/tmp}"; do
  dir=$(existing_dir "${place#*:}")
  free_kb=$(df -Pk "$dir" | awk 'NR == 2 {print $4}')
  [ "$free_kb" -ge $(( MIN_FREE_GB * 1024 * 1024 )) ] \
    || die "the $STACK stack needs about $MIN_FREE_GB GB free, $dir (for the ${place%%:*} ${place#*:}) has $(( free_kb / 1024 / 1024 )) GB. Free some space, point MMPVT_VENV / MMPVT_WHEEL_CACHE / TMPDIR elsewhere, or set MMPVT_MIN_FREE_GB"
done

# ---- virtualenv and pinned packages ---------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV ($STACK stack)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# pip with the stack's pins; drops the "Location ... is ignored" chatter of local mirror configs
quiet_mirror() { grep -v "is ignored: it is neither a file nor a directory" || true; }
pip_install() {
  local rc=0  # pipefail: the pipeline fails exactly when pip does
  "$PY" -m pip install --disable-pip-version-check -q -c "$STACK_FILE" "$@" 2>&1 | quiet_mirror || rc=$?
  return "$rc"
}

say "build tools (setuptools<82 keeps pkg_resources for mmcv's build and mmengine)"
pip_install -r "$REPO/requirements/build.txt"

# torchvision's compiled ops only load beside the torch it was built for: one pip call for both.
say "torch==$TORCH_VERSION, torchvision==$TORCHVISION_VERSION"
torch_args=()
[ -n "${MMPVT_TORCH_INDEX:-}" ] && torch_args=(--extra-index-url "$MMPVT_TORCH_INDEX")
pip_install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "numpy" "${torch_args[@]}"

say "mmengine"
pip_install "mmengine"

# ---- mmcv ----------------------------------------------------------------------------------
# What torch offers: its CUDA version ('none' for a CPU build), whether it sees a GPU, the GPUs'
# architectures, and the C++ standard its headers require (torch 2.14's ATen.h stops below C++20).
torch_facts=$("$PY" - <<'EOF'
import os, torch
cuda = torch.version.cuda or ''
gpu = cuda and torch.cuda.is_available()
archs = sorted({'%d.%d' % torch.cuda.get_device_capability(i)
                for i in range(torch.cuda.device_count())}) if gpu else []
with open(os.path.join(os.path.dirname(torch.__file__), 'include', 'ATen', 'ATen.h')) as f:
    std = 'c++20' if '202002L' in f.read() else 'c++17'
print(cuda or 'none', int(bool(gpu)), ';'.join(archs) or '-', std)  # no empty field
EOF
) || die "could not import the installed torch"
read -r TORCH_CUDA TORCH_SEES_GPU GPU_ARCHS CXX_STD <<<"$torch_facts"

want_cuda_ops=0
if [ "$MMCV_CUDA" = 1 ] || { [ "$MMCV_CUDA" = auto ] && [ "$TORCH_SEES_GPU" = 1 ]; }; then
  want_cuda_ops=1
  [ "$TORCH_CUDA" != none ] || die "CUDA ops asked for, but torch $TORCH_VERSION is a CPU build; set MMPVT_TORCH_INDEX to a CUDA index (docs/install.md)"
  [ -n "${TORCH_CUDA_ARCH_LIST:-}" ] || [ "$GPU_ARCHS" != - ] \
    || die "MMPVT_MMCV_CUDA=1 without a visible GPU: set TORCH_CUDA_ARCH_LIST (e.g. '7.0;8.0;9.0')"
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$GPU_ARCHS}"
fi

PYTAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
if [ "$want_cuda_ops" = 1 ]; then
  OPS_TAG="cu${TORCH_CUDA//./}-sm$(printf '%s' "$TORCH_CUDA_ARCH_LIST" | tr -d '.' | tr ';, ' '_')"
else
  OPS_TAG=cpu
fi
# Keyed by everything the compiled ops depend on: a CPU-only wheel never meets a GPU node.
MMCV_CACHE="$WHEEL_CACHE/mmcv-$MMCV_VERSION-$PYTAG-torch$TORCH_VERSION-$OPS_TAG"

build_mmcv() {
  local nvcc_bin="" build_dir src rc=0
  # compiling mmcv needs a C++ compiler and the Python headers
  command -v "${CXX:-c++}" >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 \
    || die "no C++ compiler found (needed to build mmcv's ops): apt-get install g++ (or build-essential)."
  "$PY" -c "import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
    || die "Python headers (Python.h) are missing (needed to build mmcv): apt-get install python3-dev"
  if [ "$want_cuda_ops" = 1 ]; then
    nvcc_bin="${CUDA_HOME:+$CUDA_HOME/bin/nvcc}"
    [ -n "$nvcc_bin" ] || nvcc_bin=$(command -v nvcc || true)
    [ -x "$nvcc_bin" ] || die "mmcv's CUDA ops need nvcc for CUDA $TORCH_CUDA: install that CUDA toolkit (or pip install nvidia-cuda-nvcc-cu${TORCH_CUDA%%.*} and headers, docs/install.md) and set CUDA_HOME; or give a prebuilt wheel with MMPVT_MMCV_WHEEL / MMPVT_MMCV_FIND_LINKS"
    local nvcc_cuda
    nvcc_cuda=$("$nvcc_bin" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')
    [ "${nvcc_cuda%%.*}" = "${TORCH_CUDA%%.*}" ] \
      || die "$nvcc_bin is CUDA $nvcc_cuda, torch $TORCH_VERSION was built with CUDA $TORCH_CUDA: their major versions must match (set CUDA_HOME to a CUDA ${TORCH_CUDA%%.*}.x toolkit)"
    export CUDA_HOME="${CUDA_HOME:-$(dirname "$(dirname "$nvcc_bin")")}"
    say "building mmcv==$MMCV_VERSION with CUDA ops (CUDA $nvcc_cuda, archs $TORCH_CUDA_ARCH_LIST, $CXX_STD) from source: 1-2 hours on 2 cores, minutes on a GPU node's cores ..."
  else
    say "building mmcv==$MMCV_VERSION with CPU ops ($CXX_STD) from source (about 25 min on 2 cores) ..."
  fi
  build_dir=$(mktemp -d "$MMCV_CACHE/.build.XXXXXX")
  trap 'rm -rf "$build_dir"' EXIT
  "$PY" -m pip download --disable-pip-version-check --no-cache-dir --no-deps --no-build-isolation \
    --no-binary :all: -d "$build_dir" "mmcv==$MMCV_VERSION" 2>&1 | quiet_mirror || rc=$?
  [ "$rc" -eq 0 ] || die "downloading mmcv==$MMCV_VERSION's source failed"
  tar -xzf "$build_dir/mmcv-$MMCV_VERSION.tar.gz" -C "$build_dir"
  src="$build_dir/mmcv-$MMCV_VERSION"
  # mmcv 2.1.0's setup.py gives the host compiler and nvcc '-std=c++17' after torch's own flags
  # (the last one wins), whatever torch's headers need.
  "$PY" "$REPO/tools/dev/mmcv_cxx_standard.py" "$src/setup.py" "$CXX_STD" \
    || die "could not set the C++ standard in mmcv's setup.py (its -std lines changed?)"
  # mmcv builds CUDA ops whenever torch sees a GPU (FORCE_CUDA=0 does not stop it): a CPU build
  # hides the GPUs from the build instead. --no-cache-dir: pip's own wheel cache would hand back a
  # wheel built earlier from the same source against another torch.
  local -a build_env=(MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}")
  if [ "$want_cuda_ops" = 1 ]; then build_env+=(FORCE_CUDA=1); else build_env+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=); fi
  env "${build_env[@]}" "$PY" -m pip wheel --disable-pip-version-check --no-cache-dir --no-deps \
      --no-build-isolation -w "$build_dir" "$src" 2>&1 | quiet_mirror || rc=$?
  [ "$rc" -eq 0 ] || die "building mmcv failed (see the compiler output above)"
  built=$(ls "$build_dir"/mmcv-*.whl)
  # rename inside the same filesystem: the cache never holds a half-written wheel
  mv "$built" "$MMCV_CACHE/"
  rm -rf "$build_dir"; trap - EXIT
}

if [ -n "${MMPVT_MMCV_WHEEL:-}" ]; then
  [ -f "$MMPVT_MMCV_WHEEL" ] || die "MMPVT_MMCV_WHEEL=$MMPVT_MMCV_WHEEL: no such file (expected a mmcv-$MMCV_VERSION-*.whl)"
  say "mmcv from the prebuilt wheel $MMPVT_MMCV_WHEEL"
  pip_install "$MMPVT_MMCV_WHEEL"
elif [ -n "${MMPVT_MMCV_FIND_LINKS:-}" ]; then
  say "mmcv==$MMCV_VERSION prebuilt, from $MMPVT_MMCV_FIND_LINKS"
  pip_install --only-binary mmcv -f "$MMPVT_MMCV_FIND_LINKS" "mmcv==$MMCV_VERSION"
else
  mkdir -p "$MMCV_CACHE"
  mmcv_wheel=$(ls "$MMCV_CACHE"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$mmcv_wheel" ]; then
    build_mmcv
    mmcv_wheel=$(ls "$MMCV_CACHE"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)
  else
    say "reusing cached mmcv wheel $mmcv_wheel"
  fi
  pip_install "$mmcv_wheel"
fi

say "mmdet, mmsegmentation, mmpretrain, the hub, test, deploy and lint extras"
pip_install "mmdet" "mmsegmentation" "mmpretrain" -r "$REPO/requirements/seg.txt" -r "$REPO/requirements/hub.txt" \
  -r "$REPO/requirements/tests.txt" -r "$REPO/requirements/deploy.txt" -r "$REPO/requirements/lint.txt"

say "mmpvt (editable)"
pip_install --no-build-isolation --no-deps -e "$REPO"

check_installed || {
  "$PY" -c "import torchvision, mmcv.ops, mmdet, mmseg, mmpretrain.models, mmpvt" || true
  die "installation finished but the environment check failed (see above)."
}
say "done in $(( $(date +%s) - start ))s: $VENV ($STACK stack, mmcv ops: $OPS_TAG)"
say "run the tests with: make test$([ "$STACK" = latest ] || printf ' STACK=%s' "$STACK")"
