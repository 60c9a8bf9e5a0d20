"""The HTML report: one self-contained page a person reads after a run.

>>> from pytest_ftclass.results import CaseResult
>>> from pytest_ftclass.report.json_report import build_report
>>> results = [CaseResult("<b>c1</b>", "t::c1", "valid.jsonl", "ft:m", "completions",
...                       expected="sport", predicted="tech", labels=["sport", "tech"])]
>>> page = render_html(build_report(results, {"run": "demo"}))
>>> "&lt;b&gt;c1&lt;/b&gt;" in page and "<b>c1</b>" not in page
True
>>> page.count("<script")
2

The page is rendered from the report dict alone (the same dict as the JSON
report) with jinja2 autoescaping on: case ids, labels, error messages, texts
and metadata are user data and are always escaped.  Everything is inline: CSS,
SVG and one script (``templates/report.js``); the Content-Security-Policy meta
tag forbids loading anything and lets only that script run, by its sha256
hash, so even markup that slipped through could not execute.  The explorer's
rows travel in one ``<script type="application/json">`` blob in which ``<``,
``>`` and ``&`` are written as ``\\u003c``-style escapes, so no string can
close the element; the script puts them in the page with ``textContent``.

Per model (the model under test first; a model's tasks pooled only when they
share one label set, never across models) and per task it shows: headline
numbers with their 95 % intervals; the confusion matrix as a heatmap (shaded by
the share of the row, diagonal green and confusions red, a button to show row
shares instead of counts, a tooltip per cell with the first case ids); per-class
precision/recall/F1 bars with support; a reliability diagram from the
calibration bins; per-tag slices; latency and token use; an explorer of the
mispredicted cases (sortable, filterable by class, paginated by 50 so 10,000
cases stay quick) and the errored cases.

Case text appears only when given: ``texts`` maps a case's nodeid to its
input text (``render_html(report, texts=...)``, or a ``texts`` entry of the
report); without it the explorer shows the input digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_ftclass.judging.metrics import confidence, group_by_task
from pytest_ftclass.recording.atomic import atomic_write_text
from pytest_ftclass.report.json_report import (
    CHECKPOINT,
    ROLE_TITLES,
    models_of,
    results_from_report,
)
from pytest_ftclass.report.training import training_view
from pytest_ftclass.results import CaseResult

__all__ = ["render_html", "write_html_report"]

TEMPLATE_NAME = "report.html"
SCRIPT_NAME = "report.js"
_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

# Cell colours of the confusion-matrix heatmap, as RGB; the alpha is the row share.
_DIAGONAL_RGB = (22, 128, 84)
_CONFUSION_RGB = (196, 48, 43)
_DENSE_AT = 13  # classes from which the heatmap uses small cells and rotated headers
_IDS_PER_CELL = 10  # case ids listed in a heatmap cell's tooltip
_HEADER_CHARS = 18  # longer class names are abbreviated in the heatmap headers
_MAX_ERRORED = 200  # errored cases listed per section (all are in the JSON report)


def render_html(
    report: Mapping[str, Any],
    *,
    texts: Mapping[str, str] | None = None,
    results: Sequence[CaseResult] | None = None,
) -> str:
    """The HTML page for a report dict built by :func:`~pytest_ftclass.report.build_report`.

    ``texts`` (nodeid → input text) adds each mispredicted case's text to the
    explorer; it defaults to the report's own ``texts`` entry, if any.
    ``results`` are the report's cases as :class:`CaseResult` objects, when the caller
    holds them already (else they are read from ``report["cases"]``).
    """
    import jinja2
    from markupsafe import Markup

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = _format_number
    environment.filters["pct"] = _format_percent
    template = environment.get_template(TEMPLATE_NAME)
    if texts is None:
        texts = report.get("texts") or {}
    if results is None:
        results = results_from_report(report)
    sections = _sections(report, texts, results)
    script = (_TEMPLATE_DIR / SCRIPT_NAME).read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    blob = {"sections": [{"rows": section.pop("explorer_rows")} for section in sections]}
    return template.render(
        schema=report.get("schema", ""),
        metadata=_metadata_rows(report.get("metadata") or {}),
        gate=report.get("gate"),
        sections=sections,
        script=Markup(script),
        script_hash=f"sha256-{digest}",
        data_json=Markup(_json_for_script(blob)),
        training=training_view(report),
    )


def _json_for_script(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``.

    >>> print(_json_for_script({"t": "</script><b>&"}))
    {"t": "\\u003c/script\\u003e\\u003cb\\u003e\\u0026"}
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # line and paragraph separators are valid JSON but confuse some JS tooling
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def write_html_report(
    report: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    texts: Mapping[str, str] | None = None,
    results: Sequence[CaseResult] | None = None,
) -> Path:
    """Render ``report`` and write it atomically to ``path``, creating the directory."""
    return atomic_write_text(path, render_html(report, texts=texts, results=results))


def _format_number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _format_percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _metadata_rows(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of ``{"key", "value", "entries"}``: a dict value becomes sub-rows (``entries``)."""
    rows = []
    for key, value in metadata.items():
        items: list[tuple[str, str]] = []
        if isinstance(value, dict):
            items = [(str(k), _plain(v)) for k, v in value.items()]
            text = "" if items else "—"
        elif isinstance(value, (list, tuple)):
            text = ", ".join(_plain(v) for v in value) or "—"
        else:
            text = _plain(value)
        rows.append({"key": str(key), "value": text, "entries": items})
    return rows


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return str(value)


