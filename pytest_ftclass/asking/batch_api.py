"""Asking the model through the Batch API (``--ft-batch-api``), for very large suites.

Instead of one HTTP request per Completions page or chat case, the requests are
written to one JSONL input file, uploaded (``client.files.create``), run as one
batch (``client.batches.create``), polled (``client.batches.retrieve``) and read
back (``client.files.content``), then parsed by the same functions as the live
path into the same :class:`~pytest_ftclass.results.Prediction` objects::

    shape = plan_shape("ft:babbage-002:acme::abc123", "completions", ["sport", "tech"])
    predictions = predict_via_batch(
        cases, shape, ClientOptions(api_key="sk-..."),
        progress=lambda done, total: print(f"{done}/{total}"),
    )

Each input line is exactly the body the live path would send: a Completions
line holds one page of ``batch_size`` prompts (pages cut from the whole case
source, by :func:`pytest_ftclass.asking.requests.plan_requests`), a chat line one
conversation.  A
line's ``custom_id`` is ``ftclass-`` and a digest of the ids of its cases: stable
from run to run, safe in any file name or log, unique within the batch.

>>> custom_id(["sport-1", "sport-2"])
'ftclass-c36898c883bd68089b08b099ec6528b9'

Failures stay per case: a line answered with an error (in the batch's error
file) or missing from the output gives an error Prediction to exactly the cases
of that line; a batch that ends ``failed``, ``expired`` or ``cancelled`` gives
every case without an answer an error naming the batch and its errors; an API
error on the upload, the creation or a poll fails every case with its message.

Recording and replay (the caller opens the group's cassette around the call, as
for the live path).  Four things differ from the live path's traffic:

1. The upload is ``multipart/form-data`` with a random boundary, and the file
   holds prompt text.  ``recording.batch_traffic.canonical_multipart`` turns such a body into
   canonical JSON ``{"file": "ftclass-sha256:<digest of the file>", "filename":
   ..., "purpose": "batch"}`` (the file's text instead of its digest when
   prompts are kept): the cassette holds no prompt text and the request matches
   on replay whatever boundary the client drew, because the input file is
   byte-for-byte deterministic (fixed key order, stable custom ids).  The
   recorder's ``before_record_request`` calls it for multipart bodies and sets
   the recorded content type to ``application/json``.
2. Answers of the Files and Batches endpoints have no ``choices`` list, which
   the recorder otherwise takes for a broken answer: ``is_batch_api_body``
   recognises them (a ``file`` or ``batch`` object, or a batch output/error
   JSONL file) so they are recorded.  The downloaded files hold the model's
   answers and error messages, never prompt text.
3. ``GET /v1/batches/{id}`` is one request with changing answers.  vcrpy
   matches it on method and path and, with ``allow_playback_repeats``, would
   replay the first (in-progress) answer forever, while recording as well as on
   replay.  So an unfinished poll answer is never recorded
   (``is_unfinished_poll``, applied where the cassette appends an
   interaction, because vcrpy's ``before_record_response`` does not see the
   request and the creation answer, which must be kept, is a ``validating``
   batch too).  Recording then polls the live server until the end; replay
   finds the final answer at the first poll and never sleeps.
4. File and batch ids are random per recording.  Nothing needs them stable: the
   client takes every id from an answer (the upload's id goes into the
   creation's body, the creation's id into the poll's path, the final poll's
   file ids into the download paths), and on replay those answers come from the
   same cassette, so every later request matches what was recorded.

A subset of a recorded run (``-k``) sends a different input file, so it is not
answered from the recording of the full run (unlike the live path's pages): it
is recorded as a new batch.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_ftclass.asking.clients import ClientOptions, make_sync_client
from pytest_ftclass.asking.errors import describe_api_error, error_detail, error_kind, redacting
from pytest_ftclass.asking.requests import PlannedRequest, plan_requests
from pytest_ftclass.asking.shapes import RequestShape
from pytest_ftclass.cases.sources import Case
from pytest_ftclass.recording.batch_traffic import FINAL_STATUSES
from pytest_ftclass.results import Prediction

if TYPE_CHECKING:
    from pytest_ftclass.asking.refusals import ModelAccess
    from pytest_ftclass.recording.redaction import Redactor

#: The request path of each endpoint, as batch input lines and ``batches.create`` name it.
ENDPOINT_URLS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
#: Name the input file is uploaded under (part of the recorded upload: keep it fixed).
INPUT_FILE_NAME = "ftclass-batch.jsonl"
#: Seconds before the second poll; each later wait is 1.5 times longer, up to the maximum.
DEFAULT_POLL_INTERVAL = 5.0
MAX_POLL_INTERVAL = 60.0
#: First wait against a server on this machine (the reference model): no rate limit to spare.
LOOPBACK_POLL_INTERVAL = 0.05

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BatchLine:
    """One request of the batch: its ``custom_id`` and the request (body and cases)."""

    custom_id: str
    request: PlannedRequest

    @property
    def case_ids(self) -> tuple[str, ...]:
        return tuple(case.id for case in self.request.cases)

    @property
    def body(self) -> dict[str, Any]:
        return self.request.body


def custom_id(case_ids: Iterable[str]) -> str:
    """The ``custom_id`` of the line asking for ``case_ids`` (in order): stable and safe."""
    digest = hashlib.sha256("\n".join(case_ids).encode("utf-8")).hexdigest()
    return "ftclass-" + digest[:32]


def poll_interval_for(base_url: str | None) -> float:
    """The first wait between polls: short for a server on this machine, else the default.

    >>> poll_interval_for("http://127.0.0.1:8000/v1"), poll_interval_for(None)
    (0.05, 5.0)
    """
    from urllib.parse import urlsplit

    host = urlsplit(base_url).hostname if base_url else None
    local = host in ("localhost", "127.0.0.1", "::1")
    return LOOPBACK_POLL_INTERVAL if local else DEFAULT_POLL_INTERVAL


def batch_lines(
    cases: Sequence[Case],
    shape: RequestShape,
    *,
    batch_size: int = 20,
    source_cases: Sequence[Case] | None = None,
) -> tuple[list[BatchLine], dict[str, Prediction]]:
    """The lines asking for ``cases``, and error Predictions for cases no line can ask.

    The requests are those the live path plans (pages cut from ``source_cases``,
    keeping the selected cases of each page), one line each.

    >>> from pytest_ftclass.cases.sources import load_cases
    >>> cases = load_cases([{"id": f"c{i}", "input": "goal", "label": "sport"} for i in range(3)])
    >>> shape = RequestShape("completions", "babbage-002", ("sport",))
    >>> lines, failed = batch_lines(cases, shape, batch_size=2)
    >>> [line.case_ids for line in lines], failed
    ([('c0', 'c1'), ('c2',)], {})
    """
    planned, failed = plan_requests(cases, shape, source_cases=source_cases, batch_size=batch_size)
    lines = [BatchLine(custom_id(c.id for c in request.cases), request) for request in planned]
    return lines, failed


def batch_input(lines: Sequence[BatchLine], endpoint: str) -> bytes:
    """The JSONL input file of ``lines``: the same bytes for the same lines, every time."""
    url = ENDPOINT_URLS[endpoint]
    return "".join(
        json.dumps(
            {"custom_id": line.custom_id, "method": "POST", "url": url, "body": line.body},
            ensure_ascii=False,
            sort_keys=True,
        )
        + "\n"
        for line in lines
    ).encode("utf-8")


def predict_via_batch(
    cases: Sequence[Case],
    shape: RequestShape,
    client: ClientOptions,
    *,
    batch_size: int = 20,
    source_cases: Sequence[Case] | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    max_wait_s: float | None = None,
    progress: Progress | None = None,
    describe_error: Callable[[BaseException], str] = describe_api_error,
    sleep: Callable[[float], None] = time.sleep,
    redactor: Redactor | None = None,
    access: ModelAccess | None = None,
) -> dict[str, Prediction]:
    """Predictions for ``cases`` through one batch, keyed by case id; every case gets one.

    ``progress(finished, total)`` is called after every poll with the number of
    the batch's requests finished (succeeded or failed) and their total.  The
    first poll follows the creation at once; the next waits ``poll_interval``
    seconds, each later one 1.5 times longer (at most ``MAX_POLL_INTERVAL``).
    After ``max_wait_s`` seconds (default: no limit) the batch is left running
    and every case gets an error naming it.  Predictions carry no ``latency_s``:
    a batch has no per-request latency.  ``redactor`` and ``access`` are those of
    :func:`pytest_ftclass.asking.predict.predict`: secrets out of the server's texts,
    nothing sent after a definitive error.
    """
    if redactor is not None:
        describe_error = redacting(describe_error, redactor)
    if access is not None and access.refused is not None:
        results = {case.id: Prediction.failed(access.refused) for case in cases}
    else:
        lines, results = batch_lines(cases, shape, batch_size=batch_size, source_cases=source_cases)
        if lines:
            batch = _Batch(lines, shape, client, describe_error, access)
            results.update(batch.run(poll_interval, max_wait_s, progress, sleep))
    if redactor is None:
        return results
    return {case_id: redactor.prediction(p) for case_id, p in results.items()}


@dataclass
class _Batch:
    """One batch of ``lines``: uploaded, created, polled, read."""

    lines: list[BatchLine]
    shape: RequestShape
    client: ClientOptions
    describe_error: Callable[[BaseException], str]
    access: ModelAccess | None

    def run(
        self,
        poll_interval: float,
        max_wait_s: float | None,
        progress: Progress | None,
        sleep: Callable[[float], None],
    ) -> dict[str, Prediction]:
        api = make_sync_client(self.client)
        url = ENDPOINT_URLS[self.shape.endpoint]
        try:
            uploaded = api.files.create(
                file=(
                    INPUT_FILE_NAME,
                    batch_input(self.lines, self.shape.endpoint),
                    "application/jsonl",
                ),
                purpose="batch",
            )
            batch = api.batches.create(
                input_file_id=uploaded.id,
                endpoint=url,
                completion_window="24h",
            )
            batch = _wait(api, batch.id, poll_interval, max_wait_s, progress, sleep)
            records: dict[str, Mapping[str, Any]] = {}
            if batch.status in FINAL_STATUSES:
                for file_id in (batch.output_file_id, batch.error_file_id):
                    if file_id:
                        records.update(read_records(api.files.content(file_id).content))
        except Exception as err:  # the whole batch failed: every case says why
            return self._failed(err)
        finally:
            api.close()
        unanswered = _unanswered_message(batch)
        results: dict[str, Prediction] = {}
        for line in self.lines:
            results.update(
                _line_predictions(line, records.get(line.custom_id), self.shape, unanswered)
            )
        return results

    def _failed(self, error: BaseException) -> dict[str, Prediction]:
        from pytest_ftclass.asking.refusals import is_definitive

        message = self.describe_error(error)
        if self.access is not None and is_definitive(error):
            self.access.refuse(message)
        return {cid: Prediction.failed(message) for line in self.lines for cid in line.case_ids}


def _wait(
    api: Any,
    batch_id: str,
    poll_interval: float,
    max_wait_s: float | None,
    progress: Progress | None,
    sleep: Callable[[float], None],
) -> Any:
    """Poll the batch until it is final (or ``max_wait_s`` has passed); the last answer."""
    started = time.monotonic()
    interval = poll_interval
    while True:
        batch = api.batches.retrieve(batch_id)
        counts = batch.request_counts
        if progress is not None and counts is not None:
            progress(counts.completed + counts.failed, counts.total)
        if batch.status in FINAL_STATUSES:
            return batch
        if max_wait_s is not None and time.monotonic() - started + interval > max_wait_s:
            return batch
        sleep(interval)
        interval = max(interval, min(interval * 1.5, MAX_POLL_INTERVAL))


def read_records(content: bytes) -> dict[str, Mapping[str, Any]]:
    """The lines of a batch output or error file, by ``custom_id`` (unreadable lines skipped).

    >>> read_records(b'{"custom_id": "a", "response": null}\\nnot json\\n')
    {'a': {'custom_id': 'a', 'response': None}}
    """
    records: dict[str, Mapping[str, Any]] = {}
    for raw in content.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("custom_id"), str):
            records[record["custom_id"]] = record
    return records


def _unanswered_message(batch: Any) -> str:
    """What a case whose line has no answer is told."""
    status = batch.status
    if status not in FINAL_STATUSES:
        return f"batch {batch.id} is still {status}: stopped waiting for it"
    errors = getattr(batch.errors, "data", None) or []
    details = "; ".join(
        (f"line {error.line}: " if error.line is not None else "")
        + (f"{error.code}: " if error.code else "")
        + (error.message or "")
        for error in errors[:3]
    )
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    if status == "completed":
        return f"batch {batch.id} completed without an answer for this request"
    return f"batch {batch.id} {status}" + (f": {details}{more}" if details else "")


def _line_predictions(
    line: BatchLine, record: Mapping[str, Any] | None, shape: RequestShape, unanswered: str
) -> dict[str, Prediction]:
    """The Predictions of one line's cases from its output (or error) record."""
    if record is None:
        return line.request.failed(unanswered)
    problem = _record_error(record)
    if problem is not None:
        return line.request.failed(problem)
    return line.request.answers(shape, record["response"].get("body"))


def _record_error(record: Mapping[str, Any]) -> str | None:
    """Why a batch record holds no answer, or ``None`` when it holds one."""
    error = record.get("error")
    if isinstance(error, Mapping):
        code = error.get("code") or "error"
        return f"batch request failed: {code}: {error.get('message') or ''}".rstrip(": ")
    response = record.get("response")
    if not isinstance(response, Mapping):
        return "malformed batch output: a line has no 'response'"
    status = response.get("status_code")
    if isinstance(status, int) and status >= 400:
        detail = error_detail(response.get("body"))
        message = detail.get("message") or "no message"
        return f"HTTP {status} {error_kind(detail) or 'error'}: {message}"
    return None
