#!/usr/bin/env python3
"""Golden fixtures of ptune's data pipeline (framework/data).

Run by hand with the `tokenizers` and `transformers` packages; ctest never runs it:

    /work/venv/bin/python tests/golden/gen_data_fixtures.py

Writes tests/golden/fixtures/data/rte_golden.json: for the first lines of
rte/val.jsonl (read from ../shared/datasets at test time, never copied),
the ids and type ids that Hugging Face produces, with the committed
tokenizers in fixtures/tokenizers/{bert,roberta,gpt2}:

  pair        tokenizer(premise, hypothesis, truncation=<strategy>, max_length=L)
              (None where HF refuses: only_first/only_second too short)
  whole       a template without virtual slots ("{premise} Question: {hypothesis}?
              Answer: [MASK].") encoded as ONE string by HF, [MASK] spelled as the
              tokenizer's mask token — so splitting at [MASK] must not change ids
  slots       the same with virtual slots: HF ids of each piece (text between
              slots, encoded without special tokens, whitespace before a slot
              dropped) spliced with -(k+1) virtual ids, inside the special tokens
  verbalizer  the id of " word" (one token) for a few label words

The pair encodings are computed twice, with `tokenizers` and with the
`transformers` fast tokenizer, and must agree.

Also writes tests/golden/fixtures/data/trec_words_golden.json, the token
classification (NER) input: the first lines of trec/train.jsonl, each
question split on whitespace into words and tagged by capitalisation
(B-CAP on a capitalised word after a lower-case one, I-CAP after a
capitalised one, O otherwise — the C++ test derives the same words and
tags), encoded as transformers' run_ner.py does:

  tokenizer(words, is_split_into_words=True, truncation=True, max_length=L)
  labels: the word's tag on its first token, -100 elsewhere (label_all_tokens=False)
  labels_all: with label_all_tokens=True (later tokens: B-X as I-X)

with the tokenizers bert, roberta, gpt2 (RobertaTokenizerFast / GPT2TokenizerFast
.from_pretrained(..., add_prefix_space=True),
which transformers requires for pre-split input) and llama. Each is checked
against the `tokenizers` library encoding the words with is_pretokenized=True
(ByteLevel add_prefix_space=True for roberta/gpt2).
"""
import json
import os

from tokenizers import Tokenizer, pre_tokenizers
from transformers import GPT2TokenizerFast, PreTrainedTokenizerFast, RobertaTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
DATASETS = os.path.abspath(os.path.join(HERE, "..", "..", "..", "shared", "datasets"))
N_LINES = 24


def load(name):
    tok = Tokenizer.from_file(os.path.join(FIX, "tokenizers", name, "tokenizer.json"))
    tok.no_truncation()  # transformers ignores tokenizer.json's truncation and padding
    tok.no_padding()
    return tok


def hf_pair(tok, a, b, strategy, max_length):
    tok.enable_truncation(max_length=max_length, strategy=strategy)
    try:
        e = tok.encode(a, b)
        out = {"ids": e.ids, "type_ids": e.type_ids}
    except Exception:
        out = None
    tok.no_truncation()
    return out


def transformers_pair(tok, a, b, strategy, max_length):
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    try:
        e = fast(a, b, truncation=strategy, max_length=max_length, return_token_type_ids=True)
        return {"ids": e["input_ids"], "type_ids": e["token_type_ids"]}
    except Exception:
        return None


def skeleton(tok, pair):
    """The post-processor's layout: special ids, and 'A'/'B' for the sequences."""
    e = tok.encode("a", "b") if pair else tok.encode("a")
    out, types = [], {}
    for i, s in enumerate(e.sequence_ids):
        if s is None:
            out.append((e.ids[i], e.type_ids[i]))
        elif not out or out[-1] != ("AB"[s],):
            out.append(("AB"[s],))
            types["AB"[s]] = e.type_ids[i]
    return out, types


def piecewise(tok, segments):
    """segments: per sequence, a list of str pieces or int (virtual count)."""
    sk, types = skeleton(tok, len(segments) == 2)
    ids, type_ids, v = [], [], 0
    for item in sk:
        if len(item) == 2:
            ids.append(item[0]); type_ids.append(item[1]); continue
        seg = segments["AB".index(item[0])]
        for j, part in enumerate(seg):
            if isinstance(part, int):
                for _ in range(part):
                    v += 1; ids.append(-v); type_ids.append(0)
                continue
            if j + 1 < len(seg):
                part = part.rstrip(" \t\r\n")
            if not part:
                continue
            e = tok.encode(part, add_special_tokens=False)
            ids += e.ids; type_ids += [types[item[0]]] * len(e.ids)
    return {"ids": ids, "type_ids": type_ids}


