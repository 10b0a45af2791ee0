#!/usr/bin/env python3
"""Does an adapter trained and exported by ptune load in peft and give the
same outputs? Records the answer in tests/golden/fixtures/interop/result.json,
which tests/launch/test_adapter_interop.cpp asserts on.

For each method, on a tiny random BERT with the quickstart tokenizer:
`ptune train` a few steps, `ptune predict` the eval set (class scores), then
`PeftModel.from_pretrained(BertForSequenceClassification, adapter)` and
compare its logits on the same examples.

    /work/venv/bin/python tests/golden/check_adapter_interop.py --ptune build/launch/ptune
"""
import argparse
import json
import os
import subprocess
import tempfile

import torch


def run(cmd):
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptune", default="build/launch/ptune")
    args = ap.parse_args()
    from peft import PeftModel
    from tokenizers import Tokenizer
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    tmp = tempfile.mkdtemp()
    model_dir = os.path.join(tmp, "model")
    run([args.ptune, "init-model", "--arch", "bert", "--tokenizer", "recipes/data/quickstart/tokenizer.json",
         "--out", model_dir, "--seed", "3"])
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    lines = [json.loads(l) for l in open("recipes/data/quickstart/eval.jsonl")][:32]
    eval_path = os.path.join(tmp, "eval.jsonl")
    with open(eval_path, "w") as f:
        for l in lines:
            f.write(json.dumps(l) + "\n")

    results = {}
    # peft 0.21.2 + transformers 5.24 cannot run BERT prefix tuning for
    # SEQ_CLS (tests/golden/README.md), so the prefix methods are checked
    # on the adapter's tensors only by the method goldens.
    for method in ["prompt-tuning", "p-tuning"]:
        out = os.path.join(tmp, method)
        run([args.ptune, "train", "recipes/quickstart.yaml", f"model.path={model_dir}", f"method.name={method}",
             f"train.output_dir={out}", "train.max_steps=5", f"data.eval={eval_path}", "method.num_virtual_tokens=4"])
        pred = os.path.join(tmp, method + ".jsonl")
        run([args.ptune, "predict", "recipes/quickstart.yaml", f"model.path={model_dir}", f"method.name={method}",
             "method.num_virtual_tokens=4", "--adapter", os.path.join(out, "adapter"), "--input", eval_path,
             "--output", pred])
        ptune_scores = torch.tensor([json.loads(l)["scores"] for l in open(pred)])

        base = BertForSequenceClassification.from_pretrained(model_dir, num_labels=2, attn_implementation="eager")
        model = PeftModel.from_pretrained(base, os.path.join(out, "adapter")).eval()
        with torch.no_grad():
            logits = []
            for l in lines:
                e = tok.encode(l["sentence"])
                logits.append(model(input_ids=torch.tensor([e.ids]),
                                    attention_mask=torch.tensor([e.attention_mask]),
                                    token_type_ids=torch.tensor([e.type_ids])).logits[0])
            peft_scores = torch.stack(logits)
        diff = (peft_scores - ptune_scores).abs().max().item()
        results[method] = {"examples": len(lines), "max_abs_diff": diff, "ok": diff < 1e-4}
        print(method, results[method])

    import peft
    import transformers
    record = {"versions": {"peft": peft.__version__, "transformers": transformers.__version__, "torch": torch.__version__},
              "results": results}
    with open("tests/golden/fixtures/interop/result.json", "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
