"""Abstaining below a confidence: how accurate the answers kept are, and how many are kept.

A team that routes low-confidence answers to people picks a threshold p: the
model's answer is kept when its confidence is at least p, and the case is
handed over otherwise.  For every threshold this module gives the *coverage*
(share of the scored cases kept) and the *accuracy* on the kept cases.

A case's confidence is the probability the model gave its own answer
(``exp`` of the answer's log-probability, :func:`~pytest_ftclass.judging.metrics.confidence`);
an answer whose log-probability the response did not list has confidence 0,
so any threshold above 0 abstains on it.  Errored cases are not scored and
take no part.

>>> out = coverage_accuracy([0.9, 0.8, 0.6, 0.6, None], [True, True, False, True, False])
>>> out["curve"]["threshold"], out["curve"]["kept"]
([0.0, 0.6, 0.8, 0.9], [5, 4, 2, 1])
>>> out["curve"]["accuracy"]
[0.6, 0.75, 1.0, 1.0]
>>> out["targets"][0]
{'accuracy_at_least': 0.9, 'threshold': 0.8, 'kept': 2, 'coverage': 0.4, 'accuracy': 1.0}

The curve has a point at every distinct confidence (each a threshold, kept
when ``confidence >= threshold``), thinned to at most :data:`MAX_POINTS` by
:func:`thin` when there are more; the table is at the fixed thresholds
:data:`THRESHOLDS`; each target of :data:`TARGETS` is the threshold, among all
distinct confidences, that keeps the most cases with an accuracy of at least
the target (``None`` when none does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_ftclass.judging.calibration import ranked_positives

__all__ = ["MAX_POINTS", "TARGETS", "THRESHOLDS", "coverage_accuracy", "thin"]

MAX_POINTS = 200
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
TARGETS = (0.9, 0.95, 0.99)


def thin(n: int, max_points: int = MAX_POINTS) -> list[int]:
    """The positions kept of ``n`` curve points: all, or ``max_points`` evenly spread.

    The first and the last are always kept: position ``round(i · (n − 1) / (max_points − 1))``.

    >>> thin(3), thin(10, 4)
    ([0, 1, 2], [0, 3, 6, 9])
    """
    if n <= max_points:
        return list(range(n))
    return sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})


def coverage_accuracy(
    confidences: Sequence[float | None], correct: Sequence[bool]
) -> dict[str, Any] | None:
    """The coverage–accuracy curve, the table at fixed thresholds and the accuracy targets.

    ``confidences`` and ``correct`` are per scored case (``None``: confidence
    not known, taken as 0).  ``None`` when there is no case.
    """
    n = len(correct)
    if not n:
        return None
    conf = [0.0 if c is None else float(c) for c in confidences]
    # for each distinct confidence, from the highest: the cases with at least that confidence
    ranked, last, hits = ranked_positives(conf, correct)
    thresholds = [ranked[i] for i in reversed(last)]
    kept = [i + 1 for i in reversed(last)]
    hits.reverse()
    if thresholds[0] > 0.0:  # "never abstain" is a point of its own: every case kept
        thresholds, kept, hits = [0.0, *thresholds], [n, *kept], [hits[0], *hits]
    accuracy = [h / k for h, k in zip(hits, kept, strict=True)]
    shown = thin(len(thresholds))
    table = []
    for threshold in THRESHOLDS:
        kept_right = [right for c, right in zip(conf, correct, strict=True) if c >= threshold]
        count = len(kept_right)
        table.append(
            {
                "threshold": threshold,
                "kept": count,
                "coverage": count / n,
                "accuracy": sum(map(bool, kept_right)) / count if count else None,
            }
        )
    targets = []
    for target in TARGETS:
        # the lowest threshold reaching it keeps the most cases
        best = next((i for i, a in enumerate(accuracy) if a >= target), None)
        if best is None:
            targets.append({"accuracy_at_least": target, "threshold": None, "kept": 0,
                            "coverage": 0.0, "accuracy": None})  # fmt: skip
            continue
        targets.append(
            {
                "accuracy_at_least": target,
                "threshold": thresholds[best],
                "kept": kept[best],
                "coverage": kept[best] / n,
                "accuracy": accuracy[best],
            }
        )
    return {
        "n": n,
        "n_without_confidence": sum(1 for c in confidences if c is None),
        "curve": {
            "threshold": [thresholds[i] for i in shown],
            "kept": [kept[i] for i in shown],
            "coverage": [kept[i] / n for i in shown],
            "accuracy": [accuracy[i] for i in shown],
        },
        "table": table,
        "targets": targets,
    }
