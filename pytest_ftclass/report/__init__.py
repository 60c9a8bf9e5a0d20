"""Reports built from per-case results: JSON (for machines), HTML (for people), terminal lines.

>>> import pathlib, tempfile
>>> from pytest_ftclass.results import CaseResult
>>> from pytest_ftclass.report import build_report, write_html_report, write_json_report
>>> results = [CaseResult("c1", "t::c1", "valid.jsonl", "ft:m", "completions",
...                       expected="sport", predicted="sport", labels=["sport", "tech"])]
>>> report = build_report(results, {"command": "pytest --ft-model=ft:m"}, model_under_test="ft:m")
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> write_json_report(report, out / "report.json").name
'report.json'
>>> write_html_report(report, out / "report.html").name
'report.html'

Importing this package is cheap: jinja2 and numpy are imported only when a
report is rendered or metrics are computed (scikit-learn never).
"""

from __future__ import annotations

from pytest_ftclass.report.html_report import render_html, write_html_report
from pytest_ftclass.report.json_report import (
    SCHEMA,
    build_report,
    load_report,
    results_from_report,
    tested_results,
    write_json_report,
)
from pytest_ftclass.report.junit import junit_properties
from pytest_ftclass.report.markdown import (
    append_step_summary,
    render_markdown,
    write_markdown_report,
)
from pytest_ftclass.report.render_cli import render_from_json
from pytest_ftclass.report.terminal import summary_lines

__all__ = [
    "SCHEMA",
    "append_step_summary",
    "build_report",
    "junit_properties",
    "load_report",
    "render_from_json",
    "render_html",
    "render_markdown",
    "results_from_report",
    "summary_lines",
    "tested_results",
    "write_html_report",
    "write_json_report",
    "write_markdown_report",
]
