"""A fine-tuning job read for a run: the job, its result file and its checkpoints, recorded.

Live, the official client asks inside the job's cassette (recorded like any
other traffic: no credentials, written atomically); in record mode ``none`` the
same requests are answered from the cassette, without the client::

    job = fetch_job("ftjob-abc", options, recorder, live=False, path=cassette)
    job.fine_tuned_model, job.result_file.rows[-1], job.checkpoints[0].model

Both ways go through :func:`read_job`, so the answers are read by the same
code.  A job that has not succeeded is returned as it is (no result file, no
checkpoints): the caller says why it cannot be evaluated.  What cannot be read
(an API error, a request not in the cassette, a result file that is not one)
raises :class:`JobError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from pytest_ftclass.asking.clients import ClientOptions, request_url
from pytest_ftclass.judging.training import ResultFile, ResultFileError
from pytest_ftclass.recording.job_traffic import decode_result_file

if TYPE_CHECKING:
    from pytest_ftclass.recording.recorder import Recorder

__all__ = ["CHECKPOINT_PAGE", "Checkpoint", "JobError", "TrainingJob", "fetch_job", "read_job"]

#: Checkpoints asked for per page (the API's default page size).
CHECKPOINT_PAGE = 10
#: At most this many pages of checkpoints are read (a server that never says ``has_more: false``).
MAX_PAGES = 1000
#: The job's fields kept in the report, as the API names them.
JOB_FIELDS = (
    "id",
    "status",
    "model",
    "fine_tuned_model",
    "created_at",
    "finished_at",
    "hyperparameters",
    "trained_tokens",
    "training_file",
    "validation_file",
    "result_files",
    "seed",
    "user_provided_suffix",
    "error",
    "organization_id",
    "estimated_finish",
    "method",
)


class JobError(Exception):
    """The job could not be read: the message says what and how to fix it."""


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint: the model it answers as, at the step it was saved, and its metrics."""

    id: str
    step: int
    model: str
    created_at: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Checkpoint:
        """A ``fine_tuning.job.checkpoint`` object; ``JobError`` when it lacks its model or step."""
        model = data.get("fine_tuned_model_checkpoint")
        step = data.get("step_number")
        if not isinstance(model, str) or not model or not isinstance(step, int):
            raise JobError(f"a checkpoint without its model or step number: {dict(data)}")
        metrics = data.get("metrics") or {}
        return cls(
            id=str(data.get("id", "")),
            step=step,
            model=model,
            created_at=data.get("created_at"),
            metrics={
                name: float(value)
                for name, value in metrics.items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)
            },
        )


@dataclass(frozen=True)
class TrainingJob:
    """What a run knows of its ``--ft-job``: the job as the API describes it, and what it made.

    ``job`` holds the API's fields (:data:`JOB_FIELDS`); ``result_file`` the
    parsed CSV of its first result file, ``result_encoding`` how it was served
    (``base64`` or ``plain``) and ``result_sha256`` a digest of the CSV text;
    ``checkpoints`` are newest first, as listed.  Converts to and from builtin
    types (:meth:`to_dict`), to travel to pytest-xdist workers.
    """

    job: dict[str, Any]
    result_file: ResultFile | None = None
    result_file_id: str | None = None
    result_encoding: str | None = None
    result_sha256: str | None = None
    checkpoints: tuple[Checkpoint, ...] = ()

    @property
    def id(self) -> str:
        return str(self.job.get("id", ""))

    @property
    def status(self) -> str:
        return str(self.job.get("status", ""))

    @property
    def fine_tuned_model(self) -> str | None:
        model = self.job.get("fine_tuned_model")
        return model if isinstance(model, str) and model else None

    def problem(self) -> str | None:
        """Why the job's model cannot be evaluated, or ``None``.

        >>> TrainingJob({"id": "j", "status": "failed", "error": {"code": "invalid_training_file",
        ...     "message": "Line 3 is not JSON."}}).problem()
        "job j has status 'failed', not 'succeeded': Line 3 is not JSON. (invalid_training_file)"
        """
        if self.status == "succeeded" and self.fine_tuned_model:
            return None
        where = f"job {self.id} has status {self.status!r}, not 'succeeded'"
        error = self.job.get("error") or {}
        message = error.get("message") if isinstance(error, Mapping) else None
        if message:
            code = error.get("code")
            return f"{where}: {message}" + (f" ({code})" if code else "")
        if self.status in ("validating_files", "queued", "running"):
            return f"{where}: it is still running; evaluate it once it has succeeded"
        if self.status == "succeeded":
            return f"job {self.id} succeeded but names no fine_tuned_model"
        return where

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "result_file": None if self.result_file is None else self.result_file.to_dict(),
            "result_file_id": self.result_file_id,
            "result_encoding": self.result_encoding,
            "result_sha256": self.result_sha256,
            "checkpoints": [vars(c) for c in self.checkpoints],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingJob:
        result = data.get("result_file")
        return cls(
            job=dict(data["job"]),
            result_file=None if result is None else ResultFile.from_dict(result),
            result_file_id=data.get("result_file_id"),
            result_encoding=data.get("result_encoding"),
            result_sha256=data.get("result_sha256"),
            checkpoints=tuple(Checkpoint(**c) for c in data.get("checkpoints", ())),
        )