def _sections(
    report: Mapping[str, Any], texts: Mapping[str, str], results: Sequence[CaseResult]
) -> list[dict[str, Any]]:
    """One section per model with pooled tasks, then one per task; model under test first."""
    by_task = group_by_task(results)
    tasks = {str(task.get("task", "")): task for task in report.get("tasks") or []}
    sections: list[dict[str, Any]] = []
    for model in models_of(report):
        if model.get("role") == CHECKPOINT:
            continue  # drawn with the fine-tuning job (templates/training.html)
        role = ROLE_TITLES.get(model.get("role", ""), "")
        names = model.get("tasks", [])
        if len(names) > 1 and model.get("metrics") is not None:
            pooled = [r for name in names for r in by_task.get(name, [])]
            sections.append(
                _section(
                    f"{model['model']}: {len(names)} tasks pooled",
                    f"{role} · tasks share one label set",
                    model["metrics"],
                    pooled,
                    texts,
                    anchor=f"model-{len(sections)}",
                )
            )
        for name in names:
            task = tasks.get(name, {})
            subtitle = f"{role} · source {task.get('source', '')} · model {task.get('model', '')}"
            if task.get("endpoint"):
                subtitle += f" · endpoint {task['endpoint']}"
            sections.append(
                _section(
                    name,
                    subtitle,
                    task.get("metrics") or {},
                    by_task.get(name, []),
                    texts,
                    anchor=f"task-{len(sections)}",
                )
            )
    for index, section in enumerate(sections):
        section["index"] = index
    return sections


