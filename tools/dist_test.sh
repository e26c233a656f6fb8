#!/usr/bin/env bash
# Distributed testing with torchrun:  tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT from the environment; PYTHON picks the
# interpreter (default: python on PATH). See tools/torchrun.sh.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
exec "$(dirname "$0")/torchrun.sh" "$GPUS" test.py "$CONFIG" "$CHECKPOINT" "${@:4}"
