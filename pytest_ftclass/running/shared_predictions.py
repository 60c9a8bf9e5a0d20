"""Predictions fetched once per run, however many pytest-xdist workers need them.

Every worker collects (and deselects) the same items, so every worker knows the
same groups of cases.  The first worker to need a group takes the group's lock
file, asks the model (recording the group's cassette) and writes the
predictions beside the lock; the others wait for the lock and read them.  So
each request is sent once and each cassette written by one process.

The directory is created by the controlling process and handed to the workers
in ``workerinput``; without xdist nothing here is used.

>>> import tempfile
>>> shared = SharedPredictions(Path(tempfile.mkdtemp()))
>>> calls = []
>>> def fetch():
...     calls.append(1)
...     return {"c1": Prediction(label="sport")}
>>> shared.fetch_once("v.jsonl @ local", fetch)["c1"].label
'sport'
>>> shared.fetch_once("v.jsonl @ local", fetch)["c1"].label, len(calls)
('sport', 1)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_ftclass.recording.atomic import atomic_write_text
from pytest_ftclass.results import Prediction

if TYPE_CHECKING:
    from pytest_ftclass.recording.redaction import Redactor


@contextlib.contextmanager
def file_lock(path: Path, poll: float = 0.05) -> Iterator[None]:
    """An exclusive lock between processes on ``path`` (flock, or a lock file elsewhere)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        while True:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                break
            except FileExistsError:
                time.sleep(poll)
        try:
            yield
        finally:
            os.close(fd)
            os.unlink(path)
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class SharedPredictions:
    """A directory where one process fetches a group's predictions and the others read them."""

    def __init__(self, directory: Path, redactor: Redactor | None = None) -> None:
        self.directory = directory
        #: Replaces the run's secret values in what is written (the predictions are redacted).
        self.redactor = redactor

    def _paths(self, key: str) -> tuple[Path, Path]:
        name = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
        return self.directory / f"{name}.lock", self.directory / f"{name}.json"

    def fetch_once(
        self, key: str, fetch: Callable[[], dict[str, Prediction]]
    ) -> dict[str, Prediction]:
        lock, data = self._paths(key)
        with file_lock(lock):
            if data.exists():
                stored = json.loads(data.read_text(encoding="utf-8"))
                return {case_id: Prediction.from_dict(p) for case_id, p in stored.items()}
            predictions = fetch()
            payload = {case_id: p.to_dict() for case_id, p in predictions.items()}
            text = json.dumps(payload, ensure_ascii=False)
            if self.redactor is not None:
                text = self.redactor.values(text)
            atomic_write_text(data, text)
            return predictions
