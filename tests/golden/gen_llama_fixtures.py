#!/usr/bin/env python3
"""Golden fixtures for ptune's LLaMA-family support (LLaMA, Mistral, Qwen2, Qwen3, SmolLM3, Gemma 3,
Phi-3) from transformers + peft.

Usage (from the repository root):

    /work/venv/bin/python tests/golden/gen_llama_fixtures.py [--out DIR]

Writes tests/golden/fixtures/llama/<name>/ for
    llama        LlamaForCausalLM, GQA 4:1, head_dim 12 != hidden/heads (8), llama3 rope scaling, untied
    mistral      MistralForCausalLM, GQA 2:1, linear rope scaling, sliding_window 4 (shorter than the 8 tokens:
                 the prefix case hides prefix rows from later queries; generation runs past it with a cache)
    qwen2        Qwen2ForCausalLM, GQA 2:1, q/k/v biases, dynamic rope scaling (max_position_embeddings 10,
                 so the prefix case (positions up to 10) rescales and the plain case does not)
    qwen2_cls    Qwen2ForSequenceClassification (3 labels, pad 0): `score` on the last non-pad token
    qwen3        Qwen3ForCausalLM, GQA 2:1, head_dim 12, per-head q/k RMSNorm (perturbed weights),
                 attention_bias (q/k/v and o_proj biases), default rope
    smollm3      SmolLM3ForCausalLM, GQA 2:1, no_rope_layers [1, 0] (the second layer NoPE), mlp_bias, tied
    gemma3       Gemma3ForCausalLM (gemma3_text), GQA 2:1, head_dim 12, a sliding layer (window 5, rope base
                 100) then a full one (linear scaling, base 1000), query_pre_attn_scalar 10, (1 + w) norms before and after
                 each sub-block, per-head q/k norms, √C-scaled embeddings, GeGLU, tied
    phi3         Phi3ForCausalLM, GQA 2:1, fused qkv_proj / gate_up_proj, default rope
    phi3_long    Phi3ForCausalLM, partial_rotary_factor 0.5 (4 of 8 columns rotate), longrope with
                 original_max_position_embeddings 8: the plain case (positions < 8) takes the short factors,
                 the prefix case (positions up to 10) the long ones, cos and sin scaled by √2; tied
each with config.json, model.safetensors (save_pretrained) and golden.safetensors:
    input_ids, attention_mask (example 1 right-padded), position_ids, w_hidden, w_logits
    hidden_states (after the final norm), logits, grad_inputs_embeds of probe = Σ hidden·w_hidden + Σ logits·w_logits
    prefix_embedding (P, L·2·KVH·D) in peft's layout, prefix_position_ids (= arange + P),
    prefix_hidden_states, prefix_logits, prefix_grad_inputs_embeds, grad_prefix_embedding
    (causal LMs) gen_input_ids (1, T0), gen_output_ids (1, T0 + N): greedy model.generate;
                 gen_prefix_output_ids: the same with the prefix through peft's generate
CPU, float32, eval, eager attention, fixed seeds. The prefix case built by hand
(DynamicCache) is checked against peft's own forward and gradient before writing.
"""

from __future__ import annotations

import argparse
import os

import torch
from safetensors.torch import save_file

from peft import PrefixTuningConfig, get_peft_model
from transformers import (
    DynamicCache,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2ForSequenceClassification,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    Phi3Config,
    Phi3ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    SmolLM3Config,
    SmolLM3ForCausalLM,
)

B, T, P = 2, 8, 3
PAD_LEN = 3
PERTURB_STD = 0.08
PREFIX_STD = 0.5
GEN_NEW = 6
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "fixtures", "llama")

COMMON = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, initializer_range=0.1,
              rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)


