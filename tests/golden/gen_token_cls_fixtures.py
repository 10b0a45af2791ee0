#!/usr/bin/env python3
"""Generate golden fixtures for ptune's token classification (NER) from peft 0.21.2 + transformers 5.24.

Usage (from the repository root):

    /work/venv/bin/python tests/golden/gen_token_cls_fixtures.py [--out DIR] [--case bert_prefix llama_prompt_tuning ...]

For arch in {bert, gpt2, llama} x method in {prefix, prompt_tuning} it writes
tests/golden/fixtures/token_cls/<arch>_<method>/:

    case.json                  the setup (peft config, model class, batch layout, conventions, peft quirks met)
    tensors.safetensors        batch, initial trainable parameters, loss, logits at the labelled positions, gradients
    peft_adapter_config.json   adapter_config.json written by peft's save_pretrained (initial parameters)
    peft_adapter.safetensors   the tensors of peft's adapter_model.safetensors (re-saved with our metadata)

The base models are the tiny checkpoints tests/golden/fixtures/model/{bert,gpt2} (gen_model_fixtures.py) and
tests/golden/fixtures/llama/llama (gen_llama_fixtures.py), loaded as BertForTokenClassification /
GPT2ForTokenClassification / LlamaForTokenClassification with num_labels=5 (the new head is set explicitly from a
seeded generator). PrefixTuningConfig(prefix_projection=False) = P-Tuning v2 and PromptTuningConfig, task_type
TOKEN_CLS, P = 4 virtual tokens. CPU, float32, eval mode (all dropout off), eager attention, one thread,
deterministic algorithms, fixed seeds: reruns are byte-identical.

peft's TOKEN_CLS path does not run as is with transformers 5 (see README, "Token classification fixtures"):
prefix tuning raises (the backbone's forward names its cache `cache`, peft looks for `past_key_values`), so the
stored prefix values are peft's own `_prefix_tuning_forward` run through a signature shim on the backbone;
prompt tuning raises on (B, T) labels (peft prepends P virtual tokens but not their labels), so it is given the
labels in ptune's layout, (B, P+T) with -100 on the virtual tokens. Every stored number is also checked against an
independent path in this file (own KV cache, explicit positions, explicit head and CE); a few plausible wrong
conventions must each move the loss by > 1e-3. Any failed check aborts with a non-zero exit.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import warnings

import torch
import torch.nn.functional as F
from safetensors import safe_open

import peft
import transformers
from peft import PrefixTuningConfig, PromptTuningConfig, get_peft_model
from transformers import BertForTokenClassification, DynamicCache, GPT2ForTokenClassification, LlamaForTokenClassification

# The method fixtures' generator (same folder): the checks, the case folder, the command line.
from gen_method_fixtures import check, run_cases, write_case

GENERATOR = "tests/golden/gen_token_cls_fixtures.py"

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
DEFAULT_OUT = os.path.join(FIXTURES, "token_cls")

B, T = 2, 7
P = 4  # num_virtual_tokens
K = 5  # num_labels
EMB_STD = 0.5  # prompt / prefix embedding init
BIAS_STD = 0.1
TOL_SAME = 1e-6  # two computations of the same graph (peft vs shim / hand path), relative to max(1, max|x|)
TOL_REF = 2e-5  # independent re-implementation, relative to max(1, max|x|)
SENSITIVE = 1e-3  # a plausible wrong convention must move the loss by more than this

ARCHS = {
    # arch -> (class, model dir relative to fixtures, backbone attribute, head attribute)
    "bert": (BertForTokenClassification, "model/bert", "bert", "classifier"),
    "gpt2": (GPT2ForTokenClassification, "model/gpt2", "transformer", "classifier"),
    "llama": (LlamaForTokenClassification, "llama/llama", "model", "score"),
}
METHODS = ["prefix", "prompt_tuning"]


# ----------------------------------------------------------------------------
# batch
# ----------------------------------------------------------------------------

# Per arch, a word-piece pattern for each row: "S" special token (-100), "W" a word's first token (tagged),
# "s" a non-first subword (-100), "_" padding (id 0, attention 0, -100). Row 1 is right-padded.
PATTERNS = {
    "bert": ["SWWsWWS", "SWsWS__"],  # [CLS] ... [SEP]
    "gpt2": ["WWsWWsW", "WsWWs__"],  # GPT-2 adds no special tokens
    "llama": ["SWWsWWs", "SWsWW__"],  # <s> ...
}
SPECIAL_FIRST = {"bert": 101, "llama": 1}  # [CLS], <s>
SPECIAL_LAST = {"bert": 102}  # [SEP]


def make_batch(arch, vocab, gen):
    """input_ids, attention_mask (B,T); tags (B,T): a class index on word-first tokens, -100 elsewhere."""
    ids = torch.randint(5, vocab, (B, T), generator=gen, dtype=torch.int64)
    am = torch.ones(B, T, dtype=torch.int64)
    tags = torch.full((B, T), -100, dtype=torch.int64)
    for b, pattern in enumerate(PATTERNS[arch]):
        assert len(pattern) == T
        specials = [t for t, c in enumerate(pattern) if c == "S"]
        for t, c in enumerate(pattern):
            if c == "_":
                ids[b, t], am[b, t] = 0, 0
            elif c == "S":
                ids[b, t] = SPECIAL_FIRST[arch] if t == specials[0] and arch in SPECIAL_FIRST else SPECIAL_LAST[arch]
    words = (tags.new_tensor([[c == "W" for c in row] for row in PATTERNS[arch]])).bool()
    n = int(words.sum())
    # every class appears at least once; the rest from the generator
    cls = torch.cat([torch.arange(K), torch.randint(0, K, (n - K,), generator=gen)])
    cls = cls[torch.randperm(n, generator=gen)]
    tags[words] = cls
    return {"input_ids": ids, "attention_mask": am, "tags": tags}


def ptune_labels(method, tags):
    """Labels in ptune's layout: prompt tuning prepends P virtual tokens with label -100 -> (B, P+T)."""
    if method == "prompt_tuning":
        return torch.cat([torch.full((B, P), -100, dtype=torch.int64), tags], 1)
    return tags


