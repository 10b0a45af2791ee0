#!/usr/bin/env python3
"""Generate golden fixtures for ptune's core engine (model forward/backward,
CE loss, KV-prefix / P-Tuning v2) from Hugging Face transformers + peft.

Usage (from the repository root):

    /work/venv/bin/python tests/golden/gen_model_fixtures.py [--out DIR]

Writes, for arch in gpt2 / bert / roberta, tests/golden/fixtures/model/<arch>/:
    config.json, model.safetensors   tiny random HF checkpoint (save_pretrained)
    golden.safetensors               inputs, weights for the probe losses, outputs, gradients

Everything is CPU, float32, eval mode (dropout off), eager attention, one
thread, fixed seeds: re-running reproduces the files.  Before writing, the
script checks every stored reference against (a) an independent plain-torch
re-implementation of each architecture written below (which pins down the
position ids, masks and prefix layout documented in tests/golden/README.md)
and (b) peft's own forward for the prefix case; it aborts on any mismatch.
See tests/golden/README.md for the tensor list and the facts it verifies.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

import transformers
import peft
from peft import PrefixTuningConfig, get_peft_model
from transformers import (
    BertConfig,
    BertForPreTraining,
    BertModel,
    DynamicCache,
    GPT2Config,
    GPT2LMHeadModel,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaModel,
)

B, T, P = 2, 8, 3
PAD_LEN = 3  # example 1 is right-padded on its last PAD_LEN positions
PERTURB_STD = 0.08  # noise added to every parameter after HF init
PREFIX_STD = 0.5
TOL_PEFT = 1e-6  # manual path vs peft's own call
TOL_REF = 2e-5  # independent re-implementation vs transformers

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "fixtures", "model")


# ----------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------


def make_config(arch):
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=512,
            n_positions=64,
            n_embd=64,
            n_layer=2,
            n_head=4,
            activation_function="gelu_new",
            layer_norm_epsilon=1e-5,
        )
    if arch == "bert":
        return BertConfig(
            vocab_size=512,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            max_position_embeddings=64,
            type_vocab_size=2,
            hidden_act="gelu",
        )
    if arch == "roberta":
        return RobertaConfig(
            vocab_size=512,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            max_position_embeddings=70,
            type_vocab_size=1,
            pad_token_id=1,
            hidden_act="gelu",
        )
    raise ValueError(arch)


FULL_CLASS = {"gpt2": GPT2LMHeadModel, "bert": BertForPreTraining, "roberta": RobertaForMaskedLM}


def perturb_(model, gen):
    """Add N(0, PERTURB_STD) to every (deduplicated, so tied ones once) parameter."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * PERTURB_STD)


def build_and_save(arch, out_dir, seed):
    torch.manual_seed(seed)
    cfg = make_config(arch)
    model = FULL_CLASS[arch](cfg)
    perturb_(model, torch.Generator().manual_seed(seed + 1))
    model.eval()
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    # reload from disk, so the fixtures are computed from exactly what is stored
    loaded, info = FULL_CLASS[arch].from_pretrained(out_dir, attn_implementation="eager", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise RuntimeError(f"{arch}: reload of saved checkpoint not clean: {bad}")
    loaded.eval()
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    return loaded


def backbone(arch, model):
    return {"gpt2": lambda m: m.transformer, "bert": lambda m: m.bert, "roberta": lambda m: m.roberta}[arch](model)


def head(arch, model, hidden):
    if arch == "gpt2":
        return model.lm_head(hidden)
    if arch == "bert":
        return model.cls.predictions(hidden)
    return model.lm_head(hidden)


# ----------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------


def make_inputs(arch, cfg, gen):
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else 0  # gpt2 has no pad token: use id 0
    ids = torch.randint(5, cfg.vocab_size, (B, T), generator=gen, dtype=torch.int64)
    assert not (ids == pad).any()
    am = torch.ones(B, T, dtype=torch.int64)
    am[1, T - PAD_LEN :] = 0
    ids[1, T - PAD_LEN :] = pad
    d = {"input_ids": ids, "attention_mask": am}
    if arch == "bert":
        tt = torch.zeros(B, T, dtype=torch.int64)
        tt[0, 4:] = 1  # [0 0 0 0 1 1 1 1]
        tt[1, 3 : T - PAD_LEN] = 1  # [0 0 0 1 1 0 0 0] (pads get 0)
        d["token_type_ids"] = tt
    labels = torch.randint(0, cfg.vocab_size, (B, T), generator=gen, dtype=torch.int64)
    labels[0, 2] = -100
    labels[0, 6] = -100
    labels[1, 1] = -100
    labels[1, T - PAD_LEN :] = -100
    d["labels"] = labels
    return d


def roberta_position_ids(ids, pad, cache_length=0):
    # the same formula as RobertaEmbeddings.create_position_ids_from_input_ids (checked against the model below)
    mask = ids.ne(pad).long()
    return (torch.cumsum(mask, 1) + cache_length) * mask + pad


# ----------------------------------------------------------------------------
# independent plain-torch reference (documents and checks the semantics)
# ----------------------------------------------------------------------------


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def ref_attention(q, k, v, key_ok):
    """q (B,H,Tq,D), k/v (B,H,Tk,D), key_ok (B,Tq,Tk) bool."""
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~key_ok[:, None], float("-inf"))
    return torch.softmax(s, -1) @ v


