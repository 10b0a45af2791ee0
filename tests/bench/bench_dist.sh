#!/bin/bash
# Data-parallel step time and communication time per step on CPU, at
# -np 1/2/4, frozen weights replicated (shard none) and sharded (world).
#
#   tests/bench/bench_dist.sh [BUILD_DIR] [STEPS] [GLOBAL_BATCH]
#
# Trains the quickstart recipe (P-Tuning v2, tiny random BERT) and prints
# what each run reports in <run>/dist.json: mean step seconds, seconds
# inside collectives per step (waits included), bytes all-gathered and
# all-reduced per step, peak frozen-weight bytes per rank. On a machine
# with fewer cores than ranks the ranks share cores (--oversubscribe), so
# compare communication volumes, not speed-ups.
set -euo pipefail
BUILD=${1:-build}
STEPS=${2:-30}
GLOBAL=${3:-32}
PTUNE=$(realpath "$BUILD/launch/ptune")
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
"$PTUNE" init-model --arch bert --tokenizer recipes/data/quickstart/tokenizer.json --out "$WORK/model" > /dev/null
printf "%-3s %-6s %-5s %12s %12s %14s %14s %14s\n" np shard keep step_ms comm_ms gather_B/step reduce_B/step peak_frozen_B
for np in 1 2 4; do
  for shard in none world; do
    for keep in false true; do
      [ "$shard" = none ] && [ "$keep" = true ] && continue
      run="$WORK/np${np}_${shard}_${keep}"
      mpirun --oversubscribe --allow-run-as-root -np $np "$PTUNE" train recipes/quickstart.yaml \
        model.path="$WORK/model" train.output_dir="$run" train.micro_batch=$((GLOBAL / np)) \
        train.max_steps=$STEPS data.eval= train.log_every=1000 model.shard=$shard \
        model.shard_keep_for_backward=$keep > "$run.log" 2>&1 || { cat "$run.log"; exit 1; }
      python3 - "$run/dist.json" $np $shard $keep <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<3} {sys.argv[3]:<6} {sys.argv[4]:<5} {1e3*j['step_seconds']:12.2f} "
      f"{1e3*j['comm_seconds_per_step']:12.2f} {j['all_gather_bytes_per_step']:14d} "
      f"{j['grad_all_reduce_bytes_per_step']:14d} {j.get('peak_frozen_bytes_per_rank', 0):14d}")
PY
    done
  done
done
