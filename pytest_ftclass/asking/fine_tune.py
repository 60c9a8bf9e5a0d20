"""Starting a fine-tuning job and following it to its end, through the official client.

What ``ftclass finetune`` does, without the printing::

    client = openai.OpenAI()                      # OPENAI_BASE_URL, OPENAI_API_KEY
    job = start_job(client, FineTuneRequest(Path("train.jsonl"), model="babbage-002"))
    final = follow_job(client, job["id"], on_progress=print)
    final["status"], final["fine_tuned_model"]

:func:`follow_job` polls the job, reads the events it has not seen (oldest
first) and calls ``on_progress`` with a :class:`JobProgress`: the status, the
latest step metrics (``metrics`` events) and the messages.  It returns the
job (as the API describes it) once it is ``succeeded``, ``failed`` or
``cancelled``.  Nothing is recorded: this is a live action.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_ftclass.recording.job_traffic import FINAL_JOB_STATUSES

__all__ = ["FineTuneRequest", "JobProgress", "follow_job", "start_job"]

#: Seconds between two polls: the first, and the most it grows to.
FIRST_POLL = 0.25
MAX_POLL = 5.0
#: Events read per page (newest first), and pages read per poll at most: beyond them, older
#: unseen events are skipped (the latest metrics are what the progress line shows).
EVENTS_PER_PAGE = 100
PAGES_PER_POLL = 20


@dataclass(frozen=True)
class FineTuneRequest:
    """The files and settings of a job: what ``ftclass finetune`` is given."""

    train: Path
    model: str
    valid: Path | None = None
    suffix: str | None = None
    n_epochs: int | None = None
    batch_size: int | None = None
    learning_rate_multiplier: float | None = None
    seed: int | None = None

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters given (the API chooses the others).

        >>> FineTuneRequest(Path("t.jsonl"), "babbage-002", n_epochs=2).hyperparameters()
        {'n_epochs': 2}
        """
        given = {
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }
        return {name: value for name, value in given.items() if value is not None}


@dataclass
class JobProgress:
    """Where a job is: its status, its latest step metrics and the messages since the last call."""

    job_id: str
    status: str
    step: int | None = None
    total_steps: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line: the status and the latest metrics.

        >>> JobProgress("ftjob-1", "running", 12, 300, {"train_loss": 0.41234}).line()
        'ftjob-1 running: step 12/300 train_loss 0.4123'
        """
        text = f"{self.job_id} {self.status}"
        if self.step is not None:
            total = f"/{self.total_steps}" if self.total_steps else ""
            text += f": step {self.step}{total}"
            text += "".join(f" {name} {value:.4g}" for name, value in self.metrics.items())
        return text


def start_job(client: Any, request: FineTuneRequest) -> dict[str, Any]:
    """Upload the files and create the job; the job as the API describes it."""
    training_file = _upload(client, request.train)
    validation_file = _upload(client, request.valid) if request.valid is not None else None
    arguments: dict[str, Any] = {"training_file": training_file, "model": request.model}
    if validation_file is not None:
        arguments["validation_file"] = validation_file
    if request.suffix is not None:
        arguments["suffix"] = request.suffix
    if request.hyperparameters():
        arguments["hyperparameters"] = request.hyperparameters()
    if request.seed is not None:
        arguments["seed"] = request.seed
    return dict(client.fine_tuning.jobs.create(**arguments).to_dict())


def _upload(client: Any, path: Path) -> str:
    with path.open("rb") as handle:
        return str(client.files.create(file=(path.name, handle.read()), purpose="fine-tune").id)


_METRICS = (
    ("train_loss", "train_loss"),
    ("train_mean_token_accuracy", "train_accuracy"),
    ("valid_loss", "valid_loss"),
    ("valid_mean_token_accuracy", "valid_accuracy"),
)


def follow_job(
    client: Any,
    job_id: str,
    *,
    on_progress: Callable[[JobProgress], None],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll ``job_id`` until it ends, reporting progress; the final job."""
    seen: set[str] = set()
    progress = JobProgress(job_id, "")
    interval = FIRST_POLL
    while True:
        job = dict(client.fine_tuning.jobs.retrieve(job_id).to_dict())
        progress.status = str(job.get("status", ""))
        for event in _new_events(client, job_id, seen):
            _apply(progress, event)
        on_progress(progress)
        progress.messages = []
        if progress.status in FINAL_JOB_STATUSES:
            return job
        sleep(interval)
        interval = min(interval * 1.5, MAX_POLL)


def _new_events(client: Any, job_id: str, seen: set[str]) -> list[dict[str, Any]]:
    """The events not seen yet, oldest first (pages back to the last one seen)."""
    fresh: list[dict[str, Any]] = []
    after: dict[str, str] = {}
    for _ in range(PAGES_PER_POLL):
        page = client.fine_tuning.jobs.list_events(job_id, limit=EVENTS_PER_PAGE, **after)
        for event in page.data:
            if event.id in seen:
                seen.update(event["id"] for event in fresh)
                return fresh[::-1]
            fresh.append(dict(event.to_dict()))
        if not page.has_more or not page.data:
            break
        after = {"after": page.data[-1].id}
    seen.update(event["id"] for event in fresh)
    return fresh[::-1]


def _apply(progress: JobProgress, event: dict[str, Any]) -> None:
    data = event.get("data") or {}
    if event.get("type") == "metrics" and isinstance(data, dict) and "step" in data:
        progress.step = int(data["step"])
        if data.get("total_steps"):
            progress.total_steps = int(data["total_steps"])
        # validation metrics come every few steps: the latest measured ones stay shown
        progress.metrics.update(
            {name: float(data[key]) for key, name in _METRICS if data.get(key) is not None}
        )
        return
    message = event.get("message")
    if message:
        progress.messages.append(str(message))
