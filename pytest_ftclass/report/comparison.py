"""The comparison of two models, shown: terminal lines, a JSON file and an HTML page.

The numbers come from :func:`pytest_ftclass.judging.compare.compare_results`;
:func:`compare_reports` compares the models under test of two JSON reports
(``ftclass compare A.json B.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_ftclass.judging.compare import compare_results
from pytest_ftclass.report.json_report import tested_results

_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def compare_reports(report_a: Mapping[str, Any], report_b: Mapping[str, Any]) -> dict[str, Any]:
    """Compare the models under test of two JSON reports (their comparison models left out)."""
    return compare_results(tested_results(report_a), tested_results(report_b))


def render_comparison_html(comparison: Mapping[str, Any]) -> str:
    """The comparison as one self-contained HTML page (autoescaped)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("compare.html").render(c=comparison)


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
    """Terminal lines: per source, the headline deltas, the test and the first flips."""
    a, b = comparison["model_a"], comparison["model_b"]
    lines = [f"comparison: A = {a}, B = {b}"]
    for source in comparison["sources"]:
        p = source["paired"]
        acc_a, acc_b = source["metrics_a"].get("accuracy"), source["metrics_b"].get("accuracy")
        lines.append(
            f"{source['source']}: accuracy A {_fmt(acc_a)} vs B {_fmt(acc_b)} "
            f"(delta {_fmt(source['delta']['accuracy'], sign=True)}), "
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
        if comparison[side]:
            listed = ", ".join(comparison[side][:5])
            lines.append(f"{len(comparison[side])} cases {side.replace('_', ' ')}: {listed}")
    return lines


def _fmt(value: Any, *, sign: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    return f"{value:+.3f}" if sign else f"{value:.3f}"
