#!/usr/bin/env bash
# Slurm testing:  GPUS=8 tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS.
set -euo pipefail
exec "$(dirname "$0")/srun.sh" "$1" "$2" test.py "$3" "$4" "${@:5}"
