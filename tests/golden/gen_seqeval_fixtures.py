"""Writes the reference of framework/train's EntityScorer (entity-level NER
scores) into tests/golden/fixtures/metrics/seqeval.json:

  versions   the seqeval (and numpy) versions that computed it.
  cases      a list; each has
               name           what it exercises,
               labels         the label set in class-index order,
               gold, pred     lists of sequences of class indices (pred[k] as
                              long as gold[k]; some sequences empty),
               nb_true, nb_pred, nb_correct
                              entities in gold, in pred and in both, counted
                              from seqeval's get_entities with per-type sets,
                              as its precision_recall_fscore_support does,
               precision, recall, f1
                              seqeval.metrics precision_score / recall_score /
                              f1_score on the label strings, defaults (micro,
                              mode None, zero_division "warn" = 0),
               per_type       per entity type that occurs in gold or pred (in
                              seqeval's sorted order): support (= entities of
                              the type in gold), nb_pred, nb_correct (as
                              above, per type), precision, recall, f1 from
                              seqeval.metrics.classification_report(...,
                              output_dict=True), defaults as above.

    /work/venv/bin/python tests/golden/gen_seqeval_fixtures.py

Seeded (random.Random(0)): a rerun is byte-identical. The script also checks
that chunking each sequence on its own and summing the counts equals
seqeval's chunking of the whole list (which joins the sequences with "O"),
the equivalence the C++ scorer relies on.
"""
import json
import importlib.metadata
import pathlib
import random
import re
import warnings
from collections import defaultdict

import numpy
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

OUT = pathlib.Path(__file__).parent / "fixtures" / "metrics"
VERSIONS = f"seqeval {importlib.metadata.version('seqeval')}, numpy {numpy.__version__}"

IOB2 = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
IOBES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-ORG", "I-ORG", "E-ORG", "S-ORG"]
# IOB1: I- opens a chunk; B- only separates two adjacent chunks of one type.
IOB1 = ["O", "I-PER", "B-PER", "I-LOC", "B-LOC"]
# "O" not first; types with '-' (seqeval's type is all after the first '-':
# "geo-loc", not "loc", which is a type of its own here), and the type "_"
# that seqeval also gives "O".
ODD = ["B-geo", "I-geo-loc", "B-geo-loc", "O", "I-geo", "B-_", "I-_", "S-geo", "I-loc"]


def type_counts(gold, pred):
    """{type: (nb_true, nb_pred, nb_correct)} as seqeval's extract_tp_actual_correct."""
    true_sets, pred_sets = defaultdict(set), defaultdict(set)
    for t, s, e in get_entities(gold):
        true_sets[t].add((s, e))
    for t, s, e in get_entities(pred):
        pred_sets[t].add((s, e))
    return {t: (len(true_sets[t]), len(pred_sets[t]), len(true_sets[t] & pred_sets[t]))
            for t in sorted(set(true_sets) | set(pred_sets))}


def counts(gold, pred):
    """nb_true, nb_pred, nb_correct as seqeval's extract_tp_actual_correct."""
    per_type = type_counts(gold, pred).values()
    return tuple(sum(c[i] for c in per_type) for i in range(3))


def per_sequence_counts(gold, pred):
    total = [0, 0, 0]
    for g, p in zip(gold, pred):
        for i, x in enumerate(counts([g], [p])):
            total[i] += x
    return tuple(total)


def well_formed(rng, labels, scheme, n):
    """A tag sequence of n words that is valid in `scheme`, as names."""
    types = sorted({l[2:] for l in labels if l != "O"})
    out = []
    while len(out) < n:
        if rng.random() < 0.45:
            out.append("O")
            continue
        t = rng.choice(types)
        length = min(rng.choice([1, 1, 2, 3, 4]), n - len(out))
        if scheme == "iob2":
            chunk = ["B-" + t] + ["I-" + t] * (length - 1)
        elif scheme == "iobes":
            chunk = ["S-" + t] if length == 1 else ["B-" + t] + ["I-" + t] * (length - 2) + ["E-" + t]
        else:  # iob1: B- only right after a chunk of the same type
            first = "B-" if out and out[-1] == "I-" + t else "I-"
            chunk = [first + t] + ["I-" + t] * (length - 1)
        out.extend(chunk)
    return out


def lengths(rng, count):
    # Empty and one-word sequences among them.
    return [0, 1] + [rng.randint(0, 18) for _ in range(count - 2)]


def corrupt(rng, seq, labels, rate):
    return [rng.choice(labels) if rng.random() < rate else x for x in seq]


def shift(rng, seq):
    """Moves chunk boundaries: drops or duplicates a word's tag at random places."""
    out = list(seq)
    for i in range(1, len(out)):
        if rng.random() < 0.15:
            out[i] = out[i - 1]
    return out


