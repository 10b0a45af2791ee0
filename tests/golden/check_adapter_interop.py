#!/usr/bin/env python3
"""Does an adapter trained and exported by ptune load in peft and give the
same outputs? Records the answer in tests/golden/fixtures/interop/result.json,
which tests/launch/test_adapter_interop.cpp asserts on.

On a tiny random BERT with the quickstart tokenizer (`ptune init-model`), and
for "xlm-roberta/prompt-tuning" a tiny random XLM-R with the xlmr fixture's
SentencePiece tokenizer (the same check as below, on
XLMRobertaForSequenceClassification), for "qwen3/…" a tiny random Qwen3 with
the llama fixture's tokenizer (Qwen3ForSequenceClassification), for
"smollm3/prompt-tuning" a tiny random SmolLM3 with the llama3 fixture's
(SmolLM3ForSequenceClassification), for "gemma3/…" a tiny random Gemma 3
with the llama fixture's (Gemma3TextForSequenceClassification), for "phi3/…" a
tiny random Phi-3 with partial rotation and LongRoPE (Phi3ForSequenceClassification):

* sequence classification ("prompt-tuning", "p-tuning"): `ptune train` a few
  steps, `ptune predict` the eval set (class scores), then
  `PeftModel.from_pretrained(BertForSequenceClassification, adapter)` and
  compare its logits on the same examples.
* token classification: the quickstart sentences split on spaces and tagged
  by rule ("not" B-MISC; "film", "movie", "ending" B-ORG; else O), labels as
  recipes/ner_ptuning_v2_minilm.yaml.
  "token-classification/prompt-tuning": `ptune predict` writes one tag per
  word (no scores), so peft's tag — the argmax of
  `PeftModel.from_pretrained(BertForTokenClassification, adapter)`'s logits
  at each word's first token — is compared word by word.
  "token-classification/p-tuning-v2 (load)": peft 0.21.2's PREFIX_TUNING
  TOKEN_CLS forward fails with transformers 5.24 ("Model does not support
  past key values"), so the P-Tuning v2 adapter is checked by loading only:
  no adapter key missing or unexpected, and the prefix and classifier that
  peft holds equal the saved tensors.

    /work/venv/bin/python tests/golden/check_adapter_interop.py --ptune build/launch/ptune
"""
import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import warnings

import torch

NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
# Enough steps at this rate that the prompt predicts some entity tags (eval
# entity F1 ≈ 0.96 for prompt tuning), so agreement is not all-O against all-O.
NER_TRAIN = ["train.max_steps=20", "train.lr=0.1", "train.eval_every=1000", "method.num_virtual_tokens=4",
             "task.classifier_dropout=0"]


def run(cmd):
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def ner_tag(word):
    if word == "not":
        return "B-MISC"
    if word in ("film", "movie", "ending"):
        return "B-ORG"
    return "O"


def write_tagged(src, dst, n):
    """The first n sentences of a quickstart file as token-classification JSONL; returns the word lists."""
    sentences = [json.loads(l)["sentence"].split(" ") for l in open(src)][:n]
    with open(dst, "w") as f:
        for words in sentences:
            f.write(json.dumps({"tokens": words, "ner_tags": [ner_tag(w) for w in words]}) + "\n")
    return sentences


@contextlib.contextmanager
def capture_load_results(peft_model_cls):
    """PeftModel.from_pretrained drops load_adapter's result (missing / unexpected keys); keep it."""
    results = []
    original = peft_model_cls.load_adapter

    def spy(self, *a, **k):
        r = original(self, *a, **k)
        results.append(r)
        return r

    peft_model_cls.load_adapter = spy
    try:
        yield results
    finally:
        peft_model_cls.load_adapter = original


