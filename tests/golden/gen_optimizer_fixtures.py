"""Writes the references of framework/train's optimizer pieces into
tests/golden/fixtures/optimizer/:

  adamw.safetensors   torch.optim.AdamW, 3 steps with a different lr each,
                      on three parameters "a" (3, 4) decay, "b" (5,) exempt
                      (its own param group with weight_decay 0), "c" (2, 3)
                      decay. Per config K: K/p0/<name> (start), K/grad<k>/<name>,
                      K/p<k>/<name> (after step k), K/exp_avg/<name>,
                      K/exp_avg_sq/<name> (after step 3). The configs (lrs,
                      betas, eps, weight_decay) are in the metadata "configs"
                      (one key: safetensors writes a metadata map in random order).
  clip.safetensors    torch.nn.utils.clip_grad_norm_ over the grads of a, b, c.
                      Per case K: K/grad/<name> (before), K/clipped/<name>,
                      K/total_norm (scalar); max_norm in metadata "cases".
  reference.json      lr tables of transformers' get_{constant,linear,cosine}
                      _schedule_with_warmup driven through torch's LambdaLR
                      (lr used by optimizer step k = table[k]), the warmup
                      step counts of TrainingArguments.get_warmup_steps, and
                      sklearn accuracy / f1_score(average="macro") cases.

    /work/venv/bin/python tests/golden/gen_optimizer_fixtures.py

CPU, float32, seed 0: a rerun is byte-identical.
"""
import json
import math
import pathlib

import sklearn
import torch
import transformers
from safetensors.torch import save_file
from sklearn.metrics import accuracy_score, f1_score
from transformers import TrainingArguments
from transformers.optimization import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                                       get_linear_schedule_with_warmup)

OUT = pathlib.Path(__file__).parent / "fixtures" / "optimizer"
SHAPES = {"a": (3, 4), "b": (5,), "c": (2, 3)}
EXEMPT = {"b"}
VERSIONS = f"torch {torch.__version__}, transformers {transformers.__version__}, sklearn {sklearn.__version__}"


