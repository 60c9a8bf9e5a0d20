"""The JSON report: every per-case result plus the metrics computed from them.

>>> import pathlib, tempfile
>>> from pytest_ftclass.results import CaseResult
>>> results = [CaseResult("c1", "t::c1", "valid.jsonl", "ft:m", "completions",
...                       expected="sport", predicted="tech", labels=["sport", "tech"])]
>>> report = build_report(results, {"run": "demo"})
>>> report["schema"], report["overall"]["accuracy"], report["tasks"][0]["task"]
('ftclass-report/1', 0.0, 'valid.jsonl @ ft:m')
>>> path = write_json_report(report, pathlib.Path(tempfile.mkdtemp()) / "out" / "report.json")
>>> results_from_report(load_report(path)) == results
True

Shape (``schema`` is bumped when a field changes meaning)::

    {
      "schema": "ftclass-report/1",
      "metadata": {...},                      # as given by the caller
      "overall": <classification_metrics>,    # over every case
      "tasks": [{"task", "source", "model", "endpoint", "metrics"}, ...],
      "cases": [CaseResult.to_dict(), ...],
      "texts": {nodeid: text, ...},           # only when build_report(texts=...) was given
    }

Every number in ``overall`` and ``tasks`` can be recomputed from ``cases``
(see :mod:`pytest_ftclass.metrics` for the definitions).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from pytest_ftclass.atomic import atomic_write_text, atomic_writer
from pytest_ftclass.metrics import MetricsOf, group_by_task, metrics_of_groups
from pytest_ftclass.results import CaseResult

__all__ = [
    "SCHEMA",
    "atomic_write_text",
    "build_report",
    "load_report",
    "results_from_report",
    "write_json_report",
]

SCHEMA = "ftclass-report/1"


def build_report(
    results: Sequence[CaseResult],
    metadata: Mapping[str, Any],
    *,
    positive_class: str | None = None,
    texts: Mapping[str, str] | None = None,
    cases: list[dict[str, Any]] | None = None,
    metrics_of: MetricsOf = metrics_of_groups,
) -> dict[str, Any]:
    """The report dict for ``results``: overall metrics, metrics per task and every case.

    A task is one case source against one model (:attr:`CaseResult.task`), in
    the order first seen; its ``endpoint`` is that of its first case.
    ``positive_class`` is the positive class of binary tasks (see
    :func:`pytest_ftclass.metrics.classification_metrics`).  ``texts`` (nodeid →
    the case's input text) is stored as a ``texts`` entry, for the HTML
    explorer, only when given: by default a report holds no prompt text.
    ``cases`` are ``[r.to_dict() for r in results]`` when the caller holds them
    already (a run of 100,000 cases then keeps one dict per case, not two).
    ``metrics_of`` computes the metrics of the tasks (and of all the cases, when
    there are several tasks) in one call, :func:`~pytest_ftclass.metrics.metrics_of_groups`
    unless the caller has it done elsewhere (see :mod:`pytest_ftclass.metrics_process`).
    """
    by_task = group_by_task(results)
    groups: list[Sequence[CaseResult]] = list(by_task.values())
    if len(groups) != 1:
        groups.append(results)
    computed = metrics_of(groups, positive_class=positive_class)
    tasks = [
        {
            "task": task,
            "source": group[0].source,
            "model": group[0].model,
            "endpoint": group[0].endpoint,
            "metrics": metrics,
        }
        for (task, group), metrics in zip(by_task.items(), computed, strict=False)
    ]
    # one task: the same cases in the same order, so the same numbers
    overall = copy.deepcopy(computed[0]) if len(by_task) == 1 else computed[-1]
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "metadata": dict(metadata),
        "overall": overall,
        "tasks": tasks,
        "cases": [result.to_dict() for result in results] if cases is None else cases,
    }
    if texts is not None:
        wanted = {result.nodeid for result in results}
        report["texts"] = {node: str(text) for node, text in texts.items() if node in wanted}
    return report


def write_json_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``report`` as UTF-8 JSON atomically, creating the directory.

    Metrics are indented by 2; each case (and each entry of ``texts``) is one
    line, written as it is encoded, so a report of 100,000 cases is never held
    as one string and diffs line by line.  Values JSON does not know (a
    ``Path`` in the metadata, say) are written as their ``str()``.
    """
    with atomic_writer(path) as handle:
        handle.write("{")
        for i, (key, value) in enumerate(report.items()):
            handle.write(",\n  " if i else "\n  ")
            handle.write(_ONE_LINE.encode(str(key)) + ": ")
            if key == "cases" and isinstance(value, list):
                _write_lines(handle, "[", (_ONE_LINE.encode(case) for case in value), "]")
            elif key == "texts" and isinstance(value, Mapping):
                entries = (
                    f"{_ONE_LINE.encode(str(k))}: {_ONE_LINE.encode(v)}" for k, v in value.items()
                )
                _write_lines(handle, "{", entries, "}")
            else:
                handle.write(_INDENTED.encode(value).replace("\n", "\n  "))
        handle.write("\n}\n")
    return Path(path)


def _write_lines(handle: TextIO, opening: str, rows: Iterable[str], closing: str) -> None:
    handle.write(opening)
    separator = "\n    "
    for row in rows:
        handle.write(separator)
        handle.write(row)
        separator = ",\n    "
    handle.write(closing if separator == "\n    " else "\n  " + closing)


# The C encoder (no indent) writes the rows; the pure-Python one (indent) only the metrics.
_ONE_LINE = json.JSONEncoder(ensure_ascii=False, default=str, separators=(", ", ": "))
_INDENTED = json.JSONEncoder(ensure_ascii=False, default=str, indent=2)


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON report written by :func:`write_json_report`.

    Raises ``ValueError`` when the file is not an ``ftclass-report/1`` report.
    """
    with open(path, encoding="utf-8") as handle:
        report = json.load(handle)
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        found = report.get("schema") if isinstance(report, dict) else type(report).__name__
        raise ValueError(f"{os.fspath(path)}: not an {SCHEMA} report (schema: {found!r})")
    return report


def results_from_report(report: Mapping[str, Any]) -> list[CaseResult]:
    """The per-case results stored in a report, as :class:`CaseResult` objects."""
    return [CaseResult.from_dict(case) for case in report.get("cases", [])]