# ----------------------------------------------------------------------------
# peft model
# ----------------------------------------------------------------------------


def peft_config(method):
    if method == "prefix":
        return PrefixTuningConfig(task_type="TOKEN_CLS", num_virtual_tokens=P, prefix_projection=False)
    return PromptTuningConfig(task_type="TOKEN_CLS", num_virtual_tokens=P)  # init RANDOM (overwritten)


def load_base(arch):
    cls, rel, _, head = ARCHS[arch]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base, info = cls.from_pretrained(os.path.join(FIXTURES, rel), num_labels=K, attn_implementation="eager",
                                         output_loading_info=True)
    # only the new head is missing; the unused pre-training heads (and BERT's pooler) are unexpected
    assert info["missing_keys"] == {f"{head}.weight", f"{head}.bias"}, info
    allowed = {"bert": ("cls.", "bert.pooler."), "gpt2": (), "llama": ("lm_head.",)}[arch]
    assert all(k.startswith(allowed) for k in info["unexpected_keys"]) if allowed else not info["unexpected_keys"], info
    bad = {k: v for k, v in info.items() if v and k not in ("missing_keys", "unexpected_keys")}
    if bad:
        raise SystemExit(f"{arch}: loading not clean: {bad}")
    base.eval()
    base.name_or_path = rel  # what peft records as base_model_name_or_path (relative to tests/golden/fixtures)
    return base


