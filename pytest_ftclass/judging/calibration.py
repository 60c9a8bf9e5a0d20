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

numpy is imported inside the functions that need it.
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
) -> tuple[Any, Any]:
    """:func:`class_probabilities` for many cases at once, as numpy arrays.

    Returns ``(matrix, has)``: ``matrix`` is ``(n_cases, n_labels)`` with the
    renormalised probabilities (rows of cases without any listed label are left
    at 0) and ``has`` a boolean mask of the cases that have a distribution.

    >>> matrix, has = probability_matrix([{"b": 0.0}, {}], ["a", "b"])
    >>> matrix.round(6).tolist(), has.tolist()
    ([[1e-06, 0.999999], [0.0, 0.0]], [True, False])
    """
    import numpy as np

    column = {label: i for i, label in enumerate(labels)}
    raw = np.zeros((len(logprobs), len(labels)))
    has = np.zeros(len(logprobs), dtype=bool)
    for row, listed in enumerate(logprobs):
        for label, value in (listed or {}).items():
            k = column.get(label)
            if k is not None:
                raw[row, k] = math.exp(value)
                has[row] = True
    floored = np.maximum(raw, PROBABILITY_FLOOR)
    matrix = np.where(has[:, None], floored / floored.sum(axis=1, keepdims=True), 0.0)
    return matrix, has


def log_loss(probabilities: Any, true_index: Any) -> float | None:
    """Mean negative log-probability of the true class (natural log); ``None`` for no cases."""
    import numpy as np

    p = np.asarray(probabilities, dtype=float)
    truth = np.asarray(true_index, dtype=int)
    if not len(truth):
        return None
    return float(-np.log(p[np.arange(len(truth)), truth]).mean())


def brier_score(probabilities: Any, true_index: Any) -> float | None:
    """Mean squared error between the probabilities and the one-hot truth.

    With two labels it is the customary binary Brier score, ``mean((p_second -
    y_second)²)``, in [0, 1]; with more it is the multiclass sum over classes,
    in [0, 2] (scikit-learn's ``brier_score_loss`` with ``scale_by_half="auto"``).

    >>> brier_score([[0.5, 0.5]], [0])
    0.25
    >>> brier_score([[0.5, 0.25, 0.25]], [0]) == 0.25 + 0.0625 + 0.0625
    True
    """
    import numpy as np

    p = np.asarray(probabilities, dtype=float)
    truth = np.asarray(true_index, dtype=int)
    if not len(truth):
        return None
    onehot = np.zeros_like(p)
    onehot[np.arange(len(truth)), truth] = 1.0
    score = float(((p - onehot) ** 2).sum(axis=1).mean())
    return score / 2 if p.shape[1] == 2 else score


def calibration_bins(probabilities: Any, true_index: Any, n_bins: int = N_BINS) -> dict[str, Any]:
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
    import numpy as np

    truth = np.asarray(true_index, dtype=int)
    n = len(truth)
    p = np.asarray(probabilities, dtype=float).reshape(n, -1) if n else np.zeros((0, 1))
    top = p.argmax(axis=1)
    return bins_from_confidence(p[np.arange(n), top], top == truth, n_bins)


def bins_from_confidence(confidence: Any, right: Any, n_bins: int = N_BINS) -> dict[str, Any]:
    """:func:`calibration_bins` from each case's top-class confidence and whether it was right.

    >>> round(bins_from_confidence([0.9, 0.8, 0.65], [True, False, True])["ece"], 4)
    0.4167
    """
    import numpy as np

    conf = np.asarray(confidence, dtype=float)
    n = len(conf)
    index = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    conf_sums = np.bincount(index, weights=conf, minlength=n_bins)
    hits = np.bincount(index, weights=np.asarray(right, dtype=float), minlength=n_bins)
    bins = []
    ece = 0.0
    for i in range(n_bins):
        count = int(counts[i])
        mean_conf = float(conf_sums[i] / count) if count else None
        accuracy = float(hits[i] / count) if count else None
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
    return {"ece": float(ece) if n else None, "n": n, "bins": bins}


@dataclass(frozen=True)
class ScoredProbabilities:
    """What the probabilistic metrics need of each case's distribution, without the matrix.

    Per case that has a distribution (``has``): the probability of the true class
    (``true``), the squared error against the one-hot truth summed over every
    label (``squared_error``), the top-class probability (``top``) and whether
    the top class is the expected one (``right``).  Built by
    :func:`score_probabilities` in time and memory linear in the cases and the
    labels each lists, never cases × labels.
    """

    has: Any
    true: Any
    squared_error: Any
    top: Any
    right: Any
    n_labels: int

    @property
    def log_loss(self) -> float | None:
        """As :func:`log_loss` on the dense matrix."""
        import numpy as np

        return float(-np.log(self.true).mean()) if len(self.true) else None

    @property
    def brier_score(self) -> float | None:
        """As :func:`brier_score` on the dense matrix (halved for two labels)."""
        if not len(self.true):
            return None
        score = float(self.squared_error.mean())
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
    >>> scored.has.tolist(), scored.true.round(6).tolist(), scored.right.tolist()
    ([True, False], [0.999999], [True])
    """
    import numpy as np

    column = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    has = np.zeros(len(logprobs), dtype=bool)
    true, squared, top, right = [], [], [], []
    for row, (listed, expected) in enumerate(zip(logprobs, true_labels, strict=True)):
        raw: dict[int, float] = {}
        for label, value in (listed or {}).items():
            index = column.get(label)
            if index is not None:
                raw[index] = max(math.exp(value), PROBABILITY_FLOOR)
        if not raw:
            continue
        has[row] = True
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
    return ScoredProbabilities(
        has, np.array(true), np.array(squared), np.array(top), np.array(right, dtype=bool), k
    )


def auroc(scores: Sequence[float], positive: Sequence[int]) -> float | None:
    """Area under the ROC curve: the chance a random positive outscores a random negative.

    Ties count one half (the Mann-Whitney statistic with average ranks).  ``None``
    unless both classes occur.
    """
    import numpy as np

    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return None
    s = np.asarray(scores, dtype=float)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_scores = s[order]
    # average rank (1-based) of each run of equal scores
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(s)]
    run_rank = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(run_rank, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auprc(scores: Sequence[float], positive: Sequence[int]) -> float | None:
    """Area under the precision-recall curve as average precision.

    ``Σ (R_k − R_{k−1}) · P_k`` over the distinct score thresholds from high to
    low (no interpolation, as scikit-learn's ``average_precision_score``).
    ``None`` when there is no positive case.
    """
    import numpy as np

    n_positive = sum(positive)
    if not n_positive:
        return None
    _, last_of_threshold, tp = ranked_positives(scores, positive)
    predicted = last_of_threshold + 1
    precision = tp / predicted
    recall = tp / n_positive
    previous = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - previous) * precision))


def ranked_positives(scores: Any, positive: Any) -> tuple[Any, Any, Any]:
    """Scores from high to low, each distinct score's last index, and the positives up to it.

    ``scores`` and ``positive`` are sequences or arrays.  What every threshold
    curve reads: calling positive all cases scored at least ``sorted[last[k]]``
    finds ``tp[k]`` positives among ``last[k] + 1``.

    >>> _, last, tp = ranked_positives([0.9, 0.4, 0.9, 0.1], [1, 0, 0, 1])
    >>> last.tolist(), tp.tolist()
    ([1, 2, 3], [1.0, 1.0, 2.0])
    """
    import numpy as np

    s = np.asarray(scores, dtype=float)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], np.asarray(positive, dtype=float)[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    return s, last, np.cumsum(y)[last]
