"""The Markdown report: a short summary for pull requests and GitHub's job summary.

>>> from pytest_ftclass.results import CaseResult
>>> from pytest_ftclass.report.json_report import build_report
>>> results = [
...     CaseResult("c1", "t::c1", "valid.jsonl", "ft:m", "chat", "spam", "spam",
...                labels=["ham", "spam"]),
...     CaseResult("c|2", "t::c2", "valid.jsonl", "ft:m", "chat", "ham", "<b>spam</b>",
...                labels=["ham", "spam"], logprobs={"<b>spam</b>": -0.2}),
... ]
>>> text = render_markdown(build_report(results, {}, model_under_test="ft:m"))
>>> print(text.splitlines()[0])
## ftclass: valid.jsonl @ ft:m
>>> "c\\\\|2" in text and "&lt;b&gt;spam&lt;/b&gt;" in text and "<b>" not in text
True

The gate's verdicts first; then, with several tasks, an overview table of
tasks × models; with ``--ft-compare``, the comparison (per compared model and
source: both models' accuracy and macro-F1, the deltas B − A, the cases only
one gets right, McNemar's p, the flips and the largest per-class F1 changes)
and, with several compared models, the leaderboards; then per model (the
model under test first, nothing pooled across models; a model's tasks pooled
only when they share one label set) and per task: a headline table (accuracy
and macro-F1 with their 95 % intervals, weighted-F1, errors, out-of-set
predictions, the calibration numbers when known, tokens and cost), the
per-class table (the :data:`MAX_CLASSES` lowest F1 when there are more) and
the most confident mispredictions (top ``max_listed``).  Case ids, labels and
task names are user data: HTML special characters become entities and
Markdown punctuation is backslash-escaped, so a label cannot inject markup
into a job summary.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_ftclass.judging.metrics import confidence, group_by_task
from pytest_ftclass.recording.atomic import atomic_write_text
from pytest_ftclass.report.html_page import format_interval
from pytest_ftclass.report.html_page import format_number as _num
from pytest_ftclass.report.html_page import format_signed as _signed
from pytest_ftclass.report.json_report import (
    CHECKPOINT,
    COMPARISON,
    ROLE_TITLES,
    models_of,
    results_from_report,
)
from pytest_ftclass.report.training import markdown_section
from pytest_ftclass.results import CaseResult

__all__ = ["append_step_summary", "render_markdown", "write_markdown_report"]

STEP_SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"
MAX_CLASSES = 50  # per-class rows of a task; above, the classes with the lowest F1
MAX_FLIPS = 20  # flips listed per source and direction
# emphasis, code, links, tables and strikethrough; HTML is handled by entities
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")


def render_markdown(
    report: Mapping[str, Any],
    *,
    max_listed: int = 10,
    results: Sequence[CaseResult] | None = None,
) -> str:
    """The Markdown summary of a report dict (ends with a newline).

    ``results`` are the report's cases as :class:`CaseResult` objects, when the caller
    holds them already (else they are read from ``report["cases"]``).
    """
    tasks = {str(task.get("task", "")): task for task in report.get("tasks") or []}
    if not tasks:
        return "## ftclass\n\nNo cases were run.\n" + _gate(report)
    by_task = group_by_task(results_from_report(report) if results is None else results)
    parts: list[str] = [_gate(report)] if report.get("gate") else []
    if len(tasks) > 1:
        parts.append(_overview(report))
    comparison = report.get("comparison")
    if comparison:
        parts += [_pair(pair, max_listed) for pair in comparison.get("pairs", [])]
        parts += [_board(b) for b in comparison.get("leaderboards", []) if len(b["models"]) > 2]
    for model in models_of(report):
        role = model.get("role", "")
        if role == CHECKPOINT:
            continue  # the fine-tuning section sums the checkpoints up
        names = model.get("tasks", [])
        if len(names) > 1:
            pooled = model.get("metrics")
            title = f"{ROLE_TITLES.get(role, role)} {model['model']}, {len(names)} tasks"
            if pooled is None:
                parts.append(f"## ftclass: {escape(title)}\n\nLabel sets differ: not pooled.\n")
            else:
                parts.append(_section(title + " pooled", pooled, [], 0))
        for name in names:
            listed = 0 if role == COMPARISON else max_listed
            task = tasks.get(name, {})
            title = name if role != COMPARISON else f"{name} (comparison model)"
            section = _section(title, task.get("metrics") or {}, by_task.get(name, []), listed)
            parts.append(section + _cost_line(task.get("cost")))
    training = markdown_section(report, escape)  # the --ft-job job, if any
    if training:
        parts.append(training)
    return "\n".join(parts)


def _gate(report: Mapping[str, Any]) -> str:
    gate = report.get("gate")
    if not gate or not (gate.get("configured") or gate.get("verdicts")):
        return ""
    verdict = "passed" if gate.get("passed") else "**FAILED**"
    lines = [f"## Quality gate: {verdict}", ""]
    for v in gate.get("verdicts", []):
        value = "n/a" if v.get("value") is None else f"{v['value']:.4g}"
        bound = "" if v.get("bound") is None else f" (needs {v.get('op', '')} {v['bound']:g})"
        mark = "✅" if v.get("passed") else "❌"
        detail = f": {escape(v['detail'])}" if v.get("detail") else ""
        lines.append(
            f"- {mark} {escape(v['criterion'])} = {value}{bound} — {escape(v['scope'])}{detail}"
        )
    return "\n".join(lines) + "\n"


def write_markdown_report(
    report: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    results: Sequence[CaseResult] | None = None,
) -> Path:
    """Render ``report`` as Markdown and write it atomically to ``path``."""
    return atomic_write_text(path, render_markdown(report, results=results))


def append_step_summary(
    report: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Path | None:
    """Append the Markdown to the file named by ``$GITHUB_STEP_SUMMARY``, if that is set.

    ``environ`` defaults to ``os.environ``.  Returns the file written, or ``None``.

    >>> append_step_summary({"tasks": []}, environ={}) is None
    True
    """
    environ = os.environ if environ is None else environ
    target = environ.get(STEP_SUMMARY_VARIABLE)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(render_markdown(report) + "\n")
    return path


def escape(text: object) -> str:
    """``text`` safe in a Markdown table cell: entities for HTML, backslashes for Markdown.

    >>> escape("a|b <i>*x*</i>")
    'a\\\\|b &lt;i&gt;\\\\*x\\\\*&lt;/i&gt;'
    """
    value = " ".join(str(text).split())
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(value, quote=False))


def _with_ci(value: float | None, interval: Sequence[float] | None) -> str:
    if value is None or not interval:
        return _num(value)
    return f"{_num(value)} ({format_interval(interval)})"


def _section(
    name: str, m: Mapping[str, Any], results: Sequence[CaseResult], max_listed: int
) -> str:
    lines = [f"## ftclass: {escape(name)}", ""]
    rows = [
        ("accuracy (95 % CI)", _with_ci(m.get("accuracy"), m.get("accuracy_ci"))),
        ("macro-F1 (95 % CI)", _with_ci(m.get("macro_f1"), m.get("macro_f1_ci"))),
        ("weighted-F1", _num(m.get("weighted_f1"))),
        ("cases", f"{m.get('n_cases', 0)} ({m.get('n_correct', 0)} correct, "
                  f"{m.get('n_mispredicted', 0)} mispredicted, {m.get('n_errors', 0)} errors)"),
    ]  # fmt: skip
    if m.get("n_out_of_set"):
        rows.append(("out of label set", str(m["n_out_of_set"])))
    binary = m.get("binary")
    if binary:
        rows.append(
            (
                f"positive class {escape(binary['positive_class'])}",
                f"P {_num(binary['precision'])} · R {_num(binary['recall'])} · "
                f"F1 {_num(binary['f1'])} · AUROC {_num(binary['auroc'])}",
            )
        )
    if m.get("n_with_probabilities"):
        rows.append(
            (
                "calibration",
                f"log loss {_num(m.get('log_loss'))} · Brier {_num(m.get('brier_score'))}"
                f" · ECE {_num(m.get('ece'))}",
            )
        )
    usage = m.get("usage")
    if usage:
        recorded = " (as recorded)" if m.get("n_replayed") else ""
        rows.append(("tokens", f"{usage['total_tokens']:,}{recorded}"))
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [f"| {label} | {value} |" for label, value in rows]
    per_class = m.get("per_class") or {}
    shown = list(per_class.items())
    if len(shown) > MAX_CLASSES:
        shown = sorted(shown, key=lambda item: item[1]["f1"])[:MAX_CLASSES]
    if per_class:
        lines.append("")
        if len(shown) < len(per_class):
            lines += [f"The {MAX_CLASSES} classes with the lowest F1, of {len(per_class)}:", ""]
        lines += [
            "| class | precision | recall | F1 | support |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for label, numbers in shown:
            lines.append(
                f"| {escape(label)} | {_num(numbers['precision'])} | {_num(numbers['recall'])}"
                f" | {_num(numbers['f1'])} | {numbers['support']} |"
            )
    wrong = [r for r in results if r.error is None and r.predicted is not None and not r.correct]
    if wrong and max_listed:
        wrong.sort(key=lambda r: -(confidence(r) or 0.0))
        lines += [
            "",
            f"Most confident mispredictions ({min(len(wrong), max_listed)} of {len(wrong)}):",
            "",
            "| case | expected | predicted | confidence |",
            "| --- | --- | --- | ---: |",
        ]
        for r in wrong[:max_listed]:
            lines.append(
                f"| {escape(r.case_id)} | {escape(r.expected)} | {escape(r.predicted)}"
                f" | {_num(confidence(r))} |"
            )
    return "\n".join(lines) + "\n"


def _cost_line(cost: Mapping[str, Any] | None) -> str:
    if not cost:
        return ""
    price = cost["price"]
    return (
        f"\nEstimated cost: ${cost['usd']:.4g} (at ${price['input_per_million']:g} in and "
        f"${price['output_per_million']:g} out per million tokens)\n"
    )


def _overview(report: Mapping[str, Any]) -> str:
    """Tasks × models: cases, errors, accuracy and macro-F1 with their intervals, B − A and p."""
    versus = {}
    for pair in (report.get("comparison") or {}).get("pairs", []):
        for source in pair["sources"]:
            versus[(pair["model_b"], source["source"])] = source
    lines = [
        "## ftclass: overview",
        "",
        "| task | model | cases | errors | accuracy (95 % CI) | macro-F1 (95 % CI) "
        "| B − A accuracy | McNemar p |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    tasks = [t for t in report.get("tasks") or [] if t.get("role") != CHECKPOINT]
    for source in dict.fromkeys(str(t.get("source", "")) for t in tasks):
        for task in (t for t in tasks if str(t.get("source", "")) == source):
            m = task.get("metrics") or {}
            against = versus.get((task.get("model", ""), source))
            role = ROLE_TITLES.get(task.get("role", ""), "")
            delta = _signed(against["delta"]["accuracy"]) if against else ""
            p_value = f"{against['paired']['p_value']:.3g}" if against else ""
            lines.append(
                f"| {escape(source)} | {escape(task.get('model', ''))} ({role}) "
                f"| {m.get('n_cases', 0)} | {m.get('n_errors', 0)} "
                f"| {_with_ci(m.get('accuracy'), m.get('accuracy_ci'))} "
                f"| {_with_ci(m.get('macro_f1'), m.get('macro_f1_ci'))} "
                f"| {delta} | {p_value} |"
            )
    return "\n".join(lines) + "\n"


def _pair(pair: Mapping[str, Any], max_listed: int) -> str:
    """One compared model against the model under test: numbers, McNemar, flips, class changes."""
    a, b = pair["model_a"], pair["model_b"]
    lines = [
        f"## ftclass: comparison, {escape(b)} against {escape(a)}",
        "",
        f"A = {escape(a)}, B = {escape(b)}. McNemar's exact test (two-sided) on the cases "
        "one model gets right and the other wrong.",
        "",
        "| source | accuracy A | accuracy B | B − A | macro-F1 A | macro-F1 B | B − A "
        "| only A right | only B right | McNemar p |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for source in pair["sources"]:
        na, nb, paired = source.get("a") or {}, source.get("b") or {}, source["paired"]
        lines.append(
            f"| {escape(source['source'])} | {_num(na.get('accuracy'))} "
            f"| {_num(nb.get('accuracy'))} | {_signed(source['delta']['accuracy'])} "
            f"| {_num(na.get('macro_f1'))} | {_num(nb.get('macro_f1'))} "
            f"| {_signed(source['delta']['macro_f1'])} | {paired['a_only']} | {paired['b_only']} "
            f"| {paired['p_value']:.3g} |"
        )
    for source in pair["sources"]:
        lines += _flips(source, max(max_listed, MAX_FLIPS))
    return "\n".join(lines) + "\n"


def _flips(source: Mapping[str, Any], limit: int) -> list[str]:
    lines = []
    changes = sorted(
        ((label, d) for label, d in source["per_class_f1_delta"].items() if d),
        key=lambda item: -abs(item[1]),
    )[:5]
    if changes:
        listed = ", ".join(f"{escape(label)} {_signed(d)}" for label, d in changes)
        lines += ["", f"{escape(source['source'])}, largest per-class F1 changes (B − A): {listed}"]
    for title, flips in (
        ("only A right", source["flips_a_right"]),
        ("only B right", source["flips_b_right"]),
    ):
        if not flips:
            continue
        lines += [
            "",
            f"<details><summary>{escape(source['source'])}: {len(flips)} cases {title}</summary>",
            "",
            "| case | expected | A said | B said |",
            "| --- | --- | --- | --- |",
        ]
        for flip in flips[:limit]:
            lines.append(
                f"| {escape(flip['case_id'])} | {escape(flip['expected'])} "
                f"| {escape(_said(flip['predicted_a'], flip.get('error_a')))} "
                f"| {escape(_said(flip['predicted_b'], flip.get('error_b')))} |"
            )
        if len(flips) > limit:
            lines.append(f"| … and {len(flips) - limit} more | | | |")
        lines += ["", "</details>"]
    return lines


def _said(predicted: str | None, error: str | None) -> str:
    if predicted is not None:
        return predicted
    return "error" if error else "no answer"


def _board(board: Mapping[str, Any]) -> str:
    """A leaderboard: the ranked models and whether the best is significantly better (Holm)."""
    versus = {v["model"]: v for v in board["best_against"]}
    lines = [
        f"## ftclass: leaderboard, {escape(board['source'])}",
        "",
        f"{board['n_shared']} cases every model answered; McNemar p-values Holm-corrected over "
        f"{len(board['pairs'])} pairs, level {board['alpha']:g}.",
        "",
        "| rank | model | accuracy (95 % CI) | macro-F1 (95 % CI) | the best against it |",
        "| ---: | --- | ---: | ---: | --- |",
    ]
    for entry in board["models"]:
        against = versus.get(entry["model"])
        if against is None:
            verdict = "best"
        else:
            word = "better" if against["significantly_better"] else "not significantly better"
            verdict = f"{word} (Holm p = {against['p_holm']:.3g})"
        lines.append(
            f"| {entry['rank']} | {escape(entry['model'])} "
            f"| {_with_ci(entry['accuracy'], entry['accuracy_ci'])} "
            f"| {_with_ci(entry['macro_f1'], entry['macro_f1_ci'])} | {verdict} |"
        )
    return "\n".join(lines) + "\n"
