"""A fault-injecting HTTP proxy for the tests: sits in front of a local OpenAI-compatible
server (the reference model) and spoils chosen requests the way real APIs do.

It only ever forwards to 127.0.0.1, serves on 127.0.0.1 (an ephemeral port) and
shuts itself down after ``lifetime_s`` even if a test forgets to stop it::

    with FaultProxy(reference_server.base_url) as proxy:
        proxy.add("rate_limit", times=2)           # the first two requests get a 429
        proxy.add("drop", match="politics")        # every request mentioning 'politics'
        client = openai.OpenAI(base_url=proxy.base_url, api_key="sk-test")
        ...
        [entry.fault for entry in proxy.log]       # what it did, request by request

Faults (the ``FAULTS`` names):

==============================  =====================================================
``pass``                        forward unchanged
``rate_limit``                  429 + ``Retry-After`` + ``code: rate_limit_exceeded``
``rate_limit_no_retry_after``   the same 429 without ``Retry-After``
``server_error``                500 ``server_error``
``unavailable``                 503
``slow``                        wait ``slow_s`` (longer than the client's timeout), then forward
``drop``                        close the connection without answering
``malformed_json``              200 whose body is cut-off JSON
``no_logprobs``                 forward, then remove ``logprobs`` from every choice
``no_choices``                  forward, then remove ``choices``
``out_of_set``                  forward, then make choice ``0`` answer ``" weather"``
``reverse_choices``             forward, then reverse the ``choices`` list
``content_filter``              forward, then withhold choice ``0``: ``finish_reason``
                                ``content_filter``, text ``""`` (content ``null`` on Chat)
``echo_credentials``            forward, then echo the request's credentials back: in
                                a response header (``x-debug-auth``, ``x-debug-url``)
                                and in a ``debug`` field of a JSON object body
``echo_in_answer``              ``echo_credentials``, and choice ``0`` answers the key
``echo_unauthorized``           401 ``invalid_api_key`` whose message quotes the full key
                                (as gateways do; OpenAI masks it), and the echo headers
``forbidden``                   403 ``unsupported_country_region_territory``
``model_not_found``             404 ``model_not_found``
``string_error``                404 whose ``error`` is a bare string, as some gateways
                                answer (``{"error": "Resource not found"}``)
==============================  =====================================================

The echo faults find the credentials where a client puts them: ``Authorization:
Bearer KEY``, ``Authorization: Basic`` (the base URL's userinfo), an ``api-key``
header (Azure) and credential query parameters.

Rules are tried in the order they were added; the first one whose ``match``
(a substring of the raw request body, or ``None`` for any) fits and that has
``times`` left is applied; no rule fits → ``pass``.  Every response that reaches
the client also carries the ``extra_headers`` (by default a ``set-cookie``, an
``openai-organization`` and an ``openai-project``), so tests can check that none
of them reaches a cassette.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pytest_ftclass.reference.server import QuietHTTPServer, TrackedHandler

FAULTS = (
    "pass",
    "rate_limit",
    "rate_limit_no_retry_after",
    "server_error",
    "unavailable",
    "slow",
    "drop",
    "malformed_json",
    "no_logprobs",
    "no_choices",
    "out_of_set",
    "reverse_choices",
    "content_filter",
    "echo_credentials",
    "echo_in_answer",
    "echo_unauthorized",
    "forbidden",
    "model_not_found",
    "string_error",
)

#: Response headers a real API sends that must never be written to a cassette.
SECRET_RESPONSE_HEADERS = {
    "set-cookie": "__cf_bm=canary-cookie-value; path=/; HttpOnly",
    "openai-organization": "org-canaryorg123",
    "openai-project": "proj_canaryproject456",
}

LOCAL_HOSTS = ("127.0.0.1", "localhost")


@dataclass
class Rule:
    """Apply ``fault`` to requests whose body contains ``match`` (any when ``None``),
    at most ``times`` times (always when ``None``)."""

    fault: str
    times: int | None = None
    match: str | None = None
    used: int = 0

    def fits(self, body: bytes) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        return self.match is None or self.match.encode("utf-8") in body


@dataclass
class ProxyRecord:
    """One request the proxy saw: when it arrived, where it went, what was done to it.

    Logged on arrival; ``status`` is filled in once answered (``None`` while waiting,
    or when the connection was dropped or the client gave up first).
    """

    index: int
    arrived: float  # time.monotonic()
    method: str
    path: str
    fault: str
    inputs: tuple[str, ...] = field(default=())  # prompts, or each request's last message
    header_names: frozenset[str] = frozenset()  # lower-cased names of the request's headers
    status: int | None = None


class FaultProxy:
    """A programmable faulty proxy in front of ``upstream`` (``http://127.0.0.1:PORT/v1``)."""

    def __init__(
        self,
        upstream: str,
        *,
        retry_after: str | None = "1",
        slow_s: float = 3.0,
        lifetime_s: float = 120.0,
        extra_headers: Mapping[str, str] = SECRET_RESPONSE_HEADERS,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS or parts.port is None:
            raise ValueError(f"the proxy forwards to http://127.0.0.1:PORT only, not {upstream}")
        self.upstream_port = parts.port
        self.upstream_prefix = parts.path.rstrip("/")
        self.retry_after = retry_after
        self.slow_s = slow_s
        self.lifetime_s = lifetime_s
        self.extra_headers = dict(extra_headers)
        self.rules: list[Rule] = []
        self._log: list[ProxyRecord] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: QuietHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- programming ---------------------------------------------------------
    def add(self, fault: str, *, times: int | None = None, match: str | None = None) -> Rule:
        """Add a rule: the first ``times`` requests (containing ``match``) get ``fault``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        rule = Rule(fault, times, match)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Forget every rule and the log: pass everything through from now on."""
        with self._lock:
            self.rules.clear()
            self._log.clear()

    @property
    def log(self) -> list[ProxyRecord]:
        with self._lock:
            return list(self._log)

    def faults(self) -> list[str]:
        """The fault applied to each request, in arrival order."""
        return [record.fault for record in self.log]

    def _arrive(
        self, method: str, path: str, body: bytes, header_names: frozenset[str]
    ) -> ProxyRecord:
        """Choose the fault of a request that just arrived and log it."""
        with self._lock:
            fault = next((rule for rule in self.rules if rule.fits(body)), None)
            if fault is not None:
                fault.used += 1
            record = ProxyRecord(
                index=len(self._log),
                arrived=time.monotonic(),
                method=method,
                path=path,
                fault=fault.fault if fault is not None else "pass",
                inputs=_inputs(body),
                header_names=header_names,
            )
            self._log.append(record)
            return record

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> FaultProxy:
        httpd = QuietHTTPServer(("127.0.0.1", 0), _ProxyHandler, self)
        self._httpd = httpd
        serve = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        serve.start()
        watchdog = threading.Thread(target=self._expire, daemon=True)
        watchdog.start()
        self._threads = [serve, watchdog]
        return self

    def _expire(self) -> None:
        if not self._stopping.wait(self.lifetime_s):
            self.stop()

    def stop(self) -> None:
        """Stop serving, wake up slow answers, close open connections.  Safe to call twice."""
        self._stopping.set()
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the fault proxy is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self.upstream_prefix}"

    # -- forwarding --------------------------------------------------------------
    def forward(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> Any:
        """Send the request on to the upstream server; returns (status, headers, body).

        Spoken over a plain socket, not ``http.client``: vcrpy patches the HTTP
        libraries of the whole process while a cassette is open, and this hop must
        not be recorded as if the client had made it.
        """
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.upstream_port}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in _HOP_HEADERS]
        lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as sock:
            sock.sendall("\r\n".join(lines).encode("latin-1") + body)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        kept = []
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() not in _HOP_HEADERS:
                kept.append((name.strip(), value.strip()))
        return int(status_line.split()[1]), kept, payload


