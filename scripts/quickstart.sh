#!/usr/bin/env bash
# The README's main job on a fresh Debian/Ubuntu machine: install the
# dependencies, build, write a tiny random GPT-2 and inspect it. Offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
./build/launch/ptune init-model --arch gpt2 --preset tiny --out runs/tiny-gpt2
./build/launch/ptune inspect runs/tiny-gpt2
