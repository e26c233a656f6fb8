#!/usr/bin/env bash
# Distributed training with torchrun:  tools/dist_train.sh CONFIG GPUS [train.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT from the environment; PYTHON picks the
# interpreter (default: python on PATH). See tools/torchrun.sh.
# Without CUDA the processes run on the CPU and their process group uses gloo (not nccl).
set -euo pipefail
CONFIG=$1
GPUS=$2
exec "$(dirname "$0")/torchrun.sh" "$GPUS" train.py "$CONFIG" "${@:3}"
