#!/usr/bin/env python3
"""ptune vs PyTorch on a LLaMA-shape model (default 12 layers, 768 wide, 12 heads, GQA 4:1, SwiGLU 2048, RoPE):
forward + backward to the input embeddings and a P-Tuning v2 KV prefix (kv_heads·head_dim wide, as peft
builds it for GQA), on CPU, side by side. Usage (repository root, after building):

    OMP_NUM_THREADS=2 /work/venv/bin/python tests/bench/bench_llama.py [--threads 2]
"""

import argparse
import os
import subprocess
import time


def torch_step_rate(args, kv):
    import torch
    from transformers import LlamaConfig, LlamaModel
    from transformers.cache_utils import DynamicCache

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    D = args.hidden // args.heads
    cfg = LlamaConfig(num_hidden_layers=args.layers, hidden_size=args.hidden, num_attention_heads=args.heads,
                      num_key_value_heads=kv, head_dim=D, intermediate_size=(8 * args.hidden // 3 + 255) // 256 * 256,
                      vocab_size=args.vocab, max_position_embeddings=2048, attn_implementation="eager")
    model = LlamaModel(cfg).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    B, T, P = args.batch, args.seq, args.prefix
    ids = torch.randint(0, args.vocab, (B, T))
    embeds = model.embed_tokens(ids).detach().requires_grad_()
    prefix = [(torch.randn(1, kv, P, D, requires_grad=True), torch.randn(1, kv, P, D, requires_grad=True))
              for _ in range(args.layers)]
    mask = torch.ones(B, P + T, dtype=torch.long)
    dhidden = torch.randn(B, T, args.hidden)

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
    ap.add_argument("--kv-heads", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--prefix", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    shape = ["--arch", "llama", "--layers", str(args.layers), "--hidden", str(args.hidden), "--heads", str(args.heads),
             "--kv-heads", str(args.kv_heads), "--vocab", str(args.vocab), "--batch", str(args.batch), "--seq",
             str(args.seq), "--prefix", str(args.prefix), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run([args.ptune, "bench", *shape], env=env, check=True, capture_output=True, text=True).stdout
    print(out, end="")
    ptune_rate = float(out.split(" tokens/s")[0].split()[-1])
    torch_rate, torch_ms = torch_step_rate(args, args.kv_heads)
    print(f"pytorch eager (transformers LlamaModel + prefix cache): step {torch_ms:.1f} ms, {torch_rate:.1f} tokens/s")
    print(f"ptune / pytorch: {ptune_rate / torch_rate:.2f}x")


if __name__ == "__main__":
    main()
