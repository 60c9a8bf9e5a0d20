"""Binomial and multinomial draws from a seeded :class:`random.Random`, without numpy.

What the bootstrap of :mod:`pytest_ftclass.judging.intervals` resamples with: a
resample of n cases is one multinomial draw over the occupied cells of the
confusion matrix, made of one binomial draw per cell.

>>> import random
>>> rng = random.Random(7)
>>> counts = multinomial(rng, 100, [60, 30, 10])
>>> sum(counts), len(counts)
(100, 3)
>>> binomial(rng, 10, 0.0), binomial(rng, 10, 1.0)
(0, 10)

A binomial draw with a small mean (``n·p < 10``) walks the distribution from 0
(inversion); a larger one uses Hörmann's transformed rejection with squeeze
(BTRS, 1993), whose cost does not grow with n.  Both are exact.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

__all__ = ["binomial", "multinomial"]

_INVERSION_MEAN = 10.0  # below this n·p, inversion is the faster of the two


def binomial(rng: random.Random, n: int, p: float) -> int:
    """A draw of the number of successes in ``n`` trials of probability ``p``.

    >>> import random
    >>> draws = [binomial(random.Random(s), 1000, 0.3) for s in range(200)]
    >>> 280 < sum(draws) / len(draws) < 320
    True
    """
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    if n * p < _INVERSION_MEAN:
        return _by_inversion(rng, n, p)
    return _by_rejection(rng, n, p)


def multinomial(rng: random.Random, n: int, weights: Sequence[int]) -> list[int]:
    """How many of ``n`` draws fall in each category, drawn with probability ``weight / total``.

    The weights are whole counts (the cells of a confusion matrix), so the
    remaining total is exact.  Each category takes a binomial share of the
    draws left, given the categories before it; the last takes the rest.

    >>> import random
    >>> multinomial(random.Random(1), 5, [0, 3, 0])
    [0, 5, 0]
    """
    left, total = n, sum(weights)
    counts = []
    for weight in weights:
        drawn = left if weight >= total else binomial(rng, left, weight / total)
        counts.append(drawn)
        left -= drawn
        total -= weight
    return counts


def _by_inversion(rng: random.Random, n: int, p: float) -> int:
    """The smallest x whose cumulative probability reaches a uniform draw (small n·p)."""
    q = 1.0 - p
    ratio = p / q
    step = (n + 1) * ratio
    mass = q**n  # P(X = 0); at least e^-10 or so as n·p < 10
    u = rng.random()
    x = 0
    while u > mass and x < n:
        u -= mass
        x += 1
        mass *= step / x - ratio  # P(X = x) from P(X = x - 1)
    return x


def _by_rejection(rng: random.Random, n: int, p: float) -> int:
    """BTRS for ``p <= 0.5`` and ``n·p >= 10``: a hat around the mode, most draws taken at once."""
    q = 1.0 - p
    spread = math.sqrt(n * p * q)
    b = 1.15 + 2.53 * spread
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    alpha = (2.83 + 5.1 / b) * spread
    accept_at_once = 0.92 - 4.2 / b
    mode = math.floor((n + 1) * p)
    log_odds = math.log(p / q)
    at_mode = math.lgamma(mode + 1) + math.lgamma(n - mode + 1)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        if us >= 0.07 and v <= accept_at_once:
            return k
        v = math.log(v * alpha / (a / (us * us) + b))
        if v <= at_mode - math.lgamma(k + 1) - math.lgamma(n - k + 1) + (k - mode) * log_odds:
            return k
