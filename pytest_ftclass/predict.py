"""Asking the model: many cases at once, through the official openai client.

Completions takes a list of prompts in one request, so prompts go in batches of
``batch_size``; Chat Completions takes one conversation per request, so requests
are sent ``concurrency`` at a time.  Both run on one asyncio loop with
``openai.AsyncOpenAI``; nothing here knows about pytest or cassettes (the caller
wraps :func:`predict` in a cassette when it wants recording).

Batches are cut from the whole case source in fixed pages, not from whatever
subset is selected, so a subset (``-k``, ``--lf``) can be answered from a
recording of the full run: when ``page_recorded`` says the full page's request
is on record, the full page is asked (and answered from the cassette) and only
the selected cases are kept.

>>> options = RequestOptions(batch_size=2)
>>> [len(page) for page in pages_of(list("abcde"), options.batch_size)]
[2, 2, 1]
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .cases import Case
from .endpoints import chat_request, completions_request, parse_chat, parse_completions
from .results import Prediction


@dataclass(frozen=True)
class RequestOptions:
    """How each request is shaped and how many go at once."""

    separator: str = "\n\n###\n\n"
    stop: str = ""
    max_tokens: int = 1
    top_logprobs: int = 5
    batch_size: int = 20
    concurrency: int = 8


@dataclass(frozen=True)
class ClientOptions:
    """How the openai client is built."""

    api_key: str
    base_url: str | None = None
    max_retries: int = 2
    timeout: float = 60.0


def pages_of(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def describe_api_error(error: BaseException) -> str:
    """A one-line description of an error from the openai client (never the request body)."""
    import openai

    if isinstance(error, openai.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        detail = body.get("error", body) if isinstance(body, dict) else {}
        # the code says more than the type: rate_limit_exceeded, not requests
        kind = detail.get("code") or detail.get("type") or type(error).__name__
        message = detail.get("message") or str(error)
        return f"HTTP {error.status_code} {kind}: {message}"
    if isinstance(error, openai.APITimeoutError):
        return "request timed out"
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__
        return f"connection error: {type(cause).__name__ if cause else 'unknown'}"
    return f"{type(error).__name__}: {error}"


def predict(
    cases: Sequence[Case],
    *,
    model: str,
    endpoint: str,
    labels: Sequence[str],
    client: ClientOptions,
    options: RequestOptions = RequestOptions(),
    source_cases: Sequence[Case] | None = None,
    page_recorded: Callable[[str, dict[str, Any]], bool] | None = None,
    describe_error: Callable[[BaseException], str] = describe_api_error,
) -> dict[str, Prediction]:
    """Predictions for ``cases``, keyed by case id; every case gets one, failed or not.

    ``source_cases`` (default: ``cases``) is the whole source the cases come from;
    Completions pages are cut from it.  ``page_recorded(url, request)`` tells
    whether a request is already recorded.
    """
    coroutine = _predict_async(
        list(cases),
        model=model,
        endpoint=endpoint,
        labels=list(labels),
        client_options=client,
        options=options,
        source_cases=list(source_cases) if source_cases is not None else list(cases),
        page_recorded=page_recorded,
        describe_error=describe_error,
    )
    return run_coroutine(coroutine)


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


async def _predict_async(
    cases: list[Case],
    *,
    model: str,
    endpoint: str,
    labels: list[str],
    client_options: ClientOptions,
    options: RequestOptions,
    source_cases: list[Case],
    page_recorded: Callable[[str, dict[str, Any]], bool] | None,
    describe_error: Callable[[BaseException], str],
) -> dict[str, Prediction]:
    import openai

    client = openai.AsyncOpenAI(
        api_key=client_options.api_key,
        base_url=client_options.base_url,
        max_retries=client_options.max_retries,
        timeout=client_options.timeout,
    )
    limit = asyncio.Semaphore(options.concurrency)
    results: dict[str, Prediction] = {}
    try:
        if endpoint == "completions":
            url = str(client.base_url).rstrip("/") + "/completions"
            batches = _completion_batches(cases, source_cases, model, options, url, page_recorded)
            jobs = [
                _ask_completions(client, limit, batch, keep, model, labels, options, describe_error)
                for batch, keep in batches
            ]
        else:
            jobs = [
                _ask_chat(client, limit, case, model, labels, options, describe_error)
                for case in cases
            ]
        for answered in await asyncio.gather(*jobs):
            results.update(answered)
    finally:
        await client.close()
    return results


def _completion_batches(
    cases: list[Case],
    source_cases: list[Case],
    model: str,
    options: RequestOptions,
    url: str,
    page_recorded: Callable[[str, dict[str, Any]], bool] | None,
) -> list[tuple[list[Case], set[str]]]:
    """(cases to send, ids to keep) per request, pages cut from the whole source."""
    wanted = {case.id for case in cases}
    batches = []
    placed: set[str] = set()
    for page in pages_of(source_cases, options.batch_size):
        selected = [case for case in page if case.id in wanted]
        if not selected:
            continue
        placed.update(case.id for case in selected)
        if len(selected) < len(page) and page_recorded is not None:
            full = completions_request(
                page,
                model,
                separator=options.separator,
                max_tokens=options.max_tokens,
                top_logprobs=options.top_logprobs,
                stop=options.stop,
            )
            if page_recorded(url, full):
                batches.append((list(page), {case.id for case in selected}))
                continue
        batches.append((selected, {case.id for case in selected}))
    strays = [case for case in cases if case.id not in placed]
    for page in pages_of(strays, options.batch_size):
        batches.append((list(page), {case.id for case in page}))
    return batches


async def _ask_completions(
    client: Any,
    limit: asyncio.Semaphore,
    batch: list[Case],
    keep: set[str],
    model: str,
    labels: list[str],
    options: RequestOptions,
    describe_error: Callable[[BaseException], str],
) -> dict[str, Prediction]:
    try:
        request = completions_request(
            batch,
            model,
            separator=options.separator,
            max_tokens=options.max_tokens,
            top_logprobs=options.top_logprobs,
            stop=options.stop,
        )
    except ValueError as err:
        return {case.id: Prediction.failed(str(err)) for case in batch if case.id in keep}
    async with limit:
        started = time.perf_counter()
        try:
            raw = await client.completions.with_raw_response.create(**request)
            body = _json_body(raw)
        except Exception as err:
            elapsed = time.perf_counter() - started
            message = describe_error(err)
            return {c.id: Prediction.failed(message, elapsed) for c in batch if c.id in keep}
        elapsed = time.perf_counter() - started
    predictions = parse_completions(body, len(batch), labels=labels, stop=options.stop)
    answered = {}
    for case, prediction in zip(batch, predictions, strict=True):
        if case.id in keep:
            prediction.latency_s = elapsed
            answered[case.id] = prediction
    return answered


async def _ask_chat(
    client: Any,
    limit: asyncio.Semaphore,
    case: Case,
    model: str,
    labels: list[str],
    options: RequestOptions,
    describe_error: Callable[[BaseException], str],
) -> dict[str, Prediction]:
    request = chat_request(
        case,
        model,
        separator=options.separator,
        max_tokens=options.max_tokens,
        top_logprobs=options.top_logprobs,
    )
    async with limit:
        started = time.perf_counter()
        try:
            raw = await client.chat.completions.with_raw_response.create(**request)
            body = _json_body(raw)
        except Exception as err:
            return {case.id: Prediction.failed(describe_error(err), time.perf_counter() - started)}
        elapsed = time.perf_counter() - started
    prediction = parse_chat(body, labels=labels, stop=options.stop)
    prediction.latency_s = elapsed
    return {case.id: prediction}


def _json_body(raw: Any) -> Any:
    """The response body as JSON; a body that is not JSON becomes ``None`` (malformed)."""
    import json

    try:
        return json.loads(raw.http_response.text)
    except ValueError:
        return None