def split_heads(x, H):
    Bn, Tn, C = x.shape
    return x.view(Bn, Tn, H, C // H).transpose(1, 2)


def merge_heads(x):
    Bn, H, Tn, D = x.shape
    return x.transpose(1, 2).reshape(Bn, Tn, H * D)


def prefix_kv_from_embedding(E, L, H, C, Bn):
    """E (P, L*2*C) -> list over layers of (K, V), each (B, H, P, D).
    Row layout: column block [2l*C, (2l+1)*C) = key of layer l, [(2l+1)*C, (2l+2)*C) = value of layer l;
    inside a C block, head h owns columns [h*D, (h+1)*D)."""
    Pn = E.shape[0]
    D = C // H
    out = []
    for l in range(L):
        k = E[:, (2 * l) * C : (2 * l + 1) * C].reshape(Pn, H, D).permute(1, 0, 2)
        v = E[:, (2 * l + 1) * C : (2 * l + 2) * C].reshape(Pn, H, D).permute(1, 0, 2)
        out.append((k.unsqueeze(0).expand(Bn, H, Pn, D), v.unsqueeze(0).expand(Bn, H, Pn, D)))
    return out


def ref_forward(arch, sd, cfg, emb, attention_mask, position_ids, token_type_ids=None, prefix=None):
    """emb (B,T,C) word embeddings of the real tokens; attention_mask (B,T) of the real tokens;
    position_ids (B,T) explicit; prefix: list of (K,V) per layer or None.
    Returns hidden (B,T,C), logits (B,T,V), pooled (B,C) or None."""
    Bn, Tn, C = emb.shape
    H = cfg.num_attention_heads
    Pn = 0 if prefix is None else prefix[0][0].shape[2]
    key_valid = torch.cat([torch.ones(Bn, Pn, dtype=torch.bool), attention_mask.bool()], 1)  # prefix always visible
    key_ok = key_valid[:, None, :].expand(Bn, Tn, Pn + Tn).clone()
    if arch == "gpt2":
        # causal over the absolute index: query t (absolute P+t) sees keys j <= P+t
        qa = torch.arange(Tn)[:, None] + Pn
        ka = torch.arange(Pn + Tn)[None, :]
        key_ok &= (ka <= qa)[None]

    def lin(x, name, transpose_conv1d=False):
        w = sd[name + ".weight"]
        b = sd.get(name + ".bias")
        y = x @ w if transpose_conv1d else x @ w.t()
        return y + b if b is not None else y

    def ln(x, name, eps):
        return F.layer_norm(x, (C,), sd[name + ".weight"], sd[name + ".bias"], eps)

    if arch == "gpt2":
        h = emb + sd["transformer.wpe.weight"][position_ids]
        for l in range(cfg.n_layer):
            p = f"transformer.h.{l}."
            a = ln(h, p + "ln_1", cfg.layer_norm_epsilon)
            q, k, v = lin(a, p + "attn.c_attn", True).split(C, dim=2)
            q, k, v = split_heads(q, H), split_heads(k, H), split_heads(v, H)
            if prefix is not None:
                k = torch.cat([prefix[l][0], k], 2)
                v = torch.cat([prefix[l][1], v], 2)
            o = merge_heads(ref_attention(q, k, v, key_ok))
            h = h + lin(o, p + "attn.c_proj", True)
            m = ln(h, p + "ln_2", cfg.layer_norm_epsilon)
            h = h + lin(gelu_new(lin(m, p + "mlp.c_fc", True)), p + "mlp.c_proj", True)
        h = ln(h, "transformer.ln_f", cfg.layer_norm_epsilon)
        logits = h @ sd["transformer.wte.weight"].t()
        return h, logits, None

    pre = "bert." if arch == "bert" else "roberta."
    eps = cfg.layer_norm_eps
    if token_type_ids is None:
        token_type_ids = torch.zeros(Bn, Tn, dtype=torch.int64)
    x = (
        emb
        + sd[pre + "embeddings.token_type_embeddings.weight"][token_type_ids]
        + sd[pre + "embeddings.position_embeddings.weight"][position_ids]
    )
    h = ln(x, pre + "embeddings.LayerNorm", eps)
    for l in range(cfg.num_hidden_layers):
        p = f"{pre}encoder.layer.{l}."
        q = split_heads(lin(h, p + "attention.self.query"), H)
        k = split_heads(lin(h, p + "attention.self.key"), H)
        v = split_heads(lin(h, p + "attention.self.value"), H)
        if prefix is not None:
            k = torch.cat([prefix[l][0], k], 2)
            v = torch.cat([prefix[l][1], v], 2)
        o = merge_heads(ref_attention(q, k, v, key_ok))
        h = ln(lin(o, p + "attention.output.dense") + h, p + "attention.output.LayerNorm", eps)
        i = gelu_erf(lin(h, p + "intermediate.dense"))
        h = ln(lin(i, p + "output.dense") + h, p + "output.LayerNorm", eps)
    wte = sd[pre + "embeddings.word_embeddings.weight"]
    if arch == "bert":
        pooled = torch.tanh(lin(h[:, 0], "bert.pooler.dense"))
        t = gelu_erf(lin(h, "cls.predictions.transform.dense"))
        t = ln(t, "cls.predictions.transform.LayerNorm", eps)
        logits = t @ wte.t() + sd["cls.predictions.bias"]
        return h, logits, pooled
    t = gelu_erf(lin(h, "lm_head.dense"))
    t = ln(t, "lm_head.layer_norm", eps)
    logits = t @ wte.t() + sd["lm_head.bias"]
    return h, logits, None


# ----------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------


def check(name, got, want, tol):
    """max|got-want| <= tol * max(1, max|want|)  (tolerance relative to the tensor's scale)"""
    err = (got - want).abs().max().item()
    scale = max(1.0, want.abs().max().item())
    ok = err <= tol * scale
    print(f"  [{'ok' if ok else 'FAIL'}] {name}: max|diff| = {err:.3g} (tol {tol:g} x scale {scale:.3g})")
    if not ok:
        raise SystemExit(f"check failed: {name}")


def build_prefix_cache(E, L, H, C, Bn):
    """DynamicCache holding the prefix, built independently of peft's get_prompt."""
    return DynamicCache([(k, v) for k, v in prefix_kv_from_embedding(E, L, H, C, Bn)])


# ----------------------------------------------------------------------------
# one architecture
# ----------------------------------------------------------------------------


def run_arch(arch, out_root, seed):
    print(f"== {arch}")
    out_dir = os.path.join(out_root, arch)
    model = build_and_save(arch, out_dir, seed)
    cfg = model.config
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(seed + 2)
    inp = make_inputs(arch, cfg, gen)
    ids, am, labels = inp["input_ids"], inp["attention_mask"], inp["labels"]
    tt = inp.get("token_type_ids")
    C, V = cfg.hidden_size, cfg.vocab_size
    L, H = cfg.num_hidden_layers, cfg.num_attention_heads
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else 0

    g = {}
    g.update(inp)
    g["w_hidden"] = torch.randn(B, T, C, generator=gen)
    g["w_logits"] = torch.randn(B, T, V, generator=gen)
    if arch == "bert":
        g["w_pooler"] = torch.randn(B, C, generator=gen)

    # position ids of the real tokens, as transformers computes them from input_ids
    if arch == "roberta":
        pos = roberta_position_ids(ids, pad, 0)
        pos_pre = roberta_position_ids(ids, pad, P)
    else:
        pos = torch.arange(T).expand(B, T).clone()
        pos_pre = pos + P
    g["position_ids"] = pos
    g["prefix_position_ids"] = pos_pre

    bb = backbone(arch, model)
    wemb = model.get_input_embeddings()

    # ---------------- no-prefix forward / backward ----------------
    def extra_kwargs(position_ids):
        kw = {}
        if tt is not None:
            kw["token_type_ids"] = tt
        if arch == "roberta":
            # RoBERTa's inputs_embeds path would use sequential positions (pad-unaware); pass the ids-based ones
            kw["position_ids"] = position_ids
        return kw

    emb = wemb(ids).detach().requires_grad_()
    out = bb(inputs_embeds=emb, attention_mask=am, **extra_kwargs(pos))
    hid = out.last_hidden_state
    logits = head(arch, model, hid)
    probe = (hid * g["w_hidden"]).sum() + (logits * g["w_logits"]).sum()
    if arch == "bert":
        pooled = out.pooler_output
        probe = probe + (pooled * g["w_pooler"]).sum()
    probe.backward()
    g["hidden_states"] = hid.detach()
    g["logits"] = logits.detach()
    if arch == "bert":
        g["pooler_output"] = pooled.detach()
    g["grad_inputs_embeds"] = emb.grad.detach().clone()

    # cross-check: the full model called with input_ids gives the same
    with torch.no_grad():
        kw = {"token_type_ids": tt} if tt is not None else {}
        full = model(input_ids=ids, attention_mask=am, **kw)
        full_logits = full.logits if arch != "bert" else full.prediction_logits
        check("full model(input_ids) logits == backbone(inputs_embeds)+head", full_logits, g["logits"], 1e-6)
        if arch == "roberta":
            seq = model.roberta(input_ids=ids, attention_mask=am).last_hidden_state
            check("roberta input_ids positions == roberta_position_ids()", seq, g["hidden_states"], 1e-6)

    # independent reference (forward + autograd through plain torch)
    e2 = wemb(ids).detach().requires_grad_()
    rh, rl, rp = ref_forward(arch, sd, cfg, e2, am, pos, tt)
    rprobe = (rh * g["w_hidden"]).sum() + (rl * g["w_logits"]).sum()
    if rp is not None:
        rprobe = rprobe + (rp * g["w_pooler"]).sum()
    rprobe.backward()
    check("ref hidden_states", rh, g["hidden_states"], TOL_REF)
    check("ref logits", rl, g["logits"], TOL_REF)
    if rp is not None:
        check("ref pooler_output", rp, g["pooler_output"], TOL_REF)
    check("ref grad_inputs_embeds", e2.grad, g["grad_inputs_embeds"], TOL_REF)

    # ---------------- cross-entropy ----------------
    emb = wemb(ids).detach().requires_grad_()
    if arch == "gpt2":
        out = model(inputs_embeds=emb, attention_mask=am, labels=labels)
        loss = out.loss  # shifted causal-LM loss, mean over non-ignored targets
        manual = F.cross_entropy(
            out.logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100
        )
    elif arch == "bert":
        # BertForPreTraining only returns a loss with next_sentence_label too: use the MLM CE directly
        out = model(inputs_embeds=emb, attention_mask=am, token_type_ids=tt)
        loss = F.cross_entropy(out.prediction_logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
        # same as what BertForMaskedLM would return
        manual = loss
    else:
        out = model(inputs_embeds=emb, attention_mask=am, position_ids=pos, labels=labels)
        loss = out.loss  # RobertaForMaskedLM: unshifted CE, mean over non-ignored
        manual = F.cross_entropy(out.logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    check("model loss == F.cross_entropy", loss.detach(), manual.detach(), 1e-6)
    loss.backward()
    g["loss"] = loss.detach().reshape(())
    g["grad_loss_inputs_embeds"] = emb.grad.detach().clone()

    # ---------------- prefix (P-Tuning v2 / prefix tuning) through peft ----------------
    g.update(run_prefix(arch, out_dir, cfg, sd, g, gen))

    g = {k: v.contiguous() for k, v in g.items()}
    for k, v in g.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    save_file(g, os.path.join(out_dir, "golden.safetensors"), metadata=meta(arch))
    return g


def run_prefix(arch, out_dir, cfg, sd, g, gen):
    ids, am = g["input_ids"], g["attention_mask"]
    tt = g.get("token_type_ids")
    C, L, H = cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads
    res = {}

    if arch == "gpt2":
        base = GPT2LMHeadModel.from_pretrained(out_dir, attn_implementation="eager")
        task = "CAUSAL_LM"
    elif arch == "bert":
        base = BertModel.from_pretrained(out_dir, attn_implementation="eager")
        task = "FEATURE_EXTRACTION"
    else:
        base = RobertaModel.from_pretrained(out_dir, attn_implementation="eager", add_pooling_layer=False)
        task = "FEATURE_EXTRACTION"
    base.eval()
    pm = get_peft_model(base, PrefixTuningConfig(task_type=task, num_virtual_tokens=P, prefix_projection=False))
    pm.eval()
    enc = pm.prompt_encoder["default"]
    assert tuple(enc.embedding.weight.shape) == (P, L * 2 * C), enc.embedding.weight.shape
    E0 = torch.randn(P, L * 2 * C, generator=gen) * PREFIX_STD
    with torch.no_grad():
        enc.embedding.weight.copy_(E0)
    res["prefix_embedding"] = E0.clone()
    model_b = pm.get_base_model()
    bb = model_b.transformer if arch == "gpt2" else model_b
    wemb = model_b.get_input_embeddings()

    # (1) peft's own call: input_ids + attention_mask (peft prepends ones(B,P) to the mask and builds the cache)
    # gpt2: capture the last hidden state via a hook on ln_f (the output of ln_f is what lm_head consumes)
    captured = {}
    hook = None
    if arch == "gpt2":
        hook = model_b.transformer.ln_f.register_forward_hook(lambda m, i, o: captured.__setitem__("h", o))
    enc.embedding.weight.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if arch == "gpt2":
            po = pm(input_ids=ids, attention_mask=am)
            peft_h = captured["h"]
            peft_logits = po.logits
            check("peft gpt2 logits == lm_head(ln_f out)", model_b.lm_head(peft_h), peft_logits, 0.0)
            peft_probe = (peft_h * g["w_hidden"]).sum() + (peft_logits * g["w_logits"]).sum()
        else:
            # NOTE: PeftModelForFeatureExtraction drops token_type_ids (warning), so this call uses type 0 everywhere
            po = pm(input_ids=ids, attention_mask=am, token_type_ids=tt)
            peft_h = po.last_hidden_state
            peft_probe = (peft_h * g["w_hidden"]).sum()
    if hook is not None:
        hook.remove()
    peft_probe.backward()
    peft_gradE = enc.embedding.weight.grad.detach().clone()

    # (2) manual path: base backbone with inputs_embeds + our own DynamicCache + [ones(B,P), mask]
    am_ext = torch.cat([torch.ones(B, P, dtype=am.dtype), am], 1)

    def manual(token_type_ids):
        E = E0.clone().requires_grad_()
        emb = wemb(ids).detach().requires_grad_()
        kw = {}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        if arch == "roberta":
            kw["position_ids"] = g["prefix_position_ids"]
        cache = build_prefix_cache(E, L, H, C, B)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            o = bb(inputs_embeds=emb, attention_mask=am_ext, past_key_values=cache, **kw)
        h = o.last_hidden_state
        lg = model_b.lm_head(h) if arch == "gpt2" else None
        probe = (h * g["w_hidden"]).sum()
        if lg is not None:
            probe = probe + (lg * g["w_logits"]).sum()
        probe.backward()
        return h.detach(), (lg.detach() if lg is not None else None), E.grad.detach(), emb.grad.detach()

    if arch == "bert":
        # the peft FEATURE_EXTRACTION call ignored token_type_ids: verify the manual path in that setting ...
        h0, _, gE0, _ = manual(None)
        check("manual(prefix, token_type_ids=None) == peft FEATURE_EXTRACTION hidden", h0, peft_h.detach(), TOL_PEFT)
        check("manual grad_prefix_embedding == peft's (tt=None)", gE0, peft_gradE, TOL_PEFT)
        # ... and also that peft's own get_prompt() cache gives the same as ours WITH token_type_ids. The stored
        # bert prefix fixtures use token_type_ids, which is what PeftModelForSequenceClassification /
        # TokenClassification (remove_token_type_ids=False) would pass through -- see README.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hp = model_b(
                input_ids=ids, attention_mask=am_ext, token_type_ids=tt, past_key_values=pm.get_prompt(B)
            ).last_hidden_state
        h, lg, gE, gemb = manual(tt)
        check("manual(prefix, token_type_ids) == base(input_ids, cache=peft.get_prompt())", h, hp, TOL_PEFT)
    else:
        h, lg, gE, gemb = manual(None)
        check("manual prefix hidden == peft", h, peft_h.detach(), TOL_PEFT)
        if lg is not None:
            check("manual prefix logits == peft", lg, peft_logits.detach(), TOL_PEFT)
        check("manual grad_prefix_embedding == peft's", gE, peft_gradE, TOL_PEFT)
        gE = peft_gradE

    # (3) independent reference with explicit layout / positions / masks
    E = E0.clone().requires_grad_()
    emb = wemb(ids).detach().requires_grad_()
    rh, rl, _ = ref_forward(
        arch, sd, cfg, emb, am, g["prefix_position_ids"], tt, prefix=prefix_kv_from_embedding(E, L, H, C, B)
    )
    rprobe = (rh * g["w_hidden"]).sum() + ((rl * g["w_logits"]).sum() if arch == "gpt2" else 0.0)
    rprobe.backward()
    check("ref prefix hidden", rh, h, TOL_REF)
    if arch == "gpt2":
        check("ref prefix logits", rl, lg, TOL_REF)
    check("ref grad_prefix_embedding", E.grad, gE, TOL_REF)
    check("ref prefix_grad_inputs_embeds", emb.grad, gemb, TOL_REF)

    # (4) sensitivity: the fixture must reject the plausible wrong conventions
    with torch.no_grad():
        e = wemb(ids)
        kv = prefix_kv_from_embedding(E0, L, H, C, B)
        wrong = {
            "prefix K/V blocks swapped": dict(prefix=[(v, k) for k, v in kv]),
            "real-token positions not offset by P": dict(position_ids=g["position_ids"]),
            "padded keys visible": dict(attention_mask=torch.ones_like(am)),
        }
        if arch == "bert":
            wrong["token_type_ids ignored"] = dict(token_type_ids=None)
        for what, over in wrong.items():
            args = dict(attention_mask=am, position_ids=g["prefix_position_ids"], token_type_ids=tt, prefix=kv)
            args.update(over)
            wh = ref_forward(arch, sd, cfg, e, **args)[0]
            diff = (wh - h).abs().max().item()
            print(f"  [{'ok' if diff > 1e-3 else 'FAIL'}] sensitivity, {what}: max|diff| = {diff:.3g}")
            if diff <= 1e-3:
                raise SystemExit(f"fixture insensitive to: {what}")

    res["prefix_hidden_states"] = h
    if arch == "gpt2":
        res["prefix_logits"] = lg
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                res["prefix_loss"] = pm(input_ids=ids, attention_mask=am, labels=g["labels"]).loss.reshape(())
        check(
            "peft prefix_loss == shifted CE of prefix_logits",
            res["prefix_loss"],
            F.cross_entropy(lg[:, :-1].reshape(-1, cfg.vocab_size), g["labels"][:, 1:].reshape(-1)),
            1e-6,
        )
    res["grad_prefix_embedding"] = gE
    res["prefix_grad_inputs_embeds"] = gemb
    return res


def meta(arch):
    # a single metadata key: safetensors writes metadata in hash order, one key keeps the file byte-reproducible
    return {"ptune_golden": json.dumps(_meta(arch), sort_keys=True)}


def _meta(arch):
    return {
        "arch": arch,
        "B": str(B),
        "T": str(T),
        "P": str(P),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "generator": "tests/golden/gen_model_fixtures.py",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--arch", nargs="*", default=["gpt2", "bert", "roberta"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    transformers.logging.set_verbosity_error()
    seeds = {"gpt2": 1000, "bert": 2000, "roberta": 3000}
    for arch in args.arch:
        run_arch(arch, args.out, seeds[arch])
        d = os.path.join(args.out, arch)
        with safe_open(os.path.join(d, "model.safetensors"), "pt") as f:
            keys = sorted(f.keys())
        print(f"  checkpoint keys ({len(keys)}): {keys}")
        with safe_open(os.path.join(d, "golden.safetensors"), "pt") as f:
            for k in sorted(f.keys()):
                t = f.get_tensor(k)
                print(f"  golden {k}: {tuple(t.shape)} {t.dtype}")
        total = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
        print(f"  folder size: {total} bytes")
        assert total < 1 << 20
    print("all checks passed")


if __name__ == "__main__":
    sys.exit(main())
