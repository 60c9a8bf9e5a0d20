"""``--ft-job``: the run's fine-tuning job, read before anything is collected or asked.

The controlling process reads the job (recorded into, or replayed from,
``<ft_cassette_dir>/fine-tuning-jobs/<job>-<digest>.json``) and hands it to
pytest-xdist workers in their ``workerinput``, so it is read once.  The model
under test becomes the job's ``fine_tuned_model``; with ``--ft-checkpoints``
every checkpoint's model is asked the same cases.  Anything that keeps the job
from being evaluated is a :class:`JobUnusable` raised before the first case is
asked::

    job = job_for_run(settings, os.environ, redactor, workerinput={})
    settings = with_job_model(settings, job)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest

from pytest_ftclass.asking.jobs import JobError, TrainingJob, fetch_job
from pytest_ftclass.options import SETTINGS, Settings
from pytest_ftclass.recording.names import job_cassette_path
from pytest_ftclass.recording.recorder import Recorder
from pytest_ftclass.recording.redaction import Redactor
from pytest_ftclass.running.credentials import client_options

__all__ = [
    "JOB_INPUT",
    "JobUnusable",
    "checkpoint_models",
    "job_and_settings",
    "job_for_run",
    "with_job_model",
]

#: The ``workerinput`` entry that carries the job to pytest-xdist workers.
JOB_INPUT = "ftclass_job"


class JobUnusable(Exception):
    """The run's ``--ft-job`` cannot be evaluated; the message names the job and why."""


def job_for_run(
    settings: Settings,
    environ: Mapping[str, str],
    redactor: Redactor,
    workerinput: Mapping[str, Any] | None = None,
) -> TrainingJob:
    """The job of ``settings.job``: from the controller (a worker), else read through its cassette.

    Raises :class:`JobUnusable` when it cannot be read, has not succeeded,
    or (with ``--ft-checkpoints``) lists no checkpoint.
    """
    job_id = settings.job
    assert job_id, "job_for_run needs --ft-job"
    if workerinput and workerinput.get(JOB_INPUT) is not None:
        return TrainingJob.from_dict(workerinput[JOB_INPUT])
    path = job_cassette_path(settings.cassette_dir, job_id)
    recorder = Recorder(settings.cassette_dir, settings.record_mode, redactor=redactor)
    try:
        options = client_options(job_id, settings, environ, _no_local_model)
        job = fetch_job(job_id, options, recorder, live=settings.live, path=path)
    except (JobError, RuntimeError) as err:
        raise JobUnusable(f"--ft-job {job_id}: {err}") from None
    # what a server wrote (an error message quoting the key, say) reaches no report
    job = TrainingJob.from_dict(redactor.data(job.to_dict()))
    problem = job.problem()
    if problem is not None:
        raise JobUnusable(f"--ft-job {job_id}: {problem}; no case was asked")
    if settings.checkpoints and not job.checkpoints:
        raise JobUnusable(
            f"--ft-checkpoints: job {job_id} lists no checkpoints; run without --ft-checkpoints"
        )
    return job


def job_and_settings(config: pytest.Config, settings: Settings) -> tuple[TrainingJob, Settings]:
    """The run's job and its settings (the job's model under test); a usage error if unusable."""
    import os

    redactor = Redactor.for_run(environ=os.environ, base_url=settings.base_url)
    workerinput = getattr(config, "workerinput", None)
    try:
        job = job_for_run(settings, os.environ, redactor, workerinput)
        return job, with_job_model(settings, job)
    except JobUnusable as err:
        raise pytest.UsageError(f"pytest-ftclass: {redactor.text(str(err))}") from None


def _no_local_model(model: str) -> str:
    raise RuntimeError(f"{model} is a fine-tuning job, not a local model")


def with_job_model(settings: Settings, job: TrainingJob) -> Settings:
    """``settings`` with the job's fine-tuned model as the model under test.

    ``ft_model`` left at its default gives way; set to another model it is a
    :class:`JobUnusable` (the run would not say which model it tests).
    """
    model = job.fine_tuned_model
    assert model is not None, "a job that succeeded names its model"
    default = SETTINGS["ft_model"].default
    if settings.model not in (default, model):
        raise JobUnusable(
            f"--ft-model {settings.model} and --ft-job {job.id} (model {model}) name two "
            "models under test: give one of them"
        )
    return dataclasses.replace(settings, model=model)


def checkpoint_models(settings: Settings, job: TrainingJob | None) -> list[str]:
    """The checkpoint models asked with ``--ft-checkpoints``, oldest first; else none."""
    if job is None or not settings.checkpoints:
        return []
    return [c.model for c in sorted(job.checkpoints, key=lambda c: c.step)]
