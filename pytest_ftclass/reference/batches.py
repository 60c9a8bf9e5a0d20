"""The Batches endpoints of the reference server, in the OpenAI shape.

Enough of ``/v1/batches`` for a batch of classification requests to run end to
end offline, through the official client (the input file is uploaded to
``/v1/files``, :mod:`pytest_ftclass.reference.files`):

- ``POST /v1/batches`` (``input_file_id``, ``endpoint`` ``/v1/completions`` or
  ``/v1/chat/completions``, ``completion_window`` ``24h``) answers a ``validating``
  Batch; ``GET /v1/batches/{id}`` moves it on: ``in_progress`` with a growing
  ``request_counts``, then ``completed`` with an ``output_file_id`` (lines
  answered 200) and an ``error_file_id`` (the others), each line
  ``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error": null}``.
  An input file with a malformed line makes the batch ``failed`` with
  ``errors`` naming the lines, as the real API does.
- Every line is answered by the function the store is given, the server's own
  Completions and Chat Completions, so a batch answers exactly what the live
  endpoints answer.

The server owns one store (:attr:`ReferenceServer.batches`), whose files live in
the server's :class:`~pytest_ftclass.reference.files.FileStore`.  How fast a batch
finishes is set there, so tests see it in progress::

    server = ReferenceServer({"local": model}).start()
    server.batches.options = BatchOptions(polls=3)    # completed at the 3rd poll
    server.batches.options = BatchOptions(delay_s=0.2)  # completed 0.2 s after creation

Errors are OpenAI-shaped: 404 for an unknown file or batch id, 400 for a bad
parameter or a file that is not a ``batch`` file.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_ftclass.reference.files import FileStore
from pytest_ftclass.reference.wire import ApiError

__all__ = ["AnswerLine", "BatchOptions", "BatchStore"]

#: how a line is answered: ``(endpoint, request body) -> response body``, raising ApiError
AnswerLine = Callable[[str, dict[str, Any]], dict[str, Any]]

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
    """The batches of one server, in memory; their files are kept in ``files``."""

    def __init__(
        self, files: FileStore, answer: AnswerLine, options: BatchOptions | None = None
    ) -> None:
        self.files = files
        self.options = options or BatchOptions()
        self.batches: dict[str, _Batch] = {}
        self._answer_line = answer
        self._lock = threading.Lock()

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
        stored = self.files.get(input_file_id, param="input_file_id")
        if stored.purpose != "batch":
            raise ApiError(
                400,
                f"File {input_file_id} was not uploaded with purpose 'batch'.",
                param="input_file_id",
            )
        lines, errors = _read_input(stored.data, str(endpoint))
        batch_id = self.files.ids.make("batch_", input_file_id, str(endpoint))
        batch = _Batch(batch_id, input_file_id, str(endpoint), time.time(), lines)
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
                batch.output_file_id = self.files.add(
                    "batch_output", f"{batch.id}_output.jsonl", _jsonl(batch.outputs)
                ).id
            if batch.failures:
                batch.error_file_id = self.files.add(
                    "batch_output", f"{batch.id}_error.jsonl", _jsonl(batch.failures)
                ).id
            batch.status = "completed"
            batch.times["completed_at"] = int(now)

    def _answer(self, batch: _Batch, line: dict[str, Any]) -> None:
        """Answer one input line as the live endpoint would; file it as output or error."""
        try:
            status, answer = 200, self._answer_line(batch.endpoint, line["body"])
        except ApiError as err:
            status, answer = err.status, err.body()
        except Exception as err:  # a line must never take the batch down
            status = 500
            answer = ApiError(
                500,
                f"The reference server failed on this request ({type(err).__name__}).",
                type="server_error",
            ).body()
        number = str(len(batch.outputs) + len(batch.failures))
        record = {
            "id": self.files.ids.make("batch_req_", batch.id, number),
            "custom_id": line["custom_id"],
            "response": {
                "status_code": status,
                "request_id": self.files.ids.make("req_", batch.id, number, length=32),
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
