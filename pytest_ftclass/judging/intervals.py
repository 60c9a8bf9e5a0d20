"""Confidence intervals for the headline numbers: Wilson for accuracy, bootstrap for macro-F1.

>>> [round(x, 4) for x in wilson_interval(7, 10)]
[0.3968, 0.8922]
>>> wilson_interval(0, 0) is None
True
>>> lo, hi = bootstrap_macro_f1_interval([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], 3)
>>> 0.0 <= lo <= hi <= 1.0
True
>>> bootstrap_macro_f1_interval([], [], 3) is None
True

Both are pure functions of counts; numpy is imported only by a bootstrap over many cells.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "PYTHON_CELLS",
    "Z_95",
    "bootstrap_macro_f1_interval",
    "f1_scores",
    "macro_f1_from_counts",
    "macro_f1_interval_of_cells",
    "percentile",
    "wilson_interval",
]

Z_95 = 1.959963984540054  # the 97.5 % quantile of the standard normal
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20240601


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval for a proportion ``successes / trials`` (95 % by default).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 %
    and 100 %.  ``None`` when there are no trials.

    >>> wilson_interval(10, 10)[1]
    1.0
    >>> round(wilson_interval(0, 5)[1], 4)
    0.4345
    """
    if trials <= 0:
        return None
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def f1_scores(
    tp: Sequence[float], n_predicted: Sequence[float], n_true: Sequence[float]
) -> list[float]:
    """F1 of each class from its counts: ``2·tp / (n_predicted + n_true)``, 0 when both are 0.

    As scikit-learn's ``zero_division=0``.

    >>> f1_scores([3, 0], [4, 0], [3, 1])
    [0.8571428571428571, 0.0]
    """
    return [
        2.0 * right / (said + seen) if said + seen else 0.0
        for right, said, seen in zip(tp, n_predicted, n_true, strict=True)
    ]


def macro_f1_from_counts(
    tp: Sequence[float], n_predicted: Sequence[float], n_true: Sequence[float]
) -> float:
    """Macro-F1 from per-class counts: the plain mean of :func:`f1_scores`.

    >>> macro_f1_from_counts([3, 0], [4, 0], [3, 1])
    0.42857142857142855
    """
    scores = f1_scores(tp, n_predicted, n_true)
    return sum(scores) / len(scores)


