#!/usr/bin/env bash
# Encode throughput, single thread: ptune's tokenizers beside the Python
# `tokenizers` package (Rust core) on the same SST-2 + RTE + TREC lines.
#
#   tests/bench/bench_tokenizer.sh [build dir] [python]
#
# The build dir must hold a built ptune_framework (cmake --build <dir>
# --target ptune_framework); the bench is compiled against it here, so the
# project build needs no bench target. Python defaults to /work/venv/bin/python.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
PYTHON=${2:-/work/venv/bin/python}
DATASETS=${PTUNE_DATASETS:-$ROOT/../shared/datasets}
LIB=$BUILD/framework/libptune_framework.a
[ -f "$LIB" ] || { echo "no $LIB: build ptune_framework first" >&2; exit 1; }
BIN=$BUILD/bench_tokenizer
if [ ! -x "$BIN" ] || [ "$BIN" -ot "$LIB" ] || [ "$BIN" -ot "$ROOT/tests/bench/bench_tokenizer.cpp" ]; then
  g++ -O3 -march=x86-64-v2 -DNDEBUG -std=c++20 -I"$ROOT" "$ROOT/tests/bench/bench_tokenizer.cpp" "$LIB" \
    -licui18n -licuuc -lfmt -o "$BIN"
fi
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
for name in ${BENCH_TOKENIZERS:-gpt2 bert roberta llama xlmr qwen llama3 o200k}; do
  json=$ROOT/tests/golden/fixtures/tokenizers/$name/tokenizer.json
  taskset -c 0 "$BIN" "$json" "$DATASETS" 5
  taskset -c 0 "$PYTHON" "$ROOT/tests/bench/bench_tokenizer_hf.py" "$json" "$DATASETS" 5
done
