#!/usr/bin/env bash
# Distributed testing with torchrun:  tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT from the environment; PYTHON picks the
# interpreter (default: python on PATH).
set -euo pipefail
exec "$(dirname "$0")/torchrun.sh" "$3" test.py "$1" "$2" "${@:4}"
