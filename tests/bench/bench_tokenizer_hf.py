#!/usr/bin/env python3
"""The Python `tokenizers` package (Rust core) on the same lines as
bench_tokenizer.cpp, single thread: a loop of encode() and encode_batch()
with RAYON_NUM_THREADS=1 (set by bench_tokenizer.sh before Python starts)."""
import json
import os
import sys
import time

from tokenizers import Tokenizer

SOURCES = [("sst2/train.jsonl", "sentence"), ("sst2/dev.jsonl", "sentence"), ("rte/train.jsonl", "premise"),
           ("rte/train.jsonl", "hypothesis"), ("rte/val.jsonl", "premise"), ("rte/val.jsonl", "hypothesis"),
           ("trec/train.jsonl", "question")]


def main():
    path, datasets = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    assert os.environ.get("RAYON_NUM_THREADS") == "1", "run through bench_tokenizer.sh (single thread)"
    tok = Tokenizer.from_file(path)
    tok.no_truncation()
    tok.no_padding()
    lines = []
    for file, field in SOURCES:
        with open(os.path.join(datasets, file), encoding="utf-8") as f:
            lines += [json.loads(l)[field] for l in f if l.strip()]
    nbytes = sum(len(l.encode()) for l in lines)
    tokens = sum(len(tok.encode(l)) for l in lines)
    for name, run in (("encode", lambda: [tok.encode(l) for l in lines]),
                      ("encode_batch", lambda: tok.encode_batch(lines))):
        best = 1e30
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        print(f"hf {name:<12} {path:<40} lines {len(lines)}  tokens {tokens}  best of {repeats}: {best:.3f} s  "
              f"{len(lines) / best:.0f} lines/s  {tokens / best / 1e6:.2f} Mtok/s  {nbytes / best / 1e6:.2f} MB/s")


if __name__ == "__main__":
    main()
