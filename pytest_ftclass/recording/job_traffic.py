"""What a fine-tuning job's traffic looks like in a cassette: the job, its result file, checkpoints.

Rules the recorder applies to ``--ft-job`` (see :mod:`pytest_ftclass.asking.jobs`):

- answers of the fine-tuning endpoints, and a result file's content (CSV,
  base64-encoded or plain), count as answers worth recording
  (:func:`is_fine_tuning_body`);
- a job answered while it is not finished is not recorded
  (:func:`is_unfinished_job_poll`): a replay never freezes a running job;
- list pages differ only in their cursor (``after``, ``limit``), so job
  cassettes also match on it (:func:`cursor`).

>>> is_fine_tuning_body(b'{"object": "fine_tuning.job", "status": "succeeded"}')
True
>>> import base64
>>> is_fine_tuning_body(base64.b64encode(b"step,train_loss\\n1,0.7\\n"))
True
>>> is_fine_tuning_body(b"some,other\\ncsv,file\\n")
False
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pytest_ftclass.recording.batch_traffic import answered_json, json_of

__all__ = [
    "CURSOR_PARAMETERS",
    "FINAL_JOB_STATUSES",
    "cursor",
    "cursor_of",
    "decode_result_file",
    "is_fine_tuning_body",
    "is_unfinished_job_poll",
]

#: A job in one of these states will not change any more.
FINAL_JOB_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
#: The query parameters that tell two pages of one list apart.
CURSOR_PARAMETERS = ("after", "limit")
_FINE_TUNING_OBJECTS = frozenset(
    {"fine_tuning.job", "fine_tuning.job.checkpoint", "fine_tuning.job.event"}
)
_JOB_PATH = re.compile(r"/fine_tuning/jobs/[^/]+$")
_RESULT_HEADER = b"step,"


def decode_result_file(content: bytes | str) -> tuple[str, str] | None:
    """``(CSV text, encoding)`` of a result file's content, or ``None`` when it is not one.

    The API serves it base64-encoded (``encoding`` ``"base64"``); plain CSV is
    read too (``"plain"``).  Either way its header starts with ``step,``.

    >>> decode_result_file(b"c3RlcCx0cmFpbl9sb3NzCjEsMC41Cg==")
    ('step,train_loss\\n1,0.5\\n', 'base64')
    >>> decode_result_file("step,train_loss\\n1,0.5\\n")
    ('step,train_loss\\n1,0.5\\n', 'plain')
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    stripped = data.lstrip(b"\xef\xbb\xbf").strip()
    if stripped.startswith(_RESULT_HEADER):
        encoding, raw = "plain", stripped
    else:
        try:
            raw = base64.b64decode(b"".join(stripped.split()), validate=True)
        except (binascii.Error, ValueError):
            return None
        raw = raw.lstrip(b"\xef\xbb\xbf")
        if not raw.startswith(_RESULT_HEADER):
            return None
        encoding = "base64"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return (text if text.endswith("\n") else text + "\n"), encoding


def is_fine_tuning_body(body: Any) -> bool:
    """Whether a response body is an answer of the fine-tuning endpoints, or a result file.

    A ``fine_tuning.job`` object, a list of jobs, checkpoints or events, or the
    content of a result file (CSV whose header starts with ``step,``, plain or
    base64-encoded).
    """
    data = json_of(body)
    if isinstance(data, dict):
        if data.get("object") in _FINE_TUNING_OBJECTS:
            return True
        items = data.get("data")
        return (
            data.get("object") == "list"
            and isinstance(items, list)
            and all(isinstance(i, dict) and i.get("object") in _FINE_TUNING_OBJECTS for i in items)
        )
    if isinstance(body, (bytes, str)) and data is None:
        return decode_result_file(body) is not None
    return False


def is_unfinished_job(response: Mapping[str, Any]) -> bool:
    """Whether a vcrpy response dict is a 200 answer holding a job that is not final yet.

    >>> queued = b'{"object": "fine_tuning.job", "status": "queued"}'
    >>> is_unfinished_job({"status": {"code": 200}, "headers": {}, "body": {"string": queued}})
    True
    """
    data = answered_json(response)
    return (
        isinstance(data, dict)
        and data.get("object") == "fine_tuning.job"
        and data.get("status") not in FINAL_JOB_STATUSES
    )


def is_unfinished_job_poll(request: Any, response: Mapping[str, Any]) -> bool:
    """Whether a vcrpy interaction retrieves a job that is still running (not recorded)."""
    return (
        request.method.upper() == "GET"
        and bool(_JOB_PATH.search(request.path))
        and is_unfinished_job(response)
    )


def cursor_of(uri: str) -> tuple[tuple[str, str], ...]:
    """The cursor parameters of ``uri``, sorted: what tells one page of a list from another.

    >>> cursor_of("http://h/v1/fine_tuning/jobs/j/checkpoints?limit=10&after=c&key=REDACTED")
    (('after', 'c'), ('limit', '10'))
    """
    query = urlsplit(uri).query
    return tuple(sorted((k, v) for k, v in parse_qsl(query) if k in CURSOR_PARAMETERS))


def cursor(r1: Any, r2: Any) -> None:
    """A vcrpy matcher: two requests ask for the same page (``after``, ``limit``)."""
    if cursor_of(r1.uri) != cursor_of(r2.uri):
        raise AssertionError(f"pages differ: {cursor_of(r1.uri)} != {cursor_of(r2.uri)}")