def check_sequence_classification(ptune, model_dir, tmp, results, methods=("prompt-tuning", "p-tuning"), name=""):
    """name: prefix of the result keys ("" for the BERT model)."""
    from peft import PeftModel
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    lines = [json.loads(l) for l in open("recipes/data/quickstart/eval.jsonl")][:32]
    eval_path = os.path.join(tmp, "eval.jsonl")
    with open(eval_path, "w") as f:
        for l in lines:
            f.write(json.dumps(l) + "\n")

    # peft 0.21.2 + transformers 5.24 cannot run BERT prefix tuning for
    # SEQ_CLS (tests/golden/README.md), so the prefix methods are checked
    # on the adapter's tensors only by the method goldens.
    for method in methods:
        out = os.path.join(tmp, name + method)
        run([ptune, "train", "recipes/quickstart.yaml", f"model.path={model_dir}", f"method.name={method}",
             f"train.output_dir={out}", "train.max_steps=5", f"data.eval={eval_path}", "method.num_virtual_tokens=4"])
        pred = os.path.join(tmp, name + method + ".jsonl")
        run([ptune, "predict", "recipes/quickstart.yaml", f"model.path={model_dir}", f"method.name={method}",
             "method.num_virtual_tokens=4", "--adapter", os.path.join(out, "adapter"), "--input", eval_path,
             "--output", pred])
        ptune_scores = torch.tensor([json.loads(l)["scores"] for l in open(pred)])

        base = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2, attn_implementation="eager")
        model = PeftModel.from_pretrained(base, os.path.join(out, "adapter")).eval()
        with torch.no_grad():
            logits = []
            for l in lines:
                e = tok.encode(l["sentence"])
                # Decoders take no token types (one example at a time: no pad token needed).
                encoder = base.config.model_type in ("bert", "roberta", "xlm-roberta", "camembert")
                types = {"token_type_ids": torch.tensor([e.type_ids])} if encoder else {}
                logits.append(model(input_ids=torch.tensor([e.ids]),
                                    attention_mask=torch.tensor([e.attention_mask]), **types).logits[0])
            peft_scores = torch.stack(logits)
        diff = (peft_scores - ptune_scores).abs().max().item()
        results[name + method] = {"examples": len(lines), "max_abs_diff": diff, "ok": diff < 1e-4,
                                  "model": type(base).__name__}
        print(name + method, results[name + method])


def check_causal_lm_prefix(ptune, model_dir, tmp, results, name):
    """Prefix tuning for a causal LM (the instruct recipe): `ptune train`, then
    `ptune generate` (greedy) on eval prompts against a greedy loop over
    PeftModel.from_pretrained(AutoModelForCausalLM, adapter)'s logits. peft's
    own generate drops the prefix with transformers 5.24 (gen_llama_fixtures.py),
    hence the loop; each step's top-1 − top-2 logit margin says how far from a
    tie the agreement is."""
    from peft import PeftModel
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    recipe = "recipes/llama_prompt_tuning_instruct.yaml"
    out = os.path.join(tmp, name.replace("/", "-"))
    run([ptune, "train", recipe, f"model.path={model_dir}", "method.name=prefix-tuning", f"train.output_dir={out}",
         "train.max_steps=60", "train.eval_every=1000", "train.lr=0.01"])
    adapter = os.path.join(out, "adapter")
    prompts = [f"Review: {json.loads(l)['sentence']}\nSentiment:" for l in open("recipes/data/quickstart/eval.jsonl")][:16]
    new_tokens = 3
    gen = subprocess.run([ptune, "generate", "--model", model_dir, "--adapter", adapter, "--max-new-tokens",
                          str(new_tokens), *[a for p in prompts for a in ("--prompt", p)]],
                         check=True, capture_output=True, text=True).stdout
    ptune_ids = [json.loads(l)["ids"] for l in gen.splitlines() if l.startswith("{")]
    assert len(ptune_ids) == len(prompts), gen

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager"),
                                      adapter).eval()
    agree = total = 0
    min_margin = float("inf")
    with torch.no_grad():
        for prompt, want in zip(prompts, ptune_ids):
            seq = torch.tensor([tok.encode(prompt).ids])
            for t in range(new_tokens):
                top2 = model(input_ids=seq, attention_mask=torch.ones_like(seq)).logits[0, -1].topk(2)
                min_margin = min(min_margin, (top2.values[0] - top2.values[1]).item())
                got = top2.indices[0].item()
                total += 1
                agree += t < len(want) and got == want[t]
                seq = torch.cat([seq, torch.tensor([[got]])], 1)
    results[name] = {"prompts": len(prompts), "tokens": total, "agreement": agree / total,
                     "peft_min_top2_margin": min_margin, "peft_type": model.peft_config["default"].peft_type.value,
                     "model": type(model.get_base_model()).__name__, "ok": agree == total}
    print(name, results[name])


def ner_train(ptune, model_dir, method, train_path, eval_path, out, extra=()):
    run([ptune, "train", "recipes/ner_ptuning_v2_minilm.yaml", f"model.path={model_dir}", f"method.name={method}",
         f"data.train={train_path}", f"data.eval={eval_path}", f"train.output_dir={out}", *NER_TRAIN, *extra])
    return os.path.join(out, "adapter")


