"""The metrics against scikit-learn, the oracle: every number recomputed independently.

The plugin computes its metrics from counts with numpy (scikit-learn is not
imported for them); here scikit-learn and scipy recompute them from the same
per-case results, including random label vectors with absent classes and
answers outside the label set.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.report import build_report, load_report, write_json_report
from pytest_ftclass.results import CaseResult
from tests.helpers import dense
from tests.unit.test_metrics import _from_json, make
from tests.unit.test_reports import task_a, task_b


def _suite(kind: str) -> list[CaseResult]:
    """Synthetic suites with log-probs: binary, multiclass (with an out-of-set answer), sliced."""
    import random

    rng = random.Random({"binary": 1, "multiclass": 2, "sliced": 3}[kind])
    labels = ["ham", "spam"] if kind == "binary" else ["a", "b", "c", "d"]
    results = []
    for i in range(120):
        expected = rng.choice(labels)
        predicted = expected if rng.random() < 0.75 else rng.choice(labels)
        if kind == "multiclass" and i == 7:
            predicted = "zzz"
        top = rng.uniform(0.3, 0.99)
        logprobs = {predicted: math.log(top)}
        other = rng.choice(labels)
        if other != predicted and rng.random() < 0.7:
            logprobs[other] = math.log((1 - top) * rng.uniform(0.2, 1))
        if i % 17 == 0:
            logprobs = {}
        result = make(f"c{i}", expected, predicted, labels=labels, logprobs=logprobs)
        if kind == "sliced":
            result.tags = [t for t in ("short", "long", "noisy") if rng.random() < 0.5]
            result.latency_s = rng.uniform(0.1, 2.0)
            result.usage = {"prompt_tokens": 10 + i, "completion_tokens": 1, "total_tokens": 11 + i}
        if i == 3:
            result.predicted, result.error = None, "HTTP 500"
        results.append(result)
    return results


def _probabilities(cases: list[dict], labels: list[str]) -> tuple[list, list]:
    """The documented renormalisation, by hand: exp, 0 if unlisted, floor 1e-6, divide by sum."""
    rows, truth = [], []
    for c in cases:
        listed = [lab for lab in labels if lab in c["logprobs"]]
        if not listed:
            continue
        raw = [max(math.exp(c["logprobs"][lab]) if lab in c["logprobs"] else 0.0, 1e-6)
               for lab in labels]  # fmt: skip
        rows.append([p / sum(raw) for p in raw])
        truth.append(c["expected"])
    return rows, truth


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("kind", ["binary", "multiclass", "sliced"])
def test_every_new_metric_matches_an_independent_computation(kind: str) -> None:
    import numpy as np
    import scipy.stats
    from sklearn import metrics as sk

    m, cases = _from_json(_suite(kind))
    scored = [c for c in cases if c["error"] is None and c["predicted"] is not None]
    y_true = [c["expected"] for c in scored]
    y_pred = [c["predicted"] for c in scored]
    labels = sorted({lab for c in cases for lab in c["labels"]})

    ci = scipy.stats.binomtest(
        sum(t == p for t, p in zip(y_true, y_pred, strict=True)), len(y_true)
    )
    wilson = ci.proportion_ci(confidence_level=0.95, method="wilson")
    assert m["accuracy_ci"] == pytest.approx([wilson.low, wilson.high], abs=1e-9)
    assert m["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y_true, y_pred))
    assert m["cohen_kappa"] == pytest.approx(sk.cohen_kappa_score(y_true, y_pred))
    assert m["mcc"] == pytest.approx(sk.matthews_corrcoef(y_true, y_pred))
    matrix_labels = m["confusion_matrix"]["labels"]
    counts = sk.confusion_matrix(y_true, y_pred, labels=matrix_labels)
    assert dense(m["confusion_matrix"])["matrix"] == counts.tolist()
    # only the non-zero cells are stored, row by row
    nonzero = [[int(i), int(j), int(counts[i, j])] for i, j in zip(*counts.nonzero(), strict=True)]
    assert m["confusion_matrix"]["cells"] == nonzero
    assert m["error_rate"] == pytest.approx(1 / 120)
    assert m["out_of_set_rate"] == pytest.approx(sum(p not in labels for p in y_pred) / 119)

    rows, truth = _probabilities(scored, labels)
    assert m["n_with_probabilities"] == len(rows)
    assert m["log_loss"] == pytest.approx(sk.log_loss(truth, rows, labels=labels))
    assert m["brier_score"] == pytest.approx(
        sk.brier_score_loss(
            truth,
            np.array(rows)[:, 1] if len(labels) == 2 else rows,
            pos_label=labels[1],
            labels=labels,
        )
    )
    conf = np.max(rows, axis=1)
    right = np.array(labels)[np.argmax(rows, axis=1)] == np.array(truth)
    bins = np.minimum(np.floor(conf * 10).astype(int), 9)
    ece = sum(abs(right[bins == b].mean() - conf[bins == b].mean()) * (bins == b).sum()
              for b in range(10) if (bins == b).any()) / len(conf)  # fmt: skip
    assert m["ece"] == pytest.approx(ece)
    counts = np.bincount(bins, minlength=10).tolist()
    assert [b["count"] for b in m["calibration"]["bins"]] == counts

    if kind == "binary":
        positive = "spam"  # in the positive-name list
        scores = [row[labels.index(positive)] for row in rows]
        y = [int(t == positive) for t in truth]
        binary = m["binary"]
        assert binary["positive_class"] == positive
        assert binary["auroc"] == pytest.approx(sk.roc_auc_score(y, scores))
        assert binary["auprc"] == pytest.approx(sk.average_precision_score(y, scores))
        p, r, f, _ = sk.precision_recall_fscore_support(
            y_true, y_pred, labels=[positive], zero_division=0
        )
        assert (binary["precision"], binary["recall"], binary["f1"]) == pytest.approx(
            (p[0], r[0], f[0])
        )
        assert m["legacy"] == {
            "classification/accuracy": m["accuracy"],
            "classification/precision": binary["precision"],
            "classification/recall": binary["recall"],
            "classification/auroc": binary["auroc"],
            "classification/auprc": binary["auprc"],
            "classification/f1.0": binary["f1"],
        }
    else:
        assert m["binary"] is None
        assert m["legacy"] == {
            "classification/accuracy": pytest.approx(sk.accuracy_score(y_true, y_pred)),
            "classification/weighted_f1_score": pytest.approx(
                sk.f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
            ),
        }

    if kind == "sliced":
        tags = sorted({t for c in cases for t in c["tags"]})
        assert list(m["slices"]) == tags
        for tag in tags:
            own = [c for c in scored if tag in c["tags"]]
            t = [c["expected"] for c in own]
            p = [c["predicted"] for c in own]
            s = m["slices"][tag]
            assert s["n"] == sum(tag in c["tags"] for c in cases)
            assert s["accuracy"] == pytest.approx(sk.accuracy_score(t, p))
            # over the labels present in the slice (scikit-learn's default label set)
            assert s["macro_f1_present"] == pytest.approx(
                sk.f1_score(t, p, average="macro", zero_division=0)
            )
            wilson = scipy.stats.binomtest(sum(a == b for a, b in zip(t, p, strict=True)), len(t))
            low_high = wilson.proportion_ci(method="wilson")
            assert s["accuracy_ci"] == pytest.approx([low_high.low, low_high.high])
        latencies = [c["latency_s"] for c in cases if c["latency_s"] is not None]
        assert m["latency_s"] == {"n": len(latencies),
                                  "p50": pytest.approx(np.median(latencies)),
                                  "p95": pytest.approx(np.quantile(latencies, 0.95))}  # fmt: skip
        sums = {k: sum(c["usage"][k] for c in cases if c["usage"]) for k in
                ("prompt_tokens", "completion_tokens", "total_tokens")}  # fmt: skip
        assert m["usage"] == sums and m["usage_by_model"] == {"ft:m": sums}
    else:
        assert m["slices"] == {} and m["latency_s"] is None and m["usage"] is None


def test_macro_f1_bootstrap_interval_is_reproducible_and_matches_resampling_cases() -> None:
    import numpy as np
    from sklearn.metrics import f1_score

    results = _suite("multiclass")
    m, cases = _from_json(results)
    again, _ = _from_json(results)
    assert m["macro_f1_ci"] == again["macro_f1_ci"]  # fixed seed
    low, high = m["macro_f1_ci"]
    assert low <= m["macro_f1"] <= high

    # an independent percentile bootstrap resampling the cases themselves
    scored = [c for c in cases if c["error"] is None]
    y_true = np.array([c["expected"] for c in scored])
    y_pred = np.array([c["predicted"] for c in scored])
    rng = np.random.default_rng(12345)
    draws = []
    for _ in range(300):  # fewer draws than the interval's own 1000: a looser check, but quick
        idx = rng.integers(0, len(scored), len(scored))
        draws.append(f1_score(y_true[idx], y_pred[idx], labels=["a", "b", "c", "d"],
                              average="macro", zero_division=0))  # fmt: skip
    ref_low, ref_high = np.percentile(draws, [2.5, 97.5])
    assert low == pytest.approx(ref_low, abs=0.04)
    assert high == pytest.approx(ref_high, abs=0.04)


# --- the JSON report's numbers, from its own cases ---------------------------------------


def recompute(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics from a report's case dicts, with scikit-learn called directly."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    scored = [c for c in cases if c["error"] is None and c["predicted"] is not None]
    y_true = [c["expected"] for c in scored]
    y_pred = [c["predicted"] for c in scored]
    labels = sorted({label for c in cases for label in c["labels"]} | set(y_true))
    extra = sorted(set(y_pred) - set(labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "n_cases": len(cases),
        "n_scored": len(scored),
        "n_errors": len(cases) - len(scored),
        "n_correct": sum(c["correct"] for c in cases),
        "n_out_of_set": sum(p not in labels for p in y_pred),
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "weighted_f1": f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0),
        "per_class": {
            label: {
                "precision": precision[i],
                "recall": recall[i],
                "f1": f1[i],
                "support": support[i],
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": labels + extra,
            "matrix": confusion_matrix(y_true, y_pred, labels=labels + extra).tolist(),
        },
    }


def assert_same_metrics(stored: dict[str, Any], recomputed: dict[str, Any]) -> None:
    for key in ("n_cases", "n_scored", "n_errors", "n_correct", "n_out_of_set"):
        assert stored[key] == recomputed[key], key
    for key in ("accuracy", "macro_f1", "weighted_f1"):
        assert stored[key] == pytest.approx(recomputed[key]), key
    assert dense(stored["confusion_matrix"]) == recomputed["confusion_matrix"]
    assert list(stored["per_class"]) == list(recomputed["per_class"])
    for label, numbers in recomputed["per_class"].items():
        assert stored["per_class"][label] == pytest.approx(numbers), label


def test_json_report_metrics_are_recomputable_from_its_cases(tmp_path: Path) -> None:
    report = build_report(task_a() + task_b(), {}, model_under_test="ft:a")
    path = write_json_report(report, tmp_path / "nested" / "dir" / "report.json")
    assert path == tmp_path / "nested" / "dir" / "report.json"
    loaded = load_report(path)

    for model in loaded["models"]:
        own = [c for c in loaded["cases"] if c["model"] == model["model"]]
        assert_same_metrics(model["metrics"], recompute(own))
    assert len(loaded["tasks"]) == 2
    for task in loaded["tasks"]:
        own = [c for c in loaded["cases"] if f"{c['source']} @ {c['model']}" == task["task"]]
        assert own, task["task"]
        assert_same_metrics(task["metrics"], recompute(own))
