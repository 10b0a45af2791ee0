#!/usr/bin/env python3
"""ptune train vs PyTorch + peft, side by side, on the same P-Tuning v2 NER run.

The run: recipes/ner_ptuning_v2_minilm.yaml (16 virtual tokens, a KV prefix in
every layer, prefix dropout 0.1, classifier dropout 0.1, AdamW lr 0.02 with
weight decay 0, linear schedule with 6% warmup, gradient clipping at 1.0,
micro-batch 32, max_length 128) on a BERT checkpoint, trained once by
`ptune train` and once by BertForTokenClassification + peft's
PrefixTuningConfig(TOKEN_CLS, prefix_projection=False), on the same CPU
threads, the same data and the same hyperparameters. Each side reports the
wall-clock seconds of its training loop (model and data loading excluded),
training tokens/s (real tokens, [CLS]/[SEP] included, padding and virtual
tokens not) and the eval set's entity F1 (seqeval, micro) and token accuracy
on the first sub-token of each word, as run_ner.py scores it.

    python3 scripts/make_trec_names.py /tmp/trec_names
    /work/venv/bin/python tests/bench/bench_ner.py --data /tmp/trec_names --max-train 640   # quick
    /work/venv/bin/python tests/bench/bench_ner.py --data /tmp/trec_names                   # 4,500 sentences

Fairness: both sides shuffle without length bucketing (ptune runs with
data.bucket_by_length=false); --bucket turns ptune's bucketing on and gives
PyTorch a sampler of the same shape (length-sorted chunks of 50 batches,
batches shuffled), with a different random stream. ptune's frozen backbone
runs without dropout, so the PyTorch backbone is loaded with
hidden_dropout_prob = attention_probs_dropout_prob = 0 and keeps the
classifier's dropout; peft has no prefix dropout, so a hook applies it to the
prompt encoder's output with one mask per step shared by the batch, as ptune
does. ptune's loop time is when its metrics.jsonl receives the last step's
record minus when it receives the start message (written after loading);
ptune's own tokens/s over that window is shown beside it.

Needs torch + transformers + peft + seqeval (any venv); not part of the test suite.
"""
import argparse
import json
import math
import os
import random
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "recipes", "ner_ptuning_v2_minilm.yaml")
BUCKET_BATCHES = 50  # data::Sampler::kBucketBatches


def read_jsonl(path, limit=0):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
                if limit and len(rows) == limit:
                    break
    return rows


def total_steps(n, args):
    return math.ceil(n / args.micro_batch) * args.epochs


# ----------------------------------------------------------------------------
# ptune


