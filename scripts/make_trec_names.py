#!/usr/bin/env python3
"""A token-classification task from real text, offline: proper names in TREC questions.

    python3 scripts/make_trec_names.py [OUT_DIR]   # default runs/data/trec_names

Reads ../shared/datasets/trec/train.jsonl (5,452 questions) and writes
train.jsonl (the first 4,500) and eval.jsonl (the other 952) for
recipes/ner_ptuning_v2_minilm.yaml: each question split on whitespace, a
capitalised word after the first (other than "I") tagged B-PER, or I-PER
right after another. An uncased model (all-MiniLM-L6-v2 lower-cases its
input) does not see the capitals, so it has to recognise names from the
words and their context. Standard-library Python only.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "..", "shared", "datasets", "trec", "train.jsonl")


def tag(words):
    tags, prev = [], False
    for i, w in enumerate(words):
        name = i > 0 and "A" <= w[0] <= "Z" and w != "I"
        tags.append("O" if not name else "I-PER" if prev else "B-PER")
        prev = name
    return tags


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "runs/data/trec_names"
    os.makedirs(out, exist_ok=True)
    with open(SOURCE) as f:
        questions = [json.loads(line)["question"].split() for line in f]
    with open(os.path.join(out, "train.jsonl"), "w") as train, open(os.path.join(out, "eval.jsonl"), "w") as ev:
        for i, words in enumerate(questions):
            (train if i < 4500 else ev).write(json.dumps({"tokens": words, "ner_tags": tag(words)}) + "\n")
    print(f"{out}: {min(len(questions), 4500)} train, {max(len(questions) - 4500, 0)} eval")


if __name__ == "__main__":
    main()
