#!/usr/bin/env bash
# Slurm training:  GPUS=16 tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS. See tools/srun.sh.
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
exec "$(dirname "$0")/srun.sh" "$PARTITION" "$JOB_NAME" train.py "$CONFIG" --work-dir="$WORK_DIR" \
    "${@:5}"
