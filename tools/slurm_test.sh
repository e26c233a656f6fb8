#!/usr/bin/env bash
# Slurm testing:  GPUS=8 tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS. See tools/srun.sh.
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
exec "$(dirname "$0")/srun.sh" "$PARTITION" "$JOB_NAME" test.py "$CONFIG" "$CHECKPOINT" "${@:5}"
