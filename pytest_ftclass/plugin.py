"""The pytest hooks: thin wiring between pytest and the modules that do the work.

Two ways to declare cases, both giving one pytest item per case:

- case files matching the ini key ``ft_case_files`` (default ``*.cases.jsonl``)
  are collected like test modules: ``valid.cases.jsonl::business-042``;
- ``@pytest.mark.ft_cases(source, model=None, text_column="text", label_column="label")``
  on a test function that takes ``ft_case`` (and usually ``ft_prediction``)::

      @pytest.mark.ft_cases("data/valid.csv")
      def test_confident(ft_case, ft_prediction):
          assert ft_prediction.probability(ft_case.label) > 0.9

Outcomes: a case the model gets right passes; a mispredicted case is reported
as ``MISPREDICTED`` (a pass for the exit status) unless it is critical or
``--ft-strict`` is on, then it fails; a case whose prediction failed (API error,
malformed response, request missing from the cassette) is an error.

Per-case results travel to the controlling process in each report's
attribute ``ftclass_result`` (a ``CaseResult``; a dict of builtin types on its
way from a pytest-xdist worker), so the same code path aggregates with and
without pytest-xdist.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.cases.sources import Case, CaseSourceError, load_cases
from pytest_ftclass.options import Settings, add_options, resolve_settings
from pytest_ftclass.results import CaseResult
from pytest_ftclass.running.items import (
    RESULT,
    SELECTION,
    SHARED_DIR,
    STATE,
    TEXT,
    USAGE_ERROR,
    CaseFile,
    CaseItem,
    RunState,
    model_label,
    replace_case,
    source_name,
)
from pytest_ftclass.running.session import REPORT_ATTRIBUTE, TEXT_ATTRIBUTE

COLLECTOR = pytest.StashKey[Any]()


# -- hooks -----------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ft_cases(source, model=None, text_column='text', label_column='label'): "
        "parametrize the test over labelled cases (JSONL/CSV path, DataFrame or list)",
    )
    config.addinivalue_line(
        "markers", "ft_critical: every case of this test must be predicted right"
    )
    settings = resolve_settings(config)
    controller = not hasattr(config, "workerinput")
    check_writable(settings, controller=controller)
    job = None
    if settings.job and not config.getoption("help", False):
        from pytest_ftclass.running.jobs import job_and_settings

        job, settings = job_and_settings(config, settings)  # a usage error if it cannot be used
    state = RunState(config, settings, job)
    config.stash[STATE] = state
    Case.repr_text = state.settings.report_text  # a failing test shows a case's text only then
    if controller:
        from pytest_ftclass.running.session import ReportCollector

        collector = ReportCollector(
            state.settings, job=state.job, checkpoint_models=state.checkpoint_models
        )
        config.stash[COLLECTOR] = collector
        config.pluginmanager.register(collector, "ftclass-report")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(collector, job), "ftclass-xdist")


def check_writable(settings: Settings, *, controller: bool) -> None:
    """Directories the run will write to must be writable: a usage error now, not after paying."""
    from pytest_ftclass.options import writable_problem

    directories = []
    if settings.record_mode != "none":
        directories.append(("--ft-cassette-dir", settings.cassette_dir))
    if controller and settings.report:
        directories.append(("--ft-report-dir", settings.report_dir))
    if controller and settings.save_baseline is not None:
        directories.append(("--ft-save-baseline", settings.save_baseline.parent))
    for option, directory in directories:
        problem = writable_problem(directory)
        if problem:
            raise pytest.UsageError(f"pytest-ftclass: {option} {directory}: {problem}")


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash[STATE].settings
    if settings.lint and _xdist_workers(config):
        return (
            "ftclass: --ft-lint is skipped under pytest-xdist (-n): "
            "run `ftclass lint` on the case files first"
        )
    return None


def _xdist_workers(config: pytest.Config) -> bool:
    numprocesses = getattr(config.option, "numprocesses", None)
    return bool(numprocesses) or hasattr(config, "workerinput")


class XdistHooks:
    """Controller side of pytest-xdist: a directory where workers share predictions.

    Workers send how much of the suite they selected in ``workeroutput``; every
    worker collects the same items, so the first to finish says it for all.
    """

    def __init__(self, collector: Any, job: Any = None) -> None:
        self.directory: str | None = None
        self.collector = collector
        self.job = job  # the --ft-job job, read once here and handed to every worker

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.directory is None:
            import tempfile

            self.directory = tempfile.mkdtemp(prefix="ftclass-shared-")
        node.workerinput[SHARED_DIR] = self.directory
        if self.job is not None:
            from pytest_ftclass.running.jobs import JOB_INPUT

            node.workerinput[JOB_INPUT] = self.job.to_dict()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {})
        if output.get(SELECTION) is not None and self.collector.selection is None:
            self.collector.selection = output[SELECTION]
        if output.get(USAGE_ERROR):
            self.collector.usage_error = output[USAGE_ERROR]

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.directory is not None:
            import shutil

            shutil.rmtree(self.directory, ignore_errors=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    Case.repr_text = False
    state = config.stash.get(STATE, None)
    if state is not None:
        state.evaluation.close()


@pytest.hookimpl(tryfirst=True)  # a worker that must not run anything says so before xdist
def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    state: RunState = config.stash[STATE]
    problem = gate_label_problem(state)
    if problem and hasattr(config, "workerinput"):
        # a worker cannot stop the run with a usage error: it runs nothing and tells the controller
        session.items.clear()
        config.workeroutput[USAGE_ERROR] = problem  # type: ignore[attr-defined]
        return
    if problem:
        raise pytest.UsageError(problem)
    selection = state.selection(session.items)
    collector = config.stash.get(COLLECTOR, None)
    if collector is not None:
        collector.selection = selection
    else:
        config.workeroutput[SELECTION] = selection  # type: ignore[attr-defined]
    if not state.settings.lint or not state.source_paths:
        return
    if hasattr(config, "workerinput"):
        return  # the controller's header said so: run `ftclass lint` before an xdist run
    from pytest_ftclass.cases.lint import format_report, lint_case_files

    report = lint_case_files(sorted(set(state.source_paths.values())), state.settings.model)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.section("ftclass lint")
        for line in format_report(report).splitlines():
            reporter.write_line(line)
    if report.errors:
        pytest.exit(
            f"ftclass lint: {len(report.errors)} error(s) in the case files; no request was sent",
            returncode=pytest.ExitCode.INTERRUPTED,
        )


def gate_label_problem(state: RunState) -> str | None:
    """A gate bound on a class no case has (``recall[neutrl]``): a usage error before asking."""
    from pytest_ftclass.judging.gate import unknown_labels

    labels = {case.label for cases in state.sources.values() for case in cases}
    settings = state.settings
    problem = unknown_labels([*settings.min, *settings.max, *settings.max_drop], labels)
    return f"pytest-ftclass: {problem}" if problem else None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = parent.config.stash[STATE].settings
    relative = ""  # resolved only for a pattern with a folder in it
    for pattern in settings.case_files:
        if "/" in pattern:
            relative = relative or source_name(file_path, parent.config.rootpath)
        if fnmatch.fnmatch(relative if "/" in pattern else file_path.name, pattern):
            return CaseFile.from_parent(parent, path=file_path)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("ft_cases")
    if marker is None:
        return
    if "ft_case" not in metafunc.fixturenames:
        raise pytest.Collector.CollectError(
            f"{metafunc.definition.nodeid}: @pytest.mark.ft_cases needs the test to take 'ft_case'"
        )
    if len(marker.args) != 1:
        raise pytest.Collector.CollectError(
            f"{metafunc.definition.nodeid}: @pytest.mark.ft_cases takes one source "
            "(a path, a DataFrame or a list of cases)"
        )
    state: RunState = metafunc.config.stash[STATE]
    source = marker.args[0]
    options = {k: marker.kwargs[k] for k in ("text_column", "label_column") if k in marker.kwargs}
    options.setdefault("text_column", state.settings.text_column)
    options.setdefault("label_column", state.settings.label_column)
    path = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_absolute():
            path = metafunc.definition.path.parent / path
        name = source_name(path, metafunc.config.rootpath)
        source = path
    else:
        name = metafunc.definition.nodeid
    try:
        if path is not None:
            cases = state.load_file(path, name, options["text_column"], options["label_column"])
        else:
            cases = load_cases(source, name=name, stop=state.settings.stop, **options)
    except CaseSourceError as err:
        raise pytest.Collector.CollectError(f"{metafunc.definition.nodeid}: {err}") from None
    models = [str(marker.kwargs["model"])] if marker.kwargs.get("model") else state.models
    state.add_source(name, cases, models, path)
    if metafunc.definition.get_closest_marker("ft_critical") is not None:
        cases = [replace_case(case, critical=True) for case in cases]
    metafunc.parametrize("ft_case", cases, ids=[case.id for case in cases])
    if len(models) > 1:
        metafunc.parametrize("ft_model", models, ids=[model_label(m) for m in models])


@pytest.fixture
def ft_case(request: pytest.FixtureRequest) -> Case:
    """The labelled case this test runs (set by ``@pytest.mark.ft_cases``)."""
    raise pytest.UsageError("ft_case is given by @pytest.mark.ft_cases(source) on the test")


@pytest.fixture
def ft_model(request: pytest.FixtureRequest) -> str:
    """The id of the model this test asks (``--ft-model``, marker ``model=``, ``--ft-compare``)."""
    state: RunState = request.config.stash[STATE]
    return state.model_of(request.node)


@pytest.fixture
def ft_prediction(request: pytest.FixtureRequest, ft_case: Case, ft_model: str) -> Any:
    """The model's :class:`~pytest_ftclass.results.Prediction` for ``ft_case``."""
    state: RunState = request.config.stash[STATE]
    prediction, _ = state.result_for(request.node, ft_case)
    return prediction


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not isinstance(item, CaseItem):
        state: RunState = item.config.stash[STATE]
        if state.progress is not None:  # a progress line ends the output: go on below it
            state.progress.resume(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _redact(report, item.config)  # before the terminal, the JUnit XML and xdist see it
    result = item.result if isinstance(item, CaseItem) else item.stash.get(RESULT, None)
    if result is None:
        return report
    # The case's result rides on the report that settles its outcome, so it reaches the
    # controlling process with and without pytest-xdist (see pytest_report_to_serializable).
    state = item.config.stash[STATE]
    if not state.settle(item, report, result):
        return report
    setattr(report, REPORT_ATTRIBUTE, result)
    if state.settings.report_text:
        setattr(report, TEXT_ATTRIBUTE, item.stash[TEXT])
    return report


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(
    report: pytest.TestReport | pytest.CollectReport,
) -> Generator[None, dict[str, Any] | None, dict[str, Any] | None]:
    """A pytest-xdist worker sends the case's result as a dict of builtin types."""
    data = yield
    result = getattr(report, REPORT_ATTRIBUTE, None)
    if data is not None and isinstance(result, CaseResult):
        data[REPORT_ATTRIBUTE] = result.to_dict()
    return data


@pytest.hookimpl(wrapper=True)
def pytest_report_from_serializable(
    data: dict[str, Any],
) -> Generator[None, Any, Any]:
    """The controlling process turns it back into a :class:`CaseResult`."""
    report = yield
    result = getattr(report, REPORT_ATTRIBUTE, None)
    if isinstance(result, dict):
        setattr(report, REPORT_ATTRIBUTE, CaseResult.from_dict(result))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _redact(report, collector.config)
    return report


def _redact(report: pytest.TestReport | pytest.CollectReport, config: pytest.Config) -> None:
    """Replace the run's secrets in what pytest shows of ``report`` (its failure text, output)."""
    from pytest_ftclass.recording.redaction import redact_test_report

    state = config.stash.get(STATE, None)
    if state is not None:
        redact_test_report(report, state.redactor)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    result = getattr(report, REPORT_ATTRIBUTE, None)
    if report.when != "call" or not report.passed or not result:
        return None
    if result.outcome == "mispredicted":
        return "mispredicted", "m", ("MISPREDICTED", {"yellow": True})
    if result.outcome == "informational":
        role = config.stash[STATE].not_gated_as(result.model)
        return "informational", "i", (f"FAILED ({role}, not gated)", {"yellow": True})
    return None
