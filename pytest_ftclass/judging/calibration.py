"""Probabilistic metrics from the log-probabilities the model returned.

A response lists log-probabilities only for its top few tokens, so a case's
``logprobs`` cover some classes and say nothing of the rest.  To score them,
:func:`class_probabilities` turns them into a distribution over the label set:

1. every label gets ``exp(logprob)`` when the response listed it and 0 when it
   did not (log-probabilities of strings outside the label set are dropped);
2. each probability is raised to at least :data:`PROBABILITY_FLOOR` (1e-6), so a
   true class the model never listed costs a large but finite log loss;
3. the vector is divided by its sum, so it sums to 1 over the label set.

A case with no listed label at all has no distribution and takes no part in
these metrics (``n_with_probabilities`` says how many did).

>>> probs = class_probabilities({"spam": -0.1, "other": -3.0}, ["ham", "spam"])
>>> [round(p, 6) for p in probs]
[1e-06, 0.999999]
>>> class_probabilities({}, ["ham", "spam"]) is None
True
>>> round(log_loss([[0.8, 0.2], [0.3, 0.7]], [0, 1]), 4)
0.2899
>>> round(brier_score([[0.8, 0.2], [0.3, 0.7]], [0, 1]), 4)
0.065
>>> auroc([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
0.75

All of it is plain Python over lists, in time linear in the cases (sorting aside).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "N_BINS",
    "PROBABILITY_FLOOR",
    "ScoredProbabilities",
    "auprc",
    "auroc",
    "bins_from_confidence",
    "brier_score",
    "calibration_bins",
    "class_probabilities",
    "log_loss",
    "probability_matrix",
    "score_probabilities",
]

PROBABILITY_FLOOR = 1e-6
N_BINS = 10


def class_probabilities(
    logprobs: Mapping[str, float] | None, labels: Sequence[str]
) -> list[float] | None:
    """A probability per label (in ``labels`` order), renormalised as the module says.

    ``None`` when ``logprobs`` lists none of ``labels``.
    """
    if not logprobs or not any(label in logprobs for label in labels):
        return None
    floored = [
        max(math.exp(logprobs[label]) if label in logprobs else 0.0, PROBABILITY_FLOOR)
        for label in labels
    ]
    total = sum(floored)
    return [p / total for p in floored]


def probability_matrix(
    logprobs: Sequence[Mapping[str, float] | None], labels: Sequence[str]
) -> tuple[list[list[float]], list[bool]]:
    """:func:`class_probabilities` for many cases at once.

    Returns ``(matrix, has)``: a row per case with the renormalised
    probabilities (all 0 for a case without any listed label) and whether each
    case has a distribution.

    >>> matrix, has = probability_matrix([{"b": 0.0}, {}], ["a", "b"])
    >>> [[round(p, 6) for p in row] for row in matrix], has
    ([[1e-06, 0.999999], [0.0, 0.0]], [True, False])
    """
    rows = [class_probabilities(listed, labels) for listed in logprobs]
    return [row or [0.0] * len(labels) for row in rows], [row is not None for row in rows]


def log_loss(probabilities: Sequence[Sequence[float]], true_index: Sequence[int]) -> float | None:
    """Mean negative log-probability of the true class (natural log); ``None`` for no cases."""
    if not true_index:
        return None
    logs = [math.log(row[truth]) for row, truth in zip(probabilities, true_index, strict=True)]
    return -sum(logs) / len(logs)


def brier_score(
    probabilities: Sequence[Sequence[float]], true_index: Sequence[int]
) -> float | None:
    """Mean squared error between the probabilities and the one-hot truth.

    With two labels it is the customary binary Brier score, ``mean((p_second -
    y_second)²)``, in [0, 1]; with more it is the multiclass sum over classes,
    in [0, 2] (scikit-learn's ``brier_score_loss`` with ``scale_by_half="auto"``).

    >>> brier_score([[0.5, 0.5]], [0])
    0.25
    >>> brier_score([[0.5, 0.25, 0.25]], [0]) == 0.25 + 0.0625 + 0.0625
    True
    """
    if not true_index:
        return None
    errors = [
        sum((p - (i == truth)) ** 2 for i, p in enumerate(row))
        for row, truth in zip(probabilities, true_index, strict=True)
    ]
    score = sum(errors) / len(errors)
    return score / 2 if len(probabilities[0]) == 2 else score


def calibration_bins(
    probabilities: Sequence[Sequence[float]], true_index: Sequence[int], n_bins: int = N_BINS
) -> dict[str, Any]:
    """Expected calibration error and the reliability-diagram bins behind it.

    A case's *confidence* is its top-class probability; it is *right* when that
    top class (the first of equal maxima, in label order) is the expected one.
    Bin ``i`` of ``n_bins`` equal-width bins holds confidences with
    ``floor(confidence · n_bins) == i`` (the last bin also holds 1.0).  ECE is
    ``Σ (count_i / n) · |accuracy_i − mean_confidence_i|``.

    >>> out = calibration_bins([[0.9, 0.1], [0.2, 0.8], [0.65, 0.35]], [0, 0, 0])
    >>> round(out["ece"], 4)  # (|1 - 0.9| + |0 - 0.8| + |1 - 0.65|) / 3
    0.4167
    >>> [(b["lower"], b["count"], b["accuracy"]) for b in out["bins"] if b["count"]]
    [(0.6, 1, 1.0), (0.8, 1, 0.0), (0.9, 1, 1.0)]
    >>> calibration_bins([], [])["ece"] is None
    True
    """
    tops = [max(range(len(row)), key=row.__getitem__) for row in probabilities]
    return bins_from_confidence(
        [row[top] for row, top in zip(probabilities, tops, strict=True)],
        [top == truth for top, truth in zip(tops, true_index, strict=True)],
        n_bins,
    )


def bins_from_confidence(
    confidence: Sequence[float], right: Sequence[bool], n_bins: int = N_BINS
) -> dict[str, Any]:
    """:func:`calibration_bins` from each case's top-class confidence and whether it was right.

    >>> round(bins_from_confidence([0.9, 0.8, 0.65], [True, False, True])["ece"], 4)
    0.4167
    """
    n = len(confidence)
    counts, conf_sums, hits = [0] * n_bins, [0.0] * n_bins, [0] * n_bins
    for value, hit in zip(confidence, right, strict=True):
        i = min(int(value * n_bins), n_bins - 1)
        counts[i] += 1
        conf_sums[i] += value
        hits[i] += bool(hit)
    bins = []
    ece = 0.0
    for i in range(n_bins):
        count = counts[i]
        mean_conf = conf_sums[i] / count if count else None
        accuracy = hits[i] / count if count else None
        if count:
            ece += count / n * abs(accuracy - mean_conf)  # type: ignore[operator]
        bins.append(
            {
                "lower": round(i / n_bins, 10),
                "upper": round((i + 1) / n_bins, 10),
                "count": count,
                "mean_confidence": mean_conf,
                "accuracy": accuracy,
            }
        )
    return {"ece": ece if n else None, "n": n, "bins": bins}


@dataclass(frozen=True)
class ScoredProbabilities:
    """What the probabilistic metrics need of each case's distribution, without the matrix.

    Per case that has a distribution, in order: the probability of the true class
    (``true``), the squared error against the one-hot truth summed over every
    label (``squared_error``), the top-class probability (``top``) and whether
    the top class is the expected one (``right``).  Built by
    :func:`score_probabilities` in time and memory linear in the cases and the
    labels each lists, never cases × labels.
    """

    true: list[float]
    squared_error: list[float]
    top: list[float]
    right: list[bool]
    n_labels: int

    @property
    def log_loss(self) -> float | None:
        """As :func:`log_loss` on the dense matrix."""
        return -sum(map(math.log, self.true)) / len(self.true) if self.true else None

    @property
    def brier_score(self) -> float | None:
        """As :func:`brier_score` on the dense matrix (halved for two labels)."""
        if not self.true:
            return None
        score = sum(self.squared_error) / len(self.squared_error)
        return score / 2 if self.n_labels == 2 else score


def score_probabilities(
    logprobs: Sequence[Mapping[str, float] | None],
    labels: Sequence[str],
    true_labels: Sequence[str],
) -> ScoredProbabilities:
    """:func:`probability_matrix`'s distributions, summed up per case without the matrix.

    A label the response did not list has the floor's share, so each case costs
    only what it lists; ties for the top class go to the first label in label
    order, as ``argmax`` does on the dense matrix.

    >>> scored = score_probabilities([{"b": 0.0}, {}], ["a", "b"], ["b", "a"])
    >>> [round(p, 6) for p in scored.true], scored.right  # the second case has none
    ([0.999999], [True])
    """
    column = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    true: list[float] = []
    squared: list[float] = []
    top: list[float] = []
    right: list[bool] = []
    for listed, expected in zip(logprobs, true_labels, strict=True):
        raw: dict[int, float] = {}
        for label, value in (listed or {}).items():
            index = column.get(label)
            if index is not None:
                raw[index] = max(math.exp(value), PROBABILITY_FLOOR)
        if not raw:
            continue
        total = sum(raw.values()) + (k - len(raw)) * PROBABILITY_FLOOR
        floor = PROBABILITY_FLOOR / total
        truth = column[expected]
        p_true = raw[truth] / total if truth in raw else floor
        error = sum((p / total) ** 2 for i, p in raw.items() if i != truth)
        error += (1.0 - p_true) ** 2 + (k - len(raw) - (truth not in raw)) * floor * floor
        best = max(raw.values()) / total
        first = min(i for i, p in raw.items() if p / total == best) if best > floor else 0
        true.append(p_true)
        squared.append(error)
        top.append(best)
        right.append(first == truth)
    return ScoredProbabilities(true, squared, top, right, k)


def auroc(scores: Sequence[float], positive: Sequence[int]) -> float | None:
    """Area under the ROC curve: the chance a random positive outscores a random negative.

    Ties count one half (the Mann-Whitney statistic with average ranks).  ``None``
    unless both classes occur.
    """
    n_pos = sum(1 for y in positive if y)
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum = 0.0
    start = 0
    while start < len(order):  # each run of equal scores shares its average (1-based) rank
        end = start + 1
        while end < len(order) and scores[order[end]] == scores[order[start]]:
            end += 1
        in_run = sum(1 for i in order[start:end] if positive[i])
        rank_sum += in_run * (start + end + 1) / 2.0
        start = end
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def auprc(scores: Sequence[float], positive: Sequence[int]) -> float | None:
    """Area under the precision-recall curve as average precision.

    ``Σ (R_k − R_{k−1}) · P_k`` over the distinct score thresholds from high to
    low (no interpolation, as scikit-learn's ``average_precision_score``).
    ``None`` when there is no positive case.
    """
    n_positive = sum(positive)
    if not n_positive:
        return None
    _, last_of_threshold, tp = ranked_positives(scores, positive)
    area, found = 0.0, 0
    for last, hits in zip(last_of_threshold, tp, strict=True):
        area += (hits - found) / n_positive * (hits / (last + 1))
        found = hits
    return area


def ranked_positives(
    scores: Sequence[float], positive: Sequence[Any]
) -> tuple[list[float], list[int], list[int]]:
    """Scores from high to low, each distinct score's last index, and the positives up to it.

    What every threshold curve reads: calling positive all cases scored at
    least ``ranked[last[k]]`` finds ``tp[k]`` positives among ``last[k] + 1``.
    Equal scores keep their order (a stable sort).

    >>> _, last, tp = ranked_positives([0.9, 0.4, 0.9, 0.1], [1, 0, 0, 1])
    >>> last, tp
    ([1, 2, 3], [1, 1, 2])
    """
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranked = [float(scores[i]) for i in order]
    last: list[int] = []
    tp: list[int] = []
    found = 0
    for at, i in enumerate(order):
        found += bool(positive[i])
        if at + 1 == len(order) or ranked[at + 1] != ranked[at]:
            last.append(at)
            tp.append(found)
    return ranked, last, tp
