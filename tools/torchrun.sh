#!/usr/bin/env bash
# What dist_train.sh and dist_test.sh share:  tools/torchrun.sh NPROC SCRIPT [SCRIPT args]
# runs tools/SCRIPT on NPROC processes per node with torchrun and --launcher pytorch.
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT from the environment; PYTHON picks the
# interpreter (default: python on PATH).
set -euo pipefail
NPROC=$1
SCRIPT=$2
DIR="$(cd "$(dirname "$0")" && pwd)"

PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
    "$DIR/$SCRIPT" "${@:3}" --launcher pytorch
