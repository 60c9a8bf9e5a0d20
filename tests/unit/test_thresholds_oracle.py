"""Abstention and binary curves, recomputed from the cases: by hand and with scikit-learn."""

from __future__ import annotations

import math
import random

import pytest

from pytest_ftclass.judging.abstention import MAX_POINTS, TARGETS, THRESHOLDS
from pytest_ftclass.judging.metrics import classification_metrics
from pytest_ftclass.results import CaseResult


def cases(n: int, labels: list[str], *, seed: int, distinct: bool = True) -> list[CaseResult]:
    """Random answers; confidences continuous (``distinct``) or from a few values (ties)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        expected = rng.choice(labels)
        predicted = expected if rng.random() < 0.7 else rng.choice(labels)
        p = rng.uniform(0.3, 1.0) if distinct else rng.choice([0.4, 0.6, 0.8, 0.95, 1.0])
        logprobs = {predicted: math.log(p)}
        other = rng.choice([x for x in labels if x != predicted])
        logprobs[other] = math.log((1 - p) * rng.uniform(0.1, 0.9) + 1e-9)
        if i % 23 == 0:
            logprobs = {}  # no log-probs: confidence unknown
        result = CaseResult(f"c{i}", f"n{i}", "v.jsonl", "m", "chat", expected, predicted,
                            logprobs=logprobs, labels=labels)  # fmt: skip
        if i % 31 == 0:
            result.predicted, result.error = None, "HTTP 500"
        out.append(result)
    return out


def answer_confidence(case: CaseResult) -> float:
    """The probability the model gave its answer, 0 when not listed (the documented rule)."""
    value = case.logprobs.get(str(case.predicted))
    return 0.0 if value is None else math.exp(value)


@pytest.mark.parametrize(("n", "distinct"), [(150, False), (150, True), (900, True)])
def test_coverage_accuracy_curve_is_what_the_cases_say(n: int, distinct: bool) -> None:
    results = cases(n, ["a", "b", "c"], seed=n, distinct=distinct)
    abstention = classification_metrics(results)["abstention"]
    scored = [r for r in results if r.error is None]
    conf = [answer_confidence(r) for r in scored]
    right = [r.expected == r.predicted for r in scored]

    def kept_at(threshold: float) -> tuple[int, float | None]:
        kept = [ok for c, ok in zip(conf, right, strict=True) if c >= threshold]
        return len(kept), (sum(kept) / len(kept) if kept else None)

    assert abstention["n"] == len(scored)
    assert abstention["n_without_confidence"] == sum(1 for r in scored if not r.logprobs)
    curve = abstention["curve"]
    distinct_thresholds = sorted({0.0, *conf})
    if len(distinct_thresholds) <= MAX_POINTS:
        assert curve["threshold"] == distinct_thresholds
    else:  # thinned: evenly spread over the distinct confidences, both ends kept
        assert len(curve["threshold"]) == MAX_POINTS
        assert set(curve["threshold"]) <= set(distinct_thresholds)
        assert curve["threshold"][0] == 0.0 and curve["threshold"][-1] == max(conf)
    for threshold, kept, coverage, accuracy in zip(
        curve["threshold"], curve["kept"], curve["coverage"], curve["accuracy"], strict=True
    ):
        assert (kept, accuracy) == pytest.approx(kept_at(threshold))
        assert coverage == pytest.approx(kept / len(scored))
    assert [row["threshold"] for row in abstention["table"]] == list(THRESHOLDS)
    for row in abstention["table"]:
        assert (row["kept"], row["accuracy"]) == pytest.approx(kept_at(row["threshold"]))
    # each target: of all thresholds reaching it, the one keeping the most cases
    for target in abstention["targets"]:
        reaching = [(kept_at(t)[0], t) for t in distinct_thresholds
                    if (kept_at(t)[1] or 0.0) >= target["accuracy_at_least"]]  # fmt: skip
        if not reaching:
            assert target["threshold"] is None
            continue
        most, _ = max(reaching)
        assert target["kept"] == most
        assert kept_at(target["threshold"]) == pytest.approx((most, target["accuracy"]))
    assert [t["accuracy_at_least"] for t in abstention["targets"]] == list(TARGETS)


@pytest.mark.parametrize("distinct", [True, False])
def test_roc_and_precision_recall_points_match_scikit_learn(distinct: bool) -> None:
    from sklearn import metrics as sk

    results = cases(400, ["ham", "spam"], seed=7, distinct=distinct)
    binary = classification_metrics(results)["binary"]
    curves = binary["curves"]
    with_probs = [r for r in results if r.error is None and r.logprobs]
    # the renormalised probability of spam, as the calibration module documents it
    scores = []
    for r in with_probs:
        raw = {k: max(math.exp(r.logprobs[k]), 1e-6) if k in r.logprobs else 1e-6
               for k in ("ham", "spam")}  # fmt: skip
        scores.append(raw["spam"] / (raw["ham"] + raw["spam"]))
    truth = [int(r.expected == "spam") for r in with_probs]
    fpr, tpr, thresholds = sk.roc_curve(truth, scores, drop_intermediate=False)
    # scikit-learn starts at (0, 0) with an infinite threshold; ours lists each distinct score,
    # thinned to at most MAX_POINTS evenly spread (the first and the last kept)
    roc = {t: (f, r) for t, f, r in zip(thresholds[1:], fpr[1:], tpr[1:], strict=True)}
    assert len(curves["threshold"]) == min(len(roc), MAX_POINTS)
    assert curves["threshold"][0] == max(roc) and curves["threshold"][-1] == min(roc)
    assert all(t in roc for t in curves["threshold"])
    assert curves["fpr"] == pytest.approx([roc[t][0] for t in curves["threshold"]])
    assert curves["tpr"] == pytest.approx([roc[t][1] for t in curves["threshold"]])
    precision, _, pr_thresholds = sk.precision_recall_curve(truth, scores)
    by_threshold = dict(zip(pr_thresholds.tolist(), precision[:-1].tolist(), strict=True))
    assert curves["precision"] == pytest.approx([by_threshold[t] for t in curves["threshold"]])
    assert (curves["n_positive"], curves["n_negative"]) == (sum(truth), len(truth) - sum(truth))
    answered = [int(r.predicted == "spam") for r in with_probs]
    (tn, fp), (fn, tp) = sk.confusion_matrix(truth, answered).tolist()
    assert curves["operating_point"] == pytest.approx(
        {"tpr": tp / (tp + fn), "fpr": fp / (fp + tn), "precision": tp / (tp + fp)}
    )


def test_a_multiclass_task_has_no_binary_curves_and_no_cases_no_abstention() -> None:
    metrics = classification_metrics(cases(50, ["a", "b", "c"], seed=1))
    assert metrics["binary"] is None and metrics["abstention"]["n"] > 0
    assert classification_metrics([])["abstention"] is None
