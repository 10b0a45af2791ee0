#!/usr/bin/env python3
"""ptune bench vs PyTorch eager, side by side, on the same frozen-model step.

The step: forward of a GPT-2-shaped model (random weights, frozen) with a
P-Tuning v2 prefix (per-layer past_key_values that require grad) and
backward to the input embeddings and the prefix, as `ptune bench` does.

    /work/venv/bin/python tests/bench/bench_engine.py --ptune build/launch/ptune

Needs torch + transformers (any venv); not part of the test suite.
"""
import argparse
import os
import subprocess
import time


def torch_step_rate(args):
    import torch
    from transformers import GPT2Config, GPT2Model
    from transformers.cache_utils import DynamicCache

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=args.layers, n_embd=args.hidden, n_head=args.heads, n_positions=1024,
                     vocab_size=args.vocab, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2Model(cfg).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    B, T, P, C, H = args.batch, args.seq, args.prefix, args.hidden, args.heads
    ids = torch.randint(0, args.vocab, (B, T))
    embeds = model.wte(ids).detach().requires_grad_()
    prefix = [(torch.randn(1, H, P, C // H, requires_grad=True), torch.randn(1, H, P, C // H, requires_grad=True))
              for _ in range(args.layers)]
    mask = torch.ones(B, P + T, dtype=torch.long)
    dhidden = torch.randn(B, T, C)

    def step():
        cache = DynamicCache()
        for layer, (k, v) in enumerate(prefix):
            cache.update(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1), layer)
        out = model(inputs_embeds=embeds, past_key_values=cache, attention_mask=mask,
                    position_ids=torch.arange(P, P + T).expand(B, T)).last_hidden_state
        out.backward(dhidden)

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    return B * T * args.steps / seconds, 1e3 * seconds / args.steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptune", default="build/launch/ptune")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--prefix", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()

    shape = ["--layers", str(args.layers), "--hidden", str(args.hidden), "--heads", str(args.heads), "--vocab",
             str(args.vocab), "--batch", str(args.batch), "--seq", str(args.seq), "--prefix", str(args.prefix),
             "--steps", str(args.steps), "--warmup", str(args.warmup)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    ptune = subprocess.run([args.ptune, "bench", *shape], env=env, check=True, capture_output=True, text=True).stdout
    print(ptune, end="")
    ptune_rate = float(ptune.split(" tokens/s")[0].split()[-1])

    torch_rate, torch_ms = torch_step_rate(args)
    print(f"pytorch eager: step {torch_ms:.1f} ms, {torch_rate:.1f} tokens/s")
    print(f"ptune / pytorch: {ptune_rate / torch_rate:.2f}x")


if __name__ == "__main__":
    main()
