"""Definitive API errors: once a model refuses a run, the run asks it nothing more.

A 401 (the key is wrong), a 403 (no access) or a 404 ``model_not_found``
(``DeploymentNotFound`` on Azure) will not change on the next request.  After
one, every later request for that model in the run is not sent: it fails at
once with the same message (:class:`ModelRefused`).  Until a model has given
one answer that is not such a refusal, at most ``1 + max_retries`` of its
requests are in flight (:class:`pytest_ftclass.asking.pacing.Pacer`), so a wrong key
costs no more requests than one failing request may.  429, 5xx and timeouts
are not definitive: the SDK's retries and the pacing handle them.

>>> refusals = Refusals()
>>> access = refusals.of("ft:gpt-4o-mini-2024-07-18:acme::xyz")
>>> access.check()  # nothing refused yet
>>> access.refuse("HTTP 401 invalid_api_key: Incorrect API key provided: REDACTED")
>>> try:
...     refusals.of("ft:gpt-4o-mini-2024-07-18:acme::xyz").check()
... except ModelRefused as refused:
...     print(refused)
HTTP 401 invalid_api_key: Incorrect API key provided: REDACTED

Under pytest-xdist the refusal is also written to the directory the workers
share (``Refusals(directory)``), so another worker does not ask either.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_ftclass.asking.errors import ModelRefused, error_detail, error_kind

__all__ = ["DEFINITIVE_CODES", "ModelAccess", "ModelRefused", "Refusals", "is_definitive"]

#: Error codes that make a 404 definitive: the model (or Azure deployment) does not exist.
DEFINITIVE_CODES = frozenset({"model_not_found", "DeploymentNotFound"})


def error_code(error: Any) -> str | None:
    """The ``code`` (else ``type``) of an ``openai.APIStatusError``'s JSON error body."""
    detail = error_detail(getattr(error, "body", None))
    return error_kind(detail) if detail else getattr(error, "code", None)


def is_definitive(error: BaseException) -> bool:
    """Whether an error from the openai client will come back for every request of the model."""
    import openai

    if not isinstance(error, openai.APIStatusError):
        return False
    if error.status_code in (401, 403):
        return True
    return error.status_code == 404 and error_code(error) in DEFINITIVE_CODES


class ModelAccess:
    """Whether one model may still be asked in this run; shared by its requests across threads."""

    def __init__(self, on_refuse: Callable[[str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._on_refuse = on_refuse
        #: The definitive error's message, once there was one.
        self.refused: str | None = None
        #: Whether the model gave an answer other than a refusal (then requests go at full pace).
        self.answered = False

    def check(self) -> None:
        """Raise :class:`ModelRefused` if the model refused the run."""
        if self.refused is not None:
            raise ModelRefused(self.refused)

    def refuse(self, message: str) -> None:
        """The model refused the run with ``message``: nothing more is sent to it."""
        with self._lock:
            if self.refused is not None:
                return
            self.refused = message
        if self._on_refuse is not None:
            self._on_refuse(message)


class Refusals:
    """The :class:`ModelAccess` of every model of a run (and of the other xdist workers')."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._models: dict[str, ModelAccess] = {}
        self._lock = threading.Lock()

    def of(self, model: str) -> ModelAccess:
        """The access of ``model``, refused if another worker saw it refused."""
        with self._lock:
            access = self._models.get(model)
            if access is None:
                access = ModelAccess(on_refuse=lambda message: self._share(model, message))
                self._models[model] = access
        if access.refused is None and self.directory is not None:
            path = self._path(model)
            if path.is_file():
                access.refused = path.read_text(encoding="utf-8")
        return access

    def _path(self, model: str) -> Path:
        assert self.directory is not None
        digest = hashlib.sha256(model.encode("utf-8")).hexdigest()[:24]
        return self.directory / f"refused-{digest}.txt"

    def _share(self, model: str, message: str) -> None:
        if self.directory is None:
            return
        from pytest_ftclass.recording.atomic import atomic_write_text

        atomic_write_text(self._path(model), message)