def make(name):
    if name == "llama":
        cfg = LlamaConfig(**COMMON, num_attention_heads=4, num_key_value_heads=1, head_dim=12,
                          max_position_embeddings=64,
                          rope_parameters={"rope_type": "llama3", "rope_theta": 500.0, "factor": 4.0,
                                           "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                           "original_max_position_embeddings": 16})
        return cfg, LlamaForCausalLM
    if name == "mistral":
        cfg = MistralConfig(**COMMON, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                            sliding_window=4, rope_parameters={"rope_type": "linear", "rope_theta": 1000.0,
                                                                "factor": 2.0})
        return cfg, MistralForCausalLM
    if name == "qwen2":
        cfg = Qwen2Config(**COMMON, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=10,
                          rope_parameters={"rope_type": "dynamic", "rope_theta": 1000.0, "factor": 2.0})
        return cfg, Qwen2ForCausalLM
    if name == "qwen2_cls":
        cfg = Qwen2Config(**COMMON, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                          num_labels=3, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
        return cfg, Qwen2ForSequenceClassification
    if name == "qwen3":
        cfg = Qwen3Config(**COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=12,
                          max_position_embeddings=64, attention_bias=True,
                          rope_parameters={"rope_type": "default", "rope_theta": 1000.0})
        return cfg, Qwen3ForCausalLM
    if name == "smollm3":
        common = dict(COMMON, tie_word_embeddings=True)
        cfg = SmolLM3Config(**common, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                            no_rope_layers=[1, 0], mlp_bias=True,
                            rope_parameters={"rope_type": "default", "rope_theta": 5000.0})
        return cfg, SmolLM3ForCausalLM
    if name == "gemma3":
        common = dict(COMMON, tie_word_embeddings=True)
        cfg = Gemma3TextConfig(**common, num_attention_heads=4, num_key_value_heads=2, head_dim=12,
                               max_position_embeddings=64, sliding_window=5, query_pre_attn_scalar=10,
                               layer_types=["sliding_attention", "full_attention"],
                               rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0,
                                                                   "rope_theta": 1000.0},
                                                "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}})
        return cfg, Gemma3ForCausalLM
    if name == "phi3":
        cfg = Phi3Config(**COMMON, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         original_max_position_embeddings=64, sliding_window=64,
                         rope_parameters={"rope_type": "default", "rope_theta": 1000.0})
        return cfg, Phi3ForCausalLM
    if name == "phi3_long":
        common = dict(COMMON, tie_word_embeddings=True)
        cfg = Phi3Config(**common, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         original_max_position_embeddings=8,
                         rope_parameters={"rope_type": "longrope", "rope_theta": 1000.0, "partial_rotary_factor": 0.5,
                                          "short_factor": [1.0, 1.5], "long_factor": [2.0, 7.0]})
        return cfg, Phi3ForCausalLM
    raise ValueError(name)


def check(name, got, want, tol):
    err = (got - want).abs().max().item()
    scale = max(1.0, want.abs().max().item())
    ok = err <= tol * scale
    print(f"  [{'ok' if ok else 'FAIL'}] {name}: max|diff| = {err:.3g}")
    if not ok:
        raise SystemExit(f"check failed: {name}")


def build(name, out_dir, seed):
    torch.manual_seed(seed)
    cfg, cls = make(name)
    model = cls(cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * PERTURB_STD)
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    loaded = cls.from_pretrained(out_dir, attn_implementation="eager")
    loaded.eval()
    return loaded


def prefix_cache(E, L, KVH, D, Bn):
    """E (P, L·2·KVH·D) → DynamicCache: layer l keys at column block 2l, values at 2l+1 (peft's layout)."""
    Pn, W = E.shape[0], KVH * D
    layers = []
    for l in range(L):
        k = E[:, 2 * l * W:(2 * l + 1) * W].reshape(Pn, KVH, D).permute(1, 0, 2)
        v = E[:, (2 * l + 1) * W:(2 * l + 2) * W].reshape(Pn, KVH, D).permute(1, 0, 2)
        layers.append((k.unsqueeze(0).expand(Bn, KVH, Pn, D), v.unsqueeze(0).expand(Bn, KVH, Pn, D)))
    return DynamicCache(layers)


def head_out(name, model, hidden, ids):
    if name != "qwen2_cls":
        return model.lm_head(hidden)
    # transformers' last non-pad token: the rightmost token that is not pad
    scores = model.score(hidden)
    non_pad = (ids != model.config.pad_token_id).int()
    last = (torch.arange(ids.shape[-1]) * non_pad).argmax(-1)
    return scores[torch.arange(ids.shape[0]), last]


def run(name, out_root, seed):
    print(f"== {name}")
    out_dir = os.path.join(out_root, name)
    model = build(name, out_dir, seed)
    cfg = model.config
    L, KVH = cfg.num_hidden_layers, cfg.num_key_value_heads
    D = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    C, V = cfg.hidden_size, cfg.vocab_size
    gen = torch.Generator().manual_seed(seed + 2)
    ids = torch.randint(3, V, (B, T), generator=gen)
    am = torch.ones(B, T, dtype=torch.int64)
    am[1, T - PAD_LEN:] = 0
    ids[1, T - PAD_LEN:] = cfg.pad_token_id
    g = {"input_ids": ids, "attention_mask": am}
    g["position_ids"] = torch.arange(T).expand(B, T).clone()
    g["prefix_position_ids"] = g["position_ids"] + P
    g["w_hidden"] = torch.randn(B, T, C, generator=gen)
    out_w = cfg.num_labels if name == "qwen2_cls" else V
    g["w_logits"] = torch.randn(*((B, out_w) if name == "qwen2_cls" else (B, T, out_w)), generator=gen)
    emb_layer = model.get_input_embeddings()

    # ---- plain forward / backward
    emb = emb_layer(ids).detach().requires_grad_()
    hid = model.model(inputs_embeds=emb, attention_mask=am).last_hidden_state
    logits = head_out(name, model, hid, ids)
    ((hid * g["w_hidden"]).sum() + (logits * g["w_logits"]).sum()).backward()
    g["hidden_states"], g["logits"], g["grad_inputs_embeds"] = hid.detach(), logits.detach(), emb.grad.clone()
    with torch.no_grad():
        check("full model(input_ids) == backbone(inputs_embeds) + head", model(input_ids=ids, attention_mask=am).logits,
              g["logits"], 1e-6)

    # ---- KV prefix (peft's layout, GQA: KVH·D per layer)
    E = (torch.randn(P, L * 2 * KVH * D, generator=gen) * PREFIX_STD).requires_grad_()
    g["prefix_embedding"] = E.detach().clone()
    emb = emb_layer(ids).detach().requires_grad_()
    full_mask = torch.cat([torch.ones(B, P, dtype=am.dtype), am], 1)
    hid = model.model(inputs_embeds=emb, attention_mask=full_mask, past_key_values=prefix_cache(E, L, KVH, D, B),
                      position_ids=g["prefix_position_ids"], use_cache=True).last_hidden_state
    logits = head_out(name, model, hid, ids)
    ((hid * g["w_hidden"]).sum() + (logits * g["w_logits"]).sum()).backward()
    g["prefix_hidden_states"], g["prefix_logits"] = hid.detach(), logits.detach()
    g["prefix_grad_inputs_embeds"], g["grad_prefix_embedding"] = emb.grad.clone(), E.grad.clone()

    # peft's own prefix tuning forward agrees (and its gradient of the prompt encoder weight)
    # (Qwen2ForSequenceClassification takes no past_key_values: peft refuses prefix tuning on it.)
    if name != "qwen2_cls":
        pm = get_peft_model(model, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=P))
        pm.eval()
        with torch.no_grad():
            pm.prompt_encoder["default"].embedding.weight.copy_(E.detach())
        peft_logits = pm(input_ids=ids, attention_mask=am).logits
        check("peft prefix logits", peft_logits, g["prefix_logits"], 1e-5)
        # ---- greedy generation (the pad-free first example's first 5 tokens as the prompt)
        prompt = ids[:1, :5]
        g["gen_input_ids"] = prompt
        with torch.no_grad():
            base = pm.get_base_model()
            with pm.disable_adapter():
                out = base.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=GEN_NEW,
                                    min_new_tokens=GEN_NEW, do_sample=False, pad_token_id=0)
            g["gen_output_ids"] = out
            # peft 0.21.2's generate with transformers 5.24 drops the prefix (its output equals the base
            # model's), so the prefix continuation is transformers' generate from a cache pre-filled with the
            # prefix (peft's layout), positions P.., checked against a cache-free greedy loop.
            n0 = prompt.shape[1]
            out = base.generate(input_ids=prompt, attention_mask=torch.ones(1, P + n0, dtype=torch.int64),
                                past_key_values=prefix_cache(E.detach(), L, KVH, D, 1), max_new_tokens=GEN_NEW,
                                min_new_tokens=GEN_NEW, do_sample=False, pad_token_id=0)
            g["gen_prefix_output_ids"] = out
            # dynamic rope and longrope differ with/without a cache
            if "dynamic" not in str(cfg.rope_parameters) and "longrope" not in str(cfg.rope_parameters):
                seq = prompt.clone()
                for _ in range(GEN_NEW):
                    n = seq.shape[1]
                    lg = base(input_ids=seq, attention_mask=torch.ones(1, P + n, dtype=torch.int64),
                              past_key_values=prefix_cache(E.detach(), L, KVH, D, 1),
                              position_ids=torch.arange(P, P + n)[None]).logits
                    seq = torch.cat([seq, lg[:, -1].argmax(-1, keepdim=True)], 1)
                assert torch.equal(seq, out), (seq, out)
            print("  generate:", g["gen_output_ids"].tolist(), g["gen_prefix_output_ids"].tolist())
    tensors = {k: (v.to(torch.int32) if v.dtype == torch.int64 else v.float()).contiguous() for k, v in g.items()}
    save_file(tensors, os.path.join(out_dir, "golden.safetensors"), metadata={"ptune_golden": "transformers+peft"})
    for f in ("generation_config.json",):
        p = os.path.join(out_dir, f)
        if os.path.exists(p) and name == "qwen2_cls":
            os.remove(p)


# ----------------------------------------------------------------------------
# one training step of each prompt method on the llama model (CAUSAL_LM), in
# the format of tests/golden/fixtures/methods (see gen_method_fixtures.py)
# ----------------------------------------------------------------------------

MP, EH = 4, 6  # virtual tokens, encoder_hidden_size
METHODS = ["prompt_tuning", "prefix", "prefix_projection", "ptuning_mlp"]


def method_config(method):
    from peft import PromptEncoderConfig, PromptTuningConfig
    if method == "prompt_tuning":
        return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=MP)
    if method.startswith("prefix"):
        return PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=MP,
                                  prefix_projection=method == "prefix_projection", encoder_hidden_size=EH)
    return PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=MP, encoder_reparameterization_type="MLP",
                               encoder_hidden_size=EH, encoder_dropout=0.0)


