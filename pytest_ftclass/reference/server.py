"""The reference classifier served over the OpenAI wire format on a local port.

A stdlib ``ThreadingHTTPServer`` in a daemon thread answers ``POST
/v1/completions``, ``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET
/v1/models/{id}`` with the shapes the real API uses, so the official ``openai``
client (and anything recorded through it) cannot tell the difference.  The
server also keeps files (:mod:`~pytest_ftclass.reference.files`), runs batches
(:mod:`~pytest_ftclass.reference.batches`) and fine-tuning jobs
(:mod:`~pytest_ftclass.reference.fine_tuning`); it owns one store of each
(``server.files``, ``server.batches``, ``server.fine_tuning``) and its handlers
reach them through it:

>>> from pytest_ftclass.cases.sources import load_cases
>>> from pytest_ftclass.reference import ReferenceClassifier, ReferenceServer
>>> cases = load_cases(
...     [{"input": f"{w} goal match", "label": "sport"} for w in ("a", "b")]
...     + [{"input": f"{w} shares profit", "label": "business"} for w in ("c", "d")]
... )
>>> model = ReferenceClassifier.train(cases)
>>> import openai
>>> with ReferenceServer({"local": model}) as server:
...     client = openai.OpenAI(base_url=server.base_url, api_key="sk-local")
...     reply = client.completions.create(
...         model="local", prompt=["late goal\\n\\n###\\n\\n"], max_tokens=1, logprobs=2
...     )
...     [(r.method, r.path, r.model, r.inputs, r.status) for r in server.requests]
[('POST', '/v1/completions', 'local', 1, 200)]
>>> reply.choices[0].text, reply.choices[0].finish_reason
(' sport', 'length')

How a class is served:

- every class is ONE token; the completion token is ``" " + label`` (the leading
  space of fine-tuning completions), the chat token is the label itself;
- the answer is the most probable class (as at temperature 0, whatever
  ``temperature`` says) and every log-probability is the classifier's real
  log-probability (:meth:`ReferenceClassifier.predict_log_proba`);
- ``finish_reason`` is ``"length"`` when ``max_tokens`` is 1 (the class token used
  the whole budget) and ``"stop"`` otherwise;
- ``usage`` counts whitespace-separated words, a rough stand-in for tokens.

Limits kept from the real API: Completions ``logprobs`` is at most 5, Chat
``top_logprobs`` at most 20 and needs ``logprobs: true``.  Not supported (400):
``echo``, ``stream``, ``n`` other than 1, token-id prompts.  ``logit_bias`` is
checked (token ids to numbers from -100 to 100) and its size logged, but it does
not change the answer: the model answers a class anyway.

Azure OpenAI paths are answered too: ``POST
/openai/deployments/{name}/completions`` and ``.../chat/completions`` ask the
model named ``name`` (the body's ``model`` is ignored, so is ``api-version``),
and the key may come in an ``api-key`` header.

``resolve`` maps a model id to its classifier and raises ``KeyError`` for an
unknown one (a 404 ``model_not_found``); a ``Mapping`` works as is and lets
``GET /v1/models`` list its ids.  The models fine-tuned on the server (final
and checkpoints) come first: they answer, and are listed, once they exist.
With ``api_key`` set, a request whose ``Authorization: Bearer`` header differs
gets a 401.  The request log (:attr:`ReferenceServer.requests`) records method,
path, model, number of prompts or messages and status, never prompt text or
headers.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from pytest_ftclass.cases.sources import request_text
from pytest_ftclass.reference.batches import BatchStore
from pytest_ftclass.reference.classifier import ReferenceClassifier
from pytest_ftclass.reference.files import FileStore
from pytest_ftclass.reference.fine_tuning import ORGANIZATION, FineTuningJobs
from pytest_ftclass.reference.limits import RateLimits
from pytest_ftclass.reference.wire import (
    ApiError,
    StableIds,
    invalid,
    missing,
    parse_json_object,
)

__all__ = ["ApiError", "ReferenceServer", "RequestRecord"]

Resolver = Callable[[str], ReferenceClassifier]

LOGPROB_FLOOR = -9999.0  # what the real API uses for an impossible token
MAX_COMPLETION_LOGPROBS = 5
MAX_CHAT_TOP_LOGPROBS = 20
MAX_BODY_BYTES = 64 * 1024 * 1024
CREATED_AT = 1_700_000_000  # the `created` of every listed model: a fixed, plausible time


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered: no prompt text, no headers."""

    method: str
    path: str
    model: str | None
    inputs: int
    status: int
    #: entries of the request's ``logit_bias`` (``None``: the request had none)
    logit_bias_size: int | None = None
    #: ``time.monotonic()`` when the request began to be handled, and when its answer was ready
    received_at: float = 0.0
    answered_at: float = 0.0