def make_cases(rng):
    cases = []

    def add(name, labels, gold, pred):
        cases.append((name, labels, [[labels.index(x) for x in s] for s in gold],
                      [[labels.index(x) for x in s] for s in pred]))

    n = lengths(rng, 30)
    gold = [well_formed(rng, IOB2, "iob2", k) for k in n]
    add("iob2 gold, a fifth of the predicted tags replaced at random", IOB2, gold,
        [corrupt(rng, s, IOB2, 0.2) for s in gold])
    add("iob2 gold, boundaries shifted", IOB2, gold, [shift(rng, s) for s in gold])
    n = lengths(rng, 30)
    add("iob2, both random (I- without B-, type changes inside a chunk)", IOB2,
        [[rng.choice(IOB2) for _ in range(k)] for k in n], [[rng.choice(IOB2) for _ in range(k)] for k in n])

    n = lengths(rng, 30)
    gold = [well_formed(rng, IOBES, "iobes", k) for k in n]
    add("iobes gold, a quarter of the predicted tags replaced at random", IOBES, gold,
        [corrupt(rng, s, IOBES, 0.25) for s in gold])
    n = lengths(rng, 30)
    add("iobes, both random", IOBES, [[rng.choice(IOBES) for _ in range(k)] for k in n],
        [[rng.choice(IOBES) for _ in range(k)] for k in n])

    n = lengths(rng, 25)
    gold = [well_formed(rng, IOB1, "iob1", k) for k in n]
    add("iob1 gold, predicted random", IOB1, gold, [[rng.choice(IOB1) for _ in s] for s in gold])
    add("iob1 gold, predicted corrupted", IOB1, gold, [corrupt(rng, s, IOB1, 0.2) for s in gold])

    n = lengths(rng, 25)
    add("O not first, hyphenated types, the type '_', both random", ODD,
        [[rng.choice(ODD) for _ in range(k)] for k in n], [[rng.choice(ODD) for _ in range(k)] for k in n])

    n = lengths(rng, 12)
    gold = [well_formed(rng, IOB2, "iob2", k) for k in n]
    add("nothing predicted: precision divides by zero", IOB2, gold, [["O"] * len(s) for s in gold])
    pred = [well_formed(rng, IOB2, "iob2", len(s)) for s in gold]
    add("nothing in the labels: recall divides by zero", IOB2, [["O"] * len(s) for s in gold], pred)
    add("no entity anywhere", IOB2, [["O"] * len(s) for s in gold], [["O"] * len(s) for s in gold])
    add("perfect", IOB2, gold, gold)

    hand = [
        # (gold, pred)
        ("I-PER I-PER O", "B-PER I-PER O"),          # I- opens a chunk: the same entity
        ("B-PER I-LOC I-LOC", "B-PER B-LOC I-LOC"),  # type change closes PER, opens LOC
        ("B-PER E-PER S-PER", "B-PER I-PER S-PER"),  # E- closes, S- is one word
        ("E-PER E-PER", "S-PER S-PER"),              # E after E starts a new chunk
        ("B-PER I-PER", "B-PER I-PER"),              # chunk closed by the end of the sequence
        ("I-PER", "I-LOC"),
        ("S-PER I-PER E-PER", "S-PER B-PER E-PER"),
        ("B-LOC E-PER I-PER", "B-LOC S-PER I-PER"),
        ("O E-LOC O", "O I-LOC O"),
        ("I-PER B-PER I-PER", "I-PER I-PER I-PER"),
    ]
    hand_labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    add("hand-made chunking corner cases", hand_labels, [g.split() for g, _ in hand], [p.split() for _, p in hand])
    return cases


def compact(text):
    """json indent=1 puts every item on a line: one line per list of numbers or of label names."""
    text = re.sub(r"\[[\d,\s]*\]", lambda m: re.sub(r"\s+", "", m.group(0)), text)
    text = re.sub(r'\[\s*"[^"]*"(?:,\s*"[^"]*")*\s*\]', lambda m: re.sub(r'\s*("[^"]*")\s*', r"\1", m.group(0)),
                  text)
    # An object of numbers only (a per_type entry) on one line; the floats
    # round-trip through loads/dumps unchanged.
    return re.sub(r"\{[^{}\[\]]*\}", lambda m: json.dumps(json.loads(m.group(0))), text)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    out = []
    for name, labels, gold_ids, pred_ids in make_cases(rng):
        gold = [[labels[i] for i in s] for s in gold_ids]
        pred = [[labels[i] for i in s] for s in pred_ids]
        assert [len(s) for s in gold] == [len(s) for s in pred]
        nb_true, nb_pred, nb_correct = counts(gold, pred)
        assert per_sequence_counts(gold, pred) == (nb_true, nb_pred, nb_correct), name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zero-division warnings (the value is 0)
            p, r, f = (float(fn(gold, pred)) for fn in (precision_score, recall_score, f1_score))
        assert p == (nb_correct / nb_pred if nb_pred else 0.0), name
        assert r == (nb_correct / nb_true if nb_true else 0.0), name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = classification_report(gold, pred, output_dict=True)
        per_type = {}
        for t, (t_true, t_pred, t_correct) in type_counts(gold, pred).items():
            row = report[t]
            assert int(row["support"]) == t_true, (name, t)
            assert row["precision"] == (t_correct / t_pred if t_pred else 0.0), (name, t)
            assert row["recall"] == (t_correct / t_true if t_true else 0.0), (name, t)
            per_type[t] = {"support": int(row["support"]), "nb_pred": t_pred, "nb_correct": t_correct,
                           "precision": float(row["precision"]), "recall": float(row["recall"]),
                           "f1": float(row["f1-score"])}
        assert sorted(report) == sorted(list(per_type) + ["micro avg", "macro avg", "weighted avg"]), name
        out.append({"name": name, "labels": labels, "gold": gold_ids, "pred": pred_ids, "nb_true": nb_true,
                    "nb_pred": nb_pred, "nb_correct": nb_correct, "precision": p, "recall": r, "f1": f,
                    "per_type": per_type})
    # Both zero divisions are covered.
    assert any(c["nb_pred"] == 0 and c["nb_true"] > 0 for c in out)
    assert any(c["nb_true"] == 0 and c["nb_pred"] > 0 for c in out)
    # repr-exact doubles: json writes floats with Python's shortest round-trip repr.
    path = OUT / "seqeval.json"
    path.write_text(compact(json.dumps({"versions": VERSIONS, "cases": out}, indent=1)) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(out)} cases)")
    for c in out:
        print(f"  {c['nb_true']:4d} {c['nb_pred']:4d} {c['nb_correct']:4d}  f1 {c['f1']:.4f}  {c['name']}")


if __name__ == "__main__":
    main()
