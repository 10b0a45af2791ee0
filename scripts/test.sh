#!/usr/bin/env bash
# Builds ptune (CPU) and runs the whole test suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
cd build
OMP_NUM_THREADS=2 ctest --output-on-failure -j "$(nproc)" --timeout 600
