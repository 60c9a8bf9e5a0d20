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
attribute ``ftclass_result`` (a dict of builtin types), so the same code path
aggregates with and without pytest-xdist.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .cases import Case, CaseSourceError, load_cases
from .options import Settings, add_options, resolve_settings
from .session_report import REPORT_ATTRIBUTE

RESULT = pytest.StashKey[dict]()
SHARED_DIR = "ftclass_shared_dir"
#: The ``workeroutput`` entry where a pytest-xdist worker sends its selection counts.
SELECTION = "ftclass_selection"
#: The ``workeroutput`` entry of a usage error found after collection on a worker.
USAGE_ERROR = "ftclass_usage_error"


class PredictionError(pytest.fail.Exception):
    """The model could not be asked, or its answer could not be read.

    Raised while the item is set up, so pytest counts it as an error.  Like
    ``pytest.fail(..., pytrace=False)``, its report is the message alone: the
    case's file, line and id and what went wrong, without the plugin's frames.
    """

    def __init__(self, case: Case, error: str) -> None:
        super().__init__(f"{case.source}:{case.line}: case {case.id!r}: {error}", pytrace=False)


class Misprediction(AssertionError):
    """A critical (or, with ``--ft-strict``, any) case the model got wrong."""


class RunState:
    """What one pytest process knows: settings, case sources and the evaluation."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        import os

        from .evaluation import Evaluation
        from .redaction import Redactor
        from .shared_predictions import SharedPredictions

        self.config = config
        self.settings = settings
        #: The run's secrets, replaced in everything written (see :mod:`.redaction`).
        self.redactor = Redactor.for_run(environ=os.environ, base_url=settings.base_url)
        shared_dir = getattr(config, "workerinput", {}).get(SHARED_DIR)
        shared = SharedPredictions(Path(shared_dir), self.redactor) if shared_dir else None
        self.evaluation = Evaluation(settings, shared=shared, redactor=self.redactor)
        self.sources: dict[str, list[Case]] = {}
        #: The models each source's cases are asked of (a source may serve several tests).
        self.source_models: dict[str, set[str]] = {}
        self.source_paths: dict[str, Path] = {}
        self._repeats: dict[tuple[str, str], Case] | None = None
        self.planned = False
        self.progress: Any = None  # the live progress line (see progress_for)

    def add_source(
        self, name: str, cases: list[Case], models: Iterable[str], path: Path | None = None
    ) -> None:
        """Record a case source, the models it is asked of and, for a file, its path."""
        self.sources[name] = cases
        self.source_models.setdefault(name, set()).update(models)
        if path is not None:
            self.source_paths[name] = path
        self._repeats = None

    def canonical(self, case: Case) -> Case:
        """The case ``case`` is: a DataFrame or list row repeating a case file's case is that case.

        Cases are the same when their id, input and label are.  Case files are
        looked at first (in the order of their paths), then the DataFrames and
        lists in the order they were collected, so a case is asked once and
        scored once however many tests use it.
        """
        if case.source in self.source_paths:
            return case
        if self._repeats is None:
            self._repeats = self._find_repeats()
        return self._repeats.get((case.source, case.id), case)

    def _find_repeats(self) -> dict[tuple[str, str], Case]:
        first: dict[tuple[str, str, str], Case] = {}
        for name in sorted(self.source_paths):
            for case in self.sources.get(name, ()):
                first.setdefault((case.id, case.input_digest, case.label), case)
        repeats = {}
        for name, cases in self.sources.items():
            if name in self.source_paths:
                continue
            for case in cases:
                same = first.setdefault((case.id, case.input_digest, case.label), case)
                if same is not case:
                    repeats[(name, case.id)] = same
        return repeats

    def key_of(self, item: pytest.Item) -> tuple[str, str, str] | None:
        """``(source, case id, model)`` of the case ``item`` runs, or ``None`` for a plain test."""
        case = item_case(item)
        if case is None:
            return None
        case = self.canonical(case)
        return (case.source, case.id, self.model_of(item))

    def plan(self, items: list[pytest.Item]) -> None:
        """Tell the evaluation which cases the selected items will ask for."""
        from .progress import progress_for

        live = not self.evaluation.recorder.replay_only
        self.progress = self.evaluation.progress = progress_for(self.config, live)
        selected: dict[tuple[str, str], dict[str, Case]] = {}
        for item in items:
            case = item_case(item)
            if case is not None:
                case = self.canonical(case)
                selected.setdefault((case.source, self.model_of(item)), {})[case.id] = case
        for (source, model), cases in selected.items():
            source_cases = self.sources.get(source, list(cases.values()))
            self.evaluation.plan(source, source_cases, model, cases.values())
        self.planned = True

    def selection(self, items: list[pytest.Item]) -> dict[str, Any]:
        """How much of the collected suite the selected items ask (see :mod:`.selection`)."""
        from .selection import narrowed_by

        planned = {
            (case.source, case.id, model)
            for name, cases in self.sources.items()
            for case in map(self.canonical, cases)
            for model in self.source_models.get(name, ())
        }
        selected = {key for item in items if (key := self.key_of(item)) is not None}
        last_failed = self.config.pluginmanager.get_plugin("lfplugin")
        return {
            "planned": len(planned),
            "selected": len(selected),
            "narrowed_by": narrowed_by(self.config),
            "files_skipped": int(getattr(last_failed, "_skipped_files", 0) or 0),
        }

    def model_of(self, item: pytest.Item) -> str:
        if isinstance(item, CaseItem):
            return item.model
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "ft_model" in callspec.params:
            return str(callspec.params["ft_model"])
        marker = item.get_closest_marker("ft_cases")
        if marker is not None and marker.kwargs.get("model"):
            return str(marker.kwargs["model"])
        return self.settings.model

    @property
    def models(self) -> list[str]:
        """The models every case is asked of: ``--ft-model``, then ``--ft-compare``."""
        compare = self.settings.compare
        return [self.settings.model] + (
            [compare] if compare and compare != self.settings.model else []
        )

    def informational(self, model: str) -> bool:
        """Whether ``model`` is the ``--ft-compare`` model and ``--ft-gate-compare`` is off."""
        return model == self.settings.compare and not self.settings.gate_compare

    def result_for(self, item: pytest.Item, case: Case) -> tuple[Any, dict[str, Any]]:
        """Fetch the prediction of ``case`` and record its CaseResult on ``item``."""
        from .evaluation import case_result

        if not self.planned:
            self.plan(item.session.items)
        model = self.model_of(item)
        asked = self.canonical(case)
        # Case items send no HTTP of their own: the rest of the group may be asked for meanwhile.
        read_ahead = isinstance(item, CaseItem)
        prediction = self.evaluation.prediction(asked.source, model, asked, read_ahead=read_ahead)
        if self.progress is not None:
            self.progress.resume(item.nodeid)
        group = self.evaluation.group_of(asked.source, model, asked)
        result = case_result(
            asked,
            prediction,
            nodeid=item.nodeid,
            source=asked.source,
            model=model,
            endpoint=group.endpoint,
            labels=group.labels,
            outcome="error" if prediction.error else "",
        ).to_dict()
        result["critical"] = case.critical or asked.critical
        if self.settings.report_text:
            result["text"] = case.text
        if isinstance(item, CaseItem):
            item.result = result  # an attribute it was made with costs less than a stash entry
        else:
            item.stash[RESULT] = result
        if prediction.error:
            raise PredictionError(case, prediction.error)
        return prediction, result


STATE = pytest.StashKey[RunState]()
COLLECTOR = pytest.StashKey[Any]()


def item_case(item: pytest.Item) -> Case | None:
    if isinstance(item, CaseItem):
        return item.case
    callspec = getattr(item, "callspec", None)
    if callspec is not None and isinstance(callspec.params.get("ft_case"), Case):
        return callspec.params["ft_case"]
    return None


def source_name(path: Path, rootdir: Path) -> str:
    try:
        return path.resolve().relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


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
    state = RunState(config, settings)
    config.stash[STATE] = state
    Case.repr_text = state.settings.report_text  # a failing test shows a case's text only then
    if controller:
        from .session_report import ReportCollector

        collector = ReportCollector(state.settings)
        config.stash[COLLECTOR] = collector
        config.pluginmanager.register(collector, "ftclass-report")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(collector), "ftclass-xdist")


def check_writable(settings: Settings, *, controller: bool) -> None:
    """Directories the run will write to must be writable: a usage error now, not after paying."""
    from .options import writable_problem

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

    def __init__(self, collector: Any) -> None:
        self.directory: str | None = None
        self.collector = collector

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.directory is None:
            import tempfile

            self.directory = tempfile.mkdtemp(prefix="ftclass-shared-")
        node.workerinput[SHARED_DIR] = self.directory

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


@pytest.hookimpl(tryfirst=True)  # before the reports are written
def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[STATE].evaluation.stop_reading_ahead()


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
    from .lint import format_report, lint_case_files

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
    from .gate import unknown_labels

    labels = {case.label for cases in state.sources.values() for case in cases}
    settings = state.settings
    problem = unknown_labels([*settings.min, *settings.max, *settings.max_drop], labels)
    return f"pytest-ftclass: {problem}" if problem else None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = parent.config.stash[STATE].settings
    relative = source_name(file_path, parent.config.rootpath)
    for pattern in settings.case_files:
        target = relative if "/" in pattern else file_path.name
        if fnmatch.fnmatch(target, pattern):
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
        cases = load_cases(source, name=name, stop=state.settings.stop, **options)
    except CaseSourceError as err:
        raise pytest.Collector.CollectError(f"{metafunc.definition.nodeid}: {err}") from None
    models = [str(marker.kwargs["model"])] if marker.kwargs.get("model") else state.models
    state.add_source(name, cases, models, path)
    if metafunc.definition.get_closest_marker("ft_critical") is not None:
        cases = [_replace(case, critical=True) for case in cases]
    metafunc.parametrize("ft_case", cases, ids=[case.id for case in cases])
    if len(models) > 1:
        metafunc.parametrize("ft_model", models, ids=[model_label(m) for m in models])


def model_label(model: str) -> str:
    """A model id as it shows in a test id (``::`` would read as a node separator)."""
    return model.replace("::", ":")


def item_name(case_id: str) -> str:
    """A case id as a pytest item name, safe to give back as a node id (``--lf``, arguments).

    ``::``, ``[`` and ``]`` would be read as node-id syntax, so they are written
    percent-escaped, and so is ``%``; any other id is its own name.

    >>> item_name("business-042"), item_name("a::b"), item_name("x[1]"), item_name("5%")
    ('business-042', 'a%3A%3Ab', 'x%5B1%5D', '5%25')
    """
    if not any(mark in case_id for mark in ("::", "[", "]", "%")):
        return case_id
    escaped = case_id.replace("%", "%25").replace("[", "%5B").replace("]", "%5D")
    return escaped.replace("::", "%3A%3A")


def _replace(case: Case, **changes: Any) -> Case:
    from dataclasses import replace

    return replace(case, **changes)


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
        # Any other test may send HTTP: no cassette may be open in the background meanwhile.
        state: RunState = item.config.stash[STATE]
        state.evaluation.settle()
        if state.progress is not None:
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
    # The case's result rides on the report that settles its outcome (builtin types only),
    # so it reaches the controlling process with and without pytest-xdist.  One report per
    # item carries it, and not a copy: pytest keeps every report until the session ends.
    informational = item.config.stash[STATE].informational(result["model"])
    if report.failed and report.when != "call":
        result["outcome"] = "error"
        if informational and report.when == "setup":
            # the comparison model is not gated: its errors are listed, not fatal
            reason = "comparison model, not gated: " + " ".join(str(report.longrepr).split())
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, reason)
    elif report.when == "call":
        outcome = item.outcome if isinstance(item, CaseItem) else report.outcome
        if informational and report.failed:
            report.outcome, report.longrepr, outcome = "passed", None, "informational"
        result["outcome"] = outcome
    else:
        return report
    setattr(report, REPORT_ATTRIBUTE, result)
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
    from .redaction import redact_test_report

    state = config.stash.get(STATE, None)
    if state is not None:
        redact_test_report(report, state.redactor)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    result = getattr(report, REPORT_ATTRIBUTE, None)
    if report.when != "call" or not report.passed or not result:
        return None
    if result.get("outcome") == "mispredicted":
        return "mispredicted", "m", ("MISPREDICTED", {"yellow": True})
    if result.get("outcome") == "informational":
        return "informational", "i", ("FAILED (comparison model, not gated)", {"yellow": True})
    return None


# -- collection of case files ------------------------------------------------
class CaseFile(pytest.File):
    """A case file: one item per case."""

    def collect(self) -> Iterator[CaseItem]:
        state: RunState = self.config.stash[STATE]
        name = source_name(self.path, self.config.rootpath)
        try:
            cases = load_cases(
                self.path,
                name=name,
                stop=state.settings.stop,
                text_column=state.settings.text_column,
                label_column=state.settings.label_column,
            )
        except CaseSourceError as err:
            raise self.CollectError(str(err)) from None
        models = state.models
        state.add_source(name, cases, models, self.path)
        for case in cases:
            name = item_name(case.id)
            for model in models:
                if len(models) == 1:
                    yield CaseItem.from_parent(self, name=name, case=case, model=model)
                    continue
                label = model_label(model)
                yield CaseItem.from_parent(
                    self,
                    name=f"{name}[{label}]",
                    nodeid=_parametrized_id(self, name, label),
                    case=case,
                    model=model,
                )


def _parametrized_id(parent: pytest.Collector, name: str, params: str) -> Any:
    """The node id of item ``name[params]`` as pytest builds a parametrized test's.

    pytest 9 keeps node ids structured (the ``[...]`` part apart), and ``--lf``
    and node-id arguments compare them so; older versions compare the text, which
    the item's name gives.
    """
    structured = getattr(parent, "id", None)
    if structured is None or not hasattr(structured, "with_params"):
        return None
    return structured.child(name).with_params(params)


class CaseItem(pytest.Item):
    """One case of a case file: passes when the model names its label."""

    def __init__(self, *, case: Case, model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.model = model
        self.outcome = ""
        self.result: dict[str, Any] | None = None
        if case.critical:
            self.add_marker("ft_critical")

    def setup(self) -> None:
        state: RunState = self.config.stash[STATE]
        state.result_for(self, self.case)

    def runtest(self) -> None:
        state: RunState = self.config.stash[STATE]
        assert self.result is not None, "setup fetched the prediction"
        predicted = self.result["predicted"]
        if predicted == self.case.label:
            self.outcome = "passed"
            return
        if (self.case.critical or state.settings.strict) and not state.informational(self.model):
            self.outcome = "failed"
            why = "critical case" if self.case.critical else "--ft-strict"
            raise Misprediction(f"expected {self.case.label!r}, predicted {predicted!r} ({why})")
        self.outcome = "mispredicted"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, Misprediction):
            return f"{self.case.source}:{self.case.line}: case {self.case.id!r}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.case.line - 1 if self.case.line else None
        # The domain heads the item's failure or error section ("case business-042").  pytest
        # turns dots into "::" in a domain that ends the node id; this one never does.
        return self.path, line, f"case {self.name}"
