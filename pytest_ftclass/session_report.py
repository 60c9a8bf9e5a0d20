"""The run's report: collects per-case results from test reports and writes them out.

Lives only in the controlling process (as pytest's junitxml reporter does), so
results sent by pytest-xdist workers arrive through the same
``pytest_runtest_logreport`` as local ones.  At session end it builds the JSON
report (metadata, every case, the metrics), writes it and the HTML report to
``ft_report_dir`` and shows a summary in the terminal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest

from .options import Settings

PROPERTY = "ftclass"
JSON_NAME = "ftclass.json"
HTML_NAME = "ftclass.html"


class ReportCollector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.results: dict[str, dict[str, Any]] = {}
        self.started = dt.datetime.now(dt.timezone.utc)
        self.report: dict[str, Any] | None = None
        self.written: list[Path] = []
        self.sources: dict[str, Path] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == PROPERTY and isinstance(value, dict):
                # later phases carry the outcome; the last one seen wins
                self.results[report.nodeid] = dict(value)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        path = getattr(report, "fspath", None)
        if path and report.passed and str(path).endswith((".jsonl", ".csv")):
            self.sources[str(path)] = Path(str(path))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.results:
            return
        from .report import build_report, write_html_report, write_json_report
        from .results import CaseResult

        results = [CaseResult.from_dict(data) for data in self.results.values()]
        self.report = build_report(results, self.metadata(session, results))
        if self.settings.report:
            directory = self.settings.report_dir
            json_path, html_path = directory / JSON_NAME, directory / HTML_NAME
            write_json_report(self.report, json_path)
            write_html_report(self.report, html_path)
            self.written = [json_path, html_path]

    def metadata(self, session: pytest.Session, results: list[Any]) -> dict[str, Any]:
        from . import __version__

        settings = self.settings
        models = sorted({r.model for r in results})
        endpoints = sorted({r.endpoint for r in results})
        return {
            "plugin_version": __version__,
            "pytest_version": pytest.__version__,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "models": models,
            "endpoints": endpoints,
            "record_mode": settings.record_mode,
            "base_url": _without_credentials(settings.base_url),
            "cassette_dir": _display_path(settings.cassette_dir, settings.rootdir),
            "case_files": {
                _display_path(path, settings.rootdir): _file_digest(path)
                for path in sorted(self.sources.values())
            },
            "settings": {
                "max_tokens": settings.max_tokens,
                "top_logprobs": settings.top_logprobs,
                "batch_size": settings.batch_size,
                "strict": settings.strict,
            },
        }

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is None:
            return
        from .report import summary_lines

        terminalreporter.section("ftclass")
        for line in summary_lines(self.report):
            terminalreporter.write_line(line)
        for path in self.written:
            terminalreporter.write_line(f"report written to {_display_path(path, Path.cwd())}")


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _display_path(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _without_credentials(url: str | None) -> str | None:
    if not url or "@" not in url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
