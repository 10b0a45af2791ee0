#!/usr/bin/env python3
"""GPU P-Tuning v2 step: ptune vs PyTorch + peft, side by side, same GPU.

The step for both: a frozen decoder body (random weights, bf16, no LM head),
a P-Tuning v2 prefix in every layer (peft prefix tuning, num_virtual_tokens
= P), forward of B sequences of T tokens, a loss Σ h·w on the last hidden
state (w fixed and random), and backward to the prefix through every frozen
layer. ptune runs its real model path (`ptune bench --device cuda`: the
Transformer with flash attention and cuBLASLt); PyTorch runs peft's prefix
tuning on transformers' base model (GPT2Model / LlamaModel / Qwen3Model / Gemma3TextModel) with SDPA
attention in bf16. Neither computes weight gradients of the frozen model.
Reports tokens/s and MFU = tokens/s · (4·N + 12·L·(P+T)·H·D) / peak, N the
non-embedding weights, peak 989 TFLOP/s (H100 SXM dense bf16).

    python3 tests/bench/bench_gpu.py --ptune build/launch/ptune --out report.json

--batch takes a list (default 8 and 32: the issue fixes the sequence, 512,
not the batch, and the GEMMs of a 4096-token step are too small to fill an
H100). --variants "deterministic=PTUNE_DETERMINISTIC=1" also times ptune
with each of these ';'-separated, labelled sets of environment settings
(LABEL=VAR=VALUE[,VAR=VALUE...]), e.g. a setting that selects a kernel
under evaluation; the per-op profiles are then printed side by side.

--rows 1 puts the loss on each sequence's last hidden state only, as a
classification head reads it: ptune's model then computes its last block
past the attention for those rows alone (`bench --rows`), PyTorch for every
row; the FLOP count (and so the MFU) stays the full model's.

The PyTorch half needs torch, transformers and peft (skipped, with a note
in the report, when they are not importable).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

SHAPES = {
    # name: (arch, layers, hidden, heads, kv_heads, intermediate, vocab, head_dim)
    "gpt2-medium": ("gpt2", 24, 1024, 16, 16, 4096, 50257, 64),
    "llama-1b": ("llama", 16, 2048, 32, 8, 8192, 128256, 64),
    # Not in the default --shapes: Qwen3-0.6B (heads 128 wide at hidden 1024, per-head q/k norms) and
    # Gemma-3-270M (heads 256 wide: the D = 256 tensor-core attention, norms around each sub-block).
    "qwen3-0.6b": ("qwen3", 28, 1024, 16, 8, 3072, 151936, 128),
    "gemma3-270m": ("gemma3_text", 18, 640, 4, 1, 2048, 262144, 256),
    # Phi-3-mini (fused projections; heads 96 wide: the D = 96 tensor-core attention).
    "phi3-mini": ("phi3", 32, 3072, 32, 32, 8192, 32064, 96),
}
LLAMA_FAMILY = ("llama", "qwen3", "gemma3_text", "phi3")


# One ptune run (model init, warm-up, timed steps) takes under a minute on
# an H100; a kernel that hangs must not take the whole device call with it.
RUN_TIMEOUT_S = int(os.environ.get("BENCH_RUN_TIMEOUT", 240))


def flops_per_token(shape, seq, prefix):
    arch, L, C, H, KVH, I, _, D = SHAPES[shape]
    qkv = (H + 2 * KVH) * D
    up = 2 * I if arch in LLAMA_FAMILY else I
    n = L * (qkv * C + H * D * C + up * C + C * I)
    return 4.0 * n + 12.0 * L * (prefix + seq) * H * D


def ptune_rate(binary, shape, batch, seq, prefix, steps, warmup, profile, settings=None, rows=0):
    arch, L, C, H, KVH, I, V, D = SHAPES[shape]
    cmd = [binary, "bench", "--device", "cuda", "--arch", arch, "--layers", str(L), "--hidden", str(C), "--heads",
           str(H), "--kv-heads", str(KVH), "--head-dim", str(D), "--intermediate", str(I), "--vocab", str(V),
           "--batch", str(batch),
           "--seq", str(seq), "--prefix", str(prefix), "--steps", str(steps), "--warmup", str(warmup),
           "--rows", str(rows)]
    if profile:
        cmd.append("--profile")  # per-op GPU time, printed after the timed steps
    settings = settings or {}
    env = dict(os.environ, **settings)
    prefix_env = " ".join(f"{k}={v}" for k, v in settings.items())
    print(f"== ptune {shape} batch {batch} {prefix_env}", flush=True)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"engine": "ptune", "error": f"no result within {RUN_TIMEOUT_S} s (hung?)"}
    sys.stdout.write(p.stdout + p.stderr)
    sys.stdout.flush()
    m = re.search(r"step ([\d.]+) ms, ([\d.]+) tokens/s", p.stdout)
    if p.returncode != 0 or not m:
        return {"engine": "ptune", "error": (p.stderr or p.stdout)[-2000:]}
    # The profile's rows: "  <op>  <ms> ms <share>%  <calls> calls".
    profile = {op: float(ms) for op, ms in re.findall(r"^  (\S+)\s+([\d.]+) ms\s", p.stdout, re.M)}
    return {"engine": "ptune", "step_ms": float(m.group(1)), "tokens_per_s": float(m.group(2)),
            "command": " ".join(filter(None, [prefix_env] + cmd)), "profile_ms": profile}


def torch_rate(shape, batch, seq, prefix, steps, warmup, rows=0):
    import torch
    from peft import PrefixTuningConfig, TaskType, get_peft_model
    from transformers import AutoModel, Gemma3TextConfig, GPT2Config, LlamaConfig, Phi3Config, Qwen3Config

    arch, L, C, H, KVH, I, V, D = SHAPES[shape]
    if arch == "gpt2":
        cfg = GPT2Config(n_layer=L, n_embd=C, n_head=H, n_inner=I, vocab_size=V, n_positions=2048,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    else:
        config_cls = {"llama": LlamaConfig, "qwen3": Qwen3Config, "gemma3_text": Gemma3TextConfig,
                      "phi3": Phi3Config}[arch]
        cfg = config_cls(
            num_hidden_layers=L, hidden_size=C, num_attention_heads=H, num_key_value_heads=KVH, head_dim=D,
            intermediate_size=I, vocab_size=V, max_position_embeddings=2048)
    torch.manual_seed(0)
    base = AutoModel.from_config(cfg, torch_dtype=torch.bfloat16, attn_implementation="sdpa").cuda()
    model = get_peft_model(base, PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION,
                                                    num_virtual_tokens=prefix))
    ids = torch.randint(0, V, (batch, seq), device="cuda")
    n = rows or seq  # the loss reads each sequence's last n rows
    w = torch.randn(batch, n, C, device="cuda", dtype=torch.bfloat16)

    def step():
        h = model(input_ids=ids).last_hidden_state
        (h[:, seq - n:] * w).float().sum().backward()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        step()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    ms = times[len(times) // 2]
    return {"engine": "torch+peft (base model, prefix tuning, SDPA, bf16)", "step_ms": ms,
            "tokens_per_s": batch * seq / (ms / 1e3)}


def parse_variants(spec):
    """[(label, {VAR: VALUE})] from "LABEL=VAR=VALUE[,VAR=VALUE...];..."."""
    variants = []
    for item in filter(None, spec.split(";")):
        label, _, rest = item.partition("=")
        pairs = [p.split("=", 1) for p in rest.split(",") if p]
        if not label or not pairs or any(len(p) != 2 or not p[0] for p in pairs):
            sys.exit(f"bench_gpu: --variants item '{item}': expected LABEL=VAR=VALUE[,VAR=VALUE...]")
        variants.append((label, dict(pairs)))
    return variants


def measure(args, shape, batch):
    """One row: ptune (defaults and each variant) and torch + peft at one shape and batch."""
    f = flops_per_token(shape, args.seq, args.prefix)
    row = {"shape": shape, "batch": batch, "seq": args.seq, "prefix": args.prefix, "rows": args.rows,
           "flops_per_token": f}
    engines = [("ptune", lambda: ptune_rate(args.ptune, shape, batch, args.seq, args.prefix, args.steps,
                                            args.warmup, args.profile, rows=args.rows))]
    for label, settings in parse_variants(args.variants):
        engines.append((f"ptune[{label}]",
                        lambda v=settings: ptune_rate(args.ptune, shape, batch, args.seq, args.prefix, args.steps,
                                                      args.warmup, args.profile, settings=v, rows=args.rows)))
    engines.append(("torch", lambda: torch_rate(shape, batch, args.seq, args.prefix, args.steps, args.warmup,
                                                args.rows)))
    for name, rate in engines:
        try:
            r = rate()
        except Exception as e:  # noqa: BLE001 - the report says why
            r = {"error": f"{type(e).__name__}: {e}"[-2000:]}
        if "tokens_per_s" in r:
            r["mfu"] = r["tokens_per_s"] * f / (args.peak_tflops * 1e12)
        row[name] = r
    for name, _ in engines:
        if name != "torch" and "tokens_per_s" in row[name] and "tokens_per_s" in row["torch"]:
            row[name]["vs_torch"] = row[name]["tokens_per_s"] / row["torch"]["tokens_per_s"]
    if "vs_torch" in row["ptune"]:
        row["ratio"] = row["ptune"]["vs_torch"]
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptune", default="build/launch/ptune")
    ap.add_argument("--shapes", default="gpt2-medium,llama-1b")
    ap.add_argument("--batch", default="8,32", help="comma-separated batch sizes")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--prefix", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--profile", action="store_true", help="also print ptune's per-op GPU time")
    ap.add_argument("--variants", default="",
                    help="';'-separated LABEL=VAR=VALUE[,VAR=VALUE...]: environment settings to time ptune "
                         "with as well")
    ap.add_argument("--rows", type=int, default=0, help="rows per sequence the loss reads, the last ones; 0: all")
    ap.add_argument("--out", default="bench_gpu.json")
    args = ap.parse_args()

    # Batch-major (every shape at the first batch before any at the next),
    # and the report rewritten after each row: a run cut short by a device
    # time limit still leaves the rows it finished.
    results = []
    for batch in (int(b) for b in args.batch.split(",")):
        for shape in args.shapes.split(","):
            results.append(measure(args, shape, batch))
            with open(args.out, "w") as out:
                json.dump({"results": results, "peak_tflops": args.peak_tflops, "time": time.time()}, out, indent=1)
    print(f"{'shape':<12} {'batch':>5} {'engine':<24} {'tok/s':>10} {'MFU':>7} {'vs torch':>8}")
    for r in results:
        for name, e in r.items():
            if not isinstance(e, dict):
                continue
            print(f"{r['shape']:<12} {r['batch']:>5} {name:<24} {e.get('tokens_per_s', float('nan')):>10.0f} "
                  f"{100 * e.get('mfu', float('nan')):>6.1f}% {e.get('vs_torch', float('nan')):>8.2f}")
            if "error" in e:
                print(f"  {name} failed: {e['error'][-300:]}")
    print_profile_deltas(results)


def print_profile_deltas(results):
    """Per op, ms per step of each variant against the defaults (--profile runs)."""
    for r in results:
        base = r["ptune"].get("profile_ms") or {}
        others = [(n, e["profile_ms"]) for n, e in r.items()
                  if n.startswith("ptune[") and isinstance(e, dict) and e.get("profile_ms")]
        if not base or not others:
            continue
        print(f"\nper-op ms/step, {r['shape']} batch {r['batch']}: default" +
              "".join(f" | {n} (delta)" for n, _ in others))
        for op in sorted(base, key=base.get, reverse=True):
            cells = "".join(f" | {prof.get(op, float('nan')):8.3f} ({prof.get(op, float('nan')) - base[op]:+.3f})"
                            for _, prof in others)
            print(f"  {op:<32} {base[op]:8.3f}{cells}")


if __name__ == "__main__":
    main()