_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
    "server",
    "date",
}


_SPOILERS = ("no_logprobs", "no_choices", "out_of_set", "reverse_choices", "content_filter")
_ECHOES = ("echo_credentials", "echo_in_answer")


def credentials_in(headers: Mapping[str, str], path: str) -> list[str]:
    """The secrets a request carries: bearer key, basic userinfo, ``api-key``, query values.

    >>> credentials_in({"Authorization": "Bearer sk-a", "api-key": "b"}, "/v1/x?key=c&n=1")
    ['sk-a', 'b', 'c']
    """
    import base64
    from urllib.parse import parse_qsl, urlsplit

    found = []
    lowered = {name.lower(): value for name, value in headers.items()}
    scheme, _, token = lowered.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        found.append(token)
    elif scheme.lower() == "basic" and token:
        with contextlib.suppress(ValueError):
            found.append(base64.b64decode(token).decode("utf-8"))
    if lowered.get("api-key"):
        found.append(lowered["api-key"])
    secret_names = {"key", "api_key", "api-key", "token", "sig", "access_token"}
    found += [v for k, v in parse_qsl(urlsplit(path).query) if k.lower() in secret_names]
    return found


def echo_headers(headers: Mapping[str, str], path: str) -> list[tuple[str, str]]:
    """Response headers a careless proxy adds: the request's credentials and full path."""
    lowered = {name.lower(): value for name, value in headers.items()}
    auth = lowered.get("authorization") or lowered.get("api-key") or ""
    return [("x-debug-auth", auth), ("x-debug-url", path)]


def echo_into(answer: Any, headers: Mapping[str, str], path: str, *, in_answer: bool) -> Any:
    """A parsed JSON answer with a ``debug`` field quoting the request's credentials.

    With ``in_answer``, choice ``0`` also answers the first credential (an
    out-of-set label that quotes the key).
    """
    if not isinstance(answer, dict):
        return answer
    secrets = credentials_in(headers, path)
    answer["debug"] = {
        "authorization": dict(echo_headers(headers, path))["x-debug-auth"],
        "keys": secrets,
        "url": f"http://user:{secrets[0] if secrets else ''}@127.0.0.1{path}",
    }
    choices = answer.get("choices")
    if in_answer and secrets and isinstance(choices, list) and choices:
        first = min(choices, key=lambda c: c.get("index", 0))
        if isinstance(first.get("message"), dict):
            first["message"]["content"] = secrets[0]
        else:
            first["text"] = " " + secrets[0]
    return answer