def adamw_fixture(g):
    configs = {
        "wd": dict(lrs=[1e-3, 5e-2, 2e-2], betas=[0.9, 0.999], eps=1e-8, weight_decay=0.1),
        "nowd": dict(lrs=[3e-2, 1e-2, 4e-2], betas=[0.9, 0.999], eps=1e-8, weight_decay=0.0),
        # Betas far from the defaults and a large eps, so swapping them or
        # misplacing eps shows.
        "odd": dict(lrs=[2e-2, 2e-2, 1e-2], betas=[0.8, 0.95], eps=1e-3, weight_decay=0.5),
        # beta1 < 0.5: torch's lerp takes its other branch (weight >= 0.5).
        "lowbeta": dict(lrs=[1e-2, 3e-2, 2e-2], betas=[0.3, 0.9], eps=1e-8, weight_decay=0.2),
    }
    tensors = {}
    for key, cfg in configs.items():
        params = {n: torch.nn.Parameter(torch.randn(*s, generator=g)) for n, s in SHAPES.items()}
        for n, p in params.items():
            tensors[f"{key}/p0/{n}"] = p.detach().clone()
        groups = [
            {"params": [params[n] for n in SHAPES if n not in EXEMPT], "weight_decay": cfg["weight_decay"]},
            {"params": [params[n] for n in SHAPES if n in EXEMPT], "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=cfg["lrs"][0], betas=tuple(cfg["betas"]), eps=cfg["eps"],
                                amsgrad=False, foreach=False)
        for k, lr in enumerate(cfg["lrs"], start=1):
            for group in opt.param_groups:
                group["lr"] = lr
            for n, p in params.items():
                # Gradients of varied magnitude, with a zero to exercise v = 0.
                grad = torch.randn(*SHAPES[n], generator=g) * (0.1 if n == "c" else 1.0)
                grad.view(-1)[0] = 0.0 if k == 1 else grad.view(-1)[0]
                p.grad = grad
                tensors[f"{key}/grad{k}/{n}"] = grad.clone()
            opt.step()
            for n, p in params.items():
                tensors[f"{key}/p{k}/{n}"] = p.detach().clone()
        for n, p in params.items():
            state = opt.state[p]
            assert int(state["step"]) == len(cfg["lrs"])
            tensors[f"{key}/exp_avg/{n}"] = state["exp_avg"].clone()
            tensors[f"{key}/exp_avg_sq/{n}"] = state["exp_avg_sq"].clone()
    # Sensitivity: the exempt entry must differ from what decaying it gives.
    assert configs["wd"]["weight_decay"] > 0
    save_file(tensors, str(OUT / "adamw.safetensors"),
              metadata={"configs": json.dumps({"versions": VERSIONS, **configs})})


def clip_fixture(g):
    cases = {"clip": 1.0, "clip_half": 0.5, "noclip": 1000.0, "big": 3.0}
    tensors = {}
    for key, max_norm in cases.items():
        scale = 10.0 if key == "big" else 0.4
        params = [torch.nn.Parameter(torch.zeros(*s)) for s in SHAPES.values()]
        for (n, s), p in zip(SHAPES.items(), params):
            p.grad = torch.randn(*s, generator=g) * scale
            tensors[f"{key}/grad/{n}"] = p.grad.clone()
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        tensors[f"{key}/total_norm"] = total.detach().clone()
        for n, p in zip(SHAPES, params):
            tensors[f"{key}/clipped/{n}"] = p.grad.clone()
        if key == "noclip":
            assert float(total) < max_norm
        else:
            assert float(total) > max_norm
    save_file(tensors, str(OUT / "clip.safetensors"), metadata={"cases": json.dumps({"versions": VERSIONS, **cases})})


def schedule_tables():
    makers = {
        "constant": lambda opt, w, t: get_constant_schedule_with_warmup(opt, w),
        "linear": lambda opt, w, t: get_linear_schedule_with_warmup(opt, w, t),
        "cosine": lambda opt, w, t: get_cosine_schedule_with_warmup(opt, w, t),  # num_cycles 0.5
    }
    base_lr = 5e-3
    out = []
    for kind, make in makers.items():
        for warmup, total in [(0, 50), (7, 50), (10, 37), (1, 5), (60, 50), (0, 1)]:
            opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
            sched = make(opt, warmup, total)
            lrs = []
            for _ in range(total + 5):  # a few steps past the end too
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step()
            out.append({"kind": kind, "base_lr": base_lr, "warmup_steps": warmup, "total_steps": total, "lr": lrs})
    return out


def warmup_cases():
    cases = []
    for warmup, total in [(0.1, 37), (0.06, 100), (0.1, 100), (0.3, 10), (0.0, 50), (0.07, 1000), (0.5, 3), (0.14, 100), (0.1, 3),
                          (12, 100), (1, 100)]:
        args = TrainingArguments(output_dir="/tmp/ptune_gen_optimizer", warmup_steps=warmup, report_to=[])
        cases.append({"warmup": warmup, "total_steps": total, "expected": args.get_warmup_steps(total)})
    return cases


def metric_cases():
    raw = [
        # (num_classes, y_true, y_pred)
        (2, [0, 1, 1, 0, 1, 1], [0, 1, 0, 0, 1, 1]),
        (3, [0, 1, 2, 0, 1, 2, 2], [0, 2, 1, 0, 0, 2, 2]),
        # class 3 absent from both: not averaged in (sklearn's unique_labels)
        (4, [0, 1, 2, 0, 1, 2], [0, 1, 1, 0, 2, 2]),
        # class 2 predicted but never true, class 1 true but never predicted
        (3, [0, 0, 1, 1, 0], [0, 2, 0, 2, 0]),
        # all wrong
        (2, [0, 0, 1], [1, 1, 0]),
        # one class only
        (5, [3, 3, 3], [3, 3, 3]),
        (6, [5, 0, 4, 4, 1, 2, 3, 5, 0, 1, 2, 2], [5, 0, 4, 1, 1, 2, 3, 0, 0, 2, 2, 4]),
    ]
    cases = []
    for num_classes, y_true, y_pred in raw:
        cases.append({
            "num_classes": num_classes, "y_true": y_true, "y_pred": y_pred,
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        })
    return cases


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    adamw_fixture(g)
    clip_fixture(g)
    reference = {
        "versions": VERSIONS,
        "schedules": schedule_tables(),
        "warmup": warmup_cases(),
        "metrics": metric_cases(),
    }
    # repr-exact doubles: json writes floats with Python's shortest round-trip repr.
    (OUT / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    for f in sorted(OUT.iterdir()):
        print(f"wrote {f} ({f.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