def ptune_run(args, train_path, eval_path, labels, n_train, out_dir):
    """Runs `ptune train` and times its loop by when metrics.jsonl's records arrive. Returns a result dict."""
    steps = total_steps(n_train, args)
    overrides = [f"model.path={os.path.abspath(args.model)}", f"data.train={train_path}", f"data.eval={eval_path}",
                 f"data.labels=[{','.join(labels)}]", f"data.max_length={args.max_length}",
                 f"data.bucket_by_length={'true' if args.bucket else 'false'}",
                 f"train.epochs={args.epochs}", f"train.micro_batch={args.micro_batch}", f"train.seed={args.seed}",
                 # one log record over the whole loop (its tokens/s is ptune's own figure for it) and one eval, after
                 # the last step, so neither evaluation nor checkpointing falls inside the timed window
                 f"train.log_every={steps}", f"train.eval_every={steps}", "train.save_every=0",
                 f"train.output_dir={out_dir}"]
    cmd = [args.ptune, "train", RECIPE, *overrides]
    print("ptune:", " ".join(cmd), flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    metrics = os.path.join(out_dir, "metrics.jsonl")
    arrivals = []  # (time, record)
    with open(os.path.join(out_dir, "stdout.txt"), "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        pending = ""
        f = None
        while True:
            done = proc.poll() is not None
            if f is None and os.path.exists(metrics):
                f = open(metrics)
            if f is not None:
                chunk = f.read()
                now = time.perf_counter()
                pending += chunk
                while "\n" in pending:
                    line, pending = pending.split("\n", 1)
                    arrivals.append((now, json.loads(line)))
            if done:
                break
            time.sleep(0.01)
        if f is not None:
            f.close()
    if proc.returncode != 0:
        with open(os.path.join(out_dir, "stdout.txt")) as log:
            raise SystemExit(f"ptune train failed (exit {proc.returncode}):\n{log.read()[-4000:]}")
    start = next(t for t, r in arrivals if "message" in r)
    step_records = [(t, r) for t, r in arrivals if "step" in r and "loss" in r and r.get("split") != "eval"]
    end, last = step_records[-1]
    ev = [r for _, r in arrivals if r.get("split") == "eval"][-1]
    return {"seconds": end - start, "steps": last["step"], "own_tokens_per_s": last["tokens_per_s"],
            "mean_loss": last["loss"], "f1": ev["f1"], "precision": ev["precision"], "recall": ev["recall"],
            "accuracy": ev["accuracy"], "eval_tokens": ev["tokens"], "start_message": arrivals[0][1]["message"]}


# ----------------------------------------------------------------------------
# PyTorch + peft


def encode(tok, rows, label_id, max_length):
    """run_ner.py's tokenize_and_align_labels: the first sub-token of each word carries its tag, the rest -100."""
    enc = tok([r["tokens"] for r in rows], is_split_into_words=True, truncation=True, max_length=max_length)
    out = []
    for i, r in enumerate(rows):
        labels, prev = [], None
        for w in enc.word_ids(i):
            labels.append(-100 if w is None or w == prev else label_id[r["ner_tags"][w]])
            prev = w
        out.append((enc["input_ids"][i], labels))
    return out


def collate(torch, examples, pad_id):
    """DataCollatorForTokenClassification's padding: ids with [PAD], mask 0, labels -100, right-padded."""
    T = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), T), dtype=torch.long)
    labels = torch.full((len(examples), T), -100, dtype=torch.long)
    for b, (x, y) in enumerate(examples):
        ids[b, :len(x)] = torch.tensor(x)
        mask[b, :len(x)] = 1
        labels[b, :len(y)] = torch.tensor(y)
    return ids, mask, labels


def batches(n, lengths, batch, rng, bucket):
    """Shuffled batches; with bucket, ptune's sampler's shape: length-sorted chunks of 50 batches, full batches
    shuffled, the partial one last."""
    order = list(range(n))
    rng.shuffle(order)
    if bucket:
        chunk = BUCKET_BATCHES * batch
        for c in range(0, n, chunk):
            order[c:c + chunk] = sorted(order[c:c + chunk], key=lambda i: -lengths[i])  # stable, as ptune's
    starts = list(range(0, n - n % batch, batch))
    if bucket:
        rng.shuffle(starts)
    if n % batch:
        starts.append(n - n % batch)
    return [order[s:s + batch] for s in starts]


def add_prefix_tuning_shim(pm):
    """peft 0.21.2 + transformers 5.x: peft's TOKEN_CLS prefix path looks for a parameter named past_key_values in
    the backbone's forward signature, which transformers renamed to `cache`, and raises "Model does not support
    past key values". As in tests/golden/gen_token_cls_fixtures.py (backbone_shim), the backbone's forward is
    wrapped in one that names the parameter and passes it on under the old name (transformers' deprecate_kwarg maps
    it to `cache`)."""
    bb = pm.get_base_model().bert
    orig = type(bb).forward

    def shim(input_ids=None, attention_mask=None, past_key_values=None, **kw):
        return orig(bb, input_ids=input_ids, attention_mask=attention_mask, past_key_values=past_key_values, **kw)

    bb.forward = shim


