"""What went wrong with a request, in one line: status, code and message, never the request.

>>> class Failed:
...     request = type("Request", (), {"url": "http://user:pw@[::1]:8000/v1/completions?key=k"})
>>> _where(Failed())
'http://[::1]:8000/v1/completions'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_ftclass.recording.redaction import Redactor


class ModelRefused(Exception):
    """A request not sent: its model refused the run before.  ``str()`` is that refusal."""


def describe_api_error(error: BaseException, *, redactor: Redactor | None = None) -> str:
    """A one-line description of an error from the openai client (never the request body).

    With a ``redactor``, the secrets a server may quote in its message are replaced.
    """
    text = _describe(error)
    return text if redactor is None else redactor.text(text)


def _describe(error: BaseException) -> str:
    import openai

    if isinstance(error, ModelRefused):
        return str(error)
    if isinstance(error, openai.APIStatusError):
        detail = error_detail(error.body)
        kind = error_kind(detail) or type(error).__name__
        return f"HTTP {error.status_code} {kind}: {detail.get('message') or error}"
    if isinstance(error, openai.APITimeoutError):
        return f"request to {_where(error)} timed out"
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__
        return (
            f"connection error to {_where(error)}: {type(cause).__name__ if cause else 'unknown'}"
        )
    return f"{type(error).__name__}: {error}"


def _where(error: Any) -> str:
    """The URL a failed request went to, without credentials or query."""
    from pytest_ftclass.recording.redaction import public_url

    url = getattr(getattr(error, "request", None), "url", None)
    return "the server" if url is None else str(public_url(str(url)))


def error_detail(body: Any) -> Mapping[str, Any]:
    """The ``error`` object of an API error body (a bare string is its message), else ``{}``.

    The openai client's ``APIStatusError.body`` is already what ``error`` held,
    an object or, from some gateways, a string.

    >>> error_detail({"error": {"code": "x"}}), error_detail({"error": "gone"}), error_detail(7)
    ({'code': 'x'}, {'message': 'gone'}, {})
    """
    detail = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(detail, str) and detail:
        return {"message": detail}
    return detail if isinstance(detail, Mapping) else {}


def error_kind(detail: Mapping[str, Any]) -> str | None:
    """The error's ``code``, else its ``type``: ``rate_limit_exceeded`` says more than ``requests``.

    >>> error_kind({"type": "requests", "code": "rate_limit_exceeded"}), error_kind({})
    ('rate_limit_exceeded', None)
    """
    kind = detail.get("code") or detail.get("type")
    return kind if isinstance(kind, str) else None


def redacting(
    describe_error: Callable[[BaseException], str], redactor: Redactor
) -> Callable[[BaseException], str]:
    """``describe_error`` whose descriptions have the secrets replaced."""

    def describe(error: BaseException) -> str:
        return redactor.text(describe_error(error))

    return describe
