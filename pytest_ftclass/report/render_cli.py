"""Re-render the HTML and Markdown reports from a JSON report (``ftclass report RUN.json``).

>>> import pathlib, tempfile
>>> from pytest_ftclass.results import CaseResult
>>> from pytest_ftclass.report import build_report, write_json_report
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> results = [CaseResult("c1", "t::c1", "v.jsonl", "m", "chat", "a", "b", labels=["a", "b"])]
>>> path = write_json_report(build_report(results, {}), out / "run.json")
>>> [p.name for p in render_from_json(path)]
['run.html', 'run.md']
"""

from __future__ import annotations

import os
from pathlib import Path

from pytest_ftclass.report.html_report import write_html_report
from pytest_ftclass.report.json_report import load_report
from pytest_ftclass.report.markdown import write_markdown_report

__all__ = ["render_from_json"]


def render_from_json(
    json_path: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Write ``<stem>.html`` and ``<stem>.md`` for the JSON report at ``json_path``.

    They go to ``out_dir`` (created if needed), by default next to the JSON
    file.  Case texts are shown only if the JSON report holds them (a ``texts``
    entry).  Raises ``ValueError`` if the file is not an ftclass report.
    """
    source = Path(json_path)
    report = load_report(source)
    directory = source.parent if out_dir is None else Path(out_dir)
    return [
        write_html_report(report, directory / f"{source.stem}.html"),
        write_markdown_report(report, directory / f"{source.stem}.md"),
    ]
