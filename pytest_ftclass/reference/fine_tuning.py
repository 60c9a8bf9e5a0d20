"""The reference server's fine-tuning endpoints: jobs that really train, in a thread each.

Through the official client, against a running :class:`ReferenceServer`:

>>> import json, openai
>>> from pytest_ftclass.reference import ReferenceServer
>>> lines = [{"prompt": f"{w} goal match", "completion": " sport"} for w in "abcdefgh"]
>>> lines += [{"prompt": f"{w} vote senate", "completion": " politics"} for w in "abcdefgh"]
>>> with ReferenceServer({}) as server:
...     client = openai.OpenAI(base_url=server.base_url, api_key="sk-local")
...     train = client.files.create(
...         file=("train.jsonl", "".join(json.dumps(x) + "\\n" for x in lines).encode()),
...         purpose="fine-tune",
...     )
...     job = client.fine_tuning.jobs.create(
...         training_file=train.id, model="babbage-002", suffix="news",
...         hyperparameters={"n_epochs": 2, "batch_size": 8}, seed=7,
...     )
...     status = server.fine_tuning.wait(job.id)  # or poll client.fine_tuning.jobs.retrieve
...     job = client.fine_tuning.jobs.retrieve(job.id)
...     checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
...     reply = client.completions.create(model=job.fine_tuned_model, prompt="a late goal")
>>> status, job.fine_tuned_model.startswith("ft:babbage-002:local:news:")
('succeeded', True)
>>> [c.fine_tuned_model_checkpoint.rsplit(":", 1)[1] for c in checkpoints]  # newest first
['ckpt-step-4', 'ckpt-step-2']
>>> reply.choices[0].text
' sport'

A job goes ``validating_files`` → ``queued`` → ``running`` → ``succeeded``
(or ``failed``, with an ``error`` naming the file and line, or ``cancelled``).
Training (:func:`pytest_ftclass.reference.training.train`) writes one
result-file row and one ``metrics`` event per step and one checkpoint per epoch;
each checkpoint (``<fine_tuned_model>:ckpt-step-<N>``) and the final model
(``ft:<base>:local:<suffix>:<short id>``) answer Completions and Chat as their
own model ids.  The result file's content is the CSV, base64-encoded, as the
real API serves it.

Ids are reproducible (:class:`~pytest_ftclass.reference.wire.StableIds`): the
same uploads and job requests, in the same order, give the same file, job,
model and checkpoint ids on a fresh server, and the same seed gives the same
training; without a ``seed``, the job's id picks one.  How long a job takes is
set with :class:`FineTuningOptions` on ``server.fine_tuning.options``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_ftclass.reference.classifier import ReferenceClassifier
from pytest_ftclass.reference.files import FileStore
from pytest_ftclass.reference.training import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MIN_EXAMPLES,
    EpochEnd,
    Example,
    Hyperparameters,
    Step,
    TrainingFileError,
    read_examples,
    train,
)
from pytest_ftclass.reference.wire import ApiError, invalid, missing, page, short_name

__all__ = ["ORGANIZATION", "FineTuningJobs", "FineTuningOptions", "PublishModel"]

#: the organization in model names (``ft:<base>:local:...``) and ``org-local`` as its id
ORGANIZATION = "local"
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
RESULT_COLUMNS = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
MAX_SEED = 2**31 - 1
HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")

#: how a store makes a model answer: ``(model id, classifier, created_at)``
PublishModel = Callable[[str, ReferenceClassifier, int], None]


@dataclass(frozen=True)
class FineTuningOptions:
    """How long a job takes, and how often it measures validation metrics.

    ``validating_s`` in ``validating_files``, ``queued_s`` in ``queued``,
    ``seconds_per_step`` after each training step (all 0 by default: a job of a
    few hundred examples ends in a fraction of a second); ``valid_every`` steps
    between two validation measurements (and at every epoch's end).
    """

    seconds_per_step: float = 0.0
    validating_s: float = 0.0
    queued_s: float = 0.0
    valid_every: int = 10

    def __post_init__(self) -> None:
        if min(self.seconds_per_step, self.validating_s, self.queued_s) < 0:
            raise ValueError("fine-tuning delays must be zero or positive")
        if self.valid_every < 1:
            raise ValueError(f"valid_every must be at least 1, not {self.valid_every}")


@dataclass
class _Job:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    suffix: str | None
    seed: int
    requested: dict[str, Any]
    metadata: dict[str, str] | None
    fine_tuned_name: str
    created_at: int
    status: str = "validating_files"
    settings: Hyperparameters | None = None
    finished_at: int | None = None
    error: dict[str, Any] | None = None
    result_file: str | None = None
    trained_tokens: int | None = None
    total_steps: int | None = None
    steps_done: int = 0
    running_since: float | None = None
    last_step: Step | None = None
    final_model: ReferenceClassifier | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def hyperparameters(self) -> dict[str, Any]:
        if self.settings is not None:
            return dict(self.settings.as_dict())
        return {name: self.requested.get(name, "auto") for name in HYPERPARAMETERS}

    def describe(self) -> dict[str, Any]:
        hyperparameters = self.hyperparameters()
        return {
            "object": "fine_tuning.job",
            "id": self.id,
            "model": self.model,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "fine_tuned_model": self.fine_tuned_name if self.status == "succeeded" else None,
            "organization_id": f"org-{ORGANIZATION}",
            "result_files": [self.result_file] if self.result_file else [],
            "status": self.status,
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": hyperparameters,
            "trained_tokens": self.trained_tokens,
            "error": self.error,
            "user_provided_suffix": self.suffix,
            "seed": self.seed,
            "estimated_finish": self._estimated_finish(),
            "integrations": [],
            "metadata": self.metadata,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        }

    def _estimated_finish(self) -> int | None:
        if self.status != "running" or not self.steps_done or self.running_since is None:
            return None
        per_step = (time.monotonic() - self.running_since) / self.steps_done
        return int(time.time() + per_step * ((self.total_steps or 0) - self.steps_done))


class _JobFailure(Exception):
    """Why a job failed: its ``error`` object."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message, "param": param}


class FineTuningJobs:
    """The fine-tuning jobs of one server: their files in ``files``, their models published.

    ``publish`` makes a checkpoint or final model answer as its own id (the
    server's model table).  ``options`` may be changed at any time; a job reads
    them as it goes.
    """

    def __init__(
        self, files: FileStore, publish: PublishModel, options: FineTuningOptions | None = None
    ) -> None:
        self.files = files
        self.options = options or FineTuningOptions()
        self._publish = publish
        self._jobs: dict[str, _Job] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- endpoints ---------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/fine_tuning/jobs``: a ``validating_files`` job, training in a thread."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise missing("model") if model is None else invalid("model", "a model id")
        training_file = self._file_param(body, "training_file")
        if training_file is None:
            raise missing("training_file")
        validation_file = self._file_param(body, "validation_file")
        suffix = body.get("suffix")
        if suffix is not None and (
            not isinstance(suffix, str) or not 0 < len(suffix) <= 64 or ":" in suffix
        ):
            raise invalid("suffix", "a string of 1 to 64 characters without ':'")
        requested = _requested_hyperparameters(body)
        seed = body.get("seed")
        if seed is not None and (
            not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED
        ):
            raise invalid("seed", f"an integer from 0 to {MAX_SEED}")
        metadata = body.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and len(metadata) <= 16
            and all(isinstance(v, str) for v in metadata.values())
        ):
            raise invalid("metadata", "at most 16 string keys and values")
        if body.get("integrations"):
            raise ApiError(
                400,
                "The reference server runs no integrations.",
                param="integrations",
                code="invalid_value",
            )
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        job_id = self.files.ids.make("ftjob-", canonical)
        if seed is None:
            seed = int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:4], "big") % MAX_SEED
        base = _base_model(model)  # a fine-tune fine-tuned again keeps its base
        job = _Job(
            id=job_id,
            model=model,
            training_file=training_file,
            validation_file=validation_file,
            suffix=suffix,
            seed=seed,
            requested=requested,
            metadata=metadata,
            fine_tuned_name=f"ft:{base}:{ORGANIZATION}:{suffix or ''}:{short_name(job_id)}",
            created_at=int(time.time()),
        )
        self._event(job, f"Created fine-tuning job: {job.id}")
        self._event(job, f"Validating training file: {training_file}")
        thread = threading.Thread(
            target=self._run, args=(job,), name=f"ftclass-finetune:{job.id}", daemon=True
        )
        with self._lock:
            self._jobs[job.id] = job
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            answer = job.describe()
        thread.start()
        return answer

    def retrieve(self, job_id: str) -> dict[str, Any]:
        """``GET /v1/fine_tuning/jobs/{id}``."""
        with self._lock:
            return self._job(job_id).describe()

    def list_jobs(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v1/fine_tuning/jobs``: newest first, ``after`` a job id, ``limit`` (20)."""
        with self._lock:
            jobs = [job.describe() for job in reversed(self._jobs.values())]
        return page(jobs, query)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """``POST /v1/fine_tuning/jobs/{id}/cancel``: stops training before its next step."""
        with self._lock:
            job = self._job(job_id)
            if job.status in FINAL_STATUSES:
                raise ApiError(
                    400,
                    f"Job {job_id} has already {job.status}: it cannot be cancelled.",
                    param="fine_tuning_job_id",
                )
            self._finish(job, "cancelled")
            self._event(job, "The job was cancelled.")
            return job.describe()

    def events(self, job_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v1/fine_tuning/jobs/{id}/events``: newest first, ``after``, ``limit`` (20)."""
        with self._lock:
            events = list(reversed(self._job(job_id).events))
        return page(events, query)

    def checkpoints(self, job_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v1/fine_tuning/jobs/{id}/checkpoints``: newest first, ``limit`` (10)."""
        with self._lock:
            checkpoints = list(reversed(self._job(job_id).checkpoints))
        return page(checkpoints, query, default_limit=10)

    # -- for tests and shutdown --------------------------------------------------------

    def wait(self, job_id: str, timeout: float = 60.0) -> str:
        """Block until the job ends (or ``timeout`` seconds pass); its status."""
        with self._lock:
            job = self._job(job_id)
        job.done.wait(timeout)
        with self._lock:
            return job.status

    def close(self, timeout: float = 5.0) -> None:
        """Stop every unfinished job (``failed``: the server stopped) and join the threads."""
        error = {
            "code": "server_error",
            "message": "The reference server stopped while the job ran.",
            "param": None,
        }
        with self._lock:
            unfinished = [job for job in self._jobs.values() if job.status not in FINAL_STATUSES]
            threads = list(self._threads)
        for job in unfinished:
            self._fail(job, error)
        for thread in threads:
            thread.join(timeout)

    # -- the job's thread ------------------------------------------------------------

    def _run(self, job: _Job) -> None:
        try:
            self._train(job)
        except _JobFailure as failure:
            self._fail(job, failure.error)
        except Exception as err:  # a bug must fail the job, not leave it running forever
            message = f"Training failed ({type(err).__name__}: {err})."
            self._fail(job, {"code": "server_error", "message": message, "param": None})
        finally:
            job.done.set()

    def _train(self, job: _Job) -> None:
        if job.stop.wait(self.options.validating_s):
            return
        examples = self._read(job.training_file, "training_file", MIN_EXAMPLES)
        validation = (
            self._read(job.validation_file, "validation_file", 0) if job.validation_file else []
        )
        settings = Hyperparameters.resolve(job.requested, len(examples))
        with self._lock:
            if job.stop.is_set():
                return
            job.settings = settings
            job.total_steps = settings.n_epochs * settings.steps_per_epoch(len(examples))
            job.status = "queued"
            self._event(job, "Files validated, moving job to queued state")
        if job.stop.wait(self.options.queued_s):
            return
        with self._lock:
            if job.stop.is_set():
                return
            job.status = "running"
            job.running_since = time.monotonic()
            self._event(job, "Fine-tuning job started")
        steps = train(
            examples, validation, settings, seed=job.seed, valid_every=self.options.valid_every
        )
        while True:
            try:
                item = next(steps, None)
            except TrainingFileError as err:  # a file training cannot use (one class)
                raise _file_failure("training_file", err) from None
            if item is None:
                break
            with self._lock:
                if job.stop.is_set():
                    return
                if isinstance(item, Step):
                    self._record_step(job, item)
                else:
                    self._record_checkpoint(job, item)
            if isinstance(item, Step) and job.stop.wait(self.options.seconds_per_step):
                return
        self._succeed(job, examples)

    def _read(self, file_id: str, param: str, minimum: int) -> list[Example]:
        try:
            return read_examples(self.files.get(file_id, param=param).data, minimum=minimum)
        except TrainingFileError as err:
            raise _file_failure(param, err) from None

    def _record_step(self, job: _Job, step: Step) -> None:
        job.rows.append(step.csv_row())
        job.steps_done = step.step
        job.last_step = step
        data: dict[str, Any] = {
            "step": step.step,
            "train_loss": step.train_loss,
            "train_mean_token_accuracy": step.train_accuracy,
            "total_steps": step.total_steps,
        }
        message = f"Step {step.step}/{step.total_steps}: training loss={step.train_loss}"
        if step.valid_loss is not None:
            data["valid_loss"] = step.valid_loss
            data["valid_mean_token_accuracy"] = step.valid_accuracy
            message += f", validation loss={step.valid_loss}"
        self._event(job, message, data=data)

    def _record_checkpoint(self, job: _Job, end: EpochEnd) -> None:
        name = f"{job.fine_tuned_name}:ckpt-step-{end.step}"
        now = int(time.time())
        self._publish(name, end.model, now)
        step = job.last_step
        assert step is not None and step.step == end.step  # an epoch ends on its last step
        metrics: dict[str, float] = {
            "step": float(end.step),
            "train_loss": step.train_loss,
            "train_mean_token_accuracy": step.train_accuracy,
        }
        if step.valid_loss is not None and step.valid_accuracy is not None:
            metrics["valid_loss"] = step.valid_loss
            metrics["valid_mean_token_accuracy"] = step.valid_accuracy
        if end.full_valid_loss is not None and end.full_valid_accuracy is not None:
            metrics["full_valid_loss"] = end.full_valid_loss
            metrics["full_valid_mean_token_accuracy"] = end.full_valid_accuracy
        job.checkpoints.append(
            {
                "object": "fine_tuning.job.checkpoint",
                "id": self.files.ids.make("ftckpt_", job.id, str(end.step)),
                "created_at": now,
                "fine_tuned_model_checkpoint": name,
                "fine_tuning_job_id": job.id,
                "step_number": end.step,
                "metrics": metrics,
            }
        )
        self._event(job, f"Checkpoint created at step {end.step}")
        job.final_model = end.model

    def _succeed(self, job: _Job, examples: list[Example]) -> None:
        csv = "\n".join([RESULT_COLUMNS, *job.rows]) + "\n"
        with self._lock:
            if job.stop.is_set():
                return
            assert job.settings is not None and job.final_model is not None
            result = self.files.add(
                "fine-tune-results", "step_metrics.csv", base64.b64encode(csv.encode("utf-8"))
            )
            job.result_file = result.id
            job.trained_tokens = sum(e.tokens for e in examples) * job.settings.n_epochs
            self._publish(job.fine_tuned_name, job.final_model, int(time.time()))
            self._event(job, f"New fine-tuned model created: {job.fine_tuned_name}")
            self._finish(job, "succeeded")
            self._event(job, "The job has successfully completed")

    def _fail(self, job: _Job, error: dict[str, Any]) -> None:
        with self._lock:
            if job.status in FINAL_STATUSES:
                return
            job.error = error
            self._finish(job, "failed")
            self._event(job, f"The job failed: {error['message']}", level="error")

    # -- helpers (called with the lock held, or before the job is shared) -------------

    def _finish(self, job: _Job, status: str) -> None:
        job.status = status
        job.finished_at = int(time.time())
        job.stop.set()

    def _event(
        self, job: _Job, message: str, *, level: str = "info", data: dict[str, Any] | None = None
    ) -> None:
        job.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": self.files.ids.make("ftevent-", job.id, str(len(job.events))),
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "data": data or {},
                "type": "metrics" if data else "message",
            }
        )

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(
                404, f"No fine-tuning job found with id {job_id!r}.", param="fine_tuning_job_id"
            )
        return job

    def _file_param(self, body: Mapping[str, Any], param: str) -> str | None:
        """The id of an uploaded ``fine-tune`` file named by ``param``; ``None`` if absent."""
        file_id = body.get(param)
        if file_id is None:
            return None
        if not isinstance(file_id, str) or not file_id:
            raise invalid(param, "a file id")
        try:
            stored = self.files.get(file_id, param=param)
        except ApiError:
            raise ApiError(400, f"invalid {param}: {file_id}", param=param) from None
        if stored.purpose != "fine-tune":
            raise ApiError(
                400,
                f"File {file_id} was uploaded with purpose {stored.purpose!r}, not 'fine-tune'.",
                param=param,
            )
        return file_id


def _base_model(model: str) -> str:
    """The base of a model id: ``ft:babbage-002:acme::abc`` was fine-tuned from ``babbage-002``.

    The client's ``cases.tokens.base_model`` reads ids the same way; the server
    imports nothing of the client but the case model.

    >>> _base_model("ft:babbage-002:acme::abc"), _base_model("babbage-002")
    ('babbage-002', 'babbage-002')
    """
    if model.startswith("ft:"):
        return model.split(":")[1] or model
    return model


def _file_failure(param: str, err: TrainingFileError) -> _JobFailure:
    kind = param.split("_")[0]  # training or validation
    return _JobFailure(
        f"invalid_{param}", f"The job failed due to an invalid {kind} file. {err}", param
    )


def _requested_hyperparameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters asked for, from ``hyperparameters`` or ``method`` (not both)."""
    top = body.get("hyperparameters")
    method = body.get("method")
    nested: Any = None
    if method is not None:
        if not isinstance(method, dict) or method.get("type", "supervised") != "supervised":
            raise ApiError(
                400,
                "The reference server runs supervised fine-tuning only.",
                param="method.type",
                code="invalid_value",
            )
        supervised = method.get("supervised") or {}
        nested = supervised.get("hyperparameters") if isinstance(supervised, dict) else None
        if top and nested:
            raise ApiError(
                400,
                "Give the hyperparameters in 'method' or at the top level, not both.",
                param="hyperparameters",
            )
    requested = nested or top or {}
    param = "method.supervised.hyperparameters" if nested else "hyperparameters"
    if not isinstance(requested, dict):
        raise invalid(param, "an object")
    unknown = sorted(set(requested) - set(HYPERPARAMETERS))
    if unknown:
        raise invalid(f"{param}.{unknown[0]}", f"one of {', '.join(HYPERPARAMETERS)}")
    for name, high in (("n_epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH_SIZE)):
        value = requested.get(name, "auto")
        if value != "auto" and (
            not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high
        ):
            raise invalid(f"{param}.{name}", f"'auto' or an integer from 1 to {high}")
    multiplier = requested.get("learning_rate_multiplier", "auto")
    if multiplier != "auto" and (
        isinstance(multiplier, bool)
        or not isinstance(multiplier, (int, float))
        or not 0 < multiplier <= 100
    ):
        raise invalid(f"{param}.learning_rate_multiplier", "'auto' or a number above 0, up to 100")
    return dict(requested)