def bootstrap_macro_f1_interval(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    n_labels: int,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of macro-F1, reproducible for a given ``seed``.

    ``y_true`` and ``y_pred`` are class indices; ``0 .. n_labels-1`` are the label
    set (the classes macro-F1 averages over), larger indices are predictions
    outside it.  Resampling the n cases with replacement only changes how many
    cases fall in each (expected, predicted) cell of the confusion matrix, and
    those counts follow a multinomial law; so each resample is one multinomial
    draw over the occupied cells (from the most cases to the fewest), which
    costs the same for 100 or 100,000 cases: time grows with the occupied
    cells.  The interval is the ``(1-level)/2`` and ``(1+level)/2`` percentiles
    (:func:`percentile`) of the resampled macro-F1.  ``None`` when there are no
    cases or no labels.

    Up to :data:`PYTHON_CELLS` occupied cells, plain Python draws them
    (:func:`~pytest_ftclass.judging.draws.multinomial`, ``random.Random(seed)``),
    so a run of a few classes never imports numpy (15 MiB of memory).  With
    more, numpy does (``numpy.random.default_rng(seed).multinomial``), 5 to
    10 times faster; the two draw different resamples from the same seed.

    >>> bootstrap_macro_f1_interval([0, 0, 1, 1], [0, 0, 1, 1], 2)  # a resample may lack a class
    (0.5, 1.0)
    """
    occupied = Counter(zip(y_true, y_pred, strict=True))
    return macro_f1_interval_of_cells(
        occupied, n_labels, resamples=resamples, seed=seed, level=level
    )


def macro_f1_interval_of_cells(
    occupied: Mapping[tuple[int, int], int],
    n_labels: int,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """:func:`bootstrap_macro_f1_interval` from the cases in each ``(expected, predicted)`` cell.

    >>> macro_f1_interval_of_cells({(0, 0): 2, (1, 1): 2}, 2)
    (0.5, 1.0)
    """
    if not any(occupied.values()) or n_labels <= 0:
        return None
    cells = sorted((c for c in occupied if occupied[c]), key=lambda c: (-occupied[c], c))
    weights = [occupied[cell] for cell in cells]
    draw = _python_resamples if len(cells) <= PYTHON_CELLS else _numpy_resamples
    scores = sorted(draw(cells, weights, n_labels, resamples, seed))
    tail = (1.0 - level) / 2 * 100
    return percentile(scores, tail), percentile(scores, 100 - tail)


PYTHON_CELLS = 256  # occupied cells drawn in plain Python; about 0.35 s for 1,000 resamples

Cells = Sequence[tuple[int, int]]


def _python_resamples(
    cells: Cells, weights: Sequence[int], n_labels: int, resamples: int, seed: int
) -> list[float]:
    """The macro-F1 of each resample, its cells drawn by :mod:`~pytest_ftclass.judging.draws`."""
    from pytest_ftclass.judging.draws import multinomial

    n = sum(weights)
    rng = random.Random(seed)
    scores = []
    for _ in range(resamples):
        tp, said, seen = [0] * n_labels, [0] * n_labels, [0] * n_labels
        drawn_cells = multinomial(rng, n, weights)
        for (true, predicted), drawn in zip(cells, drawn_cells, strict=True):
            if not drawn:
                continue
            if true == predicted < n_labels:
                tp[true] += drawn
            if predicted < n_labels:
                said[predicted] += drawn
            if true < n_labels:
                seen[true] += drawn
        scores.append(macro_f1_from_counts(tp, said, seen))
    return scores


_NUMPY_CHUNK = 1_000_000  # drawn cell counts held at once (8 MB of float64)


def _numpy_resamples(
    cells: Cells, weights: Sequence[int], n_labels: int, resamples: int, seed: int
) -> list[float]:
    """The macro-F1 of each resample, drawn by numpy in chunks of resamples.

    Per resample and class it sums the true positives, the predictions and the
    cases from the drawn cell counts; memory grows with the cells plus the
    classes, never their product.
    """
    import numpy as np

    cell_true = np.array([true for true, _ in cells], dtype=np.int64)
    cell_pred = np.array([predicted for _, predicted in cells], dtype=np.int64)
    columns = [  # the cells adding to each class's true positives, predictions and cases
        (np.flatnonzero(mask), where)
        for mask, where in (
            ((cell_true == cell_pred) & (cell_true < n_labels), cell_true),
            (cell_pred < n_labels, cell_pred),
            (cell_true < n_labels, cell_true),
        )
    ]
    counts = np.array(weights, dtype=float)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _NUMPY_CHUNK // max(len(cells), n_labels)))
    scores: list[float] = []
    for start in range(0, resamples, chunk):
        draws = rng.multinomial(
            int(counts.sum()), counts / counts.sum(), size=min(chunk, resamples - start)
        )
        scores.extend(_chunk_macro_f1(draws.astype(float), columns, n_labels))
    return scores


def _chunk_macro_f1(draws: Any, columns: Any, n_labels: int) -> list[float]:
    """The macro-F1 of each row of drawn cell counts (its arrays freed on return)."""
    import numpy as np

    tp, said, seen = (_class_sums(draws, cells, classes, n_labels) for cells, classes in columns)
    both = said + seen  # f1_scores, on arrays
    f1 = np.divide(2.0 * tp, both, out=np.zeros(both.shape), where=both > 0)
    return [float(score) for score in f1.mean(axis=1)]


def _class_sums(draws: Any, columns: Any, classes: Any, n_labels: int) -> Any:
    """``out[r, k]``: the sum of ``draws[r, c]`` over the ``columns`` c whose class is k."""
    import numpy as np

    size = draws.shape[0]
    index = (np.arange(size)[:, None] * n_labels + classes[columns][None, :]).ravel()
    sums = np.bincount(index, weights=draws[:, columns].ravel(), minlength=size * n_labels)
    return sums.reshape(size, n_labels)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of sorted values, interpolated linearly between neighbours.

    numpy's default (``method="linear"``): position ``q/100 · (n − 1)``.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([1.0, 2.0, 3.0, 4.0], 75)
    (2.5, 3.25)
    """
    position = q / 100 * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