def torch_run(args, train_rows, eval_rows, labels):
    import warnings

    import torch
    import torch.nn.functional as F
    import transformers
    from peft import PrefixTuningConfig, TaskType, get_peft_model
    from seqeval.metrics import f1_score, precision_score, recall_score
    from transformers import AutoTokenizer, BertForTokenClassification, get_linear_schedule_with_warmup

    transformers.logging.set_verbosity_error()  # the head's MISSING / pooler's UNEXPECTED load report
    warnings.filterwarnings("ignore", category=FutureWarning)  # past_key_values → cache, through the shim
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    label_id = {t: i for i, t in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(args.model)
    train = encode(tok, train_rows, label_id, args.max_length)
    evals = encode(tok, eval_rows, label_id, args.max_length)

    # ptune's frozen backbone has no dropout; the head keeps the recipe's classifier dropout
    model = BertForTokenClassification.from_pretrained(
        args.model, num_labels=len(labels), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        classifier_dropout=args.classifier_dropout, attn_implementation=args.attn)
    pm = get_peft_model(model, PrefixTuningConfig(task_type=TaskType.TOKEN_CLS, num_virtual_tokens=args.virtual_tokens,
                                                  prefix_projection=False))
    add_prefix_tuning_shim(pm)

    # P-Tuning v2's prefix dropout (peft has none): one mask per step on the (P, 2·L·C) table, shared by the batch
    # as ptune's; the encoder's rows are the same table repeated per example
    def prefix_dropout(module, inputs, out):
        if not module.training or args.prefix_dropout == 0:
            return out
        return F.dropout(out[:1], args.prefix_dropout, True).expand_as(out)

    pm.prompt_encoder["default"].register_forward_hook(prefix_dropout)
    params = [p for p in pm.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    steps = total_steps(len(train), args)
    warmup = math.ceil(steps * args.warmup_ratio)  # transformers' get_warmup_steps, as ptune resolves the ratio
    sched = get_linear_schedule_with_warmup(opt, warmup, steps)
    rng = random.Random(args.seed)
    lengths = [len(ids) for ids, _ in train]

    pm.train()
    tokens, losses = 0, []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        for idx in batches(len(train), lengths, args.micro_batch, rng, args.bucket):
            ids, mask, y = collate(torch, [train[i] for i in idx], tok.pad_token_id)
            tokens += int(mask.sum())
            loss = pm(input_ids=ids, attention_mask=mask, labels=y).loss  # mean CE over the labelled tokens
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
    seconds = time.perf_counter() - start

    pm.eval()
    y_true, y_pred = [], []
    with torch.no_grad():
        for s in range(0, len(evals), args.micro_batch):
            ids, mask, y = collate(torch, evals[s:s + args.micro_batch], tok.pad_token_id)
            pred = pm(input_ids=ids, attention_mask=mask).logits.argmax(-1)
            for b in range(ids.shape[0]):
                keep = y[b] != -100
                y_true.append([labels[i] for i in y[b][keep].tolist()])
                y_pred.append([labels[i] for i in pred[b][keep].tolist()])
    n_tok = sum(len(t) for t in y_true)
    correct = sum(a == b for t, p in zip(y_true, y_pred) for a, b in zip(t, p))
    return {"seconds": seconds, "steps": len(losses), "tokens": tokens, "mean_loss": sum(losses) / len(losses),
            "f1": f1_score(y_true, y_pred), "precision": precision_score(y_true, y_pred),
            "recall": recall_score(y_true, y_pred), "accuracy": correct / max(n_tok, 1), "eval_tokens": n_tok,
            "trainable": n_params}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ptune", default=os.path.join(ROOT, "build", "launch", "ptune"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--data", default=os.path.join(ROOT, "runs", "data", "trec_names"),
                    help="directory with train.jsonl and eval.jsonl (scripts/make_trec_names.py)")
    ap.add_argument("--labels", default="O,B-PER,I-PER", help="the tag set, comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-train", type=int, default=0, help="use the first N training sentences (0: all)")
    ap.add_argument("--bucket", action="store_true", help="length-bucketed batches on both sides (default: neither)")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="PyTorch attention implementation")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--keep", default="", help="keep ptune's output_dir here (default: a temporary one)")
    ap.add_argument("--skip-ptune", action="store_true")
    ap.add_argument("--skip-torch", action="store_true")
    args = ap.parse_args()
    # the recipe's values (ptune's defaults where the recipe says nothing: weight_decay 0, betas, eps)
    args.virtual_tokens, args.prefix_dropout, args.classifier_dropout = 16, 0.1, 0.1
    args.lr, args.weight_decay, args.warmup_ratio, args.max_grad_norm = 0.02, 0.0, 0.06, 1.0
    args.micro_batch, args.max_length = 32, 128

    labels = args.labels.split(",")
    train_rows = read_jsonl(os.path.join(args.data, "train.jsonl"), args.max_train)
    eval_path = os.path.join(args.data, "eval.jsonl")
    eval_rows = read_jsonl(eval_path)
    unknown = {t for r in train_rows + eval_rows for t in r["ner_tags"]} - set(labels)
    if unknown:
        raise SystemExit(f"tags {sorted(unknown)} are not in --labels {args.labels}")
    print(f"{len(train_rows)} train sentences, {len(eval_rows)} eval, {args.epochs} epoch(s), "
          f"{total_steps(len(train_rows), args)} steps of {args.micro_batch}, {args.threads} threads, "
          f"bucketing {'on' if args.bucket else 'off'} on both sides", flush=True)

    work = tempfile.mkdtemp(prefix="bench_ner_")
    try:
        train_path = os.path.join(work, "train.jsonl")
        with open(train_path, "w") as f:
            for r in train_rows:
                f.write(json.dumps(r) + "\n")
        out_dir = os.path.abspath(args.keep) if args.keep else os.path.join(work, "out")
        if os.path.exists(os.path.join(out_dir, "checkpoint-last")):
            raise SystemExit(f"{out_dir} holds a checkpoint (ptune would resume from it): pick an empty --keep")
        os.makedirs(out_dir, exist_ok=True)
        pt = None if args.skip_ptune else ptune_run(args, train_path, eval_path, labels, len(train_rows), out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if pt:
        print(f"ptune: {pt['start_message']}", flush=True)
    th = None if args.skip_torch else torch_run(args, train_rows, eval_rows, labels)

    rows = [("train loop, s", "seconds", "{:.1f}"), ("optimizer steps", "steps", "{}"),
            ("s / step", None, "{:.3f}"), ("train tokens/s", None, "{:.1f}"),
            ("mean train loss", "mean_loss", "{:.4f}"), ("eval entity F1", "f1", "{:.4f}"),
            ("eval precision", "precision", "{:.4f}"), ("eval recall", "recall", "{:.4f}"),
            ("eval token accuracy", "accuracy", "{:.4f}"), ("eval tagged tokens", "eval_tokens", "{}")]
    tokens = th["tokens"] if th else None
    if pt:
        pt["s / step"] = pt["seconds"] / pt["steps"]
        # ptune counts the same real tokens per batch (data::collate's batch.tokens)
        pt["train tokens/s"] = tokens / pt["seconds"] if tokens else pt["own_tokens_per_s"]
    if th:
        th["s / step"] = th["seconds"] / th["steps"]
        th["train tokens/s"] = th["tokens"] / th["seconds"]
    print(f"\n{'':22}{'ptune':>14}{'pytorch+peft':>16}")
    for name, key, fmt in rows:
        key = key or name
        cell = lambda r: fmt.format(r[key]) if r else "-"
        print(f"{name:22}{cell(pt):>14}{cell(th):>16}")
    if pt:
        print(f"ptune's own tokens/s over its loop: {pt['own_tokens_per_s']:.1f}")
    if th:
        print(f"train tokens (real, both sides): {th['tokens']}; pytorch trainable parameters: {th['trainable']}")
    if pt and th:
        print(f"ptune / pytorch speed: {th['seconds'] / pt['seconds']:.2f}x")


if __name__ == "__main__":
    main()
