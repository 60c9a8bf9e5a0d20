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
from .redaction import public_url

REPORT_ATTRIBUTE = "ftclass_result"
JSON_NAME = "ftclass.json"
HTML_NAME = "ftclass.html"
MARKDOWN_NAME = "ftclass.md"


class ReportCollector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.results: dict[str, dict[str, Any]] = {}
        self.texts: dict[str, str] = {}  # nodeid → input text, with ``ft_report_text``
        self.started = dt.datetime.now(dt.timezone.utc)
        self.report: dict[str, Any] | None = None
        self.written: list[Path] = []
        self.failed: set[str] = set()
        self.interrupted = False
        self.gate: Any = None
        self.comparison: dict[str, Any] | None = None
        self.case_results: list[Any] | None = None  # the report's cases, as CaseResult
        self.metrics_helper: Any = None  # a MetricsProcess loading scikit-learn meanwhile

    def prepare_metrics(self, n_cases: int) -> None:
        """Have scikit-learn loaded in a helper process while the ``n_cases`` cases run."""
        from .metrics_process import MetricsProcess

        if self.metrics_helper is None:
            self.metrics_helper = MetricsProcess.start(n_cases)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = getattr(report, REPORT_ATTRIBUTE, None)
        if isinstance(result, dict):
            # a failed teardown sends the result again, as an error: the last one seen wins
            self.results[report.nodeid] = result
            text = result.pop("text", None)  # travels with the result, kept apart from it
            if text:
                self.texts[report.nodeid] = text
        if report.failed:
            self.failed.add(report.nodeid)

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        if not self.results:
            return
        from .metrics import metrics_of_groups
        from .report import (
            append_step_summary,
            build_report,
            write_html_report,
            write_json_report,
            write_markdown_report,
        )
        from .results import CaseResult

        helper = self.metrics_helper  # scikit-learn loaded there while the cases ran
        metrics_of = metrics_of_groups if helper is None else helper.metrics_of
        # Ordered by node id, so the report does not depend on the order reports arrived in
        # (pytest-xdist interleaves them).
        cases = [self.results[nodeid] for nodeid in sorted(self.results)]
        results = [CaseResult.from_dict(case) for case in cases]
        self.report = build_report(
            results,
            self.metadata(session, results),
            positive_class=self.settings.positive_class,
            texts=self.texts or None,
            cases=cases,  # already CaseResult.to_dict()'s shape: no second copy of each
            metrics_of=metrics_of,
        )
        self.gate = self.judge(session, self.report)
        settings = self.settings
        if settings.compare:
            from .compare import compare_results, split_by_model

            results_a, results_b = split_by_model(results, settings.model, settings.compare)
            self.comparison = compare_results(
                results_a,
                results_b,
                name_a=settings.model,
                name_b=settings.compare,
                metrics_of=metrics_of,
            )
        if settings.report:
            directory = settings.report_dir
            json_path, html_path = directory / JSON_NAME, directory / HTML_NAME
            markdown_path = directory / MARKDOWN_NAME
            write_json_report(self.report, json_path)
            write_html_report(self.report, html_path, results=results)
            write_markdown_report(self.report, markdown_path, results=results)
            self.written = [json_path, html_path, markdown_path]
            if self.comparison is not None:
                from .compare import write_comparison

                self.written += write_comparison(self.comparison, directory)
        if settings.save_baseline is not None:
            self.written.append(write_json_report(self.report, settings.save_baseline))
        summary = append_step_summary(self.report)
        if summary is not None:
            self.written.append(summary)
        self._junit_properties(session.config)
        self.case_results = results

    def _junit_properties(self, config: pytest.Config) -> None:
        """Metrics as properties of the JUnit XML test suite, when ``--junitxml`` is on."""
        from _pytest.junitxml import xml_key

        xml = config.stash.get(xml_key, None)
        if xml is None or self.report is None:
            return
        from .report import junit_properties

        for name, value in junit_properties(self.report):
            xml.add_global_property(name, value)

    def judge(self, session: pytest.Session, report: dict[str, Any]) -> Any:
        """Evaluate the gate, record it in the report and set the exit status from it."""
        from .gate import GateConfig, evaluate_gate

        settings = self.settings
        baseline = None
        if settings.baseline is not None:
            from .report import load_report

            baseline = load_report(settings.baseline)
        config = GateConfig(
            minimums=settings.min,
            maximums=settings.max,
            max_errors=settings.max_errors,
            max_drops=settings.max_drop,
            baseline=baseline,
            significance=settings.significance,
            compare_model=settings.compare,
            gate_compare=settings.gate_compare,
        )
        gate = evaluate_gate(report, config)
        report["gate"] = gate.to_dict()
        if gate.configured:
            if not gate.passed:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            elif (
                session.exitstatus == pytest.ExitCode.TESTS_FAILED and self._only_budgeted_errors()
            ):
                # The gate passed and every failure was an API/parse error within its budget.
                session.exitstatus = pytest.ExitCode.OK
        return gate

    def _only_budgeted_errors(self) -> bool:
        prediction_errors = {
            nodeid for nodeid, data in self.results.items() if data.get("outcome") == "error"
        }
        return bool(self.failed) and self.failed <= prediction_errors

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
            "partial": self.interrupted,
            "base_url": public_url(settings.base_url),  # no userinfo, no query
            "cassette_dir": _display_path(settings.cassette_dir, settings.rootdir),
            # sources that are files: their path from the rootdir and a digest of their bytes
            "case_files": {
                source: _file_digest(settings.rootdir / source)
                for source in sorted({r.source for r in results})
                if (settings.rootdir / source).is_file()
            },
            "settings": {
                "max_tokens": "auto" if settings.max_tokens is None else settings.max_tokens,
                "top_logprobs": settings.top_logprobs,
                "batch_size": settings.batch_size,
                "strict": settings.strict,
            },
        }

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is None:
            return
        from .report import summary_lines

        if self.interrupted:
            terminalreporter.section("ftclass (partial: interrupted)", yellow=True)
            terminalreporter.write_line(
                f"PARTIAL: the run was interrupted; these metrics cover the "
                f"{len(self.results)} cases that finished"
            )
        else:
            terminalreporter.section("ftclass")
        for line in summary_lines(self.report, results=self.case_results):
            terminalreporter.write_line(line)
        if self.comparison is not None:
            from .compare import summary_lines as comparison_lines

            terminalreporter.section("ftclass comparison")
            for line in comparison_lines(self.comparison):
                terminalreporter.write_line(line)
        self._write_gate(terminalreporter)
        for path in self.written:
            terminalreporter.write_line(f"report written to {_display_path(path, Path.cwd())}")

    def _write_gate(self, terminalreporter: Any) -> None:
        gate = self.gate
        if gate is None:
            return
        if not gate.configured:
            if gate.verdicts:
                terminalreporter.section("ftclass gate")
                for verdict in gate.verdicts:
                    terminalreporter.write_line(verdict.describe())
            terminalreporter.write_line(
                "no quality gate configured: the exit status only reflects failed and errored "
                "items (set --ft-min, --ft-max, --ft-max-errors, --ft-baseline, --ft-gate-compare)"
            )
            return
        terminalreporter.section("ftclass gate", red=not gate.passed, green=gate.passed)
        for verdict in gate.verdicts:
            if not verdict.passed or terminalreporter.verbosity > 0:
                terminalreporter.write_line(verdict.describe(), red=not verdict.passed)
        if gate.passed:
            terminalreporter.write_line(f"gate passed ({len(gate.verdicts)} criteria)", green=True)
        else:
            terminalreporter.write_line(
                f"gate FAILED: {len(gate.failures)} of {len(gate.verdicts)} criteria", red=True
            )


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
