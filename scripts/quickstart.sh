#!/usr/bin/env bash
# The README's main job on a fresh Debian/Ubuntu machine, offline after apt:
# install the dependencies, build, write a random-init tiny BERT and train a
# P-Tuning v2 prompt on the synthetic quickstart task (recipes/quickstart.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
./build/launch/ptune init-model --arch bert --preset tiny \
  --tokenizer recipes/data/quickstart/tokenizer.json --out runs/quickstart-model
./build/launch/ptune inspect runs/quickstart-model
rm -rf runs/quickstart
./build/launch/ptune train recipes/quickstart.yaml
