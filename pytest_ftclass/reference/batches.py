"""The Files and Batches endpoints of the reference server, in the OpenAI shape.

Enough of ``/v1/files`` and ``/v1/batches`` for a batch of classification
requests to run end to end offline, through the official client:

- ``POST /v1/files`` (multipart: ``purpose``, ``file``) keeps the file in memory
  and answers a File object; ``GET /v1/files/{id}`` answers it again and
  ``GET /v1/files/{id}/content`` the file's bytes;
- ``POST /v1/batches`` (``input_file_id``, ``endpoint`` ``/v1/completions`` or
  ``/v1/chat/completions``, ``completion_window`` ``24h``) answers a ``validating``
  Batch; ``GET /v1/batches/{id}`` moves it on: ``in_progress`` with a growing
  ``request_counts``, then ``completed`` with an ``output_file_id`` (lines
  answered 200) and an ``error_file_id`` (the others), each line
  ``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error": null}``.
  An input file with a malformed line makes the batch ``failed`` with
  ``errors`` naming the lines, as the real API does.
- Every line is answered by the server's own :meth:`ReferenceServer.completions`
  and :meth:`ReferenceServer.chat_completions`, so a batch answers exactly what
  the live endpoints answer.

How fast a batch finishes is set per server, so tests see it in progress::

    server = ReferenceServer({"local": model}).start()
    batch_store(server).options = BatchOptions(polls=3)    # completed at the 3rd poll
    batch_store(server).options = BatchOptions(delay_s=0.2)  # completed 0.2 s after creation

Errors are OpenAI-shaped: 404 for an unknown file or batch id, 400 for a bad
parameter or a file that is not a ``batch`` file.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from pytest_ftclass.reference.server import ApiError, ReferenceServer

__all__ = ["BatchOptions", "BatchStore", "batch_store", "handle_batch_api"]

BATCH_ENDPOINTS = ("/v1/completions", "/v1/chat/completions")
COMPLETION_WINDOW_S = 24 * 3600
MAX_REPORTED_ERRORS = 100


@dataclass(frozen=True)
class BatchOptions:
    """When a batch completes: at its ``polls``-th retrieval, or ``delay_s`` after creation.

    ``delay_s`` (when set) wins over ``polls``; ``polls=1`` completes at the first poll.
    """

    polls: int = 3
    delay_s: float | None = None


@dataclass
class _File:
    id: str
    purpose: str
    filename: str
    data: bytes
    created_at: int

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    created_at: float
    lines: list[dict[str, Any]]
    status: str = "validating"
    polls: int = 0
    outputs: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    times: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None

    def describe(self) -> dict[str, Any]:
        created = int(self.created_at)
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": created,
            "in_progress_at": self.times.get("in_progress_at"),
            "expires_at": created + COMPLETION_WINDOW_S,
            "finalizing_at": self.times.get("finalizing_at"),
            "completed_at": self.times.get("completed_at"),
            "failed_at": self.times.get("failed_at"),
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {
                "total": len(self.lines) if self.status != "failed" else 0,
                "completed": len(self.outputs),
                "failed": len(self.failures),
            },
            "metadata": None,
        }


class BatchStore:
    """The files and batches of one :class:`ReferenceServer`, in memory."""

    def __init__(self, server: ReferenceServer, options: BatchOptions | None = None) -> None:
        self._server = weakref.ref(server)
        self.options = options or BatchOptions()
        self.files: dict[str, _File] = {}
        self.batches: dict[str, _Batch] = {}
        self._lock = threading.RLock()  # _advance stores files while holding it

    # -- files --------------------------------------------------------------------

    def upload(self, raw: bytes, content_type: str) -> dict[str, Any]:
        """``POST /v1/files``."""
        from pytest_ftclass.batch_api import parse_multipart

        try:
            fields = parse_multipart(raw, content_type)
        except ValueError:
            raise ApiError(
                400, "Uploads must be sent as multipart/form-data with a 'file' field."
            ) from None
        if "file" not in fields or fields["file"].filename is None:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        if "purpose" not in fields:
            raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose")
        purpose = fields["purpose"].data.decode("utf-8", errors="replace")
        if purpose != "batch":
            raise ApiError(
                400,
                f"Invalid value for 'purpose': the reference server only stores 'batch' files, "
                f"got {purpose!r}.",
                param="purpose",
                code="invalid_value",
            )
        upload = fields["file"]
        return self._store("batch", upload.filename or "upload.jsonl", upload.data).describe()

    def _store(self, purpose: str, filename: str, data: bytes) -> _File:
        stored = _File("file-" + uuid.uuid4().hex[:24], purpose, filename, data, int(time.time()))
        with self._lock:
            self.files[stored.id] = stored
        return stored

    def file(self, file_id: str) -> _File:
        with self._lock:
            stored = self.files.get(file_id)
        if stored is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        return stored

    # -- batches ------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/batches``: a ``validating`` batch (``failed`` at once if a line is bad)."""
        input_file_id = body.get("input_file_id")
        if not isinstance(input_file_id, str) or not input_file_id:
            raise ApiError(
                400, "Missing required parameter: 'input_file_id'.", param="input_file_id"
            )
        endpoint = body.get("endpoint")
        if endpoint not in BATCH_ENDPOINTS:
            raise ApiError(
                400,
                f"Invalid value for 'endpoint': the reference server runs batches of "
                f"{' or '.join(BATCH_ENDPOINTS)}, got {endpoint!r}.",
                param="endpoint",
                code="invalid_value",
            )
        if body.get("completion_window") != "24h":
            raise ApiError(
                400,
                "Invalid value for 'completion_window': only '24h' is supported.",
                param="completion_window",
                code="invalid_value",
            )
        stored = self.file(input_file_id)
        if stored.purpose != "batch":
            raise ApiError(
                400,
                f"File {input_file_id} was not uploaded with purpose 'batch'.",
                param="input_file_id",
            )
        lines, errors = _read_input(stored.data, str(endpoint))
        batch = _Batch(
            "batch_" + uuid.uuid4().hex[:24], input_file_id, str(endpoint), time.time(), lines
        )
        if errors:
            batch.status = "failed"
            batch.errors = errors[:MAX_REPORTED_ERRORS]
            batch.times["failed_at"] = int(time.time())
        with self._lock:
            self.batches[batch.id] = batch
            return batch.describe()

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        """``GET /v1/batches/{id}``: one poll, which moves the batch on."""
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
            if batch.status in ("validating", "in_progress"):
                self._advance(batch)
            return batch.describe()

    def _advance(self, batch: _Batch) -> None:
        now = time.time()
        batch.polls += 1
        if batch.status == "validating":
            batch.status = "in_progress"
            batch.times["in_progress_at"] = int(now)
        total = len(batch.lines)
        if self.options.delay_s is not None:
            done = now - batch.created_at >= self.options.delay_s
            share = min((now - batch.created_at) / self.options.delay_s, 1.0) if not done else 1.0
        else:
            done = batch.polls >= self.options.polls
            share = batch.polls / max(self.options.polls, 1)
        target = total if done else min(int(total * share), total - 1)
        while len(batch.outputs) + len(batch.failures) < max(target, 0):
            self._answer(batch, batch.lines[len(batch.outputs) + len(batch.failures)])
        if done:
            batch.times["finalizing_at"] = int(now)
            if batch.outputs:
                batch.output_file_id = self._store(
                    "batch_output", f"{batch.id}_output.jsonl", _jsonl(batch.outputs)
                ).id
            if batch.failures:
                batch.error_file_id = self._store(
                    "batch_output", f"{batch.id}_error.jsonl", _jsonl(batch.failures)
                ).id
            batch.status = "completed"
            batch.times["completed_at"] = int(now)

    def _answer(self, batch: _Batch, line: dict[str, Any]) -> None:
        """Answer one input line as the live endpoint would; file it as output or error."""
        server = self._server()
        try:
            if server is None:
                raise ApiError(500, "The reference server is gone.", type="server_error")
            if batch.endpoint == "/v1/completions":
                status, answer = 200, server.completions(line["body"])
            else:
                status, answer = 200, server.chat_completions(line["body"])
        except ApiError as err:
            status, answer = err.status, err.body()
        except Exception as err:  # a line must never take the batch down
            status = 500
            answer = ApiError(
                500,
                f"The reference server failed on this request ({type(err).__name__}).",
                type="server_error",
            ).body()
        record = {
            "id": "batch_req_" + uuid.uuid4().hex[:24],
            "custom_id": line["custom_id"],
            "response": {
                "status_code": status,
                "request_id": "req_" + uuid.uuid4().hex,
                "body": answer,
            },
            "error": None,
        }
        (batch.outputs if status < 400 else batch.failures).append(record)