class JobApi(Protocol):
    """The three reads a job needs (live: the client; replay: the cassette)."""

    def job(self, job_id: str) -> dict[str, Any]: ...

    def checkpoints(self, job_id: str, after: str | None, limit: int) -> dict[str, Any]: ...

    def content(self, file_id: str) -> bytes: ...


def read_job(api: JobApi, job_id: str) -> TrainingJob:
    """The job ``job_id``; with its result file and checkpoints when it has succeeded."""
    described = api.job(job_id)
    if described.get("object", "fine_tuning.job") != "fine_tuning.job":
        raise JobError(f"the answer for job {job_id} is not a fine-tuning job")
    job = {name: described.get(name) for name in JOB_FIELDS if name in described}
    partial = TrainingJob(job)
    if partial.problem() is not None:
        return partial
    result_files = job.get("result_files") or []
    if not result_files:
        raise JobError(f"job {job_id} succeeded but lists no result file")
    file_id = str(result_files[0])
    content = api.content(file_id)
    decoded = decode_result_file(content)
    if decoded is None:
        raise JobError(
            f"result file {file_id} of job {job_id} is not a result file: neither CSV nor "
            "base64-encoded CSV with a header starting with 'step,'"
        )
    text, encoding = decoded
    try:
        result_file = ResultFile.parse(text)
    except ResultFileError as err:
        raise JobError(f"result file {file_id} of job {job_id}: {err}") from None
    return TrainingJob(
        job,
        result_file=result_file,
        result_file_id=file_id,
        result_encoding=encoding,
        result_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        checkpoints=_checkpoints(api, job_id),
    )


def _checkpoints(api: JobApi, job_id: str) -> tuple[Checkpoint, ...]:
    """Every checkpoint of the job, page by page, newest first as listed."""
    found: list[Checkpoint] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        page = api.checkpoints(job_id, after, CHECKPOINT_PAGE)
        items = page.get("data") or []
        found += [Checkpoint.from_api(item) for item in items]
        if not page.get("has_more") or not items:
            return tuple(found)
        after = str(items[-1].get("id", ""))
    raise JobError(f"job {job_id}: more than {MAX_PAGES} pages of checkpoints")


class LiveJobs:
    """Reads through the official client (inside a cassette when recording)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.client.fine_tuning.jobs.retrieve(job_id).to_dict())

    def checkpoints(self, job_id: str, after: str | None, limit: int) -> dict[str, Any]:
        cursor = {"after": after} if after else {}
        page = self.client.fine_tuning.jobs.checkpoints.list(job_id, limit=limit, **cursor)
        return {"data": [item.to_dict() for item in page.data], "has_more": bool(page.has_more)}

    def content(self, file_id: str) -> bytes:
        return bytes(self.client.files.content(file_id).content)


class RecordedJobs:
    """Reads the same requests from a cassette: no client, no HTTP."""

    def __init__(self, cassette: Any, options: ClientOptions) -> None:
        self.cassette = cassette
        self.options = options

    def _get(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        from pytest_ftclass.recording.replay import NotRecorded

        url = request_url(self.options, path)
        if query:
            url += "?" + urlencode(query)
        try:
            return str(self.cassette.get(url))
        except NotRecorded as missing:
            raise JobError(str(missing)) from None

    def job(self, job_id: str) -> dict[str, Any]:
        return _json_object(self._get(f"/fine_tuning/jobs/{job_id}"), f"job {job_id}")

    def checkpoints(self, job_id: str, after: str | None, limit: int) -> dict[str, Any]:
        query = {"limit": limit, **({"after": after} if after else {})}
        path = f"/fine_tuning/jobs/{job_id}/checkpoints"
        return _json_object(self._get(path, query), f"checkpoints of job {job_id}")

    def content(self, file_id: str) -> bytes:
        return self._get(f"/files/{file_id}/content").encode("utf-8")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise JobError(f"the recorded answer for the {what} is not a JSON object")
    return data


def fetch_job(
    job_id: str, options: ClientOptions, recorder: Recorder, *, live: bool, path: Path
) -> TrainingJob:
    """Read ``job_id``: asked through the client inside the cassette at ``path`` when ``live``,
    else answered from that cassette.  Raises :class:`JobError` saying what went wrong."""
    from pytest_ftclass.recording.cassette_files import BrokenCassette

    if not live:
        from pytest_ftclass.recording.replay import CassetteReplay

        try:
            cassette = CassetteReplay.read(recorder, path, paged=True)
        except BrokenCassette as broken:
            raise JobError(str(broken)) from None
        return read_job(RecordedJobs(cassette, options), job_id)
    from pytest_ftclass.asking.clients import make_sync_client
    from pytest_ftclass.asking.errors import describe_api_error
    from pytest_ftclass.recording.recorder import is_missing_from_cassette, missing_message

    try:
        with recorder.use(path, paged=True, whole=True):
            client = make_sync_client(options)
            try:
                return read_job(LiveJobs(client), job_id)
            finally:
                client.close()
    except BrokenCassette as broken:
        raise JobError(str(broken)) from None
    except JobError:
        raise
    except Exception as err:
        if is_missing_from_cassette(err):
            raise JobError(
                missing_message(recorder.source_of(path), recorder.record_mode, err)
            ) from None
        raise JobError(describe_api_error(err, redactor=recorder.redactor)) from None
