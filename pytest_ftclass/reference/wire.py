"""What every endpoint of the reference server shares: errors, bodies, lists and ids.

>>> ApiError(404, "No such File object: file-x", param="id").body()["error"]["param"]
'id'
>>> page([{"id": "a"}, {"id": "b"}, {"id": "c"}], {"after": "a", "limit": "1"})
{'object': 'list', 'data': [{'id': 'b'}], 'has_more': True}

Ids are reproducible: a digest of what made the object and of how many identical
objects came before it, so the same requests in the same order give the same ids
on any server (a recorded job replays against a fresh one):

>>> first, second = StableIds(), StableIds()
>>> first.make("file-", "train.jsonl") == second.make("file-", "train.jsonl")
True
>>> first.make("file-", "train.jsonl") == second.make("file-", "train.jsonl", "other")
False
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ApiError",
    "StableIds",
    "invalid",
    "missing",
    "page",
    "parse_json_object",
    "short_name",
]

MAX_PAGE = 100


class ApiError(Exception):
    """An error answered in the OpenAI shape ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{param}'.", param=param)


def invalid(param: str, expected: str) -> ApiError:
    return ApiError(
        400, f"Invalid value for '{param}': expected {expected}.", param=param, code="invalid_value"
    )


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object (else an OpenAI-shaped 400)."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. The body must be valid JSON.",
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def page(
    items: Sequence[Mapping[str, Any]], query: Mapping[str, str], *, default_limit: int = 20
) -> dict[str, Any]:
    """A cursor page of ``items`` (already in list order): ``after`` an id, at most ``limit``."""
    raw_limit = query.get("limit")
    limit = default_limit
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            raise invalid("limit", f"an integer from 1 to {MAX_PAGE}")
        limit = int(raw_limit)
    start = 0
    after = query.get("after")
    if after:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise invalid("after", "the id of an object in this list")
        start = ids.index(after) + 1
    chosen = list(items[start : start + limit])
    return {"object": "list", "data": chosen, "has_more": start + limit < len(items)}


class StableIds:
    """Ids made of a prefix and a digest of their parts and ordinal (thread-safe)."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def make(self, prefix: str, *parts: str | bytes, length: int = 24) -> str:
        digest = hashlib.sha256(prefix.encode("utf-8"))
        for part in parts:
            data = part.encode("utf-8") if isinstance(part, str) else part
            digest.update(len(data).to_bytes(8, "big") + data)
        key = digest.hexdigest()
        with self._lock:
            ordinal = self._seen[key]
            self._seen[key] += 1
        final = hashlib.sha256(f"{key}:{ordinal}".encode()).hexdigest()
        return prefix + final[:length]


def short_name(value: str, length: int = 8) -> str:
    """A short letters-and-digits name derived from ``value``, as in ``ft:...:9atiPjeC``.

    >>> short_name("ftjob-abc")
    'FDbJ38b0'
    """
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    number = int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest(), "big")
    letters = []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        letters.append(alphabet[index])
    return "".join(letters)
