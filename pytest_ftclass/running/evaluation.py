"""One run's predictions: which cases go to which model, through which cassette.

An :class:`Evaluation` is told up front which cases are selected (``plan``), and
fetches the predictions of a group (one case source against one model and
endpoint) inside that group's cassette: in a replay all at once, the first time
any case of it is asked for; live, window by window, or all in the background
(read ahead) while the items whose answers are in run.  It starts the local
reference model when a group needs it live.  It does not import pytest: the
plugin feeds it cases and reads predictions back.

>>> from pytest_ftclass.options import Settings
>>> evaluation = Evaluation(Settings(record_mode="none"))
>>> evaluation.base_url_for("local")
'http://127.0.0.1:9/v1'
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_ftclass.asking.endpoints import infer_endpoint, is_local_model, parse_local_model
from pytest_ftclass.asking.predict import ClientOptions, RequestOptions, describe_api_error, predict
from pytest_ftclass.asking.refusals import Refusals
from pytest_ftclass.cases.sources import Case
from pytest_ftclass.cases.tokens import TokenMemo
from pytest_ftclass.options import Settings
from pytest_ftclass.recording.cassette_files import BrokenCassette
from pytest_ftclass.recording.names import tokens_path
from pytest_ftclass.recording.recorder import Recorder, is_missing_from_cassette, missing_message
from pytest_ftclass.recording.redaction import Redactor
from pytest_ftclass.results import CaseResult, Prediction
from pytest_ftclass.running.shared_predictions import SharedPredictions

if TYPE_CHECKING:
    from pytest_ftclass.running.read_ahead import ReadAhead

#: Base URL used for the local model when nothing is sent (replay only): never contacted.
UNUSED_BASE_URL = "http://127.0.0.1:9/v1"
#: Full rounds of requests (batch size × concurrency cases each) in the first window.
WINDOW_ROUNDS = 4
PLACEHOLDER_KEY = "sk-ftclass-placeholder"


@dataclass(frozen=True)
class _Hooks:
    """How a fetch is steered and heard from (a read-ahead's, see :mod:`.read_ahead`).

    ``stop`` cancels it; ``progress(n)``: ``n`` more cases answered (default:
    the run's progress line); ``publish(predictions)`` gets each request's
    answers as it finishes, and the cassette is then saved along the way
    (see :class:`_SavePoints`).
    """

    stop: threading.Event | None = None
    progress: Callable[[int], None] | None = None
    publish: Callable[[dict[str, Prediction]], None] | None = None


_NO_HOOKS = _Hooks()


@dataclass
class _Ahead:
    """The cases of ``group`` (``ids``) that ``reading`` asks for in the background."""

    group: Group
    ids: set[str]
    reading: ReadAhead


class _SavePoints:
    """Passes each request's answers on, saving the cassette at the ends of the windows.

    The cassette is written after as many answers as the first window holds,
    then after twice as many more, and so on: a killed recording keeps what
    was answered up to the last save (the rest is written when the fetch ends).
    """

    def __init__(
        self, cassette: Any, publish: Callable[[dict[str, Prediction]], None], first: int
    ) -> None:
        self.cassette = cassette
        self.publish = publish
        self.size = first
        self.answered = 0
        self.next_save = self.size

    def __call__(self, answers: dict[str, Prediction]) -> None:
        self.publish(answers)
        self.answered += len(answers)
        if self.answered >= self.next_save:
            self.cassette.save()
            self.size *= 2
            self.next_save = self.answered + self.size


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
        self.groups: dict[tuple[str, str, str], Group] = {}
        #: Token ids of the labels, read from and written beside the cassettes.
        self.token_memo = TokenMemo(tokens_path(settings.cassette_dir), redactor=self.redactor)
        self.predictions: dict[tuple[str, str, str], Prediction] = {}
        self._server: Any = None
        self._classifiers: dict[str, Any] = {}
        #: Called as ``(group, finished, total)`` at every poll of a batch (``ft_batch_api``).
        self.batch_progress: Callable[[Group, int, int], None] | None = None
        #: Called as ``(group, cases answered)`` as each live request finishes.
        self.progress: Callable[[Group, int], None] | None = None
        #: The rest of a group being asked for in the background (see ``_read_ahead``).
        self._ahead: _Ahead | None = None

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
    def prediction(
        self, source: str, model: str, case: Case, *, read_ahead: bool = False
    ) -> Prediction:
        """The prediction for ``case``, fetching the window of its group it lies in on first use.

        With ``read_ahead`` (the plugin's own case items, which send no HTTP of
        their own) a live run asks for the group from that window on in the
        background instead, and each case waits for its own answer only: items
        run while the requests for the next ones are out.  See :meth:`settle`.
        """
        key = (source, model, case.id)
        if key not in self.predictions:
            group = self.group_of(source, model, case)
            group.selected.setdefault(case.id, case)
            if not self._wait_ahead(group, case):
                self.settle()  # one cassette open at a time
                if not (read_ahead and self._read_ahead(group, case)):
                    window = self._window(group, case)
                    self._merge(group, self._get(group, self._pending(group, window)))
        return self.predictions[key]

    def settle(self) -> None:
        """Wait for the rest of the group being read ahead, if any, and keep its predictions.

        The plugin calls this before every item that is not one of its case
        items: vcrpy patches HTTP clients process-wide while a cassette is
        open, so no other test may run while answers are being asked for.
        """
        if self._ahead is not None:
            self._finish_ahead()

    def stop_reading_ahead(self) -> None:
        """The session is ending (Ctrl-C, ``-x``): cancel what is being read ahead, if any.

        When every answer is in already, the fetch is waited for instead, so its
        cassette is complete.  Otherwise what it recorded so far stays in its
        cassette, which stays incomplete.
        """
        ahead = self._ahead
        if ahead is None:
            return
        if ahead.reading.published >= len(ahead.ids):
            self._finish_ahead()
        else:
            ahead.reading.cancel()
            self._ahead = None

    def _wait_ahead(self, group: Group, case: Case) -> bool:
        """Whether ``case`` is being read ahead; if so, wait for its answer and keep what came."""
        ahead = self._ahead
        if ahead is None or ahead.group is not group or case.id not in ahead.ids:
            return False
        try:
            ahead.reading.wait_for(case.id, self._reporter(group))
        except BaseException:  # Ctrl-C while waiting: stop asking
            self.stop_reading_ahead()
            raise
        for case_id, prediction in ahead.reading.take().items():
            self.predictions[(group.source, group.model, case_id)] = prediction
        if not ahead.reading.running:
            self._finish_ahead()
        return True

    def _finish_ahead(self) -> None:
        assert self._ahead is not None
        group, reading = self._ahead.group, self._ahead.reading
        try:
            fetched = reading.result(self._reporter(group))
        except BaseException:
            reading.cancel()
            raise
        finally:
            self._ahead = None
        self._merge(group, fetched)

    def _reporter(self, group: Group) -> Callable[[int], None] | None:
        return None if self.progress is None else functools.partial(self.progress, group)

    def _read_ahead(self, group: Group, case: Case) -> bool:
        """Start asking for the cases of ``group`` from ``case``'s window on, in the background.

        Whether it started, and ``case`` is now waited for.  Not under
        pytest-xdist: there each window is fetched once for all workers, under
        its own lock, and the workers themselves run items while one of them asks.
        """
        settings = self.settings
        if not settings.read_ahead or settings.batch_api or not settings.live or self.shared:
            return False
        rest = self._pending(group, self._from_window_of(group, case))
        if not rest:
            return False
        from pytest_ftclass.running.read_ahead import ReadAhead

        reading = ReadAhead(
            lambda stop, progress, publish: self._get(group, rest, _Hooks(stop, progress, publish))
        )
        self._ahead = _Ahead(group, {case.id for case in rest}, reading)
        return self._wait_ahead(group, case)

    def _window(self, group: Group, case: Case) -> list[Case]:
        """The selected cases fetched together with ``case``.

        The group's source is cut into windows of whole Completions pages: the
        first is ``WINDOW_ROUNDS`` rounds of full batches at full concurrency,
        and each next one is twice as long as the one before.  Requests go out
        many at once while results, and the partial report of an interrupted
        run, arrive window by window.  Read ahead (see :meth:`prediction`), the
        windows are asked for in one go, the cassette saved at the end of each.
        Cases that are not in the source go together.  With ``ft_batch_api``
        the whole selection of the group is one window: one batch.

        >>> from pytest_ftclass.options import Settings
        >>> evaluation = Evaluation(Settings(batch_size=2, concurrency=1, record_mode="once"))
        >>> cases = [Case(f"c{i}", f"text {i}", "a") for i in range(30)]
        >>> evaluation.plan("s", cases, "ft:babbage-002:o::m", cases)
        >>> group = evaluation.group_of("s", "ft:babbage-002:o::m", cases[0])
        >>> [len(evaluation._window(group, cases[i])) for i in (0, 8, 24)]
        [8, 16, 6]
        >>> [c.id for c in evaluation._from_window_of(group, cases[9])][:2]
        ['c8', 'c9']
        """
        if self.settings.batch_api or self.recorder.replay_only:
            # one batch; or, when nothing is sent, one cassette load
            return list(group.selected.values())
        index = self._positions(group).get(case.id)
        if index is None:
            return [c for c in group.selected.values() if c.id not in group.position]
        return self._cases_in(group, *self._span(index))

    def _from_window_of(self, group: Group, case: Case) -> list[Case]:
        """The selected cases of ``group`` from the window of ``case`` on (none off the source)."""
        positions = self._positions(group)
        index = positions.get(case.id)
        if index is None:
            return []
        start, _ = self._span(index)
        return self._cases_in(group, start, len(group.source_cases))

    @property
    def _first_window(self) -> int:
        """Cases in the first window: ``WINDOW_ROUNDS`` rounds of full batches."""
        return self.settings.batch_size * self.settings.concurrency * WINDOW_ROUNDS

    def _span(self, index: int) -> tuple[int, int]:
        """Start and end (exclusive) of the window holding source position ``index``."""
        size = self._first_window
        start = 0
        while index >= start + size:
            start, size = start + size, 2 * size
        return start, start + size

    @staticmethod
    def _positions(group: Group) -> dict[str, int]:
        if not group.position:
            group.position = {c.id: i for i, c in enumerate(group.source_cases)}
        return group.position

    @staticmethod
    def _cases_in(group: Group, start: int, end: int) -> list[Case]:
        return [c for c in group.selected.values() if start <= group.position.get(c.id, -1) < end]

    def _pending(self, group: Group, window: list[Case]) -> list[Case]:
        return [c for c in window if (group.source, group.model, c.id) not in self.predictions]

    def _get(
        self, group: Group, pending: list[Case], hooks: _Hooks = _NO_HOOKS
    ) -> dict[str, Prediction]:
        """The predictions of ``pending``: asked, or read from another xdist worker's answers."""
        if not pending:
            return {}
        if self.shared is None:
            return self._predict_group(group, pending, hooks)
        ids = "\n".join(sorted(case.id for case in pending))
        key = "\n".join((group.source, group.model, group.endpoint, ids))
        return self.shared.fetch_once(key, lambda: self._predict_group(group, pending, hooks))

    def _merge(self, group: Group, fetched: dict[str, Prediction]) -> None:
        for case_id, prediction in fetched.items():
            self.predictions[(group.source, group.model, case_id)] = prediction
        answers = [self.predictions.get((group.source, group.model, c)) for c in group.selected]
        if fetched and all(answer is not None and answer.ok for answer in answers):
            self.recorder.finish(self.recorder.path_for(group.source, group.model))

    def _predict_group(
        self, group: Group, pending: list[Case], hooks: _Hooks = _NO_HOOKS
    ) -> dict[str, Prediction]:
        """Ask for ``pending`` inside the group's cassette, steered by ``hooks``."""
        settings = self.settings
        progress, publish = hooks.progress or self._reporter(group), hooks.publish
        path = self.recorder.path_for(group.source, group.model)
        try:
            client = self.client_options(group.model)
        except (RuntimeError, KeyError) as err:
            message = err.args[0] if err.args else str(err)
            return {case.id: Prediction.failed(str(message)) for case in pending}
        options = RequestOptions(
            separator=settings.separator,
            stop=settings.stop,
            max_tokens=settings.max_tokens,
            top_logprobs=settings.top_logprobs,
            batch_size=settings.batch_size,
            concurrency=settings.concurrency,
            constrain=settings.constrain,
            rate_limit_wait=0.0 if self.recorder.replay_only else settings.rate_limit_wait,
            token_memo=self.token_memo,
        )

        def describe(error: BaseException) -> str:
            if is_missing_from_cassette(error):
                return missing_message(self.recorder.source_of(path), settings.record_mode, error)
            return describe_api_error(error, redactor=self.redactor)

        self.recorder.begin(path)
        access = self.refusals.of(group.model)
        with contextlib.ExitStack() as stack:
            try:
                cassette = stack.enter_context(self.recorder.use(path))
            except BrokenCassette as broken:  # explained at the group's first case only
                told = min(group.selected, key=lambda i: self._positions(group).get(i, 1 << 62))
                return broken.predictions([case.id for case in pending], told=told)
            if settings.batch_api:
                predictions = self._predict_batch(group, pending, client, options, describe)
            else:
                saving = None
                if publish is not None:
                    saving = _SavePoints(cassette, publish, self._first_window)
                predictions = predict(
                    pending,
                    replayed=self._replayed_rule(cassette),
                    model=group.model,
                    endpoint=group.endpoint,
                    labels=group.labels,
                    client=client,
                    options=options,
                    source_cases=group.source_cases,
                    page_recorded=lambda url, body: self.recorder.can_replay(cassette, url, body),
                    describe_error=describe,
                    progress=progress,
                    stop=hooks.stop,
                    on_answer=saving,
                    redactor=self.redactor,
                    access=access,
                )
        if not self.recorder.replay_only:
            self.token_memo.save()  # beside the cassettes: their replay needs no tokenizer
        for case in pending:
            predictions.setdefault(case.id, Prediction.failed("no prediction was returned"))
        return predictions

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
        client: ClientOptions,
        options: RequestOptions,
        describe: Callable[[BaseException], str],
    ) -> dict[str, Prediction]:
        """``pending`` through one batch of the Batch API (inside the group's cassette)."""
        from pytest_ftclass.asking.batch_api import poll_interval_for, predict_via_batch

        report = self.batch_progress
        return predict_via_batch(
            pending,
            model=group.model,
            endpoint=group.endpoint,
            labels=group.labels,
            client=client,
            options=options,
            source_cases=group.source_cases,
            poll_interval=poll_interval_for(client.base_url),
            progress=None if report is None else lambda done, total: report(group, done, total),
            describe_error=describe,
            redactor=self.redactor,
            access=self.refusals.of(group.model),
        )

    # -- client and local model ------------------------------------------
    def client_options(self, model: str) -> ClientOptions:
        settings = self.settings
        live = not self.recorder.replay_only
        if settings.azure_deployment:
            return self._azure_client_options()
        key = self.environ.get("OPENAI_API_KEY")
        base_url = self.base_url_for(model)
        if not key:
            if live and base_url is None:
                raise RuntimeError(
                    f"OPENAI_API_KEY is not set: it is needed to record from {model} "
                    f"(record mode '{settings.record_mode}')"
                )
            key = PLACEHOLDER_KEY
        return ClientOptions(
            api_key=key,
            base_url=base_url,
            max_retries=settings.max_retries if live else 0,
            timeout=settings.timeout,
        )

    def _azure_client_options(self) -> ClientOptions:
        """Azure OpenAI: ``ft_base_url`` (or ``AZURE_OPENAI_ENDPOINT``) is the resource endpoint.

        The key is ``AZURE_OPENAI_API_KEY``, else ``OPENAI_API_KEY``; both are
        needed only to record.  Replay needs neither: requests match on path and
        body, whatever host they name.
        """
        settings = self.settings
        live = not self.recorder.replay_only
        deployment = settings.azure_deployment
        key = self.environ.get("AZURE_OPENAI_API_KEY") or self.environ.get("OPENAI_API_KEY")
        endpoint = settings.base_url or self.environ.get("AZURE_OPENAI_ENDPOINT")
        if live and not endpoint:
            raise RuntimeError(
                f"Azure deployment {deployment!r} needs its resource endpoint: set "
                "--ft-base-url (e.g. https://NAME.openai.azure.com) or AZURE_OPENAI_ENDPOINT"
            )
        if live and not key:
            raise RuntimeError(
                f"AZURE_OPENAI_API_KEY (or OPENAI_API_KEY) is not set: it is needed to record "
                f"from Azure deployment {deployment!r} (record mode '{settings.record_mode}')"
            )
        return ClientOptions(
            api_key=key or PLACEHOLDER_KEY,
            base_url=endpoint or UNUSED_BASE_URL.removesuffix("/v1"),
            max_retries=settings.max_retries if live else 0,
            timeout=settings.timeout,
            azure_deployment=deployment,
            azure_api_version=settings.azure_api_version,
        )

    def base_url_for(self, model: str) -> str | None:
        """Where ``model`` is asked: ``local…`` models in-process, others at ``ft_base_url``."""
        if not is_local_model(model):
            return self.settings.base_url
        if self.recorder.replay_only:
            return UNUSED_BASE_URL
        self._resolve_local(model)  # trains it now, or raises KeyError saying why it can't
        return self._local_server().base_url

    def training_file(self, model: str) -> tuple[Path, float]:
        """Training file and share of it for a local model id (see ``parse_local_model``)."""
        try:
            path, fraction = parse_local_model(model)
        except ValueError as err:
            raise KeyError(str(err)) from None
        if path is None:
            if self.settings.reference_train is None:
                raise KeyError(f"model {model!r} needs a training file: set ft_reference_train")
            return self.settings.reference_train, fraction
        return (self.settings.rootdir / path).resolve(), fraction

    def _resolve_local(self, model: str) -> Any:
        from pytest_ftclass.reference import ReferenceClassifier

        if not is_local_model(model):
            raise KeyError(model)
        if model not in self._classifiers:
            path, fraction = self.training_file(model)
            if not path.is_file():
                raise KeyError(f"training file {path} of model {model!r} does not exist")
            self._classifiers[model] = ReferenceClassifier.from_file(path, fraction=fraction)
        return self._classifiers[model]

    def _local_server(self) -> Any:
        if self._server is None:
            from pytest_ftclass.reference import ReferenceServer

            self._server = ReferenceServer(self._resolve_local).start()
        return self._server

    def close(self) -> None:
        """Stop what is still being read ahead, and the local model."""
        self.stop_reading_ahead()
        if self._server is not None:
            self._server.stop()
            self._server = None


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
        tags=list(case.tags),
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