class ReferenceServer:
    """Serve classifiers over the OpenAI API on ``host:port`` (``port=0``: any free port).

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        server = ReferenceServer({"local": model}).start()
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-anything")
        ...
        server.stop()

    ``latency_s`` makes every answer wait that many seconds before it is sent
    (each connection is served by its own thread, so concurrent requests wait
    side by side, like a remote API's round trip): benchmarks use it to stand
    in for a real endpoint, e.g. ``ReferenceServer(models, latency_s=0.1)``.
    ``latency_spread`` σ spreads the waits as a real API's are, log-normally
    around that median: each is ``latency_s · exp(σ·Z)`` for a standard normal
    Z (drawn from ``random.Random(0)``, so a run's waits repeat).
    """

    def __init__(
        self,
        resolve: Resolver | Mapping[str, ReferenceClassifier],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        latency_s: float = 0.0,
        latency_spread: float = 0.0,
        limits: RateLimits | None = None,
    ) -> None:
        if latency_s < 0 or latency_spread < 0:
            raise ValueError(
                f"latency_s and latency_spread must be zero or positive, not {latency_s}"
                f" and {latency_spread}"
            )
        if isinstance(resolve, Mapping):
            models = resolve
            self._resolve: Resolver = models.__getitem__
            self._list_models: Callable[[], list[str]] = lambda: sorted(models)
        else:
            self._resolve = resolve
            self._list_models = list
        self.host = host
        self.port = port
        self.api_key = api_key
        self.latency_s = latency_s
        self.latency_spread = latency_spread
        self._waits = random.Random(0)
        #: Requests per second and tokens per minute it answers (429 beyond), or ``None``.
        self.limits = limits
        self._log: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._httpd: QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: fine-tuned models (final and checkpoints): id -> (classifier, created_at)
        self._tuned: dict[str, tuple[ReferenceClassifier, int]] = {}
        ids = StableIds()
        self.files = FileStore(ids)
        self.batches = BatchStore(self.files, self._answer_line)
        self.fine_tuning = FineTuningJobs(self.files, self._publish)

    def wait(self) -> float:
        """Seconds the next answer waits (``latency_s``, spread by ``latency_spread``)."""
        if not self.latency_spread:
            return self.latency_s
        with self._lock:
            z = self._waits.gauss(0.0, 1.0)
        return self.latency_s * math.exp(self.latency_spread * z)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> ReferenceServer:
        """Bind and serve in a daemon thread; returns ``self``.  Starting twice is a no-op."""
        if self._httpd is not None:
            return self
        httpd = QuietHTTPServer((self.host, self.port), _Handler, self)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ftclass-reference:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close keep-alive connections; unfinished fine-tuning jobs fail.

        Safe to call twice.
        """
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.fine_tuning.close()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Block until interrupted (Ctrl-C), then stop; for command-line use."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, what ``openai.OpenAI(base_url=...)`` takes."""
        if self._httpd is None:
            raise RuntimeError("the reference server is not started: call start() first")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/v1"

    # -- request log -------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request answered since start or the last :meth:`reset_log`."""
        with self._lock:
            return list(self._log)

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        return f"ReferenceServer({where})"

    # -- the API -----------------------------------------------------------------

    def _authorized(self, authorization: str | None, api_key_header: str | None = None) -> bool:
        """The key as ``Authorization: Bearer KEY`` (OpenAI) or ``api-key: KEY`` (Azure)."""
        if self.api_key is None:
            return True
        return authorization == f"Bearer {self.api_key}" or api_key_header == self.api_key

    def _publish(self, model_id: str, model: ReferenceClassifier, created_at: int) -> None:
        """Make a fine-tuned model (or checkpoint) answer as ``model_id``."""
        with self._lock:
            self._tuned[model_id] = (model, created_at)

    def _model(self, body: dict[str, Any]) -> tuple[str, ReferenceClassifier]:
        model_id = body.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise missing("model") if model_id is None else invalid("model", "a string")
        with self._lock:
            tuned = self._tuned.get(model_id)
        if tuned is not None:
            return model_id, tuned[0]
        try:
            return model_id, self._resolve(model_id)
        except KeyError as err:
            why = err.args[0] if err.args and err.args[0] != model_id else None
            raise ApiError(
                404,
                f"The model `{model_id}` does not exist or you do not have access to it."
                + (f" ({why})" if why else ""),
                code="model_not_found",
                param="model",
            ) from None
        except Exception as err:  # a resolver that cannot build the model: say why
            raise ApiError(
                500, f"Cannot load the model `{model_id}`: {err}", type="server_error"
            ) from None

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body of a ``POST /v1/completions`` answer."""
        raw_prompt = body.get("prompt")
        if raw_prompt is None:
            raise missing("prompt")
        if isinstance(raw_prompt, str):
            prompts = [raw_prompt]
        elif (
            isinstance(raw_prompt, list)
            and raw_prompt
            and all(isinstance(p, str) for p in raw_prompt)
        ):
            prompts = list(raw_prompt)
        else:
            raise invalid(
                "prompt", "a string or a non-empty list of strings (token ids are not supported)"
            )
        max_tokens = _max_tokens(body, "max_tokens", default=16)
        _check_temperature(body)
        _check_stop(body)
        _check_unsupported(body)
        _check_logit_bias(body)
        if body.get("echo"):
            raise ApiError(400, "'echo' is not supported by the reference model.", param="echo")
        top_n = _optional_int(body, "logprobs", 0, MAX_COMPLETION_LOGPROBS)
        model_id, model = self._model(body)

        finish = "length" if max_tokens == 1 else "stop"
        choices = []
        for index, (prompt, probs) in enumerate(
            zip(prompts, model.predict_log_proba(prompts), strict=True)
        ):
            ranked = _ranked(probs)
            label, logprob = ranked[0]
            token = " " + label
            logprobs = None
            if top_n is not None:
                logprobs = {
                    "tokens": [token],
                    "token_logprobs": [logprob],
                    "top_logprobs": [{" " + name: lp for name, lp in ranked[:top_n]}],
                    "text_offset": [len(prompt)],
                }
            choices.append(
                {"text": token, "index": index, "logprobs": logprobs, "finish_reason": finish}
            )
        prompt_tokens = sum(_rough_tokens(p) for p in prompts)
        return {
            "id": "cmpl-" + uuid.uuid4().hex[:24],
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_id,
            "choices": choices,
            "usage": _usage(prompt_tokens, len(prompts)),
        }

    def chat_completions(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body of a ``POST /v1/chat/completions`` answer."""
        text = _chat_text(body.get("messages"))
        if "max_completion_tokens" in body and body["max_completion_tokens"] is not None:
            max_tokens = _max_tokens(body, "max_completion_tokens", default=None)
        else:
            max_tokens = _max_tokens(body, "max_tokens", default=None)
        _check_temperature(body)
        _check_stop(body)
        _check_unsupported(body)
        _check_logit_bias(body)
        want_logprobs = body.get("logprobs")
        if want_logprobs is not None and not isinstance(want_logprobs, bool):
            raise invalid("logprobs", "a boolean")
        top_n = _optional_int(body, "top_logprobs", 0, MAX_CHAT_TOP_LOGPROBS)
        if top_n is not None and not want_logprobs:
            raise ApiError(
                400,
                "'logprobs' must be set to true when 'top_logprobs' is used.",
                param="logprobs",
            )
        model_id, model = self._model(body)

        ranked = _ranked(model.predict_log_proba([text])[0])
        label, logprob = ranked[0]
        logprobs = None
        if want_logprobs:
            logprobs = {
                "content": [
                    {
                        **_chat_token(label, logprob),
                        "top_logprobs": [_chat_token(n, lp) for n, lp in ranked[: top_n or 0]],
                    }
                ],
                "refusal": None,
            }
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": label, "refusal": None},
                    "logprobs": logprobs,
                    "finish_reason": "length" if max_tokens == 1 else "stop",
                }
            ],
            "usage": _usage(_rough_tokens(text), 1),
        }

    def models(self) -> dict[str, Any]:
        """The body of ``GET /v1/models``: the served models, then the fine-tuned ones."""
        with self._lock:
            tuned = [
                _model_object(m, created, f"org-{ORGANIZATION}")
                for m, (_, created) in self._tuned.items()
            ]
        served = [_model_object(m) for m in self._list_models()]
        return {"object": "list", "data": served + tuned}

    def model(self, model_id: str) -> dict[str, Any]:
        """The body of ``GET /v1/models/{model_id}``."""
        self._model({"model": model_id})
        with self._lock:
            tuned = self._tuned.get(model_id)
        if tuned is not None:
            return _model_object(model_id, tuned[1], f"org-{ORGANIZATION}")
        return _model_object(model_id)

    def _answer_line(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """A batch line's answer: what ``POST {endpoint}`` answers for ``body``."""
        if endpoint == "/v1/completions":
            return self.completions(body)
        return self.chat_completions(body)

    def answer(
        self, method: str, path: str, query: Mapping[str, str], raw: bytes, content_type: str
    ) -> dict[str, Any] | bytes:
        """The body answering any request but Completions: JSON, or a file's bytes."""
        parts = [unquote(part) for part in path.strip("/").split("/")]
        match method, parts:
            case "GET", ["v1", "models"]:
                return self.models()
            case "GET", ["v1", "models", model_id]:
                return self.model(model_id)
            case "POST", ["v1", "files"]:
                return self.files.upload(raw, content_type)
            case "GET", ["v1", "files", file_id]:
                return self.files.describe(file_id)
            case "GET", ["v1", "files", file_id, "content"]:
                return self.files.content(file_id)
            case "POST", ["v1", "batches"]:
                return self.batches.create(parse_json_object(raw))
            case "GET", ["v1", "batches", batch_id]:
                return self.batches.retrieve(batch_id)
            case "POST", ["v1", "fine_tuning", "jobs"]:
                return self.fine_tuning.create(parse_json_object(raw))
            case "GET", ["v1", "fine_tuning", "jobs"]:
                return self.fine_tuning.list_jobs(query)
            case "GET", ["v1", "fine_tuning", "jobs", job_id]:
                return self.fine_tuning.retrieve(job_id)
            case "POST", ["v1", "fine_tuning", "jobs", job_id, "cancel"]:
                return self.fine_tuning.cancel(job_id)
            case "GET", ["v1", "fine_tuning", "jobs", job_id, "events"]:
                return self.fine_tuning.events(job_id, query)
            case "GET", ["v1", "fine_tuning", "jobs", job_id, "checkpoints"]:
                return self.fine_tuning.checkpoints(job_id, query)
        raise ApiError(404, f"Invalid URL ({method} {path})")


# -- HTTP plumbing -------------------------------------------------------------------


class QuietHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that logs nothing and can cut every open connection.

    Shared by the reference model and the tests' fault-injecting proxy; ``owner``
    is the object the handlers answer for.
    """

    daemon_threads = True
    block_on_close = False  # a client's idle keep-alive connection must not hold up stop()
    request_queue_size = 128  # connections waiting to be accepted (Python's default is 5)

    def __init__(self, address: tuple[str, int], handler: type, owner: Any) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.owner = owner
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, handler)

    def close_connections(self) -> None:
        with self.sockets_lock:
            for sock in self.open_sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: a broken connection is the client's business, not a traceback."""


class TrackedHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no Nagle delay, registered with its server, never logging."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds an idle keep-alive connection is kept
    server: QuietHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)
        with contextlib.suppress(OSError):  # the client may be gone already
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Never log: request lines and errors could carry private text."""


class _Handler(TrackedHandler):
    server_version = "ftclass-reference/1"
    sys_version = ""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        received_at = time.monotonic()
        owner = self.server.owner
        path, _, query_string = self.path.partition("?")
        model: str | None = None
        inputs = 0
        bias_size: int | None = None
        deployment, api_path = _deployment_route(path)
        extra_headers: dict[str, str] = {}
        try:
            raw = self._read_body()
            headers = self.headers
            if not owner._authorized(headers.get("Authorization"), headers.get("api-key")):
                raise ApiError(
                    401,
                    "Incorrect API key provided. The reference server was started with an "
                    "API key and neither the request's Authorization: Bearer header nor its "
                    "api-key header matches it.",
                    code="invalid_api_key",
                )
            if method == "POST" and api_path in ("/v1/completions", "/v1/chat/completions"):
                body = parse_json_object(raw)
                if deployment is not None:  # Azure: the deployment is the model
                    body["model"] = deployment
                model = body.get("model") if isinstance(body.get("model"), str) else None
                bias = body.get("logit_bias")
                bias_size = len(bias) if isinstance(bias, dict) else None
                if owner.limits is not None:
                    allowed, extra_headers = owner.limits.take(_request_tokens(body))
                    if not allowed:
                        raise ApiError(
                            429,
                            "Rate limit reached for requests: the reference server was started "
                            "with rate limits; try again after the time Retry-After says.",
                            type="requests",
                            code="rate_limit_exceeded",
                        )
                if api_path == "/v1/completions":
                    prompt = body.get("prompt")
                    inputs = len(prompt) if isinstance(prompt, list) else int(prompt is not None)
                    answer = owner.completions(body)
                else:
                    messages = body.get("messages")
                    inputs = len(messages) if isinstance(messages, list) else 0
                    answer = owner.chat_completions(body)
            else:  # files, batches, fine-tuning, models
                if method == "GET" and path.startswith("/v1/models/") and path.count("/") == 3:
                    model = unquote(path.rsplit("/", 1)[1])
                query = dict(parse_qsl(query_string))
                content_type = headers.get("Content-Type", "")
                answer = owner.answer(method, path, query, raw, content_type)
            status = 200
        except ApiError as err:
            status, answer = err.status, err.body()
        except Exception as err:  # never let bad input take the server thread down
            status = 500
            answer = ApiError(
                500,
                f"The reference server failed on this request ({type(err).__name__}).",
                type="server_error",
            ).body()
        if owner.latency_s > 0:
            time.sleep(owner.wait())
        # recorded before the answer goes out, so a client that has its answer finds the record
        owner._record(
            RequestRecord(
                method, path, model, inputs, status, bias_size, received_at, time.monotonic()
            )
        )
        self._send_json(status, answer, extra_headers)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "Invalid Content-Length header.") from None
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, "The request body is too large.")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "Malformed chunked request body.") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, then the blank line
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "The request body is too large.")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send_json(
        self, status: int, answer: dict[str, Any] | bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        if isinstance(answer, bytes):  # a file's content (GET /v1/files/{id}/content)
            payload, kind = answer, "application/octet-stream"
        else:
            payload = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            kind = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


# -- validation and shaping helpers -------------------------------------------------


def _request_tokens(body: dict[str, Any]) -> int:
    """Tokens a request costs a rate limit: the words it is answered on and what it may generate.

    Chat: the request's text (as :func:`_chat_text` reads it) and one answer of
    ``max_completion_tokens`` (else ``max_tokens``); Completions: every prompt
    and one answer of ``max_tokens`` each.  16 when no limit is given.
    """
    if "messages" in body:
        try:
            texts: list[Any] = [_chat_text(body.get("messages"))]
        except ApiError:
            texts = []  # refused with its reason when it is answered
        limit = body.get("max_completion_tokens")
        limit = body.get("max_tokens") if limit is None else limit
    else:
        prompt = body.get("prompt")
        texts = prompt if isinstance(prompt, list) else [prompt]
        limit = body.get("max_tokens")
    words = sum(_rough_tokens(t) for t in texts if isinstance(t, str))
    each = limit if isinstance(limit, int) and not isinstance(limit, bool) else 16
    return words + each * max(1, len(texts))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_int(body: dict[str, Any], param: str, low: int, high: int) -> int | None:
    value = body.get(param)
    if value is None:
        return None
    if not _is_int(value) or not low <= value <= high:
        raise invalid(param, f"an integer from {low} to {high}")
    return int(value)


def _max_tokens(body: dict[str, Any], param: str, *, default: int | None) -> int | None:
    value = body.get(param)
    if value is None:
        return default
    if not _is_int(value) or value < 1:
        raise invalid(param, "a positive integer")
    return int(value)


def _check_temperature(body: dict[str, Any]) -> None:
    value = body.get("temperature")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
        raise invalid("temperature", "a number from 0 to 2")


def _check_stop(body: dict[str, Any]) -> None:
    value = body.get("stop")
    if value is None or isinstance(value, str):
        return
    if not (isinstance(value, list) and len(value) <= 4 and all(isinstance(s, str) for s in value)):
        raise invalid("stop", "a string or a list of at most 4 strings")


def _deployment_route(path: str) -> tuple[str | None, str]:
    """(Azure deployment, the ``/v1`` path it stands for) of an Azure OpenAI path.

    >>> _deployment_route("/openai/deployments/my-deploy/chat/completions")
    ('my-deploy', '/v1/chat/completions')
    >>> _deployment_route("/v1/completions")
    (None, '/v1/completions')
    """
    prefix = "/openai/deployments/"
    if path.startswith(prefix):
        name, _, rest = path[len(prefix) :].partition("/")
        if name and rest in ("completions", "chat/completions"):
            return name, "/v1/" + rest
    return None, path


def _check_logit_bias(body: dict[str, Any]) -> None:
    """``logit_bias``: token ids (as strings of digits) to numbers from -100 to 100."""
    value = body.get("logit_bias")
    if value is None:
        return
    if not isinstance(value, dict) or not all(
        isinstance(token, str)
        and token.isdigit()
        and not isinstance(bias, bool)
        and isinstance(bias, (int, float))
        and -100 <= bias <= 100
        for token, bias in value.items()
    ):
        raise invalid("logit_bias", "a map of token ids to numbers from -100 to 100")


def _check_unsupported(body: dict[str, Any]) -> None:
    if body.get("stream"):
        raise ApiError(400, "'stream' is not supported by the reference model.", param="stream")
    n = body.get("n")
    if n is not None and n != 1:
        raise ApiError(400, "The reference model only supports n=1.", param="n")


def _chat_text(messages: Any) -> str:
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "a non-empty list of messages")
    flat = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise invalid(f"messages[{i}]", "an object with a 'role'")
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(
                str(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
        elif content is not None and not isinstance(content, str):
            raise invalid(f"messages[{i}].content", "a string or a list of content parts")
        flat.append({"role": message["role"], "content": content})
    return request_text(flat)  # the text the model was trained on


def _ranked(logprobs: Mapping[str, float]) -> list[tuple[str, float]]:
    """``(label, log p)`` by decreasing probability; ties keep the sorted label order."""
    pairs = [(label, max(lp, LOGPROB_FLOOR)) for label, lp in sorted(logprobs.items())]
    return sorted(pairs, key=lambda pair: -pair[1])


def _chat_token(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def _rough_tokens(text: str) -> int:
    return len(text.split())


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _model_object(
    model_id: str, created: int = CREATED_AT, owned_by: str = "ftclass-reference"
) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}
