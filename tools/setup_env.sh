#!/usr/bin/env bash
# One-command set-up of the mmpvt development environment (what `make install` runs).
#
#   bash tools/setup_env.sh
#
# Creates a virtualenv (default: .venv in the repository root) and installs, pinned:
# torch 2.14.1 with torchvision 0.29.1 (PyPI's default build, which runs on the CPU too), numpy,
# mmengine 0.10.7, mmcv 2.1.0 compiled from source with its ops, mmdet 3.3.0, mmsegmentation 1.2.2,
# mmpretrain 1.2.0, timm (+ ftfy, regex), pycocotools, pytest, then mmpvt (editable).
#
# Environment variables:
#   MMPVT_VENV         virtualenv path                      (default: <repo>/.venv)
#   MMPVT_PYTHON       interpreter that creates the venv    (default: python3)
#   MMPVT_WHEEL_CACHE  where the compiled mmcv wheel is kept (default: ~/.cache/mmpvt/wheels)
#   MMPVT_TORCH_INDEX  extra index for torch, e.g. https://download.pytorch.org/whl/cpu
#   MAX_JOBS           parallel compile jobs for mmcv       (default: number of cores)
#
# Re-running it where everything is installed only verifies the versions (a few seconds).
# mmcv's ~25-minute build happens once per (python, torch) pair: its wheel is cached outside the
# repository, so fresh clones (CI) reuse it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMPVT_VENV:-$REPO/.venv}"
PYTHON="${MMPVT_PYTHON:-python3}"
WHEEL_CACHE="${MMPVT_WHEEL_CACHE:-$HOME/.cache/mmpvt/wheels}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1  # the torchvision release built against TORCH_VERSION
MMCV_VERSION=2.1.0

say() { printf '[setup_env] %s\n' "$*"; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }
start=$(date +%s)

# ---- prerequisites ---------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "no '$PYTHON' found. Install Python 3.10-3.12 (e.g. apt-get install python3 python3-venv python3-dev) or set MMPVT_PYTHON."
"$PYTHON" - <<'EOF' || die "Python 3.10-3.12 is required (torch 2.14 + mmcv 2.1.0); found $("$PYTHON" --version 2>&1). Install one and set MMPVT_PYTHON=/path/to/python3.11."
import sys
sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
EOF
"$PYTHON" -c "import venv, ensurepip" 2>/dev/null || die "the Python venv module is missing: apt-get install python3-venv"

# ---- fast path: everything already there ---------------------------------------------------
check_installed() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" "$REPO/tools/check_env.py" "$REPO"
}
if check_installed; then
  say "everything is already installed in $VENV ($(( $(date +%s) - start ))s)."
  exit 0
fi

# Compiling mmcv needs a C++ compiler and the Python headers.
CXX_BIN="${CXX:-c++}"
command -v "$CXX_BIN" >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 \
  || die "no C++ compiler found (needed to build mmcv's ops): apt-get install g++ (or build-essential)."
"$PYTHON" - <<'EOF' || die "Python headers (Python.h) are missing (needed to build mmcv): apt-get install python3-dev"
import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')) else 1)
EOF

# ---- virtualenv and pinned packages ---------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
CONSTRAINTS="$REPO/requirements/constraints.txt"
# pip with our constraints; drops the "Location ... is ignored" chatter of local mirror configs
quiet_mirror() { grep -v "is ignored: it is neither a file nor a directory" || true; }
pip_install() {
  local rc=0  # pipefail: the pipeline fails exactly when pip does
  "$PY" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" "$@" 2>&1 | quiet_mirror || rc=$?
  return "$rc"
}

say "build tools (setuptools<82 keeps pkg_resources for mmcv's build and mmengine)"
pip_install -r "$REPO/requirements/build.txt"

# torchvision's compiled ops only load beside the torch it was built for: one pip call for both.
say "torch==$TORCH_VERSION, torchvision==$TORCHVISION_VERSION"
torch_args=()
[ -n "${MMPVT_TORCH_INDEX:-}" ] && torch_args=(--extra-index-url "$MMPVT_TORCH_INDEX")
pip_install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "numpy==1.26.4" "${torch_args[@]}"

say "mmengine"
pip_install "mmengine==0.10.7"

# mmcv: PyPI only has the source distribution. Build it once into the wheel cache, keyed by the
# Python ABI and torch version so a cached wheel never meets the wrong torch.
PYTAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
MMCV_CACHE="$WHEEL_CACHE/mmcv-$MMCV_VERSION-$PYTAG-torch$TORCH_VERSION"
mkdir -p "$MMCV_CACHE"
mmcv_wheel=$(ls "$MMCV_CACHE"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$mmcv_wheel" ]; then
  say "building mmcv==$MMCV_VERSION with compiled ops from source (about 25 min on 2 cores) ..."
  build_dir=$(mktemp -d "$MMCV_CACHE/.build.XXXXXX")
  trap 'rm -rf "$build_dir"' EXIT
  # The sdist, unpacked and patched: torch 2.14's headers need C++20, and mmcv 2.1.0's setup.py
  # passes -std=c++17 after torch's own -std flag (the last one wins).
  rc=0
  "$PY" -m pip download --disable-pip-version-check --no-cache-dir --no-deps --no-build-isolation \
    --no-binary :all: -d "$build_dir" "mmcv==$MMCV_VERSION" 2>&1 | quiet_mirror || rc=$?
  [ "$rc" -eq 0 ] || die "downloading mmcv==$MMCV_VERSION's source failed"
  tar -xzf "$build_dir/mmcv-$MMCV_VERSION.tar.gz" -C "$build_dir"
  src="$build_dir/mmcv-$MMCV_VERSION"
  sed -i "s/extra_compile_args\['cxx'\] = \['-std=c++17'\]/extra_compile_args['cxx'] = ['-std=c++20']/" \
    "$src/setup.py"
  grep -q "extra_compile_args\['cxx'\] = \['-std=c++20'\]" "$src/setup.py" \
    || die "could not switch mmcv's setup.py to C++20 (its -std line changed?)"
  # --no-cache-dir: pip's own wheel cache would hand back a wheel built earlier from the same
  # source against another torch (or without ops) instead of building one.
  MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "$PY" -m pip wheel --disable-pip-version-check --no-cache-dir --no-deps --no-build-isolation \
      -w "$build_dir" "$src" 2>&1 | quiet_mirror || rc=$?
  [ "$rc" -eq 0 ] || die "building mmcv failed (see the compiler output above)"
  built=$(ls "$build_dir"/mmcv-*.whl)
  # rename inside the same filesystem: the cache never holds a half-written wheel
  mv "$built" "$MMCV_CACHE/"
  mmcv_wheel="$MMCV_CACHE/$(basename "$built")"
  rm -rf "$build_dir"; trap - EXIT
else
  say "reusing cached mmcv wheel $mmcv_wheel"
fi
pip_install "$mmcv_wheel"

say "mmdet, mmsegmentation, mmpretrain, timm and friends"
pip_install "mmdet==3.3.0" "mmsegmentation==1.2.2" "mmpretrain==1.2.0" -r "$REPO/requirements/runtime.txt" \
  -r "$REPO/requirements/tests.txt" -r "$REPO/requirements/deploy.txt"

say "mmpvt (editable)"
pip_install --no-build-isolation --no-deps -e "$REPO"

check_installed || {
  "$PY" -c "import torchvision, mmcv.ops, mmdet, mmseg, mmpretrain.models, mmpvt" || true
  die "installation finished but the environment check failed (see the import error above)."
}
say "done in $(( $(date +%s) - start ))s: $VENV"
say "run the tests with: make test"
