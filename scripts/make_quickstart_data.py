#!/usr/bin/env python3
"""Writes the quickstart's synthetic task: recipes/data/quickstart/.

The quickstart must run offline on a fresh machine, so it cannot use a
pretrained checkpoint or a downloaded dataset. It trains a prompt on a
*random-init* tiny BERT (written by `ptune init-model`) for a generated
sentiment task: short reviews built from a fixed vocabulary, labelled by the
one sentiment word they contain, with negation ("not good") flipping it.
Also writes the WordPiece tokenizer.json that covers the vocabulary.

Standard library only; deterministic. Run from the repository root:
    python3 scripts/make_quickstart_data.py
"""
import json
import random
from pathlib import Path

POSITIVE = ["good", "great", "excellent", "wonderful", "delightful", "charming", "brilliant", "moving", "superb",
            "enjoyable", "clever", "funny", "beautiful", "gripping", "fresh"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "clumsy", "tedious", "weak", "bland", "messy", "silly",
            "forgettable", "painful", "flat", "lifeless"]
SUBJECTS = ["the film", "this movie", "the story", "the cast", "the script", "the ending", "the director",
            "the music", "the acting", "the plot", "the dialogue", "the camera work"]
VERBS = ["is", "was", "seems", "feels", "looks", "turns out"]
FILLERS = ["really", "quite", "rather", "truly", "simply", "mostly", "overall", "honestly", "frankly"]
TAILS = ["", "from start to finish", "for most of its running time", "despite the long wait", "in every scene",
         "at least to me", "by any measure", "on the whole"]


def review(rng):
    positive = rng.random() < 0.5
    word = rng.choice(POSITIVE if positive else NEGATIVE)
    negated = rng.random() < 0.25
    filler = rng.choice(FILLERS) if rng.random() < 0.6 else ""
    parts = [rng.choice(SUBJECTS), rng.choice(VERBS), "not" if negated else "", filler, word, rng.choice(TAILS)]
    text = " ".join(p for p in parts if p) + " ."
    return {"sentence": text, "label": "positive" if positive != negated else "negative"}


def tokenizer_json(words):
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + sorted(words))}
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, t in enumerate(specials)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {t: {"id": t, "ids": [vocab[t]], "tokens": [t]} for t in ["[CLS]", "[SEP]"]}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }


def main():
    out = Path("recipes/data/quickstart")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1234)
    for split, n in [("train", 2000), ("eval", 400)]:
        with open(out / f"{split}.jsonl", "w") as f:
            for _ in range(n):
                f.write(json.dumps(review(rng)) + "\n")
    words = set(POSITIVE + NEGATIVE + VERBS + FILLERS + ["not", "."])
    for phrase in SUBJECTS + TAILS:
        words.update(phrase.split())
    with open(out / "tokenizer.json", "w") as f:
        json.dump(tokenizer_json(words), f, indent=1)


if __name__ == "__main__":
    main()
