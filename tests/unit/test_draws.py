"""The binomial and multinomial draws the bootstrap resamples with, against exact laws."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from pytest_ftclass.judging.draws import binomial, multinomial

DRAWS = 40_000


def _pmf(n: int, p: float, k: int) -> float:
    log = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return math.exp(log + k * math.log(p) + (n - k) * math.log1p(-p))


@pytest.mark.parametrize(
    ("n", "p"),
    [
        (12, 0.25),  # n·p < 10: inversion
        (10_000, 0.0004),  # inversion with a large n
        (1_000, 0.3),  # rejection (BTRS)
        (50_000, 0.45),  # rejection, a wide spread
        (40, 0.9),  # p > 1/2: drawn as n minus a draw at 1 - p
    ],
)
def test_binomial_draws_follow_the_binomial_law(n: int, p: float) -> None:
    rng = random.Random(f"{n}:{p}")
    draws = [binomial(rng, n, p) for _ in range(DRAWS)]
    assert all(0 <= k <= n for k in draws)
    mean = sum(draws) / DRAWS
    variance = sum((k - mean) ** 2 for k in draws) / DRAWS
    sd = math.sqrt(n * p * (1 - p))
    assert abs(mean - n * p) < 5 * sd / math.sqrt(DRAWS)
    assert variance == pytest.approx(sd * sd, rel=0.05)
    # the share of draws at each value against the exact probability, over the likely values
    counts = Counter(draws)
    centre = round(n * p)
    for k in range(max(0, centre - round(2 * sd)), min(n, centre + round(2 * sd)) + 1):
        expected = _pmf(n, p, k)
        assert abs(counts[k] / DRAWS - expected) < 5 * math.sqrt(expected / DRAWS) + 1e-4, k


def test_binomial_edges() -> None:
    rng = random.Random(0)
    assert [binomial(rng, 0, 0.5), binomial(rng, 7, 0.0), binomial(rng, 7, 1.0)] == [0, 0, 7]


def test_multinomial_draws_sum_to_n_with_the_expected_shares() -> None:
    rng = random.Random(3)
    weights = [500, 300, 150, 40, 9, 1, 0]
    total = sum(weights)
    sums = [0] * len(weights)
    for _ in range(2_000):
        counts = multinomial(rng, 1_000, weights)
        assert sum(counts) == 1_000 and counts[-1] == 0
        sums = [s + c for s, c in zip(sums, counts, strict=True)]
    for weight, summed in zip(weights, sums, strict=True):
        expected = 2_000 * 1_000 * weight / total
        assert abs(summed - expected) <= 5 * math.sqrt(expected) + 1e-9


def test_a_seed_gives_the_same_draws() -> None:
    first = multinomial(random.Random(11), 10_000, [7000, 2990, 10])
    assert first == multinomial(random.Random(11), 10_000, [7000, 2990, 10])
