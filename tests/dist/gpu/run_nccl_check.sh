#!/bin/bash
# Builds tests/dist/gpu/nccl_check.cpp against the dist sources (no full CUDA
# build needed) and runs it on every visible GPU, one rank each.
#   tests/dist/gpu/run_nccl_check.sh [NP]
set -euo pipefail
cd "$(dirname "$0")/../../.."
CUDA=${CUDA_HOME:-/usr/local/cuda}
NP=${1:-$(nvidia-smi -L | wc -l)}
OUT=${OUT:-/tmp}/nccl_check
mpicxx -std=c++20 -O2 -DPTUNE_CUDA=1 -I. -I"$CUDA/include" tests/dist/gpu/nccl_check.cpp \
  framework/dist/communicator.cpp framework/dist/mpi_communicator.cpp framework/dist/nccl_communicator.cpp \
  framework/core/error.cpp -L"$CUDA/lib64" -lnccl -lcudart -lfmt -Wl,-rpath,"$CUDA/lib64" -o "$OUT"
mpirun --allow-run-as-root --oversubscribe -np "$NP" "$OUT"
