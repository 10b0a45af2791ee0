#!/usr/bin/env bash
# One script for a lent GPU machine (no network, no apt): builds ptune with
# CUDA, runs the CUDA tests and the GPU benchmark, and writes a JSON report
# of what passed and the figures to $OUT (default ./gpu_report).
# Dependencies come from .deps/ when present (scripts/fetch_gpu_deps.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/gpu_report}
mkdir -p "$OUT"
BUILD=${BUILD:-$ROOT/build-gpu}
ARCH=$(uname -m)-linux-gnu

if [ -d .deps/usr ]; then
  D=$ROOT/.deps/usr
  export CMAKE_PREFIX_PATH="$D:$D/lib/$ARCH/cmake:${CMAKE_PREFIX_PATH:-}"
  export LD_LIBRARY_PATH="$D/lib/$ARCH:$D/lib/$ARCH/openblas-openmp:$D/lib/$ARCH/openmpi/lib:${LD_LIBRARY_PATH:-}"
  export CPATH="$D/include:$D/include/$ARCH:$D/include/$ARCH/openblas-openmp:${CPATH:-}"
  export LIBRARY_PATH="$D/lib/$ARCH:$D/lib/$ARCH/openblas-openmp:${LIBRARY_PATH:-}"
  export PATH="$D/bin:$PATH"
  export OPAL_PREFIX=$D MPI_HOME=$D/lib/$ARCH/openmpi
  EXTRA=(-DOPENBLAS_LIB="$D/lib/$ARCH/openblas-openmp/libopenblas.so.0" -DOPENBLAS_INCLUDE="$D/include/$ARCH/openblas-openmp"
         -DMPI_CXX_COMPILER="$D/bin/mpicxx.openmpi" -DGTest_DIR="$D/lib/$ARCH/cmake/GTest")
else
  EXTRA=()
fi
export PATH=/usr/local/cuda/bin:$PATH

nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv > "$OUT/gpu.csv" 2>&1 || true
step() { local name=$1; shift; local t0=$(date +%s); "$@" > "$OUT/$name.log" 2>&1; local rc=$?
         echo "\"$name\": {\"rc\": $rc, \"seconds\": $(( $(date +%s) - t0 ))}"; }

R1=$(step configure cmake -S . -B "$BUILD" -G Ninja -DPTUNE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 "${EXTRA[@]}")
R2=$(step build cmake --build "$BUILD" -j"$(nproc)")
R3=$(step cuda_tests "$BUILD/tests/test_cuda" --gtest_output=json:"$OUT/cuda_tests.json")
R4=$(step ctest bash -c "cd '$BUILD' && OMP_NUM_THREADS=4 ctest -j8 --output-on-failure")
PY=${PYTHON:-python3}
R5=$(step bench_gpu "$PY" tests/bench/bench_gpu.py --bench-gpu "$BUILD/tests/bench_gpu" --out "$OUT/bench_gpu.json")
{
  echo "{"
  echo "  $R1,"; echo "  $R2,"; echo "  $R3,"; echo "  $R4,"; echo "  $R5,"
  echo "  \"gpu\": \"$(tail -n +2 "$OUT/gpu.csv" 2>/dev/null | head -1)\""
  echo "}"
} > "$OUT/report.json"
cat "$OUT/report.json"
grep -E "^\[  (PASSED|FAILED|SKIPPED)" "$OUT/cuda_tests.log" 2>/dev/null | tail -20
