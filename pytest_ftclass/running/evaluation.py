"""One run's predictions: which cases go to which model, through which cassette.

An :class:`Evaluation` is told up front which cases are selected (``plan``), and
fetches the predictions of a group (one case source asked of one model through
one endpoint) inside that group's cassette: in a replay all at once, the
first time any case of it is asked for; live, window by window (see
:meth:`Evaluation.window`), so results and the partial report of an
interrupted run arrive as the requests are answered.  Each group's
:class:`~pytest_ftclass.asking.shapes.RequestShape` is planned once.  It does
not import pytest: the plugin feeds it cases and reads predictions back.

>>> from pytest_ftclass.options import Settings
>>> evaluation = Evaluation(Settings(record_mode="none"))
>>> cases = [Case("c1", "goal", "sport"), Case("c2", "chip", "tech")]
>>> evaluation.plan("valid.jsonl", cases, "local", cases)
>>> evaluation.group_of("valid.jsonl", "local", cases[0]).endpoint
'completions'
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_ftclass.asking.clients import ClientOptions
from pytest_ftclass.asking.endpoints import infer_endpoint
from pytest_ftclass.asking.errors import describe_api_error
from pytest_ftclass.asking.pacing import START
from pytest_ftclass.asking.predict import predict
from pytest_ftclass.asking.refusals import Refusals
from pytest_ftclass.asking.shapes import RequestShape, plan_shape
from pytest_ftclass.cases.sources import Case
from pytest_ftclass.cases.tokens import TokenMemo
from pytest_ftclass.options import Settings
from pytest_ftclass.recording.cassette_files import BrokenCassette
from pytest_ftclass.recording.names import tokens_path
from pytest_ftclass.recording.recorder import Recorder, is_missing_from_cassette, missing_message
from pytest_ftclass.recording.redaction import Redactor
from pytest_ftclass.results import CaseResult, Prediction
from pytest_ftclass.running.credentials import client_options
from pytest_ftclass.running.local_models import LocalModels
from pytest_ftclass.running.shared_predictions import SharedPredictions
from pytest_ftclass.running.warm_up import warm_up

#: Full rounds of requests (batch size × concurrency cases each) in the first window.
WINDOW_ROUNDS = 4


@dataclass
class Group:
    """The cases of one source asked of one model through one endpoint."""

    source: str
    model: str
    endpoint: str
    source_cases: list[Case]
    labels: list[str]
    selected: dict[str, Case] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)
    #: The requests' shape, planned at the first fetch (or why it cannot be).
    shape: RequestShape | str | None = None

    def positions(self) -> dict[str, int]:
        """Each case's position in the source (made once)."""
        if not self.position:
            self.position = {c.id: i for i, c in enumerate(self.source_cases)}
        return self.position

    def first_selected(self) -> str:
        """The id of the selected case that comes first in the source."""
        positions = self.positions()
        return min(self.selected, key=lambda i: positions.get(i, 1 << 62))


