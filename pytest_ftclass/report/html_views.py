"""The pieces of the HTML pages, as plain data for the templates and the page script.

A :class:`PageData` collects what the page script draws: the labels (referred
to by position), the tasks and models of the explorer, its rows, and the
collapsible tables (a table of more than :data:`COLLAPSE_AT` rows shows that
many, with a search box and a button for the rest).  The other functions turn
a report's parts into what the templates show: the verdict, the overview, a
heatmap (the full matrix up to :data:`FULL_HEATMAP_AT` classes, the
most-confused pairs above), headline tiles, the comparison's cards and the
leaderboards, the run's details in words.

>>> [row["value"] for row in metadata_rows({"partial": False, "started": "2026-11-30T12:17:41Z"})]
['no', '30 Nov 2026, 12:17:41 UTC']
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_ftclass.judging.metrics import confidence, confusion_entries
from pytest_ftclass.report.html_page import format_interval, format_number, format_percent
from pytest_ftclass.results import CaseResult

__all__ = [
    "COLLAPSE_AT",
    "FULL_HEATMAP_AT",
    "PageData",
    "cards",
    "cost_text",
    "headline_tiles",
    "heatmap",
    "metadata_rows",
    "verdict_view",
]

FULL_HEATMAP_AT = 50  # classes (out-of-set answers included) drawn as a full heatmap, at most
COLLAPSE_AT = 20  # rows a table shows before it collapses
MOST_CONFUSED = 30  # confused pairs listed above FULL_HEATMAP_AT classes
_DENSE_AT = 13  # classes from which the heatmap uses small cells and rotated headers
_IDS_PER_CELL = 10  # case ids listed in a heatmap cell's tooltip
_HEADER_CHARS = 18  # longer class names are abbreviated in the heatmap headers
_DIAGONAL_RGB = (22, 128, 84)
_CONFUSION_RGB = (196, 48, 43)

#: Explorer row: task, case id, node id (not-correct rows), expected, predicted (-1: none),
#: confidence, status, flags, input digest (not-correct rows), text, error (-1: none).
CORRECT, MISPREDICTED, ERRORED = 0, 1, 2
CRITICAL, OUT_OF_SET = 1, 2


class PageData:
    """What the page script gets: labels by position, tasks, explorer rows, tables."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self._label_index: dict[str, int] = {}
        self.models: list[str] = []
        self.tasks: list[dict[str, Any]] = []
        self._task_index: dict[str, int] = {}
        self.rows: list[list[Any]] = []
        self.errors: list[str] = []
        self._error_index: dict[str, int] = {}
        self.tables: list[dict[str, Any]] = []

    def label(self, label: str) -> int:
        """The position of ``label`` in the page's labels (added when new)."""
        index = self._label_index.get(label)
        if index is None:
            index = self._label_index[label] = len(self.labels)
            self.labels.append(label)
        return index

    def model(self, model: str) -> int:
        if model not in self.models:
            self.models.append(model)
        return self.models.index(model)

    def task(self, name: str, model: str) -> int:
        """The position of a task in the explorer's task list (added when new)."""
        index = self._task_index.get(name)
        if index is None:
            index = self._task_index[name] = len(self.tasks)
            self.tasks.append({"task": name, "model": self.model(model)})
        return index

    def table(self, columns: Sequence[Mapping[str, Any]], rows: list[list[Any]]) -> dict[str, Any]:
        """Register a collapsible table; returns what the template needs (``id``, columns, size)."""
        spec = {"columns": [dict(c) for c in columns], "rows": rows}
        self.tables.append(spec)
        return {"id": len(self.tables) - 1, "columns": spec["columns"], "n": len(rows)}

    def add_cases(
        self, results: Sequence[CaseResult], texts: Mapping[str, str], declared: set[str]
    ) -> None:
        """Every case of one task, as explorer rows (see the module's row layout)."""
        for r in results:
            task = self.task(r.task, r.model)
            if r.error is not None or r.predicted is None:
                status, predicted = ERRORED, -1
            else:
                status = CORRECT if r.predicted == r.expected else MISPREDICTED
                predicted = self.label(r.predicted)
            flags = (CRITICAL if r.critical else 0) | (
                OUT_OF_SET if status != ERRORED and r.predicted not in declared else 0
            )
            known = confidence(r) if status != ERRORED else None
            self.rows.append(
                [
                    task,
                    r.case_id,
                    None if status == CORRECT else r.nodeid,
                    self.label(r.expected),
                    predicted,
                    None if known is None else round(known, 4),
                    status,
                    flags,
                    None if status == CORRECT else r.input_digest or None,
                    texts.get(r.nodeid),
                    self._error(r.error or "no prediction") if status == ERRORED else -1,
                ]
            )

    def _error(self, message: str) -> int:
        index = self._error_index.get(message)
        if index is None:
            index = self._error_index[message] = len(self.errors)
            self.errors.append(message)
        return index

    def blob(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "models": self.models,
            "tasks": self.tasks,
            "rows": self.rows,
            "errors": self.errors,
            "tables": self.tables,
        }


