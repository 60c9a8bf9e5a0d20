"""The HTML report: one self-contained page a person reads after a run.

>>> from pytest_ftclass.results import CaseResult
>>> from pytest_ftclass.report.json_report import build_report
>>> results = [CaseResult("<b>c1</b>", "t::c1", "valid.jsonl", "ft:m", "completions",
...                       expected="sport", predicted="tech", labels=["sport", "tech"])]
>>> page = render_html(build_report(results, {"run": "demo"}))
>>> "&lt;b&gt;c1&lt;/b&gt;" in page and "<b>c1</b>" not in page
True

The page is rendered from the report dict alone (the same dict as the JSON
report), with jinja2 autoescaping on: case ids, labels, error messages and
metadata are user data and are always escaped.  It has inline CSS, no scripts
and no external resources; a Content-Security-Policy meta tag forbids loading
any.  Prompt text never appears because the results do not carry it.

Per task (and overall, when there is more than one task) it shows the
headline numbers, a per-class table, the confusion matrix as a heatmap (each
cell shaded by its share of the row, i.e. of the cases with that expected
label; the diagonal in green, confusions in red), the mispredicted cases with
the model's confidence in its answer, and the errored cases.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_ftclass.atomic import atomic_write_text
from pytest_ftclass.metrics import confidence, group_by_task
from pytest_ftclass.report.json_report import results_from_report
from pytest_ftclass.results import CaseResult

__all__ = ["render_html", "write_html_report"]

TEMPLATE_NAME = "report.html"
_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

# Cell colours of the confusion-matrix heatmap, as RGB; the alpha is the row share.
_DIAGONAL_RGB = (22, 128, 84)
_CONFUSION_RGB = (196, 48, 43)


def render_html(report: Mapping[str, Any]) -> str:
    """The HTML page for a report dict built by :func:`~pytest_ftclass.report.build_report`."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = _format_number
    template = environment.get_template(TEMPLATE_NAME)
    return template.render(
        schema=report.get("schema", ""),
        metadata=_metadata_rows(report.get("metadata") or {}),
        sections=_sections(report),
    )


def write_html_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render ``report`` and write it atomically to ``path``, creating the directory."""
    return atomic_write_text(path, render_html(report))


def _format_number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _metadata_rows(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in metadata.items():
        if isinstance(value, (dict, list, tuple)):
            text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
        else:
            text = "" if value is None else str(value)
        rows.append((str(key), text))
    return rows


def _sections(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    results = results_from_report(report)
    by_task = group_by_task(results)
    tasks = report.get("tasks") or []
    sections = []
    if len(tasks) > 1:
        sections.append(
            _section(
                "All tasks",
                f"{len(tasks)} tasks",
                report.get("overall") or {},
                results,
                anchor="overall",
            )
        )
    for index, task in enumerate(tasks):
        subtitle = f"source {task.get('source', '')} · model {task.get('model', '')}"
        if task.get("endpoint"):
            subtitle += f" · endpoint {task['endpoint']}"
        sections.append(
            _section(
                str(task.get("task", "")),
                subtitle,
                task.get("metrics") or {},
                by_task.get(str(task.get("task")), []),
                anchor=f"task-{index}",
            )
        )
    return sections


def _section(
    title: str,
    subtitle: str,
    metrics: Mapping[str, Any],
    results: Sequence[CaseResult],
    *,
    anchor: str,
) -> dict[str, Any]:
    per_class = metrics.get("per_class") or {}
    matrix = metrics.get("confusion_matrix")
    declared = set(per_class)
    mispredicted = [
        {
            "case_id": r.case_id,
            "nodeid": r.nodeid,
            "expected": r.expected,
            "predicted": r.predicted,
            "out_of_set": r.predicted not in declared,
            "confidence": confidence(r),
            "critical": r.critical,
        }
        for r in results
        if r.error is None and r.predicted is not None and not r.correct
    ]
    errored = [
        {
            "case_id": r.case_id,
            "nodeid": r.nodeid,
            "error": r.error or "no prediction",
            "critical": r.critical,
        }
        for r in results
        if r.error is not None or r.predicted is None
    ]
    return {
        "anchor": anchor,
        "title": title,
        "subtitle": subtitle,
        "metrics": metrics,
        "per_class": [{"label": label, **numbers} for label, numbers in per_class.items()],
        "matrix": _matrix_view(matrix, declared) if matrix else None,
        "mispredicted": mispredicted,
        "errored": errored,
    }


def _matrix_view(matrix: Mapping[str, Any], declared: set[str]) -> dict[str, Any]:
    labels = list(matrix["labels"])
    rows = []
    for expected, counts in zip(labels, matrix["matrix"], strict=True):
        total = sum(counts)
        cells = []
        for predicted, count in zip(labels, counts, strict=True):
            share = count / total if total else 0.0
            red, green, blue = _DIAGONAL_RGB if predicted == expected else _CONFUSION_RGB
            cells.append(
                {
                    "count": count,
                    "share": share,
                    "diagonal": predicted == expected,
                    "strong": share >= 0.55,
                    "style": f"background-color: rgba({red}, {green}, {blue}, {share:.3f})",
                    "title": f"expected {expected}, predicted {predicted}: "
                    f"{count} of {total} ({share:.0%})",
                }
            )
        rows.append(
            {
                "label": expected,
                "out_of_set": expected not in declared,
                "total": total,
                "cells": cells,
            }
        )
    return {
        "columns": [{"label": label, "out_of_set": label not in declared} for label in labels],
        "rows": rows,
    }
