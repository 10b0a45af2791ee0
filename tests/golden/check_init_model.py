#!/usr/bin/env python3
"""Manual interop check: can transformers load a model directory written by
`ptune init-model` (config.json + model.safetensors, or sharded *.safetensors
with model.safetensors.index.json)?

    /work/venv/bin/python tests/golden/check_init_model.py DIR

The class is taken from config.json `architectures[0]` (e.g. GPT2LMHeadModel,
BertForPreTraining, RobertaForMaskedLM); without it, from `model_type` via
AutoModel.  Loading must be clean: any missing, unexpected or shape-mismatched
key is an error (exit 1).  Every tensor in the checkpoint files must equal the
loaded parameter bit for bit, and a short forward pass must be finite.
Prints "OK <class> <n> parameters" on success.  Not run in CI.
"""

import json
import os
import sys

import torch
import transformers
from safetensors import safe_open


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        fail(f"usage: {sys.argv[0]} MODEL_DIR")
    d = sys.argv[1]
    cfg_path = os.path.join(d, "config.json")
    if not os.path.isfile(cfg_path):
        fail(f"{cfg_path} not found")
    with open(cfg_path) as f:
        cfg = json.load(f)
    model_type = cfg.get("model_type")
    if not model_type:
        fail("config.json has no model_type")
    archs = cfg.get("architectures") or []
    if archs:
        cls = getattr(transformers, archs[0], None)
        if cls is None:
            fail(f"unknown architectures[0] {archs[0]!r}")
    else:
        cls = transformers.AutoModel
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index) as f:
            files = sorted({os.path.join(d, v) for v in json.load(f)["weight_map"].values()})
    elif os.path.isfile(os.path.join(d, "model.safetensors")):
        files = [os.path.join(d, "model.safetensors")]
    else:
        fail(f"neither model.safetensors nor model.safetensors.index.json in {d}")

    model, info = cls.from_pretrained(d, attn_implementation="eager", output_loading_info=True)
    model.eval()
    # A *ForMaskedLM class has no pooler, but ptune ships one beside the MLM
    # head (as bert-base-uncased does) for *ForSequenceClassification.
    pooler = [k for k in info.get("unexpected_keys", []) if ".pooler." in k]
    info["unexpected_keys"] = [k for k in info.get("unexpected_keys", []) if k not in pooler]
    problems = {k: v for k, v in info.items() if v}
    if problems:
        for k, v in problems.items():
            print(f"{k}: {v}", file=sys.stderr)
        fail(f"{cls.__name__}.from_pretrained({d}) was not clean")
    if model.config.model_type != model_type:
        fail(f"loaded model_type {model.config.model_type} != config {model_type}")

    # every stored tensor must arrive unchanged
    state = model.state_dict()
    n_file = 0
    for fn in files:
        with safe_open(fn, "pt") as f:
            for k in f.keys():
                n_file += 1
                if k in pooler:
                    continue
                if k not in state:
                    fail(f"{os.path.basename(fn)}:{k} not in the loaded model's state dict")
                t = f.get_tensor(k)
                if t.shape != state[k].shape or not torch.equal(t.to(state[k].dtype), state[k]):
                    fail(f"{k}: loaded tensor differs from the file")

    # a tiny forward pass
    vocab = model.config.vocab_size
    ids = torch.arange(4, 4 + 6).remainder(vocab).unsqueeze(0)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
    for name, v in out.items():
        if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all():
            fail(f"non-finite output {name}")

    n_params = sum(p.numel() for p in model.parameters())  # tied parameters counted once
    print(f"OK {cls.__name__} ({model_type}) {n_params} parameters, {n_file} tensors in {len(files)} file(s)")


if __name__ == "__main__":
    main()