# -- the first screen ------------------------------------------------------------------


def verdict_view(gate: Mapping[str, Any] | None) -> dict[str, Any]:
    """The gate's verdict: ``status`` (passed, failed, none) and its criteria, failures first."""
    if not gate or not gate.get("active", gate.get("configured") or gate.get("verdicts")):
        return {"status": "none", "rows": [], "configured": False}
    verdicts = list(gate.get("verdicts", []))
    verdicts.sort(key=lambda v: bool(v.get("passed")))
    rows = [
        {
            "passed": bool(v.get("passed")),
            "criterion": v.get("criterion", ""),
            "scope": v.get("scope", ""),
            "value": "n/a" if v.get("value") is None else f"{v['value']:.4g}",
            "bound": "" if v.get("bound") is None else f"{v.get('op', '')} {v['bound']:g}",
            "detail": v.get("detail", ""),
        }
        for v in verdicts
    ]
    return {
        "status": "passed" if gate.get("passed") else "failed",
        "rows": rows,
        "configured": bool(gate.get("configured")),
        "n_failed": sum(1 for row in rows if not row["passed"]),
    }


def cost_text(cost: Mapping[str, Any] | None) -> str:
    """``$0.0123`` (four significant figures below a dollar)."""
    if not cost:
        return ""
    usd = cost["usd"]
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.4g}"


# -- a task ----------------------------------------------------------------------------


