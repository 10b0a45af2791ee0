#!/usr/bin/env python3
"""ptune bench vs PyTorch eager, side by side, on the same frozen-model step.

The step: forward of a GPT-2-, LLaMA-, Qwen3-, Gemma-3-, Phi-3- or BERT-shaped model (random weights, frozen)
with a P-Tuning v2 prefix (per-layer past_key_values that require grad; for
GQA kv_heads·head_dim wide, as peft builds it) and backward to the input
embeddings and the prefix, as `ptune bench` does. With --rows N the loss
reads only each sequence's last N hidden states, as a task head does (1: a
classification head's token): ptune then asks its model for those rows
(`bench --rows`), PyTorch computes every row as transformers' models do and
the loss reads the last N.

    /work/venv/bin/python tests/bench/bench_engine.py --ptune build/launch/ptune
    /work/venv/bin/python tests/bench/bench_engine.py --ptune build/launch/ptune --arch llama --kv-heads 3
    /work/venv/bin/python tests/bench/bench_engine.py --ptune build/launch/ptune --arch qwen3 --kv-heads 6
    /work/venv/bin/python tests/bench/bench_engine.py --ptune build/launch/ptune --arch gemma3_text --kv-heads 6
    /work/venv/bin/python tests/bench/bench_engine.py --ptune build/launch/ptune --arch phi3 --kv-heads 6
    /work/venv/bin/python tests/bench/bench_engine.py --ptune build/launch/ptune --arch bert
    /work/venv/bin/python tests/bench/bench_engine.py --ptune build/launch/ptune --arch bert --rows 1

Needs torch + transformers (any venv); not part of the test suite.
"""
import argparse
import os

LLAMA_FAMILY = ("llama", "qwen3", "gemma3_text", "phi3")
import subprocess
import time


def torch_step_rate(args):
    import torch
    from transformers import (BertConfig, BertModel, Gemma3TextConfig, Gemma3TextModel, GPT2Config, GPT2Model,
                              LlamaConfig, LlamaModel, Phi3Config, Phi3Model, Qwen3Config, Qwen3Model)
    from transformers.cache_utils import DynamicCache

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, T, P, C, H = args.batch, args.seq, args.prefix, args.hidden, args.heads
    D, KV = C // H, args.kv_heads or H
    if args.arch in LLAMA_FAMILY:  # qwen3: LLaMA's shape plus per-head q/k norms; gemma3_text: and more
        config_cls, model_cls = {"llama": (LlamaConfig, LlamaModel), "qwen3": (Qwen3Config, Qwen3Model),
                                 "gemma3_text": (Gemma3TextConfig, Gemma3TextModel),
                                 "phi3": (Phi3Config, Phi3Model)}[args.arch]
        cfg = config_cls(num_hidden_layers=args.layers, hidden_size=C, num_attention_heads=H, num_key_value_heads=KV,
                         head_dim=D, intermediate_size=(8 * C // 3 + 255) // 256 * 256, vocab_size=args.vocab,
                         max_position_embeddings=2048, attn_implementation="eager",
                         **({"pad_token_id": 0, "eos_token_id": 2} if args.arch == "phi3" else {}))  # Phi3Config's 32000
        model = model_cls(cfg).eval()
        embed = model.embed_tokens
    elif args.arch == "bert":
        # Exact (erf) GELU, as BERT checkpoints use; the prefix is the encoder's
        # self-attention cache, as peft's P-Tuning v2 passes it.
        cfg = BertConfig(num_hidden_layers=args.layers, hidden_size=C, num_attention_heads=H, intermediate_size=4 * C,
                         vocab_size=args.vocab, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        model = BertModel(cfg, add_pooling_layer=False).eval()
        embed = model.embeddings.word_embeddings
    else:
        cfg = GPT2Config(n_layer=args.layers, n_embd=C, n_head=H, n_positions=1024, vocab_size=args.vocab,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        model = GPT2Model(cfg).eval()
        embed = model.wte
    for p in model.parameters():
        p.requires_grad_(False)
    ids = torch.randint(0, args.vocab, (B, T))
    embeds = embed(ids).detach().requires_grad_()
    prefix = [(torch.randn(1, KV, P, D, requires_grad=True), torch.randn(1, KV, P, D, requires_grad=True))
              for _ in range(args.layers)]
    mask = torch.ones(B, P + T, dtype=torch.long)
    N = args.rows or T  # rows per sequence the loss reads: the last N
    dhidden = torch.randn(B, N, C)

    def step():
        cache = DynamicCache()
        for layer, (k, v) in enumerate(prefix):
            cache.update(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1), layer)
        out = model(inputs_embeds=embeds, past_key_values=cache, attention_mask=mask,
                    position_ids=torch.arange(P, P + T).expand(B, T)).last_hidden_state
        out[:, T - N:].backward(dhidden)

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
    ap.add_argument("--arch", choices=["gpt2", "bert", *LLAMA_FAMILY], default="gpt2")
    ap.add_argument("--kv-heads", type=int, default=0, help="LLaMA family: key/value heads (0 = heads)")
    ap.add_argument("--vocab", type=int, default=0, help="0: 50257 (gpt2), 30522 (bert) or 32000")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--prefix", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rows", type=int, default=0, help="rows per sequence the loss reads, the last ones; 0: all")
    args = ap.parse_args()
    args.vocab = args.vocab or {"gpt2": 50257, "bert": 30522}.get(args.arch, 32000)

    shape = ["--arch", args.arch, "--layers", str(args.layers), "--hidden", str(args.hidden), "--heads", str(args.heads), "--vocab",
             str(args.vocab), "--batch", str(args.batch), "--seq", str(args.seq), "--prefix", str(args.prefix),
             "--steps", str(args.steps), "--warmup", str(args.warmup), "--rows", str(args.rows)]
    if args.arch in LLAMA_FAMILY:
        shape += ["--kv-heads", str(args.kv_heads or args.heads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    ptune = subprocess.run([args.ptune, "bench", *shape], env=env, check=True, capture_output=True, text=True).stdout
    print(ptune, end="")
    ptune_rate = float(ptune.split(" tokens/s")[0].split()[-1])

    torch_rate, torch_ms = torch_step_rate(args)
    print(f"pytorch eager: step {torch_ms:.1f} ms, {torch_rate:.1f} tokens/s")
    print(f"ptune / pytorch: {ptune_rate / torch_rate:.2f}x")


if __name__ == "__main__":
    main()
