"""Cases as pytest items, and what one pytest process knows about them (:class:`RunState`).

A case file is a :class:`CaseFile` of :class:`CaseItem` objects; a test marked
``@pytest.mark.ft_cases`` is parametrized over its cases.  Either way an
item's case is found with :func:`item_case`, its model with
:meth:`RunState.model_of`, and its prediction with :meth:`RunState.result_for`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ftclass.cases.sources import Case, CaseSourceError, load_cases
from pytest_ftclass.options import Settings
from pytest_ftclass.results import CaseResult

if TYPE_CHECKING:
    from pytest_ftclass.asking.jobs import TrainingJob

RESULT = pytest.StashKey[CaseResult]()
#: The case's text, with ``--ft-report-text``: it travels beside the result, not in it.
TEXT = pytest.StashKey[str]()


SHARED_DIR = "ftclass_shared_dir"


#: The ``workeroutput`` entry where a pytest-xdist worker sends its selection counts.
SELECTION = "ftclass_selection"


#: The ``workeroutput`` entry of a usage error found after collection on a worker.
USAGE_ERROR = "ftclass_usage_error"


class PredictionError(pytest.fail.Exception):  # type: ignore[name-defined]
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

    def __init__(
        self, config: pytest.Config, settings: Settings, job: TrainingJob | None = None
    ) -> None:
        import os

        from pytest_ftclass.recording.redaction import Redactor
        from pytest_ftclass.running.evaluation import Evaluation
        from pytest_ftclass.running.shared_predictions import SharedPredictions

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
        self._files: dict[tuple[str, str, str], list[Case]] = {}
        self._repeats: dict[tuple[str, str], Case] | None = None
        self.planned = False
        self.progress: Any = None  # the live progress line (see progress_for)
        #: The ``--ft-job`` job (its model is ``settings.model``), and the checkpoints asked.
        self.job = job
        self.checkpoint_models: list[str] = []
        if job is not None:
            from pytest_ftclass.running.jobs import checkpoint_models

            self.checkpoint_models = checkpoint_models(settings, job)

    def load_file(self, path: Path, name: str, text_column: str, label_column: str) -> list[Case]:
        """The cases of the file at ``path``, read once however many collectors use it.

        Raises :class:`~pytest_ftclass.cases.sources.CaseSourceError`.
        """
        key = (name, text_column, label_column)
        if key not in self._files:
            self._files[key] = load_cases(
                path,
                name=name,
                stop=self.settings.stop,
                text_column=text_column,
                label_column=label_column,
            )
        return self._files[key]

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
        from pytest_ftclass.running.progress import progress_for

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
        from pytest_ftclass.running.selection import narrowed_by

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
        """The models every case is asked of: ``--ft-model``, each ``--ft-compare``, the
        checkpoints."""
        models = [self.settings.model, *self.settings.compare]
        return models + [m for m in self.checkpoint_models if m not in models]

    def informational(self, model: str) -> bool:
        """Whether ``model``'s failures are never gated: a checkpoint's, a ``--ft-compare`` model's.

        A compared model's errors are, with ``--ft-gate-compare`` (see :meth:`errors_gated`).
        """
        if model in self.checkpoint_models and model != self.settings.model:
            return True
        return model in self.settings.compare

    def errors_gated(self, model: str) -> bool:
        """Whether ``model``'s errors count: the model under test's, and with
        ``--ft-gate-compare`` the compared models' too (a checkpoint's never)."""
        if model in self.checkpoint_models and model != self.settings.model:
            return False
        return model not in self.settings.compare or self.settings.gate_compare

    def not_gated_as(self, model: str) -> str:
        """How an informational model is named in its items' outcomes."""
        return "checkpoint" if model in self.checkpoint_models else "comparison model"

    def settle(self, item: pytest.Item, report: pytest.TestReport, result: CaseResult) -> bool:
        """Give ``result`` the outcome ``report`` settles; whether ``report`` should carry it.

        The call's report carries the result, and so does a failed setup's or
        teardown's (a failed teardown after the call sends it again; the
        collector keeps the last).  A model that is not gated (a compared model
        without ``--ft-gate-compare``, a checkpoint) has its errors skipped with
        their reason and its failures passed as ``informational``: listed, not fatal.
        """
        model = result.model
        if report.failed and report.when != "call":
            result.outcome = "error"
            if not self.errors_gated(model) and report.when == "setup":
                reason = f"{self.not_gated_as(model)}, not gated: " + " ".join(
                    str(report.longrepr).split()
                )
                report.outcome = "skipped"
                report.longrepr = (str(item.path), item.location[1] or 0, reason)
            return True
        if report.when != "call":
            return False
        outcome = item.outcome if isinstance(item, CaseItem) else report.outcome
        if self.informational(model) and report.failed:
            report.outcome, report.longrepr, outcome = "passed", None, "informational"
        result.outcome = outcome
        return True

    def result_for(self, item: pytest.Item, case: Case) -> tuple[Any, CaseResult]:
        """Fetch the prediction of ``case`` and record its CaseResult on ``item``."""
        from pytest_ftclass.running.evaluation import case_result

        if not self.planned:
            self.plan(item.session.items)
        model = self.model_of(item)
        asked = self.canonical(case)
        prediction = self.evaluation.prediction(asked.source, model, asked)
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
        )
        result.critical = case.critical or asked.critical
        if self.settings.report_text:
            item.stash[TEXT] = case.text
        if isinstance(item, CaseItem):
            item.result = result  # an attribute it was made with costs less than a stash entry
        else:
            item.stash[RESULT] = result
        if prediction.error:
            raise PredictionError(case, prediction.error)
        return prediction, result


STATE = pytest.StashKey[RunState]()


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


def replace_case(case: Case, **changes: Any) -> Case:
    from dataclasses import replace

    return replace(case, **changes)


# -- collection of case files ------------------------------------------------
class CaseFile(pytest.File):
    """A case file: one item per case."""

    def collect(self) -> Iterator[CaseItem]:
        state: RunState = self.config.stash[STATE]
        name = source_name(self.path, self.config.rootpath)
        settings = state.settings
        try:
            cases = state.load_file(self.path, name, settings.text_column, settings.label_column)
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
        self.result: CaseResult | None = None
        if case.critical:
            self.add_marker("ft_critical")

    def setup(self) -> None:
        state: RunState = self.config.stash[STATE]
        state.result_for(self, self.case)

    def runtest(self) -> None:
        state: RunState = self.config.stash[STATE]
        assert self.result is not None, "setup fetched the prediction"
        predicted = self.result.predicted
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
