"""Flat metric name/value pairs for JUnit XML ``<properties>``.

>>> from pytest_ftclass.results import CaseResult
>>> from pytest_ftclass.report.json_report import build_report
>>> rs = [CaseResult("c1", "t::c1", "v.jsonl", "m", "chat", "a", "a", labels=["a", "b"])]
>>> properties = dict(junit_properties(build_report(rs, {}, model_under_test="m")))
>>> properties["ftclass.model_under_test"], properties["ftclass.model[m].accuracy"]
('m', '1')

Names: ``ftclass.model_under_test`` first, then per model (the model under
test first) ``ftclass.model[<model>].role`` and, when its tasks share one
label set, its pooled metrics ``ftclass.model[<model>].<metric>``; then
``ftclass.task[<task>].<metric>`` per task.  Nothing is pooled across models.
An interval adds ``<metric>_ci_low`` and ``<metric>_ci_high``; the legacy
fine-tuning names keep their spelling (``ftclass.task[t].classification/accuracy``).
Values are ``repr``-exact numbers as text; metrics that are ``None`` are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_ftclass.judging.metrics import SCALAR_METRICS as _SCALARS
from pytest_ftclass.report.json_report import UNDER_TEST, models_of

__all__ = ["junit_properties"]

_INTERVALS = ("accuracy_ci", "macro_f1_ci")


def junit_properties(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, value)`` pairs: the model under test, each model's and each task's metrics."""
    models = models_of(report)
    pairs = [
        ("ftclass.model_under_test", str(m["model"]))
        for m in models[:1]
        if m.get("role") == UNDER_TEST
    ]
    for model in models:
        prefix = f"ftclass.model[{model['model']}]"
        pairs.append((f"{prefix}.role", str(model.get("role", ""))))
        pairs += _pairs(prefix, model.get("metrics") or {})
    for task in report.get("tasks") or []:
        pairs += _pairs(f"ftclass.task[{task.get('task', '')}]", task.get("metrics") or {})
    return pairs


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _pairs(prefix: str, m: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = [(f"{prefix}.{key}", _text(m[key])) for key in _SCALARS if m.get(key) is not None]
    for key in _INTERVALS:
        if m.get(key):
            base = key.removesuffix("_ci")
            pairs += [
                (f"{prefix}.{base}_ci_low", _text(m[key][0])),
                (f"{prefix}.{base}_ci_high", _text(m[key][1])),
            ]
    binary = m.get("binary") or {}
    if binary:
        pairs.append((f"{prefix}.positive_class", str(binary["positive_class"])))
    for key, value in (m.get("legacy") or {}).items():
        if value is not None:
            pairs.append((f"{prefix}.{key}", _text(value)))
    latency = m.get("latency_s") or {}
    for key in ("p50", "p95"):
        if latency.get(key) is not None:
            pairs.append((f"{prefix}.latency_s_{key}", _text(latency[key])))
    for key, value in (m.get("usage") or {}).items():
        pairs.append((f"{prefix}.usage.{key}", str(value)))
    return pairs
