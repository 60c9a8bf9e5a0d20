"""Fine-tunes compared, shown: terminal lines, the report's summary, a JSON file and an HTML page.

The numbers come from :func:`pytest_ftclass.judging.compare.compare_runs`;
:func:`compare_reports` compares the models under test of several JSON reports
(``ftclass compare A.json B.json [C.json ...]``), the first being the reference.

>>> from pytest_ftclass.judging.compare import compare_runs
>>> from pytest_ftclass.results import CaseResult
>>> def run(model, answers):
...     return [CaseResult(f"c{i}", f"n{i}", "v.jsonl", model, "chat", "a", p, labels=["a", "b"])
...             for i, p in enumerate(answers)]
>>> comparison = compare_runs({"A": run("A", "aaab"), "B": run("B", "abbb")})
>>> print("\\n".join(summary_lines(comparison)[:2]))
comparison: A = A, B = B
v.jsonl: accuracy A 0.750 vs B 0.250 (B − A -0.500), 2 only A right, 0 only B right, McNemar p=0.5
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_ftclass.judging.compare import compare_runs
from pytest_ftclass.report.json_report import tested_results

__all__ = [
    "compare_reports",
    "comparison_summary",
    "render_comparison_html",
    "summary_lines",
    "write_comparison",
]

#: The numbers of each model kept in the report's summary of a comparison.
HEADLINE_NUMBERS = (
    "n_cases", "n_scored", "n_errors", "n_correct", "accuracy", "accuracy_ci", "macro_f1",
    "macro_f1_ci", "weighted_f1",
)  # fmt: skip


def compare_reports(reports: Sequence[Mapping[str, Any]], *, alpha: float = 0.05) -> dict[str, Any]:
    """Compare the models under test of several JSON reports (their compared models left out).

    Each report's runs are named by its model under test; a name already taken
    gets the report's position (``#2``) so two runs of one model stay apart.
    """
    runs: dict[str, list[Any]] = {}
    for position, report in enumerate(reports, start=1):
        results = tested_results(report)
        models = sorted({r.model for r in results})
        name = ", ".join(models) or f"report #{position}"
        if name in runs:
            name = f"{name} #{position}"
        runs[name] = results
    return compare_runs(runs, alpha=alpha)


def comparison_summary(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """What the main report keeps of a comparison: all of it but the models' full metrics.

    Each source of each pair keeps ``a`` and ``b`` (:data:`HEADLINE_NUMBERS`)
    instead of ``metrics_a`` and ``metrics_b``: the report's tasks hold those.
    """
    pairs = []
    for pair in comparison.get("pairs", []):
        sources = []
        for source in pair["sources"]:
            slim = {k: v for k, v in source.items() if k not in ("metrics_a", "metrics_b")}
            slim["a"] = {k: source["metrics_a"].get(k) for k in HEADLINE_NUMBERS}
            slim["b"] = {k: source["metrics_b"].get(k) for k in HEADLINE_NUMBERS}
            sources.append(slim)
        pairs.append({**pair, "sources": sources})
    return {**comparison, "pairs": pairs}


def render_comparison_html(comparison: Mapping[str, Any]) -> str:
    """The comparison as one self-contained HTML page, styled as the report (autoescaped)."""
    from pytest_ftclass.report.html_report import render_comparison_page

    return render_comparison_page(comparison)


def write_comparison(
    comparison: Mapping[str, Any], directory: Path, stem: str = "ftclass-compare"
) -> list[Path]:
    """Write ``<stem>.json`` and ``<stem>.html`` into ``directory``."""
    import json

    from pytest_ftclass.recording.atomic import atomic_write_text

    json_path = atomic_write_text(
        directory / f"{stem}.json", json.dumps(comparison, indent=2, ensure_ascii=False) + "\n"
    )
    html_path = atomic_write_text(directory / f"{stem}.html", render_comparison_html(comparison))
    return [json_path, html_path]


def summary_lines(comparison: Mapping[str, Any], *, max_listed: int = 10) -> list[str]:
    """Terminal lines: per pair and source the deltas, the test and the first flips; the boards."""
    lines = []
    for pair in comparison.get("pairs", []):
        lines += _pair_lines(pair, max_listed)
    for board in comparison.get("leaderboards", []):
        if len(board["models"]) > 2:
            lines += _board_lines(board)
    return lines


def _pair_lines(pair: Mapping[str, Any], max_listed: int) -> list[str]:
    a, b = pair["model_a"], pair["model_b"]
    lines = [f"comparison: A = {a}, B = {b}"]
    for source in pair["sources"]:
        p = source["paired"]
        numbers_a = source.get("a") or source.get("metrics_a") or {}
        numbers_b = source.get("b") or source.get("metrics_b") or {}
        delta = _fmt(source["delta"]["accuracy"], sign=True)
        lines.append(
            f"{source['source']}: accuracy A {_fmt(numbers_a.get('accuracy'))} vs B "
            f"{_fmt(numbers_b.get('accuracy'))} (B − A {delta}), "
            f"{p['a_only']} only A right, {p['b_only']} only B right, McNemar p={p['p_value']:.3g}"
        )
        for label, flips in (
            ("A right, B wrong", source["flips_a_right"]),
            ("B right, A wrong", source["flips_b_right"]),
        ):
            for flip in flips[:max_listed]:
                lines.append(
                    f"  {label}: {flip['case_id']}: expected {flip['expected']!r}, "
                    f"A {flip['predicted_a']!r}, B {flip['predicted_b']!r}"
                )
            if len(flips) > max_listed:
                lines.append(f"  … and {len(flips) - max_listed} more ({label})")
    for side in ("only_in_a", "only_in_b"):
        if pair[side]:
            listed = ", ".join(pair[side][:5])
            lines.append(f"{len(pair[side])} cases {side.replace('_', ' ')}: {listed}")
    return lines


def _board_lines(board: Mapping[str, Any]) -> list[str]:
    lines = [f"leaderboard {board['source']} ({board['n_shared']} shared cases):"]
    for entry in board["models"]:
        lines.append(
            f"  {entry['rank']}. {entry['model']}: accuracy {_fmt(entry['accuracy'])}, "
            f"macro-F1 {_fmt(entry['macro_f1'])}"
        )
    for versus in board["best_against"]:
        verdict = "significantly better" if versus["significantly_better"] else "not significant"
        lines.append(
            f"  {board['best']} vs {versus['model']}: Holm-corrected p={versus['p_holm']:.3g} "
            f"({verdict} at {board['alpha']:g})"
        )
    return lines


def _fmt(value: Any, *, sign: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    return f"{value:+.3f}" if sign else f"{value:.3f}"