def _read_input(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The input file's lines, and the errors of the lines that are not valid requests."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()

    def error(number: int, code: str, message: str, param: str | None = None) -> None:
        errors.append({"code": code, "message": message, "param": param, "line": number})

    for number, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            error(number, "invalid_json_line", "This line is not parseable as valid JSON.")
            continue
        if not isinstance(line, dict):
            error(number, "invalid_request", "Each line must be a JSON object.")
            continue
        custom = line.get("custom_id")
        if not isinstance(custom, str) or not custom:
            error(number, "missing_required_parameter", "Missing 'custom_id'.", "custom_id")
        elif custom in seen:
            error(number, "duplicate_custom_id", f"The custom_id {custom!r} is used twice.")
        if line.get("method") != "POST":
            error(number, "invalid_method", "Only the POST method is supported.", "method")
        if line.get("url") != endpoint:
            error(
                number,
                "mismatched_endpoint",
                f"The url {line.get('url')!r} does not match the batch endpoint {endpoint!r}.",
                "url",
            )
        if not isinstance(line.get("body"), dict):
            error(number, "missing_required_parameter", "Missing the request 'body'.", "body")
        if isinstance(custom, str):
            seen.add(custom)
        lines.append(line)
    if not lines and not errors:
        error(0, "empty_file", "The input file has no requests.")
    return lines, errors


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


_STORES: weakref.WeakKeyDictionary[ReferenceServer, BatchStore] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def batch_store(server: ReferenceServer) -> BatchStore:
    """The files and batches of ``server`` (created on first use); set its ``options`` here."""
    with _STORES_LOCK:
        store = _STORES.get(server)
        if store is None:
            store = _STORES[server] = BatchStore(server)
        return store


def handle_batch_api(
    server: ReferenceServer, method: str, path: str, raw: bytes, content_type: str
) -> dict[str, Any] | bytes:
    """Answer a request under ``/v1/files`` or ``/v1/batches``: a JSON body, or a file's bytes."""
    from pytest_ftclass.reference.server import _parse_json

    store = batch_store(server)
    parts = path.strip("/").split("/")[1:]  # without the leading "v1"
    if method == "POST" and parts == ["files"]:
        return store.upload(raw, content_type)
    if method == "GET" and len(parts) == 2 and parts[0] == "files":
        return store.file(parts[1]).describe()
    if method == "GET" and len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
        return store.file(parts[1]).data
    if method == "POST" and parts == ["batches"]:
        return store.create(_parse_json(raw))
    if method == "GET" and len(parts) == 2 and parts[0] == "batches":
        return store.retrieve(parts[1])
    raise ApiError(404, f"Invalid URL ({method} {path})")
