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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.options import Settings
from pytest_ftclass.recording.redaction import public_url
from pytest_ftclass.results import CaseResult

#: The test report attribute a case's result travels in (a ``CaseResult``; a dict between
#: pytest-xdist processes, see ``plugin.pytest_report_to_serializable``).
REPORT_ATTRIBUTE = "ftclass_result"
#: The one the case's text travels in, with ``--ft-report-text``.
TEXT_ATTRIBUTE = "ftclass_text"
JSON_NAME = "ftclass.json"
HTML_NAME = "ftclass.html"
MARKDOWN_NAME = "ftclass.md"


class ReportCollector:
    def __init__(
        self, settings: Settings, *, job: Any = None, checkpoint_models: Sequence[str] = ()
    ) -> None:
        self.settings = settings
        #: The ``--ft-job`` job (a ``TrainingJob``) and the checkpoint models asked.
        self.job = job
        self.checkpoint_models = list(checkpoint_models)
        self.results: dict[str, CaseResult] = {}
        self.texts: dict[str, str] = {}  # nodeid → input text, with ``ft_report_text``
        self.started = dt.datetime.now(dt.timezone.utc)
        self.report: dict[str, Any] | None = None
        self.written: list[Path] = []
        self.failed: set[str] = set()
        self.interrupted = False
        self.gate: Any = None
        self.comparison: dict[str, Any] | None = None
        self.case_results: list[Any] | None = None  # the report's cases, as CaseResult
        #: How much of the suite the items select (set after collection, see ``plugin``).
        self.selection: dict[str, Any] | None = None
        self.write_error: str | None = None
        #: A usage error a pytest-xdist worker found after collection (it ran nothing).
        self.usage_error: str | None = None
        self._gate: Any = None  # the GateConfig, built once

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = getattr(report, REPORT_ATTRIBUTE, None)
        if result is not None:
            # a failed teardown sends the result again, as an error: the last one seen wins
            self.results[report.nodeid] = result
            text = getattr(report, TEXT_ATTRIBUTE, None)
            if text:
                self.texts[report.nodeid] = text
        if report.failed:
            self.failed.add(report.nodeid)

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        if self.usage_error is not None:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        if exitstatus == pytest.ExitCode.USAGE_ERROR:
            return
        if not self.results and not self._gate_config().configured:
            return
        from pytest_ftclass.judging.coverage import selection_summary
        from pytest_ftclass.report import build_report

        results = self._cases()
        settings = self.settings
        selection = selection_summary(self.selection, len(results), interrupted=self.interrupted)
        self.report = build_report(
            results,
            self.metadata(session, results, partial=selection["subset"]),
            model_under_test=settings.model,
            compare_models=settings.compare,
            checkpoint_models=self.checkpoint_models,
            selection=selection,
            positive_class=settings.positive_class,
            texts=self.texts or None,
            prices=settings.prices,
            case_dicts=False,  # written from the results: each case held once
        )
        if self.job is not None:
            from pytest_ftclass.report.training import add_fine_tuning

            add_fine_tuning(self.report, self.job, results, significance=settings.significance)
        self.gate = self.judge(session, self.report)
        if settings.compare:
            from pytest_ftclass.judging.compare import by_model, compare_runs
            from pytest_ftclass.judging.gate import DEFAULT_SIGNIFICANCE
            from pytest_ftclass.report.comparison import comparison_summary

            models = [settings.model, *settings.compare]
            alpha = settings.significance or DEFAULT_SIGNIFICANCE
            self.comparison = compare_runs(by_model(results, models), alpha=alpha)
            self.report["comparison"] = comparison_summary(self.comparison)
        self.case_results = results
        try:
            self._write(session)
        except OSError as err:
            where = f"{err.filename}: " if getattr(err, "filename", None) else ""
            self.write_error = f"{where}{err.strerror or err}"
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _cases(self) -> list[CaseResult]:
        """One result per case (source, case id, model), ordered by its first item's node id.

        A case used by several items was asked once; its result names every item
        (``other_nodeids``), is critical when one of them is, and takes the worst
        of their outcomes.  Results of one source and model that declare the same
        labels share one list (under pytest-xdist each arrived with its own copy),
        so the reports read each label set once.
        """
        merged: dict[tuple[str, str, str], CaseResult] = {}
        label_sets: dict[tuple[str, str], list[str]] = {}
        for nodeid in sorted(self.results):
            result = self.results[nodeid]
            labels = result.labels
            shared = label_sets.setdefault((result.source, result.model), labels)
            if labels is not shared and labels == shared:
                result.labels = shared
            first = merged.get(result.key)
            if first is None:
                merged[result.key] = result
                continue
            first.other_nodeids = (*first.other_nodeids, nodeid)
            first.critical = first.critical or result.critical
            outcomes = (first.outcome, result.outcome)
            first.outcome = max(outcomes, key=lambda outcome: _SEVERITY.get(outcome, 0))
        return list(merged.values())

    def _write(self, session: pytest.Session) -> None:
        from pytest_ftclass.report import (
            append_step_summary,
            write_html_report,
            write_json_report,
            write_markdown_report,
        )

        assert self.report is not None
        settings = self.settings
        results = self.case_results
        if settings.report:
            directory = settings.report_dir
            json_path, html_path = directory / JSON_NAME, directory / HTML_NAME
            markdown_path = directory / MARKDOWN_NAME
            write_json_report(self.report, json_path)
            write_html_report(self.report, html_path, results=results)
            write_markdown_report(self.report, markdown_path, results=results)
            self.written = [json_path, html_path, markdown_path]
            if self.comparison is not None:
                from pytest_ftclass.report.comparison import write_comparison

                self.written += write_comparison(self.comparison, directory)
        if settings.save_baseline is not None:
            self.written.append(write_json_report(self.report, settings.save_baseline))
        summary = append_step_summary(self.report)
        if summary is not None:
            self.written.append(summary)
        self._junit_properties(session.config)

    def _junit_properties(self, config: pytest.Config) -> None:
        """Metrics as properties of the JUnit XML test suite, when ``--junitxml`` is on."""
        from _pytest.junitxml import xml_key

        xml = config.stash.get(xml_key, None)
        if xml is None or self.report is None:
            return
        from pytest_ftclass.report import junit_properties

        for name, value in junit_properties(self.report):
            xml.add_global_property(name, value)

    def _gate_config(self) -> Any:
        from pytest_ftclass.judging.gate import GateConfig

        if self._gate is not None:
            return self._gate
        settings = self.settings
        baseline = None
        if settings.baseline is not None:
            from pytest_ftclass.options import load_baseline

            baseline = load_baseline(settings.baseline)  # checked at start: it loads
        self._gate = GateConfig(
            minimums=settings.min,
            maximums=settings.max,
            max_errors=settings.max_errors,
            max_drops=settings.max_drop,
            baseline=baseline,
            baseline_name=f"baseline {settings.baseline}",
            significance=settings.significance,
            gate_compare=settings.gate_compare,
            allow_subset=settings.allow_subset,
        )
        return self._gate

    def judge(self, session: pytest.Session, report: dict[str, Any]) -> Any:
        """Evaluate the gate, record it in the report and set the exit status from it.

        The exit status, the gate section and pytest's summary line say one
        thing: a failed gate fails the run (``1 gate failed`` in the summary
        line); a passed gate that forgave errors within ``--ft-max-errors``
        turns their failure into a pass (``1 gate passed``).
        """
        from pytest_ftclass.judging.gate import evaluate_gate

        gate = evaluate_gate(report, self._gate_config())
        report["gate"] = gate.to_dict()
        stats = self._stats(session)
        if not gate.active:
            return gate
        if not gate.passed:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            stats.setdefault("gate failed", []).append(gate)
        elif session.exitstatus == pytest.ExitCode.TESTS_FAILED and self._only_budgeted_errors():
            # The gate passed and every failure was an API/parse error within its budget.
            session.exitstatus = pytest.ExitCode.OK
            stats.setdefault("gate passed", []).append(gate)
        return gate

    @staticmethod
    def _stats(session: pytest.Session) -> dict[str, list[Any]]:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        return reporter.stats if reporter is not None else {}

    def _only_budgeted_errors(self) -> bool:
        return bool(self.failed) and self.failed <= self._errors_of_items()

    def metadata(
        self, session: pytest.Session, results: list[Any], *, partial: bool = False
    ) -> dict[str, Any]:
        """Run metadata; ``partial``: the report covers less than the suite (see ``selection``)."""
        from pytest_ftclass.version import __version__

        settings = self.settings
        models = sorted({r.model for r in results})
        endpoints = sorted({r.endpoint for r in results})
        return {
            "plugin_version": __version__,
            "pytest_version": pytest.__version__,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "model_under_test": settings.model,
            "compare_models": list(settings.compare),
            "models": models,
            "endpoints": endpoints,
            "record_mode": settings.record_mode,
            "partial": partial or self.interrupted,
            "interrupted": self.interrupted,
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
            "prices": [str(price) for price in settings.prices],
            **self._job_metadata(),
        }

    def _job_metadata(self) -> dict[str, Any]:
        """With ``--ft-job``: the job's id and the checkpoint models asked."""
        if self.job is None:
            return {}
        return {"fine_tuning_job": self.job.id, "checkpoint_models": self.checkpoint_models}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.usage_error is not None:
            terminalreporter.write_line(f"ERROR: {self.usage_error}", red=True)
        if self.report is None:
            return
        from pytest_ftclass.judging.coverage import describe_subset
        from pytest_ftclass.report import summary_lines

        selection = self.report.get("selection") or {}
        if self.interrupted:
            terminalreporter.section("ftclass (partial: interrupted)", yellow=True)
            terminalreporter.write_line(
                f"PARTIAL: the run was interrupted; these metrics cover the "
                f"{selection.get('asked', len(self.results))} cases that finished"
            )
        else:
            terminalreporter.section("ftclass")
        if selection.get("subset") and not self.interrupted:
            terminalreporter.write_line(
                f"SUBSET: {describe_subset(selection)}; the metrics cover these cases only",
                yellow=True,
            )
        for line in summary_lines(self.report, results=self.case_results):
            terminalreporter.write_line(line)
        if self.comparison is not None:
            from pytest_ftclass.report.comparison import summary_lines as comparison_lines

            terminalreporter.section("ftclass comparison")
            for line in comparison_lines(self.comparison):
                terminalreporter.write_line(line)
            for line in self._comparison_criticals():
                terminalreporter.write_line(line)
        self._write_gate(terminalreporter)
        for path in self.written:
            terminalreporter.write_line(f"report written to {_display_path(path, Path.cwd())}")
        if self.write_error is not None:
            terminalreporter.write_line(
                f"ftclass: the reports could not be written: {self.write_error}", red=True
            )

    def _comparison_criticals(self) -> list[str]:
        """The compared models' critical misses: listed, never fatal (they are yardsticks)."""
        lines = []
        for compare in self.settings.compare:
            missed = [
                r
                for r in self.case_results or []
                if r.model == compare and r.critical and r.error is None and not r.correct
            ]
            if not missed:
                continue
            names = ", ".join(r.case_id for r in missed[:10])
            more = f" and {len(missed) - 10} more" if len(missed) > 10 else ""
            lines.append(f"critical cases {compare} mispredicts (not gated): {names}{more}")
        return lines

    def _write_gate(self, terminalreporter: Any) -> None:
        gate = self.gate
        if gate is None:
            return
        if not gate.active:
            terminalreporter.write_line(
                "no quality gate configured: the exit status only reflects failed and errored "
                "items (set --ft-min, --ft-max, --ft-max-errors, --ft-baseline, --ft-gate-compare)"
            )
            return
        terminalreporter.section("ftclass gate", red=not gate.passed, green=gate.passed)
        for verdict in gate.verdicts:
            if not verdict.passed or terminalreporter.verbosity > 0:
                terminalreporter.write_line(verdict.describe(), red=not verdict.passed)
        criteria = _plural(len(gate.verdicts), "criterion", "criteria")
        if gate.passed:
            terminalreporter.write_line(f"gate passed ({criteria})", green=True)
            others = self.failed - self._errors_of_items()
            if others:
                terminalreporter.write_line(
                    f"the run still fails: {_plural(len(others), 'test')} failed outside the "
                    "gate (see above)",
                    red=True,
                )
        else:
            terminalreporter.write_line(
                f"gate FAILED: {len(gate.failures)} of {criteria}", red=True
            )

    def _errors_of_items(self) -> set[str]:
        return {nodeid for nodeid, result in self.results.items() if result.outcome == "error"}


_SEVERITY = {"": 0, "passed": 1, "mispredicted": 2, "informational": 3, "failed": 4, "error": 5}
"""Which outcome of the items using one case the case's result keeps: the worst."""


def _plural(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


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