def _section(
    title: str,
    subtitle: str,
    metrics: Mapping[str, Any],
    results: Sequence[CaseResult],
    texts: Mapping[str, str],
    *,
    anchor: str,
) -> dict[str, Any]:
    per_class = metrics.get("per_class") or {}
    matrix = metrics.get("confusion_matrix")
    declared = set(per_class)
    wrong = [r for r in results if r.error is None and r.predicted is not None and not r.correct]
    explorer_rows = [
        {
            "case_id": r.case_id,
            "nodeid": r.nodeid,
            "expected": r.expected,
            "predicted": r.predicted,
            "out_of_set": r.predicted not in declared,
            "confidence": confidence(r),
            "critical": r.critical,
            "text": texts.get(r.nodeid),
            "digest": r.input_digest,
        }
        for r in wrong
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
    classes = sorted({r.expected for r in wrong} | {str(r.predicted) for r in wrong})
    return {
        "anchor": anchor,
        "title": title,
        "subtitle": subtitle,
        "metrics": metrics,
        "headline": _headline(metrics),
        "per_class": _per_class_rows(per_class),
        "matrix": _matrix_view(matrix, declared, results) if matrix else None,
        "reliability": _reliability(metrics.get("calibration")),
        "slices": [
            {"tag": tag, **numbers} for tag, numbers in (metrics.get("slices") or {}).items()
        ],
        "explorer_rows": explorer_rows,
        "n_mispredicted": len(explorer_rows),
        "explorer_classes": classes,
        "errored": errored[:_MAX_ERRORED],
        "n_errored": len(errored),
    }


def _interval(values: Sequence[float] | None) -> str:
    return "" if not values else f"95 % CI {values[0]:.3f}–{values[1]:.3f}"


def _headline(m: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The headline tiles: ``{"name", "value", "note", "bad"}`` (value already formatted)."""
    tiles = [
        ("accuracy", _format_number(m.get("accuracy")), _interval(m.get("accuracy_ci")), False),
        ("macro-F1", _format_number(m.get("macro_f1")), _interval(m.get("macro_f1_ci")), False),
        ("weighted-F1", _format_number(m.get("weighted_f1")), "", False),
        ("balanced accuracy", _format_number(m.get("balanced_accuracy")), "", False),
        ("Cohen's κ", _format_number(m.get("cohen_kappa")), "", False),
        ("MCC", _format_number(m.get("mcc")), "", False),
    ]
    binary = m.get("binary")
    if binary:
        positive = f"positive class {binary['positive_class']}"
        tiles += [
            ("precision", _format_number(binary["precision"]), positive, False),
            ("recall", _format_number(binary["recall"]), positive, False),
            ("F1", _format_number(binary["f1"]), positive, False),
            ("AUROC", _format_number(binary["auroc"]), "", False),
            ("AUPRC", _format_number(binary["auprc"]), "", False),
        ]
    if m.get("n_with_probabilities"):
        note = f"{m['n_with_probabilities']} cases with log-probs"
        tiles += [
            ("log loss", _format_number(m.get("log_loss")), note, False),
            ("Brier score", _format_number(m.get("brier_score")), "", False),
            ("ECE", _format_number(m.get("ece")), "10 bins", False),
        ]
    tiles += [
        ("cases", str(m.get("n_cases", 0)), "", False),
        ("correct", str(m.get("n_correct", 0)), "", False),
        ("mispredicted", str(m.get("n_mispredicted", 0)), "", bool(m.get("n_mispredicted"))),
        (
            "out of label set",
            str(m.get("n_out_of_set", 0)),
            _format_percent(m.get("out_of_set_rate")) if m.get("n_out_of_set") else "",
            bool(m.get("n_out_of_set")),
        ),
        (
            "errors",
            str(m.get("n_errors", 0)),
            _format_percent(m.get("error_rate")) if m.get("n_errors") else "",
            bool(m.get("n_errors")),
        ),
    ]
    latency = m.get("latency_s")
    if latency:
        live = f"p95 {latency['p95']:.3f} s · {latency['n']} live answers"
        tiles.append(("latency p50", f"{latency['p50']:.3f} s", live, False))
    elif m.get("n_replayed"):
        tiles.append(("latency", "—", "not measured: answers replayed from cassettes", False))
    usage = m.get("usage")
    if usage:
        recorded = " · as recorded" if m.get("n_replayed") else ""
        tiles.append(
            (
                "tokens",
                f"{usage['total_tokens']:,}",
                f"{usage['prompt_tokens']:,} prompt · {usage['completion_tokens']:,} completion"
                + recorded,
                False,
            )
        )
    return [{"name": n, "value": v, "note": note, "bad": bad} for n, v, note, bad in tiles]


def _per_class_rows(per_class: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for label, numbers in per_class.items():
        bars = [
            {"name": name, "value": numbers[key], "width": f"{100 * numbers[key]:.1f}%"}
            for name, key in (("P", "precision"), ("R", "recall"), ("F1", "f1"))
        ]
        rows.append({"label": label, "support": numbers["support"], "bars": bars, **numbers})
    return rows


def _abbreviate(label: str) -> str:
    return label if len(label) <= _HEADER_CHARS else label[: _HEADER_CHARS - 1] + "…"


def _matrix_view(
    matrix: Mapping[str, Any], declared: set[str], results: Sequence[CaseResult]
) -> dict[str, Any]:
    labels = list(matrix["labels"])
    ids: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.error is None and r.predicted is not None:
            ids.setdefault((r.expected, r.predicted), []).append(r.case_id)
    rows = []
    for expected, counts in zip(labels, matrix["matrix"], strict=True):
        total = sum(counts)
        cells = []
        for predicted, count in zip(labels, counts, strict=True):
            share = count / total if total else 0.0
            red, green, blue = _DIAGONAL_RGB if predicted == expected else _CONFUSION_RGB
            title = f"expected {expected} → predicted {predicted}: {count} of {total} ({share:.0%})"
            listed = ids.get((expected, predicted), [])
            if listed:
                title += "\n" + ", ".join(listed[:_IDS_PER_CELL])
                if len(listed) > _IDS_PER_CELL:
                    title += f" … and {len(listed) - _IDS_PER_CELL} more"
            cells.append(
                {
                    "count": count,
                    "share": share,
                    "percent": f"{share:.0%}" if total else "",
                    "diagonal": predicted == expected,
                    "strong": share >= 0.55,
                    "style": f"background-color: rgba({red}, {green}, {blue}, {share:.3f})",
                    "title": title,
                }
            )
        rows.append(
            {
                "label": expected,
                "short": _abbreviate(expected),
                "out_of_set": expected not in declared,
                "total": total,
                "cells": cells,
            }
        )
    return {
        "dense": len(labels) >= _DENSE_AT,
        "columns": [
            {"label": label, "short": _abbreviate(label), "out_of_set": label not in declared}
            for label in labels
        ],
        "rows": rows,
    }


# Geometry of the reliability diagram (SVG user units).
_PLOT = {"left": 44, "top": 12, "size": 220, "hist": 44, "gap": 14}


def _reliability(calibration: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """SVG shapes for the reliability diagram: accuracy per confidence bin against the diagonal.

    Each non-empty bin is a bar as tall as its accuracy with a tick at its mean
    confidence; below, a histogram of how many cases fell in each bin.
    """
    if not calibration or not calibration.get("n"):
        return None
    left, top, size = _PLOT["left"], _PLOT["top"], _PLOT["size"]
    hist_top = top + size + _PLOT["gap"]
    hist_height = _PLOT["hist"]
    bins = calibration["bins"]
    most = max(b["count"] for b in bins) or 1
    bars = []
    for b in bins:
        if not b["count"]:
            continue
        x = left + b["lower"] * size
        width = (b["upper"] - b["lower"]) * size
        height = b["accuracy"] * size
        count_height = b["count"] / most * hist_height
        bars.append(
            {
                "x": f"{x + 1:.1f}",
                "width": f"{width - 2:.1f}",
                "y": f"{top + size - height:.1f}",
                "height": f"{height:.1f}",
                "conf_y": f"{top + size - b['mean_confidence'] * size:.1f}",
                "hist_y": f"{hist_top + hist_height - count_height:.1f}",
                "hist_height": f"{count_height:.1f}",
                "title": f"confidence {b['lower']:.1f}–{b['upper']:.1f}: {b['count']} cases, "
                f"mean confidence {b['mean_confidence']:.3f}, accuracy {b['accuracy']:.3f}",
            }
        )
    ticks = [
        {"value": f"{v:.1f}", "x": f"{left + v * size:.1f}", "y": f"{top + size - v * size:.1f}"}
        for v in (0.0, 0.5, 1.0)
    ]
    return {
        "width": left + size + 10,
        "height": hist_top + hist_height + 30,
        "left": left,
        "top": top,
        "size": size,
        "right": left + size,
        "bottom": top + size,
        "hist_top": hist_top,
        "hist_bottom": hist_top + hist_height,
        "bars": bars,
        "ticks": ticks,
        "n": calibration["n"],
    }
