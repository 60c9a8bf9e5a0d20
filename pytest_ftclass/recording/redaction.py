"""Secrets out of everything the plugin writes: redact by value, keep by allow-list.

A :class:`Redactor` knows the secret values of a run (the API keys, the
credentials in ``ft_base_url``) and replaces them, wherever they appear, by
:data:`MARKER`; it also replaces, whatever their value, a ``Bearer`` or
``Basic`` token, the userinfo of a URL, the value of a credential query
parameter (``api_key``, ``key``, ``token``, ``sig``, …) and of a named API key
(``"api-key": "..."``).  The plugin builds one from its settings and hands it
to whatever writes: cassettes, reports, terminal lines, JUnit XML, the files
beside the cassettes and the pytest-xdist shared directory.

>>> redactor = Redactor(["sk-canary-0123456789"])
>>> redactor.text("Incorrect API key provided: sk-canary-0123456789.")
'Incorrect API key provided: REDACTED.'
>>> redactor.text('{"x-debug-auth": "Bearer abc.DEF-123"}')
'{"x-debug-auth": "Bearer REDACTED"}'
>>> redactor.text("http://user:pw@host/v1/chat?api-version=1&api_key=xyz")
'http://REDACTED@host/v1/chat?api-version=1&api_key=REDACTED'
>>> public_url("http://user:pw@host:8/v1?key=xyz")
'http://host:8/v1'
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

__all__ = [
    "CREDENTIAL_PARAMETERS",
    "MARKER",
    "Redactor",
    "public_url",
    "redact_test_report",
]

#: What a secret is replaced by: plain letters, valid in a URL, JSON, HTML, XML and Markdown.
MARKER = "REDACTED"
#: Known values shorter than this are not looked for: they would replace ordinary words.
MIN_SECRET_LENGTH = 8
#: Query parameters whose value is a credential, in a URL anywhere in a text.
CREDENTIAL_PARAMETERS = (
    "access_token",
    "api-key",
    "api_key",
    "apikey",
    "auth",
    "client_secret",
    "code",
    "id_token",
    "key",
    "password",
    "refresh_token",
    "secret",
    "sig",
    "signature",
    "subscription-key",
    "token",
    "x-amz-credential",
    "x-amz-security-token",
    "x-amz-signature",
    "x-goog-signature",
)
#: Names whose value is a credential wherever they are assigned (``name: v``, ``"name": "v"``).
#: Not ``token``: a chat answer's log-probabilities hold ``"token": " sport"``.
_NAMED_CREDENTIALS = (
    r"(?:x-)?api[-_]?key",
    r"(?:ocp-apim-)?subscription-key",
    r"client[-_]secret",
    r"access[-_]token",
    r"password",
)
#: Environment variables holding the run's API keys.
KEY_VARIABLES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")
#: Environment variables holding a base URL that may carry credentials.
URL_VARIABLES = ("AZURE_OPENAI_ENDPOINT", "OPENAI_BASE_URL")

_T = TypeVar("_T")
_B = TypeVar("_B", bytes, str)


def _alternatives(names: Iterable[str]) -> str:
    return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))


class _Shape:
    """A secret recognised by its shape: ``pattern`` (a prefix group, then the secret).

    ``present(lowered text)`` is a quick test on the text's lower case: without
    it, the pattern cannot match and is not run (a large body is scanned by
    ``str`` methods, not by the regular expression).
    """

    def __init__(self, pattern: str, present: Callable[[str], bool], suffix: str = "") -> None:
        self.pattern = re.compile(pattern)
        self.present = present
        self.replacement = "\\g<1>" + MARKER + suffix

    def sub(self, text: str) -> str:
        return self.pattern.sub(self.replacement, text)


_NAME_STEMS = (
    "api-key",
    "api_key",
    "apikey",
    "subscription-key",
    "client_secret",
    "client-secret",
    "access_token",
    "access-token",
    "password",
)
_SHAPES = (
    # the userinfo of a URL: scheme://user:password@
    _Shape(
        r"(\b[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@\"'<>\\]+@",
        lambda low: "://" in low and "@" in low,
        suffix="@",
    ),
    # a credential query parameter: ?key=..., &sig=...
    _Shape(
        r"([?&;](?i:" + _alternatives(CREDENTIAL_PARAMETERS) + r")=)[^&#\s\"'<>()\\]+",
        lambda low: "=" in low and ("?" in low or "&" in low or ";" in low),
    ),
    # a named API key: api-key: ..., "x-api-key": "...", api_key=...
    _Shape(
        r"((?<![\w-])(?i:" + "|".join(_NAMED_CREDENTIALS) + r")[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"',;&<>()\\]+",
        lambda low: any(stem in low for stem in _NAME_STEMS),
    ),
    # an authorization header's token, wherever it was echoed
    _Shape(r"(\b(?i:bearer)\s+)[^\s\"',;<>()\\]+", lambda low: "bearer" in low),
    _Shape(
        r"(\b(?i:basic)\s+)(?![A-Z]?[a-z]+\b)[A-Za-z0-9+/]{8,}={0,2}",
        lambda low: "basic" in low,
    ),
)


class Redactor:
    """Replaces the secrets of a run by :data:`MARKER` in texts, URLs, bytes and JSON data.

    ``secrets`` are looked for by value (those shorter than
    :data:`MIN_SECRET_LENGTH` are ignored); tokens, userinfo and credential
    parameters are replaced whatever their value.  Redacting twice changes
    nothing more.

    >>> Redactor(["sk-0123456789"]).data({"error": "bad key sk-0123456789", "n": 1})
    {'error': 'bad key REDACTED', 'n': 1}
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        known = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        known.discard(MARKER)
        #: The values looked for, longest first.
        self.secrets: tuple[str, ...] = tuple(sorted(known, key=lambda s: (-len(s), s)))

    @classmethod
    def for_run(cls, *, environ: Mapping[str, str], base_url: str | None = None) -> Redactor:
        """The redactor of a run: its API keys (and their tails without ``sk-``) and URL secrets.

        >>> redactor = Redactor.for_run(
        ...     environ={"OPENAI_API_KEY": "sk-canary-abcdef12"},
        ...     base_url="http://u:pass-0123456@h/v1?api_key=q-01234567")
        >>> sorted(redactor.secrets)
        ['canary-abcdef12', 'pass-0123456', 'q-01234567', 'sk-canary-abcdef12', 'u:pass-0123456']
        """
        secrets: set[str] = set()
        for name in KEY_VARIABLES:
            key = environ.get(name) or ""
            secrets |= {key, key.strip(), key.strip().removeprefix("sk-")}
        for url in (base_url, *(environ.get(name) for name in URL_VARIABLES)):
            secrets |= url_secrets(url)
        return cls(secrets)

    # -- texts -----------------------------------------------------------------
    def text(self, text: str) -> str:
        """``text`` with every secret replaced."""
        text = self.values(text)
        lowered = text.lower()
        for shape in _SHAPES:
            if shape.present(lowered):
                text = shape.sub(text)
        return text

    def values(self, text: str) -> str:
        """``text`` with the known secret values replaced, and nothing else.

        Safe on any serialized text (a JSON file, say): only exact values change.
        """
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MARKER)
        return text

    def might_hold(self, text: str) -> bool:
        """Whether ``text`` may hold a secret (``False``: :meth:`text` would change nothing)."""
        if any(secret in text for secret in self.secrets):
            return True
        lowered = text.lower()
        return any(shape.present(lowered) for shape in _SHAPES)

    def bytes(self, data: bytes) -> bytes:
        """``data`` with every secret replaced; bytes that are not UTF-8 are kept as they are."""
        text = data.decode("utf-8", errors="surrogateescape")
        redacted = self.text(text)
        return data if redacted == text else redacted.encode("utf-8", errors="surrogateescape")

    def body(self, body: _B) -> _B:
        """An HTTP body (``bytes`` or ``str``) with every secret replaced.

        A JSON body (or a JSONL one, line by line) is redacted value by value
        and written again, so it stays valid JSON; any other body as text.

        >>> Redactor().body(b'{"echo": "http://me:pw@h/v1", "n": 1}')
        b'{"echo": "http://REDACTED@h/v1", "n": 1}'
        """
        raw = body.decode("utf-8", errors="surrogateescape") if isinstance(body, bytes) else body
        if not self.might_hold(raw) or self.text(raw) == raw:
            return body
        redacted = self._json_text(raw)
        if isinstance(body, bytes):
            return redacted.encode("utf-8", errors="surrogateescape")
        return redacted

    def _json_text(self, text: str) -> str:
        try:
            return json.dumps(self.data(json.loads(text)), ensure_ascii=False)
        except ValueError:
            pass
        lines = text.splitlines(keepends=True)
        redacted = []
        for line in lines:
            if not line.strip():
                redacted.append(line)
                continue
            try:
                data = json.loads(line)
            except ValueError:
                return self.text(text)
            ending = line[len(line.rstrip("\r\n")) :]
            redacted.append(json.dumps(self.data(data), ensure_ascii=False) + ending)
        return "".join(redacted)

    def data(self, value: _T) -> _T:
        """A copy of JSON-like ``value`` (dicts, lists, tuples) with every string redacted."""
        return self._data(value, 0)

    def _data(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if depth > 50:
            return value
        if isinstance(value, dict):
            return {
                self._data(key, depth + 1): self._data(item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, (list, tuple)):
            items = [self._data(item, depth + 1) for item in value]
            return items if isinstance(value, list) else type(value)(items)
        if isinstance(value, bytes):
            return self.bytes(value)
        return value

    def prediction(self, prediction: _T) -> _T:
        """A :class:`~pytest_ftclass.results.Prediction` with its server-written texts redacted.

        The label (outside the label set it is what the model wrote), the raw
        text and the error; the same object when nothing changed.
        """
        changes = {
            name: redacted
            for name in ("label", "raw_text", "error")
            if isinstance(text := getattr(prediction, name, None), str)
            and (redacted := self.text(text)) != text
        }
        if not changes:
            return prediction
        return dataclasses.replace(prediction, **changes)  # type: ignore[type-var]


def url_secrets(url: str | None) -> set[str]:
    """The userinfo and the credential query parameter values of ``url``, as written and decoded.

    >>> sorted(url_secrets("https://me:p%40ss@h/v1?sig=abc&api-version=2"))
    ['abc', 'me:p%40ss', 'me:p@ss', 'p%40ss', 'p@ss']
    """
    if not url:
        return set()
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return {url}
    found: set[str] = set()
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and userinfo:
        _, colon, password = userinfo.partition(":")
        found |= {userinfo, unquote(userinfo)}
        if colon and password:
            found |= {password, unquote(password)}
    credentials = {name.lower() for name in CREDENTIAL_PARAMETERS}
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if name.lower() in credentials:
            found.add(value)
    for raw in parts.query.split("&"):
        name, _, value = raw.partition("=")
        if unquote(name).lower() in credentials and value:
            found.add(value)
    return found


def public_url(url: str | None) -> str | None:
    """``url`` without userinfo, query or fragment: safe to show in a report.

    >>> public_url("https://me:secret@acme.openai.azure.com/v1?api-key=x#f")
    'https://acme.openai.azure.com/v1'
    """
    if not url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MARKER
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# -- pytest's own reports ----------------------------------------------------------------
def redact_test_report(report: Any, redactor: Redactor) -> None:
    """Redact, in place, what pytest shows and writes of a test or collection report.

    Its failure text (``longrepr``: a traceback's lines, locals, the values of
    an assertion), captured output and log sections, and ``user_properties``:
    what the terminal, the JUnit XML and pytest-xdist carry.  A ``longrepr``
    that stays unsafe after its parts were redacted is replaced by its redacted
    text.
    """
    longrepr = getattr(report, "longrepr", None)
    if longrepr is not None:
        report.longrepr = _redacted_longrepr(longrepr, redactor)
    sections = getattr(report, "sections", None)
    if sections:
        report.sections = [
            (redactor.text(title), redactor.text(content)) for title, content in sections
        ]
    properties = getattr(report, "user_properties", None)
    if properties:
        report.user_properties = [(name, redactor.data(value)) for name, value in properties]


def _redacted_longrepr(longrepr: Any, redactor: Redactor) -> Any:
    if isinstance(longrepr, str):
        return redactor.text(longrepr)
    if isinstance(longrepr, tuple):  # a skip: (path, line, message)
        return tuple(redactor.text(p) if isinstance(p, str) else p for p in longrepr)
    try:
        before = str(longrepr)
    except Exception:  # a representation that cannot render itself: say so, safely
        return "(the failure's text could not be rendered)"
    if redactor.text(before) == before:
        return longrepr
    _redact_attributes(longrepr, redactor, set(), 0)
    after = str(longrepr)
    if redactor.text(after) == after:
        return longrepr
    return redactor.text(after)


def _redact_attributes(obj: Any, redactor: Redactor, seen: set[int], depth: int) -> None:
    """Redact the strings held by ``obj``'s attributes (pytest's failure representations)."""
    if id(obj) in seen or depth > 30 or not hasattr(obj, "__dict__"):
        return
    seen.add(id(obj))
    for name, value in list(vars(obj).items()):
        redacted = _redact_value(value, redactor, seen, depth)
        if redacted is not value:
            object.__setattr__(obj, name, redacted)


def _redact_value(value: Any, redactor: Redactor, seen: set[int], depth: int) -> Any:
    if isinstance(value, str):
        redacted = redactor.text(value)
        return value if redacted == value else redacted
    if isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _redact_value(item, redactor, seen, depth + 1)
        return value
    if isinstance(value, tuple):
        items = tuple(_redact_value(item, redactor, seen, depth + 1) for item in value)
        return (
            value if all(a is b for a, b in zip(items, value, strict=True)) else type(value)(items)
        )
    if isinstance(value, dict):
        for key in list(value):
            value[key] = _redact_value(value[key], redactor, seen, depth + 1)
        return value
    if hasattr(value, "__dict__") and not isinstance(value, type):
        _redact_attributes(value, redactor, seen, depth + 1)
    return value
