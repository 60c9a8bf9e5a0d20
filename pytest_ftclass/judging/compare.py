"""Two fine-tunes side by side on the same cases.

Cases are paired by case source and case id.  For every source both models
answered: both models' metrics with their deltas, McNemar's exact test on paired
correctness, the flip lists (cases A got right and B wrong, and the reverse),
per-class F1 deltas, both confusion matrices, and latency and token usage when
the runs were live.  Cases only one run has are listed, never dropped silently.

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

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_ftclass.judging.metrics import classification_metrics
from pytest_ftclass.judging.significance import paired
from pytest_ftclass.results import CaseResult

SCHEMA = "ftclass-comparison/1"
HEADLINE = ("accuracy", "macro_f1", "weighted_f1")


def compare_results(
    results_a: Sequence[CaseResult],
    results_b: Sequence[CaseResult],
    *,
    name_a: str | None = None,
    name_b: str | None = None,
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
        metrics_a, metrics_b = classification_metrics(a), classification_metrics(b)
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
                "live_a": _live_summary(a),
                "live_b": _live_summary(b),
            }
        )
    return {
        "schema": SCHEMA,
        "model_a": name_a,
        "model_b": name_b,
        "sources": compared,
        "only_in_a": sorted(f"{s}::{c}" for s, c in by_a.keys() - by_b.keys()),
        "only_in_b": sorted(f"{s}::{c}" for s, c in by_b.keys() - by_a.keys()),
    }


def split_by_model(
    results: Sequence[CaseResult], model_a: str, model_b: str
) -> tuple[list[CaseResult], list[CaseResult]]:
    return [r for r in results if r.model == model_a], [r for r in results if r.model == model_b]


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


def _live_summary(results: Sequence[CaseResult]) -> dict[str, Any] | None:
    latencies = sorted(r.latency_s for r in results if r.latency_s is not None)
    usage = [r.usage for r in results if r.usage]
    if not latencies and not usage:
        return None
    summary: dict[str, Any] = {}
    if latencies:
        summary["latency_p50_s"] = statistics.median(latencies)
        summary["latency_p95_s"] = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    if usage:
        summary["usage"] = {
            key: sum(u.get(key, 0) for u in usage)
            for key in ("prompt_tokens", "completion_tokens", "total_tokens")
        }
    return summary
