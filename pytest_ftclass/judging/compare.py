"""Fine-tunes side by side on the same cases.

Cases are paired by case source and case id.  :func:`compare_results` compares
two runs, A and B: for every source both answered, both models' metrics with
the deltas B − A, McNemar's exact test on paired correctness, the flip lists
(cases A got right and B wrong, and the reverse), per-class F1 deltas, both
confusion matrices, and latency (answers asked live only) and token usage
(``as_recorded`` when some were replayed).  Cases only one run has are listed,
never dropped silently.  :func:`compare_runs` compares several: each against
the first (the reference: the model under test, or the first report), and all
of them together in a leaderboard per source
(:mod:`pytest_ftclass.judging.leaderboard`).

>>> from pytest_ftclass.results import CaseResult
>>> def r(model, i, predicted):
...     return CaseResult(f"c{i}", f"t::c{i}", "v.jsonl", model, "chat", "a", predicted,
...                       labels=["a", "b"])
>>> comparison = compare_results([r("A", 0, "a"), r("A", 1, "a")], [r("B", 0, "a"), r("B", 1, "b")])
>>> source = comparison["sources"][0]
>>> source["paired"]["a_only"], source["delta"]["accuracy"]
(1, -0.5)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_ftclass.judging.leaderboard import DEFAULT_ALPHA, leaderboards
from pytest_ftclass.judging.metrics import classification_metrics, remembered_metrics
from pytest_ftclass.judging.significance import paired
from pytest_ftclass.results import CaseResult

SCHEMA = "ftclass-comparison/2"
HEADLINE = ("accuracy", "macro_f1", "weighted_f1")


def compare_runs(
    runs: Mapping[str, Sequence[CaseResult]], *, alpha: float = DEFAULT_ALPHA
) -> dict[str, Any]:
    """Every run against the first (``pairs``), and all of them in ``leaderboards``.

    ``runs`` maps a model (or report) name to its results, the reference first.
    Schema ``ftclass-comparison/2``: ``{"schema", "reference", "models",
    "alpha", "pairs": [compare_results(reference, other), ...], "leaderboards"}``.

    >>> from pytest_ftclass.results import CaseResult
    >>> def r(model, i, predicted):
    ...     return CaseResult(f"c{i}", f"t::c{i}", "v.jsonl", model, "chat", "a", predicted)
    >>> out = compare_runs({"A": [r("A", 0, "a")], "B": [r("B", 0, "b")], "C": [r("C", 0, "a")]})
    >>> [(p["model_a"], p["model_b"]) for p in out["pairs"]], out["leaderboards"][0]["best"]
    ([('A', 'B'), ('A', 'C')], 'A')
    """
    names = list(runs)
    reference = names[0] if names else ""
    metrics_of = remembered_metrics()  # each model's, once per set of cases
    return {
        "schema": SCHEMA,
        "reference": reference,
        "models": names,
        "alpha": alpha,
        "pairs": [
            compare_results(
                runs[reference], runs[name], name_a=reference, name_b=name, metrics_of=metrics_of
            )
            for name in names[1:]
        ],
        "leaderboards": leaderboards(runs, alpha=alpha, metrics_of=metrics_of),
    }


def compare_results(
    results_a: Sequence[CaseResult],
    results_b: Sequence[CaseResult],
    *,
    name_a: str | None = None,
    name_b: str | None = None,
    metrics_of: Callable[[Sequence[CaseResult]], dict[str, Any]] = classification_metrics,
) -> dict[str, Any]:
    """The comparison of two runs' per-case results (see the module docstring)."""
    name_a = name_a or _model_name(results_a, "A")
    name_b = name_b or _model_name(results_b, "B")
    by_a = {(r.source, r.case_id): r for r in results_a}
    by_b = {(r.source, r.case_id): r for r in results_b}
    sources = list(dict.fromkeys([r.source for r in results_a] + [r.source for r in results_b]))
    compared = []
    for source in sources:
        keys = [k for k in by_a if k[0] == source and k in by_b]
        if not keys:
            continue
        a = [by_a[k] for k in keys]
        b = [by_b[k] for k in keys]
        metrics_a, metrics_b = metrics_of(a), metrics_of(b)
        comparison = paired((x.correct, y.correct) for x, y in zip(a, b, strict=True))
        compared.append(
            {
                "source": source,
                "n_shared": len(keys),
                "metrics_a": metrics_a,
                "metrics_b": metrics_b,
                "delta": {m: _delta(metrics_a.get(m), metrics_b.get(m)) for m in HEADLINE},
                "per_class_f1_delta": _per_class_delta(metrics_a, metrics_b),
                "paired": comparison.to_dict(),
                "flips_a_right": [
                    _flip(x, y) for x, y in zip(a, b, strict=True) if x.correct and not y.correct
                ],
                "flips_b_right": [
                    _flip(x, y) for x, y in zip(a, b, strict=True) if y.correct and not x.correct
                ],
                "live_a": _live_summary(metrics_a),
                "live_b": _live_summary(metrics_b),
            }
        )
    return {
        "model_a": name_a,
        "model_b": name_b,
        "sources": compared,
        "only_in_a": sorted(f"{s}::{c}" for s, c in by_a.keys() - by_b.keys()),
        "only_in_b": sorted(f"{s}::{c}" for s, c in by_b.keys() - by_a.keys()),
    }


def by_model(results: Sequence[CaseResult], models: Sequence[str]) -> dict[str, list[CaseResult]]:
    """``results`` split by model, for the ``models`` given and in their order.

    >>> from pytest_ftclass.results import CaseResult
    >>> rs = [CaseResult("c", "n", "s", m, "chat", "a", "a") for m in "BAB"]
    >>> {m: len(group) for m, group in by_model(rs, ["A", "B"]).items()}
    {'A': 1, 'B': 2}
    """
    runs: dict[str, list[CaseResult]] = {model: [] for model in models}
    for result in results:
        if result.model in runs:
            runs[result.model].append(result)
    return runs


def _model_name(results: Sequence[CaseResult], fallback: str) -> str:
    models = sorted({r.model for r in results})
    return ", ".join(models) if models else fallback


def _delta(a: Any, b: Any) -> float | None:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(b) - float(a)
    return None


def _per_class_delta(
    metrics_a: Mapping[str, Any], metrics_b: Mapping[str, Any]
) -> dict[str, float | None]:
    table_a = metrics_a.get("per_class") or {}
    table_b = metrics_b.get("per_class") or {}
    return {
        label: _delta(table_a.get(label, {}).get("f1"), table_b.get(label, {}).get("f1"))
        for label in sorted(set(table_a) | set(table_b))
    }


def _flip(a: CaseResult, b: CaseResult) -> dict[str, Any]:
    return {
        "case_id": a.case_id,
        "expected": a.expected,
        "predicted_a": a.predicted,
        "predicted_b": b.predicted,
        "error_a": a.error,
        "error_b": b.error,
    }


def _live_summary(metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """How fast answers came and what they cost, from the side's metrics (``None``: unknown)."""
    latency, usage = metrics.get("latency_s"), metrics.get("usage")
    if not latency and not usage:
        return None
    summary: dict[str, Any] = {"as_recorded": bool(metrics.get("n_replayed")) and bool(usage)}
    if latency:
        summary["latency_p50_s"], summary["latency_p95_s"] = latency["p50"], latency["p95"]
    if usage:
        summary["usage"] = usage
    return summary