class Evaluation:
    """Fetches and keeps the predictions of one run."""

    def __init__(
        self,
        settings: Settings,
        environ: dict[str, str] | None = None,
        shared: SharedPredictions | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.settings = settings
        self.shared = shared
        self.environ = dict(os.environ if environ is None else environ)
        #: Replaces the run's secrets in whatever is recorded or reported.
        self.redactor = redactor or Redactor.for_run(
            environ=self.environ, base_url=settings.base_url
        )
        self.recorder = Recorder(
            settings.cassette_dir,
            settings.record_mode,
            keep_prompts=settings.cassette_prompts,
            redactor=self.redactor,
        )
        #: Models that refused the run (401, 403, 404 model_not_found): asked no more.
        self.refusals = Refusals(shared.directory if shared is not None else None)
        self.local_models = LocalModels(settings.reference_train, settings.rootdir)
        self.groups: dict[tuple[str, str, str], Group] = {}
        #: Token ids of the labels, read from and written beside the cassettes.
        self.token_memo = TokenMemo(tokens_path(settings.cassette_dir), redactor=self.redactor)
        self.predictions: dict[tuple[str, str, str], Prediction] = {}
        #: Called as ``(group, cases answered, pace)`` as each live request finishes.
        self.progress: Callable[[Group, int, Any], None] | None = None

    # -- planning ---------------------------------------------------------
    def endpoint_for(self, model: str, case: Case) -> str:
        return infer_endpoint(model, self.settings.endpoint, case.format)

    def plan(
        self, source: str, source_cases: Sequence[Case], model: str, selected: Iterable[Case]
    ) -> None:
        """Declare that ``selected`` cases of ``source`` will be asked of ``model``."""
        labels = sorted({case.label for case in source_cases})
        for case in selected:
            endpoint = self.endpoint_for(model, case)
            key = (source, model, endpoint)
            group = self.groups.get(key)
            if group is None:
                group_cases = [c for c in source_cases if self.endpoint_for(model, c) == endpoint]
                group = self.groups[key] = Group(source, model, endpoint, group_cases, labels)
            group.selected[case.id] = case

    def group_of(self, source: str, model: str, case: Case) -> Group:
        key = (source, model, self.endpoint_for(model, case))
        if key not in self.groups:
            raise KeyError(f"case {case.id!r} of {source} was not planned for {model}")
        return self.groups[key]

    # -- predictions ------------------------------------------------------
    def prediction(self, source: str, model: str, case: Case) -> Prediction:
        """The prediction for ``case``, fetching the window of its group it lies in on first use."""
        key = (source, model, case.id)
        if key not in self.predictions:
            group = self.group_of(source, model, case)
            group.selected.setdefault(case.id, case)
            pending = [
                c
                for c in self.window(group, case)
                if (group.source, group.model, c.id) not in self.predictions
            ]
            self._merge(group, self._get(group, pending))
        return self.predictions[key]

    def window(self, group: Group, case: Case) -> list[Case]:
        """The selected cases fetched together with ``case``.

        The group's source is cut into windows of whole Completions pages: the
        first is ``WINDOW_ROUNDS`` rounds of full batches at full concurrency,
        and each next one is twice as long as the one before, so a large group
        reports results, and writes its cassette, as it goes.  Cases that are
        not in the source go together.  A replay reads the group's cassette
        once, and with ``ft_batch_api`` the group is one batch: one window.

        >>> from pytest_ftclass.options import Settings
        >>> evaluation = Evaluation(Settings(batch_size=2, concurrency=1, record_mode="once"))
        >>> cases = [Case(f"c{i}", f"text {i}", "a") for i in range(30)]
        >>> evaluation.plan("s", cases, "ft:babbage-002:o::m", cases)
        >>> group = evaluation.group_of("s", "ft:babbage-002:o::m", cases[0])
        >>> [len(evaluation.window(group, cases[i])) for i in (0, 8, 24)]
        [8, 16, 6]
        """
        if self.settings.batch_api or not self.settings.live:
            return list(group.selected.values())
        positions = group.positions()
        index = positions.get(case.id)
        if index is None:
            return [c for c in group.selected.values() if c.id not in positions]
        size = self.settings.batch_size * (self.settings.concurrency or START) * WINDOW_ROUNDS
        start = 0
        while index >= start + size:
            start, size = start + size, 2 * size
        return [
            c for c in group.selected.values() if start <= positions.get(c.id, -1) < start + size
        ]

    def _get(self, group: Group, pending: list[Case]) -> dict[str, Prediction]:
        """The predictions of ``pending``: asked, or read from another xdist worker's answers."""
        if not pending:
            return {}
        if self.shared is None:
            return self._predict_group(group, pending)
        ids = "\n".join(sorted(case.id for case in pending))
        key = "\n".join((group.source, group.model, group.endpoint, ids))
        return self.shared.fetch_once(key, lambda: self._predict_group(group, pending))

    def _merge(self, group: Group, fetched: dict[str, Prediction]) -> None:
        for case_id, prediction in fetched.items():
            self.predictions[(group.source, group.model, case_id)] = prediction
        answers = [self.predictions.get((group.source, group.model, c)) for c in group.selected]
        if fetched and all(answer is not None and answer.ok for answer in answers):
            self.recorder.finish(self.recorder.path_for(group.source, group.model))

    def shape_of(self, group: Group) -> RequestShape | str:
        """The group's request shape, planned once; a string says why it cannot be made."""
        if group.shape is None:
            settings = self.settings
            try:
                group.shape = plan_shape(
                    group.model,
                    group.endpoint,
                    group.labels,
                    separator=settings.separator,
                    stop=settings.stop,
                    max_tokens=settings.max_tokens,
                    top_logprobs=settings.top_logprobs,
                    constrain=settings.constrain,
                    deployment=settings.azure_deployment,
                    token_memo=self.token_memo,
                )
            except ValueError as err:
                group.shape = str(err)
        return group.shape

    def _predict_group(self, group: Group, pending: list[Case]) -> dict[str, Prediction]:
        """Ask for ``pending`` inside the group's cassette."""
        settings = self.settings
        path = self.recorder.path_for(group.source, group.model)
        try:
            client = client_options(group.model, settings, self.environ, self.local_models.base_url)
        except (RuntimeError, KeyError) as err:
            message = err.args[0] if err.args else str(err)
            return {case.id: Prediction.failed(str(message)) for case in pending}
        shape = self.shape_of(group)
        if isinstance(shape, str):
            return {case.id: Prediction.failed(shape) for case in pending}

        if not settings.live and not settings.batch_api:
            return self._replay_group(group, pending, shape, client, path)

        def describe(error: BaseException) -> str:
            if is_missing_from_cassette(error):
                return missing_message(self.recorder.source_of(path), settings.record_mode, error)
            return describe_api_error(error, redactor=self.redactor)

        self.recorder.begin(path)
        with contextlib.ExitStack() as stack:
            try:
                cassette = stack.enter_context(self.recorder.use(path))
            except BrokenCassette as broken:  # explained at the group's first case only
                told = group.first_selected()
                return broken.predictions([case.id for case in pending], told=told)
            if settings.batch_api:
                predictions = self._predict_batch(group, pending, shape, client, describe)
            else:
                warm_up(reports=settings.report)  # while the answers are awaited
                progress = self.progress
                predictions = predict(
                    pending,
                    shape,
                    client,
                    batch_size=settings.batch_size,
                    concurrency=settings.concurrency,
                    rate_limit_wait=settings.rate_limit_wait if settings.live else 0.0,
                    source_cases=group.source_cases,
                    page_recorded=lambda url, body: self.recorder.can_replay(cassette, url, body),
                    replayed=self._replayed_rule(cassette),
                    describe_error=describe,
                    progress=None if progress is None else functools.partial(progress, group),
                    redactor=self.redactor,
                    access=self.refusals.of(group.model),
                )
        if settings.live:
            self.token_memo.save()  # beside the cassettes: their replay needs no tokenizer
        for case in pending:
            predictions.setdefault(case.id, Prediction.failed("no prediction was returned"))
        return predictions

    def _replay_group(
        self,
        group: Group,
        pending: list[Case],
        shape: RequestShape,
        client: ClientOptions,
        path: Path,
    ) -> dict[str, Prediction]:
        """``pending`` answered from the group's cassette: no vcrpy, no HTTP client."""
        from pytest_ftclass.asking.replay import replay
        from pytest_ftclass.recording.replay import CassetteReplay

        try:
            cassette = CassetteReplay.read(self.recorder, path)
        except BrokenCassette as broken:  # explained at the group's first case only
            told = group.first_selected()
            return broken.predictions([case.id for case in pending], told=told)
        return replay(
            pending,
            shape,
            client,
            cassette,
            batch_size=self.settings.batch_size,
            source_cases=group.source_cases,
            redactor=self.redactor,
        )

    def _replayed_rule(self, cassette: Any) -> Callable[[str, dict[str, Any]], bool] | None:
        """How :func:`predict` tells a replayed answer from a live one in this record mode."""
        mode = self.recorder.record_mode
        if mode == "none":
            return lambda _url, _body: True
        if mode == "all":
            return None
        return lambda url, body: self.recorder.can_replay(cassette, url, body)

    def _predict_batch(
        self,
        group: Group,
        pending: list[Case],
        shape: RequestShape,
        client: ClientOptions,
        describe: Callable[[BaseException], str],
    ) -> dict[str, Prediction]:
        """``pending`` through one batch of the Batch API (inside the group's cassette)."""
        from pytest_ftclass.asking.batch_api import poll_interval_for, predict_via_batch

        shown = self.progress
        counted = 0

        def report(done: int, _total: int) -> None:  # at every poll of the batch
            nonlocal counted
            if shown is not None and done > counted:
                shown(group, done - counted, None)
                counted = done

        return predict_via_batch(
            pending,
            shape,
            client,
            batch_size=self.settings.batch_size,
            source_cases=group.source_cases,
            poll_interval=poll_interval_for(client.base_url),
            progress=report,
            describe_error=describe,
            redactor=self.redactor,
            access=self.refusals.of(group.model),
        )

    def close(self) -> None:
        """Stop the local model, if it was started."""
        self.local_models.close()


def case_result(
    case: Case,
    prediction: Prediction,
    *,
    nodeid: str,
    source: str,
    model: str,
    endpoint: str,
    labels: Sequence[str],
    outcome: str = "",
) -> CaseResult:
    """The per-case record that travels in the test report and into the JSON report.

    It shares ``prediction.logprobs`` and ``labels`` (one list per group) rather than copying.
    """
    return CaseResult(
        case_id=case.id,
        nodeid=nodeid,
        source=source,
        model=model,
        endpoint=endpoint,
        expected=case.label,
        predicted=prediction.label,
        logprobs=prediction.logprobs,
        labels=labels if isinstance(labels, list) else list(labels),
        tags=case.tags,
        critical=case.critical,
        input_digest=case.input_digest,
        usage=prediction.usage,
        latency_s=prediction.latency_s,
        error=prediction.error,
        outcome=outcome,
        logprobs_approximate=prediction.logprobs_approximate,
        finish_reason=prediction.finish_reason,
        replayed=prediction.replayed,
    )
