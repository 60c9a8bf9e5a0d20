"""What went wrong with a request, in one line: status, code and message, never the request.

>>> class Failed:
...     request = type("Request", (), {"url": "http://user:pw@h:8000/v1/completions?key=k"})
>>> _where(Failed())
'http://h:8000/v1/completions'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_ftclass.recording.redaction import Redactor


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


def redacting(
    describe_error: Callable[[BaseException], str], redactor: Redactor
) -> Callable[[BaseException], str]:
    """``describe_error`` whose descriptions have the secrets replaced."""

    def describe(error: BaseException) -> str:
        return redactor.text(describe_error(error))

    return describe
