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

Rendered from the report dict alone (the same dict as the JSON report), see
:mod:`pytest_ftclass.report.html_page` for escaping and the script.  The page,
top to bottom:

1. the gate's verdict (each criterion: passed or failed, its value and bound,
   failures first) and an overview table of tasks × models (cases, errors,
   accuracy and macro-F1 with their 95 % intervals, B − A and McNemar's p for
   a compared model, tokens and cost): the first screen;
2. with ``--ft-compare``, the comparison: per compared model and source, both
   models' cards and heatmaps side by side, per-class F1 deltas as bars, the
   flip lists and McNemar's test, and a leaderboard when several models are
   compared (:mod:`pytest_ftclass.judging.leaderboard`);
3. per model (the model under test first; a model's tasks pooled only when
   they share one label set) and per task: headline tiles; the confusion
   matrix (a heatmap up to 50 classes, shaded by row share, a click on a cell
   shows its cases; above 50, the most-confused pairs); per-class
   precision/recall/F1 bars; the reliability diagram; the coverage–accuracy
   curve of abstaining below a confidence with its table; for binary tasks the
   ROC and precision–recall curves with the model's operating point; slices
   by tag; errored cases;
4. the cases explorer: every case, filtered by model, task, outcome, class,
   expected and predicted label and id, sortable, 50 a page;
5. the run's details, folded, in words.

Tables of more than 20 rows (per class, slices, pairs, flips) show 20, with a
search box and a button for the rest.  Case text appears only when given:
``texts`` maps a case's nodeid to its input text (``render_html(report,
texts=...)``, or a report's ``texts`` entry); without it the explorer shows the
input digest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_ftclass.judging.metrics import group_by_task
from pytest_ftclass.recording.atomic import atomic_write_text
from pytest_ftclass.report import charts
from pytest_ftclass.report.html_page import environment, json_for_script, script
from pytest_ftclass.report.html_views import (
    PageData,
    cards,
    cost_text,
    flips_table,
    headline_tiles,
    heatmap,
    leaderboard_view,
    metadata_rows,
    per_class_delta_table,
    per_class_table,
    slices_table,
    verdict_view,
)
from pytest_ftclass.report.json_report import (
    CHECKPOINT,
    ROLE_TITLES,
    models_of,
    results_from_report,
)
from pytest_ftclass.report.training import training_view
from pytest_ftclass.results import CaseResult

__all__ = ["render_comparison_page", "render_html", "write_html_report"]

_MAX_ERRORED = 200  # errored cases listed per section (all are in the JSON report)


def render_html(
    report: Mapping[str, Any],
    *,
    texts: Mapping[str, str] | None = None,
    results: Sequence[CaseResult] | None = None,
) -> str:
    """The HTML page for a report dict built by :func:`~pytest_ftclass.report.build_report`.

    ``texts`` (nodeid → input text) adds each case's text to the explorer; it
    defaults to the report's own ``texts`` entry, if any.  ``results`` are the
    report's cases as :class:`CaseResult` objects, when the caller holds them
    already (else they are read from ``report["cases"]``).
    """
    from markupsafe import Markup

    if texts is None:
        texts = report.get("texts") or {}
    if results is None:
        results = results_from_report(report)
    page = PageData()
    by_task = group_by_task(results)
    tasks = {str(task.get("task", "")): task for task in report.get("tasks") or []}
    comparison = report.get("comparison")
    sections = _sections(page, report, tasks, by_task, texts)
    blocks = _comparison_blocks(page, comparison, tasks) if comparison else []
    boards = _boards(page, (comparison or {}).get("leaderboards", []))
    code, script_hash = script()
    metadata = report.get("metadata") or {}
    return (
        environment()
        .get_template("report.html")
        .render(
            schema=report.get("schema", ""),
            headline=_run_line(report, results),
            verdict=verdict_view(report.get("gate")),
            gate_present=report.get("gate") is not None,
            overview=_overview(report, comparison),
            comparison=comparison,
            blocks=blocks,
            boards=boards,
            sections=sections,
            models=page.models,
            metadata=metadata_rows(metadata),
            script=code,
            script_hash=script_hash,
            data_json=Markup(json_for_script(page.blob())),
            training=training_view(report),
        )
    )


def write_html_report(
    report: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    texts: Mapping[str, str] | None = None,
    results: Sequence[CaseResult] | None = None,
) -> Path:
    """Render ``report`` and write it atomically to ``path``, creating the directory."""
    return atomic_write_text(path, render_html(report, texts=texts, results=results))


def render_comparison_page(comparison: Mapping[str, Any]) -> str:
    """The comparison page (``ftclass-compare.html``): the report's comparison section, alone."""
    from markupsafe import Markup

    page = PageData()
    blocks = _comparison_blocks(page, comparison, None)
    boards = _boards(page, comparison.get("leaderboards", []))
    code, script_hash = script()
    return (
        environment()
        .get_template("compare.html")
        .render(
            c=comparison,
            blocks=blocks,
            boards=boards,
            script=code,
            script_hash=script_hash,
            data_json=Markup(json_for_script(page.blob())),
        )
    )