def build_peft(arch, method):
    base = load_base(arch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = get_peft_model(base, peft_config(method))
    pm.eval()  # every dropout off (HF's and the head's)
    return pm, [(n, p) for n, p in pm.named_parameters() if p.requires_grad]


def make_init(params, seed):
    """Explicit init in the trainable order: embeddings N(0, 0.5), biases N(0, 0.1), weights N(0, 1/sqrt(in))."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for n, p in params:
        if n.endswith("embedding.weight"):
            std = EMB_STD
        elif n.endswith("bias"):
            std = BIAS_STD
        else:
            std = 1.0 / math.sqrt(p.shape[1])
        out[n] = torch.randn(tuple(p.shape), generator=gen) * std
    return out


def backbone_shim(pm, arch):
    """The backbone's forward with a parameter named past_key_values (what peft 0.21.2 inspects for), forwarding
    it under that name (transformers' deprecate_kwarg maps it to `cache`). Returns (module, shim)."""
    bb = getattr(pm.get_base_model(), ARCHS[arch][2])
    orig = type(bb).forward

    def shim(input_ids=None, attention_mask=None, past_key_values=None, **kw):
        return orig(bb, input_ids=input_ids, attention_mask=attention_mask, past_key_values=past_key_values, **kw)

    return bb, shim


def peft_forward(arch, method, pm, batch):
    """One forward through peft. Returns loss (mean CE over labelled tokens), logits as peft returns them:
    (B,T,K) for prefix, (B,P+T,K) for prompt tuning (virtual-token rows first)."""
    labels = ptune_labels(method, batch["tags"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "prompt_tuning":
            out = pm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
        else:
            bb, shim = backbone_shim(pm, arch)
            bb.forward = shim
            try:
                out = pm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
            finally:
                del bb.forward
    return out.loss, out.logits


def verify_peft_quirks(arch, method, pm, batch):
    """The two ways peft 0.21.2's TOKEN_CLS path fails under transformers 5.24; abort if either is gone (then the
    workaround here, and the README, need revisiting). Returns the error text."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # what a user would pass: (B, T) labels
            pm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["tags"])
        except ValueError as e:
            msg = str(e)
            want = "past key values" if method == "prefix" else "to match target batch_size"
            assert want in msg, msg
            print(f"  [ok] peft TOKEN_CLS {method} forward with (B,T) labels still raises: {msg}")
            return msg
    raise SystemExit(f"peft TOKEN_CLS {method} ran with (B,T) labels: the documented incompatibility is gone")


# ----------------------------------------------------------------------------
# independent reference (own cache layout, explicit positions/masks, explicit head and CE)
# ----------------------------------------------------------------------------


def ref_cache(flat, cfg, variant=()):
    """flat (P, L*2*KVH*D): per virtual token, column block 2l = keys of layer l, 2l+1 = values; head h owns
    columns [h*D,(h+1)*D) of a block. Returns a DynamicCache of (B, KVH, P, D) keys/values."""
    L = cfg.num_hidden_layers
    KVH = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    D = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    W = KVH * D
    assert flat.shape == (P, L * 2 * W), flat.shape
    layers = []
    for l in range(L):
        k = flat[:, 2 * l * W:(2 * l + 1) * W].reshape(P, KVH, D).permute(1, 0, 2).unsqueeze(0).expand(B, KVH, P, D)
        v = flat[:, (2 * l + 1) * W:(2 * l + 2) * W].reshape(P, KVH, D).permute(1, 0, 2).unsqueeze(0).expand(B, KVH, P, D)
        layers.append((v, k) if "kv_swapped" in variant else (k, v))
    return DynamicCache(layers)


def ref_forward(arch, method, base, p, batch, variant=()):
    """Independent of peft. base = the frozen HF model (same weights), p = plain dict of trainable tensors (peft
    names). Returns loss, logits at the labelled positions (N, K) in (b, t) order."""
    _, _, bb_name, head = ARCHS[arch]
    bb = getattr(base, bb_name)
    E = p["prompt_encoder.default.embedding.weight"]
    W_h = p[f"base_model.{head}.modules_to_save.default.weight"]
    b_h = p[f"base_model.{head}.modules_to_save.default.bias"]
    ids, am = batch["input_ids"], batch["attention_mask"]
    am_ext = torch.cat([torch.ones(B, P, dtype=am.dtype), am], 1)  # the prompt is visible to every query
    labels = ptune_labels(method, batch["tags"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "prefix":
            # real tokens at positions P..P+T-1 (offset by the cache length, not padding-aware)
            pos = torch.arange(T) if "no_position_offset" in variant else torch.arange(P, P + T)
            hidden = bb(input_ids=ids, attention_mask=am_ext, past_key_values=ref_cache(E, base.config, variant),
                        position_ids=pos.unsqueeze(0).expand(B, T)).last_hidden_state  # (B,T,C)
        else:
            word = base.get_input_embeddings()(ids)
            emb = torch.cat([E.unsqueeze(0).expand(B, P, E.shape[1]), word], 1)  # (B,P+T,C): virtual tokens first
            hidden = bb(inputs_embeds=emb, attention_mask=am_ext,
                        position_ids=torch.arange(P + T).unsqueeze(0).expand(B, P + T)).last_hidden_state
    if "label_shift" in variant:  # a causal LM's next-token alignment: position t takes label t+1
        labels = torch.cat([labels[:, 1:], torch.full((B, 1), -100, dtype=labels.dtype)], 1)
    if "labels_not_offset" in variant:  # (B,T) labels applied to the first T of the P+T positions
        labels = torch.cat([batch["tags"], torch.full((B, P), -100, dtype=labels.dtype)], 1)
    sel = labels != -100  # (B,S)
    rows = hidden[sel]  # (N,C) in (b, t) order; dropout off
    logits = rows @ W_h.t() + b_h
    lse = torch.logsumexp(logits, -1)
    loss = (lse - logits.gather(1, labels[sel].unsqueeze(1)).squeeze(1)).mean()
    return loss, logits


SENSITIVITY = {
    # variant -> which methods it applies to
    "label_shift": ("prefix", "prompt_tuning"),
    "labels_not_offset": ("prompt_tuning",),
    "kv_swapped": ("prefix",),
    "no_position_offset": ("prefix",),
}


# ----------------------------------------------------------------------------
# one case
# ----------------------------------------------------------------------------


def run_case(arch, method, seed, out_root):
    name = f"{arch}_{method}"
    print(f"== {name}")
    torch.manual_seed(seed)
    pm, params = build_peft(arch, method)
    batch = make_batch(arch, pm.get_base_model().config.vocab_size, torch.Generator().manual_seed(seed))
    labels = ptune_labels(method, batch["tags"])
    names = [n for n, _ in params]
    init = make_init(params, seed + 1)
    with torch.no_grad():
        for n, p in params:
            p.copy_(init[n])
    quirk = verify_peft_quirks(arch, method, pm, batch)

    # ---- peft forward/backward ----
    for p in pm.parameters():
        p.grad = None
    loss, logits_full = peft_forward(arch, method, pm, batch)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in params}
    sel = labels != -100
    assert logits_full.shape == (B, labels.shape[1], K), logits_full.shape
    logits = logits_full.detach()[sel]  # (N, K) in (b, t) order
    N = int(sel.sum())

    # ---- peft's loss is the mean CE over the labelled tokens ----
    check("peft loss == mean CE of peft logits at labelled positions", loss,
          F.cross_entropy(logits, labels[sel]), TOL_SAME)

    # ---- prefix: the shim path equals peft's prompt fed to the base model's own TOKEN_CLS forward ----
    if method == "prefix":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            am_ext = torch.cat([torch.ones(B, P, dtype=torch.int64), batch["attention_mask"]], 1)
            o = pm.get_base_model()(input_ids=batch["input_ids"], attention_mask=am_ext,
                                    past_key_values=pm.get_prompt(B), labels=labels)
        check("peft shim loss == base model(past_key_values=peft.get_prompt(B), labels).loss", loss, o.loss, TOL_SAME)
        check("peft shim logits == base model(past_key_values=peft.get_prompt(B)).logits", logits_full, o.logits,
              TOL_SAME)

    # ---- independent reference ----
    base_ref = load_base(arch)
    base_ref.requires_grad_(False)
    rp = {n: v.clone().requires_grad_() for n, v in init.items()}
    r_loss, r_logits = ref_forward(arch, method, base_ref, rp, batch)
    r_loss.backward()
    check("ref loss", r_loss, loss, TOL_REF)
    check("ref logits (N,K)", r_logits, logits, TOL_REF)
    for n in names:
        check(f"ref grad {n}", rp[n].grad, grads[n], TOL_REF)

    # ---- sensitivity: plausible wrong conventions must change the loss ----
    with torch.no_grad():
        for variant, methods in SENSITIVITY.items():
            if method not in methods:
                continue
            wl, _ = ref_forward(arch, method, base_ref, init, batch, variant=(variant,))
            diff = abs(wl.item() - loss.item())
            print(f"  [{'ok' if diff > SENSITIVE else 'FAIL'}] sensitivity {variant}: |dloss| = {diff:.3g}")
            if diff <= SENSITIVE:
                raise SystemExit(f"{name}: fixture insensitive to {variant}")

    # ---- peft save_pretrained (initial parameters) ----
    tmp = tempfile.mkdtemp()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm.save_pretrained(tmp)
        cfg_text = open(os.path.join(tmp, "adapter_config.json")).read()
        adapter_cfg = json.loads(cfg_text)
        with safe_open(os.path.join(tmp, "adapter_model.safetensors"), "pt") as f:
            adapter = {k: f.get_tensor(k).contiguous() for k in f.keys()}
    finally:
        shutil.rmtree(tmp)
    head = ARCHS[arch][3]
    check("peft adapter prompt_embeddings == initial embedding", adapter["prompt_embeddings"],
          init["prompt_encoder.default.embedding.weight"], 0.0)
    for s in ("weight", "bias"):
        check(f"peft adapter base_model.{head}.{s} == initial head", adapter[f"base_model.{head}.{s}"],
              init[f"base_model.{head}.modules_to_save.default.{s}"], 0.0)
    assert sorted(adapter) == sorted(["prompt_embeddings", f"base_model.{head}.weight", f"base_model.{head}.bias"]), \
        sorted(adapter)

    # ---- write ----
    out_dir = os.path.join(out_root, name)
    os.makedirs(out_dir, exist_ok=True)
    t = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels}
    for n in names:
        t[n] = init[n]
        t["grad." + n] = grads[n]
    t["loss"] = loss.detach().reshape(())
    t["logits"] = logits
    t = {k: v.contiguous() for k, v in t.items()}
    case = case_json(arch, method, seed, pm, params, adapter, adapter_cfg, N, quirk)
    return write_case(out_dir, name, t, adapter, cfg_text, case, f"loss {loss.item():.6f}, N = {N}", GENERATOR)


def conventions(arch, method):
    head = ARCHS[arch][3]
    c = {
        "head": f"hidden (last hidden state; gpt2 after ln_f, llama after the final RMSNorm) -> dropout (off) -> "
                f"{head} Linear(C, {K}) with bias, on every position; loss = CrossEntropy mean over the positions "
                "whose label is not -100 (-100 positions drop out of loss and gradient)",
        "tags": "-100 on special tokens ([CLS]/[SEP], <s>), non-first subwords, padding; a class index on each "
                "word's first token",
        "logits": "tensors.safetensors 'logits' = the (N, K) rows of the labelled positions in (b, t) order",
    }
    if method == "prefix":
        c["prefix_layout"] = ("embedding (P, L*2*KVH*D); layer l key = column block 2l, value = block 2l+1 (width "
                              "KVH*D), head h = columns [h*D,(h+1)*D) of a block; concatenated before the real "
                              "keys/values in every layer (DynamicCache)")
        c["attention_mask"] = "ones(B,P) prepended: the prefix is visible to every query"
        c["positions"] = "real tokens at P..P+T-1 (offset by the cache length, not padding-aware)"
        c["labels"] = "(B,T), unchanged"
        c["peft_path"] = ("PeftModelForTokenClassification._prefix_tuning_forward raises under transformers 5.24 (it "
                          "looks for 'past_key_values' in the forward signature, now 'cache'). Stored values = that "
                          "same peft function run with a signature shim on the backbone's forward; checked equal to "
                          "the base model's own TOKEN_CLS forward fed peft's get_prompt(B) cache, and to the "
                          "independent reference")
    else:
        c["inputs_embeds"] = "cat([prompt (B,P,C), word_embeddings(input_ids)], 1): virtual tokens first"
        c["attention_mask"] = "ones(B,P) prepended -> (B,P+T)"
        c["positions"] = "0..P+T-1 over the whole sequence: virtual tokens 0..P-1, real tokens P..P+T-1"
        c["labels"] = ("stored (B,P+T) in ptune's layout: P x -100 prepended (ptune's ids are -1..-P then the real "
                       "ids). peft passes labels through unchanged while the logits are (B,P+T,K), so peft needs "
                       "exactly these; (B,T) labels raise 'Expected input batch_size ... to match target batch_size'")
        if arch == "bert":
            c["token_type_ids"] = "not passed (all zeros, as for a single NER sequence)"
    return c


def case_json(arch, method, seed, pm, params, adapter, adapter_cfg, N, quirk):
    cls, rel, _, head = ARCHS[arch]
    cfg = pm.peft_config["default"]
    used = {k: (v.value if hasattr(v, "value") else v) for k, v in cfg.to_dict().items()
            if k in ("peft_type", "task_type", "num_virtual_tokens", "token_dim", "num_layers", "num_attention_heads",
                     "num_transformer_submodules", "prefix_projection", "prompt_tuning_init", "modules_to_save")}
    S = P + T if method == "prompt_tuning" else T
    return {
        "arch": arch,
        "method": method,
        "model_dir": rel,
        "model_dir_note": "relative to tests/golden/fixtures",
        "model_class": f"{cls.__name__}(num_labels={K})",
        "peft_config": used,
        "task": {"type": "TOKEN_CLS", "num_labels": K, "head": head, "loss": "mean CE over labelled tokens",
                 "num_labelled": N},
        "batch": {"B": B, "T": T, "S": S, "P": P,
                  "padding": "right; row 1 ends in 2 pad positions (id 0, attention_mask 0, label -100)",
                  "patterns": PATTERNS[arch],
                  "pattern_legend": "S special (-100), W word-first token (tagged), s non-first subword (-100), "
                                    "_ padding (-100)"},
        "trainable": [{"name": n, "shape": list(p.shape)} for n, p in params],
        "init": {"seed": seed + 1, "order": "trainable list order, torch.randn(generator) each",
                 "embedding.weight": f"N(0,{EMB_STD})", "bias": f"N(0,{BIAS_STD})", "weight": "N(0, 1/sqrt(in))"},
        "determinism": "CPU float32, eager attention, one thread; model.eval() (all dropout off)",
        "tensors": {
            "batch": ["input_ids (B,T)", "attention_mask (B,T)", f"labels (B,{S}) in ptune's layout"],
            "initial": [n for n, _ in params],
            "grad": ["grad." + n for n, _ in params],
            "loss": "() mean CE over the labelled tokens",
            "logits": f"({N},{K}) at the labelled positions, (b, t) order",
        },
        "peft_quirk": quirk,
        "peft_adapter": {
            "keys": {k: list(v.shape) for k, v in sorted(adapter.items())},
            "modules_to_save": adapter_cfg.get("modules_to_save"),
            "note": "peft save_pretrained at the initial parameters: prompt_embeddings = the embedding, the head under "
                    f"base_model.{head}.*; adapter_config.json inference_mode=true, base_model_name_or_path='{rel}'",
        },
        "conventions": conventions(arch, method),
    }


def main():
    run_cases(__doc__, DEFAULT_OUT, ARCHS, METHODS, run_case, 8000, "bert_prefix llama_prompt_tuning")
    print("all checks passed")


if __name__ == "__main__":
    sys.exit(main())