def check_token_classification(ptune, model_dir, tmp, results):
    from peft import PeftModel, get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertForTokenClassification

    train_path = os.path.join(tmp, "ner_train.jsonl")
    eval_path = os.path.join(tmp, "ner_eval.jsonl")
    write_tagged("recipes/data/quickstart/train.jsonl", train_path, 256)
    sentences = write_tagged("recipes/data/quickstart/eval.jsonl", eval_path, 32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def base():
        return BertForTokenClassification.from_pretrained(model_dir, num_labels=len(NER_LABELS),
                                                          attn_implementation="eager")

    # Prompt tuning: ptune's tags against peft's, word by word.
    method = "prompt-tuning"
    adapter = ner_train(ptune, model_dir, method, train_path, eval_path, os.path.join(tmp, "ner-" + method))
    pred = os.path.join(tmp, "ner-" + method + ".jsonl")
    run([ptune, "predict", "recipes/ner_ptuning_v2_minilm.yaml", f"model.path={model_dir}", f"method.name={method}",
         *NER_TRAIN, "--adapter", adapter, "--input", eval_path, "--output", pred])
    ptune_tags = [json.loads(l)["tags"] for l in open(pred)]
    assert len(ptune_tags) == len(sentences), (len(ptune_tags), len(sentences))

    model = PeftModel.from_pretrained(base(), adapter).eval()
    virtual = model.peft_config["default"].num_virtual_tokens
    words = agree = not_o = 0
    min_margin = float("inf")  # peft's top-1 minus top-2 logit: how far from a tie
    with torch.no_grad():
        for ws, tags in zip(sentences, ptune_tags):
            enc = tokenizer(ws, is_split_into_words=True, return_tensors="pt")
            # peft prepends the virtual tokens to the sequence; drop their rows.
            logits = model(**enc).logits[0, virtual:]
            word_ids = enc.word_ids()
            assert logits.shape[0] == len(word_ids), (logits.shape, len(word_ids))
            first = {}
            for pos, w in enumerate(word_ids):
                if w is not None and w not in first:
                    first[w] = pos
            assert len(tags) == len(ws) and sorted(first) == list(range(len(ws))), (ws, tags, word_ids)
            for w, pos in first.items():
                if tags[w] is None:  # ptune truncated the word away; none here (max_length 128)
                    continue
                top2 = logits[pos].topk(2)
                min_margin = min(min_margin, (top2.values[0] - top2.values[1]).item())
                words += 1
                agree += NER_LABELS[top2.indices[0].item()] == tags[w]
                not_o += tags[w] != "O"
    name = "token-classification/" + method
    results[name] = {"sentences": len(sentences), "words": words, "agreement": agree / words,
                     "ptune_tags_not_o": not_o, "peft_min_top2_margin": min_margin,
                     "ok": agree == words and words >= 100}
    print(name, results[name])

    # P-Tuning v2: load only (see the docstring).
    method = "p-tuning-v2"
    adapter = ner_train(ptune, model_dir, method, train_path, eval_path, os.path.join(tmp, "ner-" + method),
                        ["method.prefix_dropout=0"])
    saved = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    with capture_load_results(PeftModel) as loads, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(base(), adapter).eval()
    (load,) = loads
    # set_peft_model_state_dict passes the whole adapter dict to
    # load_state_dict(strict=False) and then loads "prompt_embeddings" into the
    # prompt encoder itself, so that key always comes back as "unexpected",
    # for peft's own prompt-learning adapters too; the tensor check below
    # shows it was loaded.
    unexpected = [k for k in load.unexpected_keys if k != "prompt_embeddings"]
    missing_warnings = [str(w.message) for w in caught if "missing adapter keys" in str(w.message)]
    loaded = get_peft_model_state_dict(model)
    same_keys = sorted(loaded) == sorted(saved)
    diff = max((loaded[k] - saved[k]).abs().max().item() for k in saved) if same_keys else float("inf")
    config = model.peft_config["default"]
    name = "token-classification/p-tuning-v2 (load)"
    results[name] = {"peft_type": getattr(config.peft_type, "value", config.peft_type),
                     "task_type": getattr(config.task_type, "value", config.task_type),
                     "saved_keys": sorted(saved), "missing_adapter_keys": list(load.missing_keys) + missing_warnings,
                     "unexpected_keys": unexpected, "same_keys": same_keys, "max_abs_diff": diff,
                     "ok": same_keys and diff == 0.0 and not unexpected and not load.missing_keys
                     and not missing_warnings}
    print(name, results[name])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptune", default="build/launch/ptune")
    args = ap.parse_args()

    torch.manual_seed(0)
    tmp = tempfile.mkdtemp()
    model_dir = os.path.join(tmp, "model")
    run([args.ptune, "init-model", "--arch", "bert", "--tokenizer", "recipes/data/quickstart/tokenizer.json",
         "--out", model_dir, "--seed", "3"])

    results = {}
    check_sequence_classification(args.ptune, model_dir, tmp, results)
    # XLM-R: model_type xlm-roberta and a SentencePiece tokenizer (Precompiled
    # + Unigram, the xlmr fixture) — the ids ptune's data pipeline makes must
    # be HF's for the logits to agree.
    xlmr_dir = os.path.join(tmp, "xlmr")
    run([args.ptune, "init-model", "--arch", "xlm-roberta", "--tokenizer",
         "tests/golden/fixtures/tokenizers/xlmr/tokenizer.json", "--out", xlmr_dir, "--seed", "3"])
    check_sequence_classification(args.ptune, xlmr_dir, tmp, results, methods=("prompt-tuning",), name="xlm-roberta/")
    # Qwen3 (per-head q/k norms) with the llama fixture's SentencePiece BPE
    # tokenizer: Qwen3ForSequenceClassification's `score` on the last token.
    qwen3_dir = os.path.join(tmp, "qwen3")
    run([args.ptune, "init-model", "--arch", "qwen3", "--tokenizer", "tests/golden/fixtures/tokenizers/llama/tokenizer.json",
         "--out", qwen3_dir, "--seed", "3"])
    check_sequence_classification(args.ptune, qwen3_dir, tmp, results, name="qwen3/")
    # Its prefix tuning as a causal LM, with Qwen's byte-level BPE tokenizer.
    qwen3_lm = os.path.join(tmp, "qwen3-lm")
    run([args.ptune, "init-model", "--arch", "qwen3", "--tokenizer", "tests/golden/fixtures/tokenizers/qwen/tokenizer.json",
         "--out", qwen3_lm, "--seed", "1"])
    check_causal_lm_prefix(args.ptune, qwen3_lm, tmp, results, "qwen3/prefix-tuning (causal-lm generate)")
    # SmolLM3 (a NoPE layer, tied embeddings) with the LLaMA 3-style tokenizer.
    smollm3_dir = os.path.join(tmp, "smollm3")
    run([args.ptune, "init-model", "--arch", "smollm3", "--tokenizer",
         "tests/golden/fixtures/tokenizers/llama3/tokenizer.json", "--out", smollm3_dir, "--seed", "3"])
    check_sequence_classification(args.ptune, smollm3_dir, tmp, results, methods=("prompt-tuning",), name="smollm3/")
    # Gemma 3 (√C-scaled word embeddings but not prompt rows, (1 + w) norms
    # before and after each sub-block, two RoPE bases) with the llama fixture's.
    gemma3_dir = os.path.join(tmp, "gemma3")
    run([args.ptune, "init-model", "--arch", "gemma3_text", "--tokenizer",
         "tests/golden/fixtures/tokenizers/llama/tokenizer.json", "--out", gemma3_dir, "--seed", "5"])
    check_sequence_classification(args.ptune, gemma3_dir, tmp, results, name="gemma3/")
    check_causal_lm_prefix(args.ptune, gemma3_dir, tmp, results, "gemma3/prefix-tuning (causal-lm generate)")
    # Phi-3 (fused qkv_proj / gate_up_proj) with Phi-4-mini's partial rotation
    # and LongRoPE: init-model's config patched to rotate 8 of 16 columns a
    # head with longrope from 4 positions (max 512: cos and sin × 2.12).
    # LongRoPE picks its factors by the batch's longest row, and peft runs
    # one example at a time where ptune predicts in batches: past 4
    # positions every example takes the long factors on both sides (the
    # short / long switch itself is in the phi3_long golden). Seed 5: the
    # generated tokens' top-2 margins stay clear of ties (0.0043 with seed 3).
    phi3_dir = os.path.join(tmp, "phi3")
    run([args.ptune, "init-model", "--arch", "phi3", "--tokenizer",
         "tests/golden/fixtures/tokenizers/llama/tokenizer.json", "--out", phi3_dir, "--seed", "5"])
    with open(os.path.join(phi3_dir, "config.json")) as f:
        config = json.load(f)
    config["original_max_position_embeddings"] = 4
    config["rope_parameters"] = {"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                                 "original_max_position_embeddings": 4, "short_factor": [1.0, 1.2, 1.5, 2.0],
                                 "long_factor": [1.5, 3.0, 6.0, 12.0]}
    with open(os.path.join(phi3_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    check_sequence_classification(args.ptune, phi3_dir, tmp, results, name="phi3/")
    check_causal_lm_prefix(args.ptune, phi3_dir, tmp, results, "phi3/prefix-tuning (causal-lm generate)")
    check_token_classification(args.ptune, model_dir, tmp, results)

    import peft
    import transformers
    record = {"versions": {"peft": peft.__version__, "transformers": transformers.__version__, "torch": torch.__version__},
              "results": results}
    with open("tests/golden/fixtures/interop/result.json", "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
