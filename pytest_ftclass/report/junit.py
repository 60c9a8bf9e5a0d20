"""Flat metric name/value pairs for JUnit XML ``<properties>``.

>>> from pytest_ftclass.results import CaseResult
>>> from pytest_ftclass.report.json_report import build_report
>>> rs = [CaseResult("c1", "t::c1", "v.jsonl", "m", "chat", "a", "a", labels=["a", "b"])]
>>> dict(junit_properties(build_report(rs, {})))["ftclass.overall.accuracy"]
'1'

Names are ``ftclass.overall.<metric>`` and ``ftclass.task[<task>].<metric>``;
an interval adds ``<metric>_ci_low`` and ``<metric>_ci_high``; the legacy
fine-tuning names keep their spelling (``ftclass.overall.classification/accuracy``).
Values are ``repr``-exact numbers as text; metrics that are ``None`` are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["junit_properties"]

_SCALARS = (
    "n_cases", "n_scored", "n_errors", "n_correct", "n_mispredicted", "n_out_of_set",
    "accuracy", "macro_f1", "weighted_f1", "balanced_accuracy", "cohen_kappa", "mcc",
    "error_rate", "out_of_set_rate", "log_loss", "brier_score", "ece",
)  # fmt: skip
_INTERVALS = ("accuracy_ci", "macro_f1_ci")


def junit_properties(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, value)`` pairs for the overall metrics and each task's."""
    pairs = _pairs("ftclass.overall", report.get("overall") or {})
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
