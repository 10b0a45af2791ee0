#!/usr/bin/env python3
"""Write CoNLL-2003 as the JSONL that recipes/ner_ptuning_v2_minilm.yaml reads.

    pip install datasets && python3 scripts/export_conll2003.py [OUT_DIR]   # default data/conll2003

One sentence per line, words and tag names as lists:
    {"tokens": ["EU", "rejects", "German", "call"], "ner_tags": ["B-ORG", "O", "B-MISC", "O"]}
(the hub stores tags as class indices; ptune compares labels as strings, so they are written by name).
"""
import json
import os
import sys

import datasets


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "data/conll2003"
    os.makedirs(out, exist_ok=True)
    d = datasets.load_dataset("eriktks/conll2003")
    names = d["train"].features["ner_tags"].feature.names
    for split in ["train", "validation", "test"]:
        path = os.path.join(out, f"{split}.jsonl")
        with open(path, "w") as f:
            for e in d[split]:
                if e["tokens"]:
                    f.write(json.dumps({"tokens": e["tokens"], "ner_tags": [names[i] for i in e["ner_tags"]]}) + "\n")
        print(path, len(d[split]), "sentences")


if __name__ == "__main__":
    main()
