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

Both are pure functions of counts; numpy is imported only by the bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "Z_95",
    "bootstrap_macro_f1_interval",
    "macro_f1_from_counts",
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


def macro_f1_from_counts(tp: Any, n_predicted: Any, n_true: Any) -> Any:
    """Macro-F1 from per-class counts (numpy arrays, classes on the last axis).

    F1 of a class is ``2·tp / (n_predicted + n_true)``, 0 when both are 0
    (scikit-learn's ``zero_division=0``); the macro average is their plain mean.

    >>> import numpy as np
    >>> float(macro_f1_from_counts(np.array([3, 0]), np.array([4, 0]), np.array([3, 1])))
    0.42857142857142855
    """
    import numpy as np

    denominator = n_predicted + n_true
    f1 = np.divide(2.0 * tp, denominator, out=np.zeros(np.shape(tp)), where=denominator > 0)
    return f1.mean(axis=-1)


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
    draw over the occupied cells (``numpy.random.default_rng(seed).multinomial``,
    cells in sorted order), which costs the same for 100 or 100,000 cases, and
    time and memory grow with the occupied cells plus the classes, never their
    product.  The
    interval is the ``(1-level)/2`` and ``(1+level)/2`` percentiles (numpy's
    default linear interpolation) of the resampled macro-F1.  ``None`` when
    there are no cases or no labels.

    >>> bootstrap_macro_f1_interval([0, 0, 1, 1], [0, 0, 1, 1], 2)  # a resample may lack a class
    (0.5, 1.0)
    """
    import numpy as np

    if len(y_true) == 0 or n_labels <= 0:
        return None
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    width = int(max(true.max(), pred.max(), n_labels - 1)) + 1
    cells, counts = np.unique(true * width + pred, return_counts=True)
    cell_true, cell_pred = cells // width, cells % width
    rng = np.random.default_rng(seed)
    scores = np.empty(resamples)
    # per resample and class: true positives, predictions of the class, cases of the class,
    # summed from the drawn cell counts in chunks of resamples (memory: cells + classes)
    chunk = max(1, min(resamples, _BOOTSTRAP_CELLS // max(len(cells), n_labels)))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = rng.multinomial(len(true), counts / counts.sum(), size=size).astype(float)
        per_class = [
            _class_sums(draws, np.flatnonzero(mask), where, n_labels)
            for mask, where in (
                ((cell_true == cell_pred) & (cell_true < n_labels), cell_true),
                (cell_pred < n_labels, cell_pred),
                (cell_true < n_labels, cell_true),
            )
        ]
        scores[start : start + size] = macro_f1_from_counts(*per_class)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return float(low), float(high)


_BOOTSTRAP_CELLS = 4_000_000  # drawn cell counts held at once (32 MB of float64)


def _class_sums(draws: Any, columns: Any, classes: Any, n_labels: int) -> Any:
    """``out[r, k]``: the sum of ``draws[r, c]`` over the ``columns`` c whose class is k."""
    import numpy as np

    size = draws.shape[0]
    index = (np.arange(size)[:, None] * n_labels + classes[columns][None, :]).ravel()
    sums = np.bincount(index, weights=draws[:, columns].ravel(), minlength=size * n_labels)
    return sums.reshape(size, n_labels)
