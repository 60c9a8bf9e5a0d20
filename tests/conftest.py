"""Fixtures for every test: the training file and the local reference model serving it.

Cheap to load: heavy modules are imported inside the fixtures that need them
(see ``tests/e2e/conftest.py`` for the end-to-end tests' warm-up).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import training_lines, write_jsonl

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def training_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("train") / "train.jsonl", training_lines())


@pytest.fixture(scope="session")
def classifier(training_file: Path):
    from pytest_ftclass.reference import ReferenceClassifier

    return ReferenceClassifier.from_file(training_file)


@pytest.fixture
def reference_server(classifier) -> Iterator[object]:
    """The reference model on 127.0.0.1 answering for any model id (a fresh request log)."""
    from pytest_ftclass.reference import ReferenceServer

    with ReferenceServer(lambda model: classifier) as server:
        yield server


@pytest.fixture
def suite(pytester: pytest.Pytester, training_file: Path) -> pytest.Pytester:
    """A pytester directory with an ini pointing the local model at the training file."""
    pytester.makeini(
        f"""
        [pytest]
        ft_reference_train = {training_file.as_posix()}
        """
    )
    return pytester