def unauthorized_body(headers: Mapping[str, str], path: str) -> bytes:
    """A 401 as a gateway writes it: the full key in the message."""
    secrets = credentials_in(headers, path) or ["(none)"]
    return _error_body(
        f"Incorrect API key provided: {secrets[0]}. You can find your API key at "
        f"https://platform.openai.com/account/api-keys (request {path}).",
        "invalid_request_error",
        "invalid_api_key",
    )


def _error_body(message: str, type_: str, code: str | None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": None, "code": code}}
    ).encode("utf-8")


def _inputs(body: bytes) -> tuple[str, ...]:
    try:
        data = json.loads(body)
    except ValueError:
        return ()
    if not isinstance(data, dict):
        return ()
    prompt = data.get("prompt")
    if isinstance(prompt, str):
        return (prompt,)
    if isinstance(prompt, list):
        return tuple(p for p in prompt if isinstance(p, str))
    messages = data.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return (str(messages[-1].get("content")),)
    return ()


def spoil(fault: str, answer: Any) -> Any:
    """What a ``200`` fault does to a well-formed answer (a parsed JSON body)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
        return answer
    choices = answer["choices"]
    if fault == "no_logprobs":
        for choice in choices:
            choice.pop("logprobs", None)
    elif fault == "no_choices":
        del answer["choices"]
    elif fault == "out_of_set" and choices:
        first = min(choices, key=lambda c: c.get("index", 0))
        if isinstance(first.get("message"), dict):
            first["message"]["content"] = "weather"
        else:
            first["text"] = " weather"
    elif fault == "reverse_choices":
        choices.reverse()
    elif fault == "content_filter" and choices:
        first = min(choices, key=lambda c: c.get("index", 0))
        first["finish_reason"], first["logprobs"] = "content_filter", None
        if isinstance(first.get("message"), dict):
            first["message"]["content"] = None
        else:
            first["text"] = ""
    return answer


class _ProxyHandler(TrackedHandler):
    timeout = 30

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        names = frozenset(name.lower() for name in self.headers)
        record = owner._arrive(method, self.path, body, names)
        record.status = self._answer(owner, record.fault, method, body)

    def _answer(self, owner: FaultProxy, fault: str, method: str, body: bytes) -> int | None:
        request_headers = dict(self.headers)
        echoed = echo_headers(request_headers, self.path) if fault.startswith("echo") else []
        if fault == "echo_unauthorized":
            return self._send(401, unauthorized_body(request_headers, self.path), echoed)
        if fault == "forbidden":
            message = "Country, region, or territory not supported"
            body = _error_body(message, "request_forbidden", "unsupported_country_region_territory")
            return self._send(403, body, [])
        if fault == "model_not_found":
            message = "The model does not exist or you do not have access to it."
            body = _error_body(message, "invalid_request_error", "model_not_found")
            return self._send(404, body, [])
        if fault == "string_error":
            return self._send(404, json.dumps({"error": "Resource not found"}).encode(), [])
        if fault == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if fault == "rate_limit":
            headers = [("Retry-After", owner.retry_after)] if owner.retry_after is not None else []
            return self._send(429, _rate_limit_body(), headers)
        if fault == "rate_limit_no_retry_after":
            return self._send(429, _rate_limit_body(), [])
        if fault == "server_error":
            return self._send(
                500, _error_body("The server had an error.", "server_error", None), []
            )
        if fault == "unavailable":
            return self._send(
                503, _error_body("The engine is currently overloaded.", "server_error", None), []
            )
        if fault == "slow" and owner._stopping.wait(owner.slow_s):
            return None  # stopped while waiting
        if fault == "malformed_json":
            return self._send(200, b'{"id": "cmpl-x", "choices": [{"text": " spo', [])
        try:
            status, headers, payload = owner.forward(method, self.path, body, dict(self.headers))
        except OSError:
            return self._send(502, _error_body("upstream unreachable", "server_error", None), [])
        if fault in _SPOILERS and status == 200:
            payload = json.dumps(spoil(fault, json.loads(payload))).encode("utf-8")
        if fault in _ECHOES:
            with contextlib.suppress(ValueError):
                answer = echo_into(
                    json.loads(payload),
                    request_headers,
                    self.path,
                    in_answer=fault == "echo_in_answer",
                )
                payload = json.dumps(answer).encode("utf-8")
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        return self._send(status, payload, headers + echoed)

    def _send(self, status: int, payload: bytes, headers: list[tuple[str, str]]) -> int | None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers:
                self.send_header(name, value)
            for name, value in self.server.owner.extra_headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return None
        return status


def _rate_limit_body() -> bytes:
    return _error_body(
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1.",
        "requests",
        "rate_limit_exceeded",
    )
