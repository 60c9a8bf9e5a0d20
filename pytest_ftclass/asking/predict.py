"""Asking the model: many requests at once, through the official openai client.

The requests are planned by :func:`pytest_ftclass.asking.requests.plan_requests`
(Completions pages of ``batch_size`` prompts, one Chat request per case) in
the group's :class:`~pytest_ftclass.asking.shapes.RequestShape`, and sent
``concurrency`` at a time on one asyncio loop with ``openai.AsyncOpenAI``
(``openai.AsyncAzureOpenAI`` for an Azure deployment).  Nothing here knows
about pytest or cassettes: the caller wraps :func:`predict` in a cassette when
it records, and tells it which requests the cassette answers (``replayed``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_ftclass.asking.clients import ClientOptions, make_async_client, request_url
from pytest_ftclass.asking.errors import describe_api_error, redacting
from pytest_ftclass.asking.pacing import Concurrency, Pace, Pacer
from pytest_ftclass.asking.requests import PlannedRequest, Recorded, plan_requests
from pytest_ftclass.asking.shapes import RequestShape
from pytest_ftclass.cases.sources import Case
from pytest_ftclass.results import Prediction

if TYPE_CHECKING:
    from pytest_ftclass.asking.refusals import ModelAccess
    from pytest_ftclass.recording.redaction import Redactor


def predict(
    cases: Sequence[Case],
    shape: RequestShape,
    client: ClientOptions,
    *,
    batch_size: int = 20,
    concurrency: int | None = None,
    rate_limit_wait: float = 0.0,
    source_cases: Sequence[Case] | None = None,
    page_recorded: Recorded | None = None,
    replayed: Recorded | None = None,
    describe_error: Callable[[BaseException], str] = describe_api_error,
    progress: Callable[[int, Pace], None] | None = None,
    redactor: Redactor | None = None,
    access: ModelAccess | None = None,
) -> dict[str, Prediction]:
    """Predictions for ``cases``, keyed by case id in their order; every case gets one.

    ``source_cases`` (default ``cases``) is the whole source the cases come
    from; ``page_recorded(url, body)`` tells whether a full page's request is
    on record (see :func:`~pytest_ftclass.asking.requests.plan_requests`).
    ``replayed(url, body)`` tells whether a request will be answered from a
    cassette: those predictions are marked ``replayed`` and carry no latency
    (the time vcrpy took is not the model's).  ``concurrency`` pins the
    requests in flight; ``None`` adapts it to the server (see
    :mod:`pytest_ftclass.asking.pacing`).  ``rate_limit_wait`` is how long
    the run may wait out 429s once the SDK's retries gave up.  ``progress(n,
    pace)`` is called as each request finishes with the number of cases it
    answered and the current :class:`~pytest_ftclass.asking.pacing.Pace`.  ``redactor``
    replaces secrets in what the server wrote (labels, texts, errors) before
    anyone sees it; ``access`` (see :mod:`pytest_ftclass.asking.refusals`)
    stops asking the model after a definitive error.
    """
    url = request_url(client, shape.path)
    planned, results = plan_requests(
        cases,
        shape,
        source_cases=source_cases,
        batch_size=batch_size,
        recorded=None if page_recorded is None else lambda body: page_recorded(url, body),
    )
    if redactor is not None:
        describe_error = redacting(describe_error, redactor)
    pacer = Pacer(
        Concurrency() if concurrency is None else Concurrency(concurrency, pinned=True),
        rate_limit_wait,
        access,
        describe_error,
        first_wave=1 + client.max_retries,
    )
    from_cassette = None if replayed is None else lambda body: replayed(url, body)
    answered = run_coroutine(
        _ask_all(planned, shape, client, pacer, from_cassette, describe_error, progress)
    )
    results.update(answered)
    if redactor is not None:
        results = {key: redactor.prediction(p) for key, p in results.items()}
    return {case.id: results[case.id] for case in cases if case.id in results}


def run_coroutine(coroutine: Any) -> Any:
    """Run ``coroutine`` to completion, also from a thread that already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as err:  # re-raised in the calling thread
            box["error"] = err

    thread = threading.Thread(target=target, name="ftclass-predict")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def _ask_all(
    planned: list[PlannedRequest],
    shape: RequestShape,
    client_options: ClientOptions,
    pacer: Pacer,
    replayed: Callable[[dict[str, Any]], bool] | None,
    describe_error: Callable[[BaseException], str],
    progress: Callable[[int, Pace], None] | None,
) -> dict[str, Prediction]:
    client = make_async_client(client_options, on_response=pacer.observe)
    results: dict[str, Prediction] = {}
    # What exists now (pytest's items, the SDK's modules) outlives the requests: kept out
    # of the collector's full passes, which otherwise stop the loop 40-90 ms each
    # (measured on 1,000 Chat cases; about 25 ms with the freeze).
    gc.freeze()
    try:
        tasks = [
            asyncio.ensure_future(_ask(client, pacer, request, shape, replayed, describe_error))
            for request in planned
        ]
        try:
            for finished in asyncio.as_completed(tasks):
                answered = await finished
                results.update(answered)
                if progress is not None:
                    progress(len(answered), pacer.concurrency.pace())
        finally:
            for task in tasks:
                task.cancel()
    finally:
        await client.close()
        gc.unfreeze()
    return results


async def _ask(
    client: Any,
    pacer: Pacer,
    request: PlannedRequest,
    shape: RequestShape,
    replayed: Callable[[dict[str, Any]], bool] | None,
    describe_error: Callable[[BaseException], str],
) -> dict[str, Prediction]:
    """One request: its wanted cases' predictions, or their errors."""
    from_cassette = replayed is not None and replayed(request.body)
    started = time.perf_counter()
    try:
        text, elapsed = await pacer.send(client, shape.path, request.body)
    except Exception as err:
        return request.failed(
            describe_error(err), None if from_cassette else time.perf_counter() - started
        )
    answers = request.answers(shape, _json_body(text))
    for prediction in answers.values():
        prediction.replayed = from_cassette
        prediction.latency_s = None if from_cassette else elapsed
    return answers


def _json_body(text: str) -> Any:
    """The response body as JSON; a body that is not JSON becomes ``None`` (malformed)."""
    try:
        return json.loads(text)
    except ValueError:
        return None
