"""Plain-text lines for the pytest terminal summary.

>>> from pytest_ftclass.results import CaseResult
>>> from pytest_ftclass.report.json_report import build_report
>>> results = [
...     CaseResult("c1", "t::c1", "valid.jsonl", "local", "completions", "sport", "sport",
...                labels=["sport", "tech"]),
...     CaseResult("c2", "t::c2", "valid.jsonl", "local", "completions", "sport", "tech",
...                logprobs={"tech": -0.478, "sport": -0.968}, labels=["sport", "tech"]),
...     CaseResult("c3", "t::c3", "valid.jsonl", "local", "completions", "tech", "tech",
...                labels=["sport", "tech"]),
... ]
>>> print("\\n".join(summary_lines(build_report(results, {}, model_under_test="local"))))
model under test: local
valid.jsonl @ local: accuracy 0.667 (2/3), macro-F1 0.667, weighted-F1 0.667, 0 errors
  class  precision  recall     F1  support
  sport      1.000   0.500  0.667        2
  tech       0.500   1.000  0.667        1
  mispredicted:
    c2: expected 'sport', predicted 'tech' (p=0.62)

Per model, the model under test first: a heading naming the model and its
role, then per task a headline, a per-class table and the first ``max_listed``
mispredicted and errored cases (``… and N more`` when cut), and, when the
model has several tasks, its pooled headline (or why its tasks are not
pooled).  A comparison model gets headlines only: the comparison section
shows its differences.  Nothing is pooled across models.  Case ids and labels
are shown with control characters escaped, so a hostile label cannot drive the
terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_ftclass.judging.metrics import confidence, group_by_task
from pytest_ftclass.report.json_report import (
    CHECKPOINT,
    COMPARISON,
    ROLE_TITLES,
    models_of,
    results_from_report,
)
from pytest_ftclass.report.training import terminal_lines
from pytest_ftclass.results import CaseResult

__all__ = ["headline", "summary_lines"]

_MAX_CLASS_WIDTH = 32


def summary_lines(
    report: Mapping[str, Any],
    *,
    max_listed: int = 20,
    results: Sequence[CaseResult] | None = None,
) -> list[str]:
    """The terminal summary of a report dict, one string per line (no trailing newlines).

    ``results`` are the report's cases as :class:`CaseResult` objects, when the caller
    holds them already (else they are read from ``report["cases"]``).
    """
    by_task = group_by_task(results_from_report(report) if results is None else results)
    tasks = {str(task.get("task", "")): task for task in report.get("tasks") or []}
    if not tasks:
        return ["no cases were run"]
    lines: list[str] = []
    for model in models_of(report):
        role = model.get("role", "")
        if role == CHECKPOINT:
            continue  # summed up with the job, below
        lines.append(f"{ROLE_TITLES.get(role, role)}: {_printable(str(model['model']))}")
        for name in model.get("tasks", []):
            metrics = (tasks.get(name) or {}).get("metrics") or {}
            lines.append(headline(_printable(name), metrics))
            if role == COMPARISON:
                continue
            results_of_task = by_task.get(name, [])
            lines.extend(_per_class_table(metrics.get("per_class") or {}))
            lines.extend(_mispredicted(results_of_task, max_listed))
            lines.extend(_errored(results_of_task, max_listed))
        if len(model.get("tasks", [])) > 1:
            lines.append(_pooled(model))
    return lines + terminal_lines(report)  # the --ft-job job and its checkpoints, if any


def _pooled(model: Mapping[str, Any]) -> str:
    count = len(model.get("tasks", []))
    name = _printable(str(model["model"]))
    if model.get("metrics") is None:
        return f"{name}: {count} tasks with different label sets, not pooled"
    return headline(f"{name}, {count} tasks pooled", model["metrics"])


def headline(name: str, metrics: Mapping[str, Any]) -> str:
    """One line of headline numbers.

    >>> headline("t", {"accuracy": None, "n_correct": 0, "n_scored": 0, "n_errors": 3})
    't: no scored cases, 3 errors'
    """
    errors = _plural(int(metrics.get("n_errors") or 0), "error")
    if metrics.get("accuracy") is None:
        return f"{name}: no scored cases, {errors}"
    parts = [
        f"accuracy {metrics['accuracy']:.3f} ({metrics['n_correct']}/{metrics['n_scored']})",
        f"macro-F1 {metrics['macro_f1']:.3f}",
        f"weighted-F1 {metrics['weighted_f1']:.3f}",
    ]
    if metrics.get("n_out_of_set"):
        parts.append(f"{metrics['n_out_of_set']} out of label set")
    parts.append(errors)
    return f"{name}: " + ", ".join(parts)


def _per_class_table(per_class: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if not per_class:
        return []
    names = {label: _shorten(_printable(label)) for label in per_class}
    width = max(len("class"), *(len(name) for name in names.values()))
    lines = [f"  {'class':<{width}}  precision  recall     F1  support"]
    for label, numbers in per_class.items():
        lines.append(
            f"  {names[label]:<{width}}  {numbers['precision']:>9.3f}  {numbers['recall']:>6.3f}"
            f"  {numbers['f1']:>5.3f}  {numbers['support']:>7d}"
        )
    return lines


def _mispredicted(results: Sequence[CaseResult], max_listed: int) -> list[str]:
    wrong = [r for r in results if r.error is None and r.predicted is not None and not r.correct]
    lines = []
    for result in wrong[:max_listed]:
        probability = confidence(result)
        suffix = "" if probability is None else f" (p={probability:.2f})"
        lines.append(
            f"    {_printable(result.case_id)}: expected {result.expected!r}, "
            f"predicted {result.predicted!r}{suffix}"
        )
    return _listed("mispredicted", lines, len(wrong))


def _errored(results: Sequence[CaseResult], max_listed: int) -> list[str]:
    failed = [r for r in results if r.error is not None or r.predicted is None]
    lines = [
        f"    {_printable(r.case_id)}: {_printable(_first_line(r.error or 'no prediction'))}"
        for r in failed[:max_listed]
    ]
    return _listed("errors", lines, len(failed))


def _listed(title: str, lines: list[str], total: int) -> list[str]:
    if not total:
        return []
    if total > len(lines):
        lines.append(f"    … and {total - len(lines)} more")
    return [f"  {title}:", *lines]


def _printable(text: str) -> str:
    """``text`` with control characters escaped (``repr`` style), otherwise unchanged."""
    if text.isprintable():
        return text
    return repr(text)[1:-1]


def _first_line(text: str) -> str:
    first, _, rest = text.strip().partition("\n")
    return first + (" …" if rest.strip() else "")


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_CLASS_WIDTH else text[: _MAX_CLASS_WIDTH - 1] + "…"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