def headline_tiles(m: Mapping[str, Any], cost: Mapping[str, Any] | None = None) -> list[dict]:
    """The headline tiles: ``{"name", "value", "note", "bad"}`` (value already formatted)."""
    tiles = [
        ("accuracy", format_number(m.get("accuracy")), _ci_note(m.get("accuracy_ci")), False),
        ("macro-F1", format_number(m.get("macro_f1")), _ci_note(m.get("macro_f1_ci")), False),
        ("weighted-F1", format_number(m.get("weighted_f1")), "", False),
        ("balanced accuracy", format_number(m.get("balanced_accuracy")), "", False),
        ("Cohen's κ", format_number(m.get("cohen_kappa")), "", False),
        ("MCC", format_number(m.get("mcc")), "", False),
    ]
    binary = m.get("binary")
    if binary:
        positive = f"positive class {binary['positive_class']}"
        tiles += [
            ("precision", format_number(binary["precision"]), positive, False),
            ("recall", format_number(binary["recall"]), positive, False),
            ("F1", format_number(binary["f1"]), positive, False),
            ("AUROC", format_number(binary["auroc"]), "", False),
            ("AUPRC", format_number(binary["auprc"]), "", False),
        ]
    if m.get("n_with_probabilities"):
        note = f"{m['n_with_probabilities']} cases with log-probs"
        tiles += [
            ("log loss", format_number(m.get("log_loss")), note, False),
            ("Brier score", format_number(m.get("brier_score")), "", False),
            ("ECE", format_number(m.get("ece")), "10 bins", False),
        ]
    tiles += [
        ("cases", str(m.get("n_cases", 0)), "", False),
        ("correct", str(m.get("n_correct", 0)), "", False),
        ("mispredicted", str(m.get("n_mispredicted", 0)), "", bool(m.get("n_mispredicted"))),
        (
            "out of label set",
            str(m.get("n_out_of_set", 0)),
            format_percent(m.get("out_of_set_rate")) if m.get("n_out_of_set") else "",
            bool(m.get("n_out_of_set")),
        ),
        (
            "errors",
            str(m.get("n_errors", 0)),
            format_percent(m.get("error_rate")) if m.get("n_errors") else "",
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
    recorded = " · as recorded" if m.get("n_replayed") else ""
    if usage:
        tiles.append(
            (
                "tokens",
                f"{usage['total_tokens']:,}",
                f"{usage['prompt_tokens']:,} prompt · {usage['completion_tokens']:,} completion"
                + recorded,
                False,
            )
        )
    if cost:
        price = cost["price"]
        note = (
            f"at ${price['input_per_million']:g} / ${price['output_per_million']:g} "
            f"per million tokens in / out{recorded}"
        )
        tiles.append(("estimated cost", cost_text(cost), note, False))
    return [{"name": n, "value": v, "note": note, "bad": bad} for n, v, note, bad in tiles]


def _ci_note(values: Sequence[float] | None) -> str:
    return f"95 % CI {format_interval(values)}" if values else ""


def per_class_table(page: PageData, per_class: Mapping[str, Mapping[str, Any]]) -> dict | None:
    """Precision, recall and F1 of every class as bars, with support (collapsible, searchable)."""
    if not per_class:
        return None
    columns = [
        {"title": "class", "kind": "label"},
        {"title": "support", "kind": "int"},
        {"title": "precision", "kind": "bar", "style": "P"},
        {"title": "recall", "kind": "bar", "style": "R"},
        {"title": "F1", "kind": "bar", "style": "F1"},
    ]
    rows = [
        [label, n["support"], n["precision"], n["recall"], n["f1"]]
        for label, n in per_class.items()
    ]
    return page.table(columns, rows)


def slices_table(page: PageData, slices: Mapping[str, Mapping[str, Any]]) -> dict | None:
    """Accuracy and macro-F1 per tag (collapsible, searchable)."""
    if not slices:
        return None
    columns = [
        {"title": "tag", "kind": "label"},
        {"title": "cases", "kind": "int"},
        {"title": "scored", "kind": "int"},
        {"title": "accuracy", "kind": "num"},
        {"title": "95 % CI", "kind": "ci"},
        {"title": "macro-F1 (labels present)", "kind": "num"},
    ]
    rows = [
        [tag, s["n"], s["n_scored"], s["accuracy"], s["accuracy_ci"], s["macro_f1_present"]]
        for tag, s in slices.items()
    ]
    return page.table(columns, rows)


def heatmap(
    page: PageData,
    matrix: Mapping[str, Any] | None,
    declared: set[str],
    results: Sequence[CaseResult],
    *,
    model: str,
    task: str | None,
) -> dict[str, Any] | None:
    """The confusion matrix: a full heatmap up to :data:`FULL_HEATMAP_AT` classes, else pairs.

    Cells and pairs carry the page's label positions, so a click filters the
    explorer to their cases (``model``, and ``task`` unless it is a pooled view).
    """
    if not matrix:
        return None
    labels = list(matrix["labels"])
    target = {"model": page.model(model), "task": "" if task is None else page.task(task, model)}
    entries = confusion_entries(matrix)
    totals = [0] * len(labels)
    for i, _, count in entries:
        totals[i] += count
    if len(labels) > FULL_HEATMAP_AT:
        return {"kind": "pairs", **target, **_most_confused(page, labels, entries, totals, target)}
    ids: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.error is None and r.predicted is not None:
            listed = ids.setdefault((r.expected, r.predicted), [])
            if len(listed) <= _IDS_PER_CELL:
                listed.append(r.case_id)
    counts = {(i, j): count for i, j, count in entries}
    rows = []
    for i, expected in enumerate(labels):
        total = totals[i]
        cells = []
        for j, predicted in enumerate(labels):
            count = counts.get((i, j), 0)
            share = count / total if total else 0.0
            red, green, blue = _DIAGONAL_RGB if i == j else _CONFUSION_RGB
            title = f"expected {expected} → predicted {predicted}: {count} of {total} ({share:.0%})"
            listed = ids.get((expected, predicted), [])
            if listed:
                title += "\n" + ", ".join(listed[:_IDS_PER_CELL])
                if count > _IDS_PER_CELL:
                    title += f" … and {count - _IDS_PER_CELL} more"
            cells.append(
                {
                    "count": count,
                    "percent": f"{share:.0%}" if total else "",
                    "diagonal": i == j,
                    "strong": share >= 0.55,
                    "style": f"background-color: rgba({red}, {green}, {blue}, {share:.3f})",
                    "title": title,
                    "p": page.label(predicted),
                }
            )
        rows.append(
            {
                "label": expected,
                "short": _abbreviate(expected),
                "out_of_set": expected not in declared,
                "total": total,
                "cells": cells,
                "e": page.label(expected),
            }
        )
    columns = [
        {"label": label, "short": _abbreviate(label), "out_of_set": label not in declared}
        for label in labels
    ]
    return {
        "kind": "full",
        **target,
        "dense": len(labels) >= _DENSE_AT,
        "columns": columns,
        "rows": rows,
    }


def _most_confused(
    page: PageData,
    labels: Sequence[str],
    entries: Sequence[tuple[int, int, int]],
    totals: Sequence[int],
    target: Mapping[str, Any],
) -> dict[str, Any]:
    confused = [(i, j, count) for i, j, count in entries if i != j]
    confused.sort(key=lambda cell: (-cell[2], -cell[2] / totals[cell[0]], cell[0], cell[1]))
    columns = [
        {"title": "expected", "kind": "label"},
        {"title": "predicted", "kind": "label"},
        {"title": "cases", "kind": "int"},
        {"title": "share of the expected class", "kind": "pct"},
        {"title": "", "kind": "cases"},
    ]
    rows = [
        [labels[i], labels[j], count, count / totals[i],
         [target["model"], target["task"], page.label(labels[i]), page.label(labels[j])]]
        for i, j, count in confused[:MOST_CONFUSED]
    ]  # fmt: skip
    return {
        "n_classes": len(labels),
        "n_confused_pairs": len(confused),
        "table": page.table(columns, rows),
    }


def _abbreviate(label: str) -> str:
    return label if len(label) <= _HEADER_CHARS else label[: _HEADER_CHARS - 1] + "…"


# -- comparisons -----------------------------------------------------------------------


def cards(numbers_a: Mapping[str, Any], numbers_b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The two models' headline numbers for side-by-side cards."""
    return [
        {
            "accuracy": format_number(n.get("accuracy")),
            "accuracy_ci": format_interval(n.get("accuracy_ci")),
            "macro_f1": format_number(n.get("macro_f1")),
            "macro_f1_ci": format_interval(n.get("macro_f1_ci")),
            "cases": n.get("n_cases", 0),
            "errors": n.get("n_errors", 0),
        }
        for n in (numbers_a, numbers_b)
    ]


def per_class_delta_table(
    page: PageData,
    deltas: Mapping[str, float | None],
    numbers: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """Per-class F1 of A and B and the delta B − A as a diverging bar, worst first."""
    per_a = (numbers[0].get("per_class") or {}) if numbers else {}
    per_b = (numbers[1].get("per_class") or {}) if numbers else {}
    columns: list[dict[str, Any]] = [{"title": "class", "kind": "label"}]
    if numbers:
        columns += [{"title": "F1 A", "kind": "num"}, {"title": "F1 B", "kind": "num"}]
    # bars are drawn to the largest change (at least 0.05), so small deltas stay visible
    largest = max((abs(d) for d in deltas.values() if d is not None), default=0.0)
    columns.append({"title": "B − A", "kind": "delta", "scale": max(largest, 0.05)})
    rows = []
    for label, delta in sorted(deltas.items(), key=lambda item: (item[1] is None, item[1] or 0.0)):
        row: list[Any] = [label]
        if numbers:
            row += [(per_a.get(label) or {}).get("f1"), (per_b.get(label) or {}).get("f1")]
        rows.append([*row, delta])
    return page.table(columns, rows)


def flips_table(page: PageData, flips: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The cases one model got right and the other wrong."""
    columns = [
        {"title": "case", "kind": "label"},
        {"title": "expected", "kind": "label"},
        {"title": "A said", "kind": "label"},
        {"title": "B said", "kind": "label"},
    ]
    rows = [
        [f["case_id"], f["expected"], _said(f["predicted_a"], f.get("error_a")),
         _said(f["predicted_b"], f.get("error_b"))]
        for f in flips
    ]  # fmt: skip
    return page.table(columns, rows)


def _said(predicted: str | None, error: str | None) -> str:
    if predicted is not None:
        return predicted
    return f"error: {error}" if error else "no answer"


def leaderboard_view(page: PageData, board: Mapping[str, Any]) -> dict[str, Any]:
    """A leaderboard: the ranked models, the best against each, the pairwise Holm p-values."""
    versus = {v["model"]: v for v in board["best_against"]}
    models = []
    for entry in board["models"]:
        against = versus.get(entry["model"])
        models.append(
            {
                **entry,
                "best": entry["model"] == board["best"],
                "p_holm": None if against is None else against["p_holm"],
                "worse": None if against is None else against["significantly_better"],
            }
        )
    columns = [
        {"title": "A", "kind": "label"},
        {"title": "B", "kind": "label"},
        {"title": "only A right", "kind": "int"},
        {"title": "only B right", "kind": "int"},
        {"title": "McNemar p", "kind": "p"},
        {"title": "Holm-corrected p", "kind": "p"},
    ]
    rows = [
        [p["model_a"], p["model_b"], p["a_only"], p["b_only"], p["p_value"], p["p_holm"]]
        for p in board["pairs"]
    ]
    return {**board, "models": models, "pairs_table": page.table(columns, rows)}


# -- the run ---------------------------------------------------------------------------

_KEY_NAMES = {
    "plugin_version": "plugin version",
    "pytest_version": "pytest version",
    "model_under_test": "model under test",
    "compare_models": "compared models",
    "record_mode": "record mode",
    "base_url": "base URL",
    "cassette_dir": "cassette directory",
    "case_files": "case files (SHA-256)",
    "max_tokens": "max tokens",
    "top_logprobs": "top log-probs",
    "batch_size": "batch size",
}


def metadata_rows(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of ``{"key", "value", "entries"}`` in words: yes/no, dates, ``—`` for nothing."""
    rows = []
    for key, value in metadata.items():
        entries: list[tuple[str, str]] = []
        if isinstance(value, Mapping):
            entries = [(_KEY_NAMES.get(str(k), str(k)), _in_words(v)) for k, v in value.items()]
            text = "" if entries else "—"
        else:
            text = _in_words(value)
        rows.append({"key": _KEY_NAMES.get(str(key), str(key)), "value": text, "entries": entries})
    return rows


def _in_words(value: Any) -> str:
    if value is None or value == "" or value == [] or value == ():
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_in_words(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    if isinstance(value, str):
        return _date_in_words(value) or value
    return str(value)


def _date_in_words(text: str) -> str | None:
    """``30 Nov 2026, 12:17:41 UTC`` for an ISO timestamp, else ``None``."""
    if len(text) < 19 or text[4:5] != "-" or text[10:11] != "T":
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.utcoffset() == dt.timedelta(0):
        return moment.strftime("%-d %b %Y, %H:%M:%S UTC")
    return (
        moment.strftime("%-d %b %Y, %H:%M:%S %z")
        if moment.tzinfo
        else moment.strftime("%-d %b %Y, %H:%M:%S")
    )
