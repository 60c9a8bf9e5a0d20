"""The local reference models of a run: trained when first asked live, served in-process.

``local`` is trained on ``ft_reference_train``, ``local:PATH`` on PATH (from
the rootdir), and ``@FRACTION`` keeps that share of the file.  The first live
request for one trains it and starts one :class:`~pytest_ftclass.reference.ReferenceServer`
on 127.0.0.1 for all of them; :meth:`LocalModels.close` stops it.

>>> from pathlib import Path
>>> LocalModels(None, Path(".")).training_file("local")
Traceback (most recent call last):
...
KeyError: "model 'local' needs a training file: set ft_reference_train"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_ftclass.asking.endpoints import is_local_model, parse_local_model


class LocalModels:
    """The run's ``local…`` models and the one server that answers for them."""

    def __init__(self, reference_train: Path | None, rootdir: Path) -> None:
        self.reference_train = reference_train
        self.rootdir = rootdir
        self._classifiers: dict[str, Any] = {}
        self._server: Any = None

    def training_file(self, model: str) -> tuple[Path, float]:
        """Training file and share of it for a local model id; ``KeyError`` says why not."""
        try:
            path, fraction = parse_local_model(model)
        except ValueError as err:
            raise KeyError(str(err)) from None
        if path is None:
            if self.reference_train is None:
                raise KeyError(f"model {model!r} needs a training file: set ft_reference_train")
            return self.reference_train, fraction
        return (self.rootdir / path).resolve(), fraction

    def classifier(self, model: str) -> Any:
        """The trained classifier of ``model`` (trained on first use)."""
        from pytest_ftclass.reference import ReferenceClassifier

        if not is_local_model(model):
            raise KeyError(model)
        if model not in self._classifiers:
            path, fraction = self.training_file(model)
            if not path.is_file():
                raise KeyError(f"training file {path} of model {model!r} does not exist")
            self._classifiers[model] = ReferenceClassifier.from_file(path, fraction=fraction)
        return self._classifiers[model]

    def base_url(self, model: str) -> str:
        """Where ``model`` answers: trains it and starts the server when needed."""
        self.classifier(model)
        if self._server is None:
            from pytest_ftclass.reference import ReferenceServer

            self._server = ReferenceServer(self.classifier).start()
        return str(self._server.base_url)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
