"""Is model B really worse than model A on the same cases, or is that noise?

Paired correctness on the cases both runs share is summed up by two counts:
``a_only`` (A right, B wrong) and ``b_only`` (B right, A wrong).  McNemar's exact
test asks how likely a split at least this lopsided is if both models were
equally good: under that hypothesis each discordant case is a fair coin flip.

>>> round(mcnemar_exact(a_only=10, b_only=2), 4)
0.0386
>>> mcnemar_exact(a_only=0, b_only=0)
1.0
>>> round(mcnemar_exact(a_only=10, b_only=2, alternative="a_better"), 4)
0.0193
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal


def _binomial_tail(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exactly, in log space for large n."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    log_half_n = -n * math.log(2.0)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n
        for i in range(k + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def mcnemar_exact(
    a_only: int,
    b_only: int,
    alternative: Literal["two-sided", "a_better", "b_better"] = "two-sided",
) -> float:
    """p-value of McNemar's exact (binomial) test on the discordant pair counts.

    ``alternative="a_better"`` is the one-sided test that A beats B (B is worse).
    """
    n = a_only + b_only
    if n == 0:
        return 1.0
    if alternative == "a_better":
        return _binomial_tail(b_only, n)
    if alternative == "b_better":
        return _binomial_tail(a_only, n)
    return min(1.0, 2.0 * _binomial_tail(min(a_only, b_only), n))


@dataclass(frozen=True)
class PairedComparison:
    """Correctness of two runs on their shared cases."""

    n_shared: int
    both_right: int
    both_wrong: int
    a_only: int
    b_only: int

    @property
    def p_value(self) -> float:
        return mcnemar_exact(self.a_only, self.b_only)

    @property
    def p_b_worse(self) -> float:
        """One-sided p-value for "B gets fewer cases right than A"."""
        return mcnemar_exact(self.a_only, self.b_only, alternative="a_better")

    @property
    def p_b_better(self) -> float:
        """One-sided p-value for "B gets more cases right than A" (A is worse)."""
        return mcnemar_exact(self.a_only, self.b_only, alternative="b_better")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairedComparison:
        """The comparison :meth:`to_dict` wrote (the p-values are recomputed)."""
        return cls(**{name: int(data[name]) for name in _COUNTS})

    def b_significantly_worse(self, alpha: float) -> bool:
        """Whether B gets fewer of the shared cases right, and McNemar's one-sided p < ``alpha``.

        >>> paired([(True, False)] * 10 + [(False, True)] * 2).b_significantly_worse(0.05)
        True
        """
        return self.a_only > self.b_only and self.p_b_worse < alpha

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n_shared": self.n_shared,
            "both_right": self.both_right,
            "both_wrong": self.both_wrong,
            "a_only": self.a_only,
            "b_only": self.b_only,
            "p_value": self.p_value,
            "p_b_worse": self.p_b_worse,
            "p_b_better": self.p_b_better,
        }


_COUNTS = ("n_shared", "both_right", "both_wrong", "a_only", "b_only")


def paired(correct_pairs: Iterable[tuple[bool, bool]]) -> PairedComparison:
    """Count the four kinds of pair from (A correct, B correct) tuples.

    >>> paired([(True, True), (True, False), (False, True), (True, False)]).a_only
    2
    """
    counts = {(True, True): 0, (False, False): 0, (True, False): 0, (False, True): 0}
    for a, b in correct_pairs:
        counts[(bool(a), bool(b))] += 1
    return PairedComparison(
        n_shared=sum(counts.values()),
        both_right=counts[(True, True)],
        both_wrong=counts[(False, False)],
        a_only=counts[(True, False)],
        b_only=counts[(False, True)],
    )
