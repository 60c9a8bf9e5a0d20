"""What the Batch API's traffic looks like in a cassette: uploads, batches and their polls.

Rules the recorder applies to the Files and Batches endpoints (see
:mod:`pytest_ftclass.asking.batch_api` for the asking side):

- an upload (``multipart/form-data``: a batch's input file) is recorded as
  canonical JSON with the file replaced by its digest
  (:func:`canonical_multipart`), so it holds no prompt text and matches
  whatever boundary the client drew;
- answers of the Files and Batches endpoints count as answers worth recording
  (:func:`is_batch_api_body`);
- a poll answered with a batch that is not finished yet is not recorded
  (:func:`is_unfinished_poll`): replay then finds the final state at the first poll.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_ftclass.recording.digests import DIGEST_PREFIX

#: A batch in one of these states will not change any more.
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
_POLL_PATH = re.compile(r"/batches/[^/]+$")


@dataclass(frozen=True)
class MultipartField:
    """One part of a ``multipart/form-data`` body."""

    name: str
    filename: str | None
    data: bytes


def parse_multipart(body: bytes, content_type: str) -> dict[str, MultipartField]:
    """The fields of a ``multipart/form-data`` body, by name; bytes kept exactly.

    Raises ``ValueError`` when the content type is not multipart with a boundary.

    >>> body = (b'--xx\\r\\nContent-Disposition: form-data; name="purpose"\\r\\n\\r\\nbatch'
    ...         b'\\r\\n--xx--\\r\\n')
    >>> parse_multipart(body, "multipart/form-data; boundary=xx")["purpose"].data
    b'batch'
    """
    from email.message import Message

    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise ValueError(f"not a multipart/form-data content type: {content_type!r}")
    fields: dict[str, MultipartField] = {}
    for part in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break
        head, separator, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a multipart part has no blank line after its headers")
        disposition = Message()
        for raw in head.decode("latin-1").split("\r\n"):
            name, _, value = raw.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition["content-disposition"] = value.strip()
        field_name = disposition.get_param("name", header="content-disposition")
        filename = disposition.get_param("filename", header="content-disposition")
        if not isinstance(field_name, str):
            raise ValueError("a multipart part has no name")
        fields[field_name] = MultipartField(
            field_name, filename if isinstance(filename, str) else None, data.removesuffix(b"\r\n")
        )
    return fields


def canonical_multipart(body: Any, content_type: str, *, keep_text: bool = False) -> bytes | None:
    """A multipart upload as canonical JSON, the file replaced by a digest; ``None`` if not one.

    The same fields give the same bytes whatever boundary the client drew, so a
    recorded upload matches on replay.  With ``keep_text`` the file's text is
    kept instead of its digest.

    >>> a = b'--b1\\r\\nContent-Disposition: form-data; name="file"; filename="in.jsonl"'
    >>> a += b'\\r\\n\\r\\n{"x": 1}\\n\\r\\n--b1--\\r\\n'
    >>> canonical = json.loads(canonical_multipart(a, "multipart/form-data; boundary=b1"))
    >>> canonical["file"][:23], canonical["filename"]
    ('ftclass-sha256:93635396', 'in.jsonl')
    >>> b = a.replace(b"b1", b"other")
    >>> canonical_multipart(b, "multipart/form-data; boundary=other") == canonical_multipart(
    ...     a, "multipart/form-data; boundary=b1")
    True
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, bytes) or not content_type:
        return None
    try:
        fields = parse_multipart(body, content_type)
    except ValueError:
        return None
    canonical: dict[str, Any] = {}
    for name, field in fields.items():
        if field.filename is not None:
            if keep_text:
                canonical[name] = field.data.decode("utf-8", errors="replace")
            else:
                canonical[name] = DIGEST_PREFIX + hashlib.sha256(field.data).hexdigest()
            canonical.setdefault("filename", field.filename)
        else:
            canonical[name] = field.data.decode("utf-8", errors="replace")
    return json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def answered_json(response: Mapping[str, Any]) -> Any:
    """The JSON body of a vcrpy response dict below status 400 (decompressed), else ``None``.

    >>> answered_json({"status": {"code": 200}, "headers": {}, "body": {"string": b'{"a": 1}'}})
    {'a': 1}
    """
    import copy

    status = response.get("status")
    if isinstance(status, Mapping) and status.get("code", 200) >= 400:
        return None
    headers = response.get("headers") or {}
    if any(name.lower() == "content-encoding" for name in headers):
        from vcr.filters import decode_response

        response = decode_response(copy.deepcopy(dict(response)))
    body = response.get("body")
    return json_of(body.get("string") if isinstance(body, Mapping) else None)


def json_of(body: Any) -> Any:
    """``body`` (bytes or text) parsed as JSON, or ``None`` when it is not JSON."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(body, str):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def is_batch_api_body(body: Any) -> bool:
    """Whether a response body is an answer of the Files or Batches endpoints.

    A ``file`` or ``batch`` object, or a batch output or error file (JSONL whose
    every line is an object with a ``custom_id``): worth recording although it
    has no ``choices``.

    >>> [is_batch_api_body(b) for b in (b'{"object": "batch"}', b'{"custom_id": "a"}\\n', b"{}")]
    [True, True, False]
    """
    data = json_of(body)
    if isinstance(data, dict):
        return data.get("object") in ("file", "batch") or isinstance(data.get("custom_id"), str)
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not isinstance(body, str):
        return False
    lines = [line for line in body.splitlines() if line.strip()]
    return bool(lines) and all(
        isinstance(record := json_of(line), dict) and isinstance(record.get("custom_id"), str)
        for line in lines
    )


def is_unfinished_batch(response: Mapping[str, Any]) -> bool:
    """Whether a vcrpy response dict is a 200 answer holding a batch that is not final yet.

    >>> is_unfinished_batch({"status": {"code": 200}, "headers": {},
    ...                      "body": {"string": b'{"object": "batch", "status": "in_progress"}'}})
    True
    """
    data = answered_json(response)
    return (
        isinstance(data, dict)
        and data.get("object") == "batch"
        and data.get("status") not in FINAL_STATUSES
    )


def is_batch_poll(method: str, path: str) -> bool:
    """Whether a request retrieves a batch: ``GET .../batches/{id}``.

    >>> is_batch_poll("GET", "/v1/batches/batch_abc"), is_batch_poll("POST", "/v1/batches")
    (True, False)
    """
    return method.upper() == "GET" and bool(_POLL_PATH.search(path))


def is_unfinished_poll(request: Any, response: Mapping[str, Any]) -> bool:
    """Whether a vcrpy interaction is a poll answered with an unfinished batch (not recorded)."""
    return is_batch_poll(request.method, request.path) and is_unfinished_batch(response)