def _run_line(report: Mapping[str, Any], results: Sequence[CaseResult]) -> dict[str, Any]:
    """What the page's title line says: the models, how many cases, replayed or live, when."""
    from pytest_ftclass.report.html_views import _date_in_words

    metadata = report.get("metadata") or {}
    models = models_of(report)
    under_test = [m["model"] for m in models if m.get("role") == "under_test"]
    compared = [m["model"] for m in models if m.get("role") == "comparison"]
    checkpoints = {m["model"] for m in models if m.get("role") == CHECKPOINT}
    replayed = sum(1 for r in results if r.replayed)
    if not results:
        answers = ""
    elif replayed == len(results):
        answers = "answers replayed from cassettes"
    elif replayed:
        answers = f"{replayed} of {len(results)} answers replayed from cassettes"
    else:
        answers = "answers asked live"
    when = metadata.get("finished") or metadata.get("started")
    return {
        "under_test": under_test,
        "compared": compared,
        "n_cases": sum(1 for r in results if r.model not in checkpoints),
        "n_checkpoints": len(checkpoints),
        "answers": answers,
        "when": _date_in_words(str(when)) if when else "",
        "partial": bool(metadata.get("partial")),
    }


def _overview(
    report: Mapping[str, Any], comparison: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Rows of tasks × models grouped by source, the model under test first in each group.

    A checkpoint of the ``--ft-job`` job is left out: the job's section shows them.
    """
    versus: dict[tuple[str, str], dict[str, Any]] = {}
    for pair in (comparison or {}).get("pairs", []):
        for source in pair["sources"]:
            versus[(pair["model_b"], source["source"])] = source
    anchors = {name: f"task-{i}" for i, name in enumerate(_task_order(report))}
    # checkpoints are drawn with the fine-tuning job, not here
    tasks = [t for t in report.get("tasks") or [] if t.get("role") != CHECKPOINT]
    sources = list(dict.fromkeys(str(t.get("source", "")) for t in tasks))
    rows = []
    for source in sources:
        for task in [t for t in tasks if str(t.get("source", "")) == source]:
            m = task.get("metrics") or {}
            against = versus.get((task.get("model", ""), source))
            usage = m.get("usage") or {}
            rows.append(
                {
                    "task": task.get("task", ""),
                    "anchor": anchors.get(task.get("task", ""), ""),
                    "source": source,
                    "model": task.get("model", ""),
                    "role": ROLE_TITLES.get(task.get("role", ""), ""),
                    "compared": task.get("role") == "comparison",
                    "n_cases": m.get("n_cases", 0),
                    "n_errors": m.get("n_errors", 0),
                    "accuracy": m.get("accuracy"),
                    "accuracy_ci": m.get("accuracy_ci"),
                    "macro_f1": m.get("macro_f1"),
                    "macro_f1_ci": m.get("macro_f1_ci"),
                    "delta": None if against is None else against["delta"]["accuracy"],
                    "p_value": None if against is None else against["paired"]["p_value"],
                    "tokens": usage.get("total_tokens"),
                    "as_recorded": bool(m.get("n_replayed")) and bool(usage),
                    "cost": cost_text(task.get("cost")),
                }
            )
    return rows


def _task_order(report: Mapping[str, Any]) -> list[str]:
    return [name for model in models_of(report) for name in model.get("tasks", [])]


def _sections(
    page: PageData,
    report: Mapping[str, Any],
    tasks: Mapping[str, Mapping[str, Any]],
    by_task: Mapping[str, Sequence[CaseResult]],
    texts: Mapping[str, str],
) -> list[dict[str, Any]]:
    """One section per model with pooled tasks, then one per task; model under test first."""
    sections: list[dict[str, Any]] = []
    anchors = {name: f"task-{i}" for i, name in enumerate(_task_order(report))}
    for model in models_of(report):
        if model.get("role") == CHECKPOINT:
            continue  # drawn with the fine-tuning job (templates/training.html)
        role = ROLE_TITLES.get(model.get("role", ""), "")
        names = model.get("tasks", [])
        if len(names) > 1 and model.get("metrics") is not None:
            pooled = [r for name in names for r in by_task.get(name, [])]
            sections.append(
                _section(
                    page,
                    title=f"{model['model']}: {len(names)} tasks pooled",
                    subtitle=f"{role} · tasks share one label set",
                    metrics=model["metrics"],
                    results=pooled,
                    anchor=f"model-{len(sections)}",
                    model=model["model"],
                    task=None,
                    cost=model.get("cost"),
                )
            )
        for name in names:
            task = tasks.get(name, {})
            results = by_task.get(name, [])
            metrics = task.get("metrics") or {}
            page.add_cases(results, texts, set(metrics.get("per_class") or {}))
            subtitle = f"{role} · source {task.get('source', '')} · model {task.get('model', '')}"
            if task.get("endpoint"):
                subtitle += f" · endpoint {task['endpoint']}"
            sections.append(
                _section(
                    page,
                    title=name,
                    subtitle=subtitle,
                    metrics=metrics,
                    results=results,
                    anchor=anchors[name],
                    model=model["model"],
                    task=name,
                    cost=task.get("cost"),
                )
            )
    return sections


def _section(
    page: PageData,
    *,
    title: str,
    subtitle: str,
    metrics: Mapping[str, Any],
    results: Sequence[CaseResult],
    anchor: str,
    model: str,
    task: str | None,
    cost: Mapping[str, Any] | None,
) -> dict[str, Any]:
    per_class = metrics.get("per_class") or {}
    errored = [
        {"case_id": r.case_id, "nodeid": r.nodeid, "error": r.error or "no prediction",
         "critical": r.critical}
        for r in results
        if r.error is not None or r.predicted is None
    ]  # fmt: skip
    abstention = metrics.get("abstention")
    curves = (metrics.get("binary") or {}).get("curves")
    return {
        "anchor": anchor,
        "title": title,
        "subtitle": subtitle,
        "metrics": metrics,
        "tiles": headline_tiles(metrics, cost),
        "matrix": heatmap(
            page, metrics.get("confusion_matrix"), set(per_class), results, model=model, task=task
        ),
        "per_class": per_class_table(page, per_class),
        "reliability": charts.reliability(metrics.get("calibration")),
        "abstention": abstention,
        "abstention_chart": charts.abstention_chart(abstention) if abstention else None,
        "roc": charts.roc_chart(curves) if curves else None,
        "pr": charts.pr_chart(curves) if curves else None,
        "curves": curves,
        "slices": slices_table(page, metrics.get("slices") or {}),
        "errored": errored[:_MAX_ERRORED],
        "n_errored": len(errored),
        "model": page.model(model),
        "task": "" if task is None else page.task(task, model),
    }


def _comparison_blocks(
    page: PageData,
    comparison: Mapping[str, Any],
    tasks: Mapping[str, Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    """Per compared model and source: cards, heatmaps, per-class deltas, flips, McNemar.

    ``tasks`` are the report's (whose metrics the heatmaps come from); ``None``
    for the comparison page, whose sources hold both models' full metrics.
    """
    alpha = comparison.get("alpha", 0.05)
    blocks = []
    for pair in comparison.get("pairs", []):
        a, b = pair["model_a"], pair["model_b"]
        for source in pair["sources"]:
            if tasks is None:
                metrics_a, metrics_b = source["metrics_a"], source["metrics_b"]
            else:
                metrics_a = _task_metrics(tasks, source["source"], a)
                metrics_b = _task_metrics(tasks, source["source"], b)
            numbers_a = source.get("a") or metrics_a
            numbers_b = source.get("b") or metrics_b
            paired = source["paired"]
            blocks.append(
                {
                    "source": source["source"],
                    "model_a": a,
                    "model_b": b,
                    "n_shared": source["n_shared"],
                    "cards": cards(numbers_a, numbers_b),
                    "delta": source["delta"],
                    "paired": paired,
                    "verdict": _pair_verdict(paired, alpha),
                    "heatmaps": [
                        heatmap(
                            page,
                            m.get("confusion_matrix"),
                            set(m.get("per_class") or {}),
                            [],
                            model=model,
                            task=None if tasks is None else f"{source['source']} @ {model}",
                        )
                        for m, model in ((metrics_a, a), (metrics_b, b))
                    ],
                    "deltas": per_class_delta_table(
                        page, source["per_class_f1_delta"], (metrics_a, metrics_b)
                    ),
                    "flips_a": flips_table(page, source["flips_a_right"]),
                    "flips_b": flips_table(page, source["flips_b_right"]),
                    "live": [source.get("live_a"), source.get("live_b")],
                }
            )
    return blocks


def _boards(page: PageData, boards: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The leaderboards worth showing: those of three models or more (two are a pair)."""
    return [leaderboard_view(page, board) for board in boards if len(board["models"]) > 2]


def _task_metrics(tasks: Mapping[str, Mapping[str, Any]], source: str, model: str) -> dict:
    for task in tasks.values():
        if task.get("source") == source and task.get("model") == model:
            return dict(task.get("metrics") or {})
    return {}


def _pair_verdict(paired: Mapping[str, Any], alpha: float) -> str:
    p = paired["p_value"]
    if p >= alpha or paired["a_only"] == paired["b_only"]:
        return f"no significant difference at {alpha:g} (McNemar p = {p:.3g})"
    better = "B" if paired["b_only"] > paired["a_only"] else "A"
    return f"{better} is significantly better at {alpha:g} (McNemar p = {p:.3g})"
