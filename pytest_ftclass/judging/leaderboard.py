"""Many fine-tunes on the same cases: a leaderboard per case source, honest about noise.

For each case source that two or more models answered, on the cases all of them
answered (paired by case id): each model's accuracy and macro-F1 with their
95 % intervals, McNemar's exact test for every pair of models (two-sided), the
p-values corrected for the number of pairs by Holm's step-down method, the best
model (highest accuracy, then macro-F1, then the order given) and, against
each other model, whether it is significantly better: its Holm-corrected p is
below ``alpha`` and it gets more of their discordant cases right.

>>> holm([0.01, 0.04, 0.03])
[0.03, 0.06, 0.06]

>>> from pytest_ftclass.results import CaseResult
>>> def run(model, right):
...     return [CaseResult(f"c{i}", f"n{i}", "v.jsonl", model, "chat", "a", "a" if ok else "b",
...                        labels=["a", "b"]) for i, ok in enumerate(right)]
>>> boards = leaderboards({"A": run("A", [1] * 20), "B": run("B", [1] * 10 + [0] * 10),
...                        "C": run("C", [1] * 19 + [0])})
>>> board = boards[0]
>>> board["best"], [(m["model"], m["rank"]) for m in board["models"]]
('A', [('A', 1), ('C', 2), ('B', 3)])
>>> [(v["model"], v["significantly_better"]) for v in board["best_against"]]
[('C', False), ('B', True)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_ftclass.judging.significance import mcnemar_exact, paired
from pytest_ftclass.results import CaseResult

__all__ = ["DEFAULT_ALPHA", "holm", "leaderboards"]

DEFAULT_ALPHA = 0.05


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    The i-th smallest of m p-values is multiplied by ``m − i + 1`` (i from 1),
    each adjusted value is at least the one before it in that order, and none
    exceeds 1.  It controls the family-wise error rate under any dependence.

    >>> holm([0.5]), holm([])
    ([0.5], [])
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def leaderboards(
    runs: Mapping[str, Sequence[CaseResult]],
    *,
    alpha: float = DEFAULT_ALPHA,
    metrics_of: Callable[[Sequence[CaseResult]], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One leaderboard per case source two or more of ``runs`` (model → results) answered.

    Sources in first-seen order; within a board the models are listed by rank
    (ties keep the order of ``runs``).  ``metrics_of`` computes a model's
    metrics (:func:`~pytest_ftclass.judging.metrics.classification_metrics` by
    default).
    """
    from pytest_ftclass.judging.metrics import classification_metrics

    compute = metrics_of or classification_metrics

    by_model = {
        model: {(r.source, r.case_id): r for r in results} for model, results in runs.items()
    }
    sources = list(dict.fromkeys(r.source for results in runs.values() for r in results))
    boards = []
    for source in sources:
        models = [m for m in runs if any(key[0] == source for key in by_model[m])]
        if len(models) < 2:
            continue
        shared = [k for k in by_model[models[0]] if k[0] == source]
        for model in models[1:]:
            shared = [k for k in shared if k in by_model[model]]
        own = {m: [by_model[m][k] for k in shared] for m in models}
        metrics = {m: compute(own[m]) for m in models}
        pairs: list[dict[str, Any]] = []
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                counts = paired((x.correct, y.correct) for x, y in zip(own[a], own[b], strict=True))
                pairs.append(
                    {"model_a": a, "model_b": b, "a_only": counts.a_only, "b_only": counts.b_only,
                     "p_value": mcnemar_exact(counts.a_only, counts.b_only)}
                )  # fmt: skip
        for pair, adjusted in zip(pairs, holm([p["p_value"] for p in pairs]), strict=True):
            pair["p_holm"] = adjusted
        ranked = sorted(models, key=lambda m: _standing(metrics[m]), reverse=True)
        best = ranked[0]
        boards.append(
            {
                "source": source,
                "n_shared": len(shared),
                "alpha": alpha,
                "models": [
                    {"model": m, "rank": rank, **_numbers(metrics[m])}
                    for rank, m in enumerate(ranked, start=1)
                ],
                "pairs": pairs,
                "best": best if metrics[best]["accuracy"] is not None else None,
                "best_against": [
                    _against(best, other, pairs, alpha) for other in ranked if other != best
                ],
            }
        )
    return boards


def _standing(metrics: Mapping[str, Any]) -> tuple[float, float]:
    return (metrics["accuracy"] or -1.0, metrics["macro_f1"] or -1.0)


def _numbers(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: metrics[key]
        for key in ("n_cases", "n_scored", "n_errors", "n_correct", "accuracy", "accuracy_ci",
                    "macro_f1", "macro_f1_ci")
    }  # fmt: skip


def _against(best: str, other: str, pairs: Sequence[Mapping[str, Any]], alpha: float) -> dict:
    pair = next(p for p in pairs if {p["model_a"], p["model_b"]} == {best, other})
    wins = pair["a_only"] if pair["model_a"] == best else pair["b_only"]
    losses = pair["b_only"] if pair["model_a"] == best else pair["a_only"]
    return {
        "model": other,
        "best_only": wins,
        "other_only": losses,
        "p_value": pair["p_value"],
        "p_holm": pair["p_holm"],
        "significantly_better": wins > losses and pair["p_holm"] < alpha,
    }