def run_method(method, out_root, seed):
    import json
    import math
    import shutil
    import tempfile
    print(f"== llama {method}")
    d = os.path.join(out_root, "llama")
    base = LlamaForCausalLM.from_pretrained(d, attn_implementation="eager").eval()
    base.name_or_path = "llama/llama"
    pm = get_peft_model(base, method_config(method))
    pm.eval()
    params = [(n, p) for n, p in pm.named_parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in params:
            std = 0.5 if n.endswith("embedding.weight") else 0.1 if n.endswith("bias") else 1 / math.sqrt(p.shape[1])
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    init = {n: p.detach().clone() for n, p in params}
    ids = torch.randint(3, base.config.vocab_size, (B, T), generator=gen)
    am = torch.ones(B, T, dtype=torch.int64)
    am[1, 5:] = 0
    ids[1, 5:] = 0
    labels = ids.clone()  # answer-only: prompt part and padding −100
    labels[0, :5] = -100
    labels[1, :3] = -100
    labels[1, 5:] = -100
    opt = torch.optim.AdamW([p for _, p in params], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                            foreach=False)
    losses, grads, logits0 = [], None, None
    for step in range(3):
        opt.zero_grad()
        out = pm(input_ids=ids, attention_mask=am, labels=labels)
        out.loss.backward()
        losses.append(out.loss.detach())
        if step == 0:
            grads = {n: p.grad.detach().clone() for n, p in params}
            lg = out.logits.detach()
            logits0 = lg[:, -T:] if lg.shape[1] > T else lg
        opt.step()
    t = {"input_ids": ids, "attention_mask": am, "labels": labels, "loss": losses[0].reshape(1),
         "losses": torch.stack(losses), "logits": logits0}
    for n in init:
        t[n] = init[n]
        t["grad." + n] = grads[n]
        t["step3." + n] = dict(params)[n].detach().clone()
    out_dir = os.path.join(out_root, "methods", f"llama_{method}")
    os.makedirs(out_dir, exist_ok=True)
    save_file({k: (v.to(torch.int32) if v.dtype == torch.int64 else v.float()).contiguous() for k, v in t.items()},
              os.path.join(out_dir, "tensors.safetensors"))
    cfg = pm.peft_config["default"].to_dict()
    cfg = {k: (v if not isinstance(v, set) else sorted(v)) for k, v in cfg.items()}
    case = {"arch": "llama", "method": method, "model_dir": "llama/llama", "peft_config": cfg,
            "trainable": [{"name": n, "shape": list(p.shape)} for n, p in params],
            "note": "gen_llama_fixtures.py; same conventions as fixtures/methods (case.json there)"}
    json.dump(case, open(os.path.join(out_dir, "case.json"), "w"), indent=1, default=str)
    tmp = tempfile.mkdtemp()
    try:
        pm.save_pretrained(tmp)
        shutil.copy(os.path.join(tmp, "adapter_config.json"), os.path.join(out_dir, "peft_adapter_config.json"))
        shutil.copy(os.path.join(tmp, "adapter_model.safetensors"), os.path.join(out_dir, "peft_adapter.safetensors"))
    finally:
        shutil.rmtree(tmp)
    print("  losses", [round(x.item(), 5) for x in losses], "token_dim", cfg.get("token_dim"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    for i, name in enumerate(["llama", "mistral", "qwen2", "qwen2_cls", "qwen3", "smollm3", "gemma3", "phi3",
                              "phi3_long"]):
        if a.only in (None, name):
            run(name, a.out, 7000 + 100 * i)
    for i, method in enumerate(METHODS):
        if a.only in (None, "methods"):
            run_method(method, a.out, 7500 + 10 * i)


if __name__ == "__main__":
    main()