def main():
    with open(os.path.join(DATASETS, "rte", "val.jsonl")) as f:
        rows = [json.loads(l) for l in f][:N_LINES]
    out = {"source": "rte/val.jsonl", "lines": N_LINES, "tokenizers": {}}
    masks = {"bert": "[MASK]", "roberta": "<mask>"}
    words = {"bert": ["yes", "no", "maybe"], "roberta": ["yes", "no", "the"], "gpt2": ["yes", "no", "the"]}
    for name in ["bert", "roberta", "gpt2"]:
        tok = load(name)
        t = {"pair": {}, "verbalizer": {}}
        for strategy, L in [("longest_first", 128), ("longest_first", 48), ("longest_first", 21),
                            ("only_first", 40), ("only_second", 40)]:
            got = []
            for r in rows:
                a = hf_pair(tok, r["premise"], r["hypothesis"], strategy, L)
                b = transformers_pair(tok, r["premise"], r["hypothesis"], strategy, L)
                assert a == b, (name, strategy, L, a, b)
                got.append(a)
            t["pair"][f"{strategy}/{L}"] = got
        for w in words[name]:
            e = tok.encode(" " + w, add_special_tokens=False)
            t["verbalizer"][w] = e.ids[0] if len(e.ids) == 1 else None
        if name in masks:
            m = masks[name]
            whole, slots = [], []
            for r in rows:
                text = f"{r['premise']} Question: {r['hypothesis']}? Answer: {m}."
                e = tok.encode(text)
                whole.append({"ids": e.ids, "type_ids": e.type_ids})
                # [P*2]{premise} [P] Question: {hypothesis}? [P*3] Answer: [MASK].
                slots.append(piecewise(tok, [[2, f"{r['premise']} ", 1,
                                              f" Question: {r['hypothesis']}? ", 3, f" Answer: {m}."]]))
            t["whole"] = whole
            t["slots"] = slots
            # Pair with slots in both: [P]{premise} / {hypothesis} [P*2][MASK]
            t["pair_slots"] = [piecewise(tok, [[1, r["premise"]], [r["hypothesis"] + " ", 2, f"{m}"]])
                               for r in rows]
        out["tokenizers"][name] = t
    path = os.path.join(FIX, "data", "rte_golden.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(path, os.path.getsize(path), "bytes")


TAGS = ["O", "B-CAP", "I-CAP"]


def tag_words(words):
    tags, prev = [], False
    for w in words:
        cap = "A" <= w[0] <= "Z"
        tags.append(0 if not cap else 2 if prev else 1)
        prev = cap
    return tags


def run_ner_labels(word_ids, tags, label_all_tokens=False):
    # run_ner.py's tokenize_and_align_labels; b_to_i_label maps B-X to I-X.
    b_to_i = {i: TAGS.index("I-" + t[2:]) if t.startswith("B-") and "I-" + t[2:] in TAGS else i
              for i, t in enumerate(TAGS)}
    labels, prev = [], None
    for w in word_ids:
        if w is None:
            labels.append(-100)
        elif w != prev:
            labels.append(tags[w])
        else:
            labels.append(b_to_i[tags[w]] if label_all_tokens else -100)
        prev = w
    return labels


def words_main():
    with open(os.path.join(DATASETS, "trec", "train.jsonl")) as f:
        rows = [json.loads(l)["question"].split() for l in f][:N_LINES]
    out = {"source": "trec/train.jsonl", "lines": N_LINES, "labels": TAGS, "tokenizers": {}}
    for name in ["bert", "roberta", "gpt2", "llama"]:
        byte_level = name in ("roberta", "gpt2")
        path = os.path.join(FIX, "tokenizers", name)
        if byte_level:
            # The model's own class: AutoTokenizer on a folder without
            # tokenizer_config.json gives a generic class that ignores add_prefix_space.
            cls = RobertaTokenizerFast if name == "roberta" else GPT2TokenizerFast
            fast = cls.from_pretrained(path, add_prefix_space=True)
        else:
            fast = PreTrainedTokenizerFast(tokenizer_object=load(name))
        raw = load(name)
        if byte_level:
            raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        t = {}
        for L in [128, 12]:
            got = []
            for words in rows:
                e = fast(words, is_split_into_words=True, truncation=True, max_length=L)
                r = raw.encode(words, is_pretokenized=True)
                n = len(e["input_ids"])
                if n == L:  # truncated: compare the kept tokens, specials aside
                    assert set(e["input_ids"]) <= set(r.ids), (name, words)
                else:
                    assert e["input_ids"] == r.ids and e.word_ids() == r.word_ids, (name, words)
                got.append({"ids": e["input_ids"], "labels": run_ner_labels(e.word_ids(), tag_words(words)),
                            "labels_all": run_ner_labels(e.word_ids(), tag_words(words), True)})
            t[str(L)] = got
        out["tokenizers"][name] = t
    path = os.path.join(FIX, "data", "trec_words_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
    words_main()
