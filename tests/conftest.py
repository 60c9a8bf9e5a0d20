"""Shared fixtures: a small labelled data set and the local reference model serving it.

The reference model is trained on synthetic sentences whose class is given by
their vocabulary, so which cases it gets right is known by construction: a case
written with sport words but labelled ``tech`` is a misprediction.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

# Import the heavy modules once, here: pytester's in-process runs forget every
# module first imported inside them, and would import (and rewrite) them again.
import hypothesis  # noqa: F401
import jinja2  # noqa: F401
import openai
import pandas  # noqa: F401
import pytest
import sklearn.feature_extraction.text
import sklearn.linear_model
import sklearn.metrics  # noqa: F401
import vcr  # noqa: F401

import pytest_ftclass.reference
import pytest_ftclass.report
import pytest_ftclass.running.evaluation
import pytest_ftclass.running.session  # noqa: F401

pytest_plugins = ["pytester"]

SEPARATOR = "\n\n###\n\n"
VOCABULARY = {
    "sport": ["goal", "match", "striker", "league", "coach", "stadium", "penalty", "referee"],
    "tech": ["software", "chip", "laptop", "network", "browser", "server", "robot", "app"],
    "politics": ["minister", "vote", "election", "party", "senate", "policy", "campaign", "law"],
}
FILLER = ["the", "a", "today", "new", "big", "after", "with", "over"]


def sentence(label: str, rng: random.Random, words: int = 8) -> str:
    chosen = [rng.choice(VOCABULARY[label]) for _ in range(words // 2)]
    chosen += [rng.choice(FILLER) for _ in range(words - len(chosen))]
    rng.shuffle(chosen)
    return " ".join(chosen)


def training_lines(per_class: int = 30, seed: int = 1) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [
        {"prompt": sentence(label, rng) + SEPARATOR, "completion": " " + label}
        for _ in range(per_class)
        for label in VOCABULARY
    ]


def validation_lines(per_class: int = 4, seed: int = 2) -> list[dict[str, object]]:
    """Cases the reference model answers right: ``<label>-<n>`` ids."""
    rng = random.Random(seed)
    lines: list[dict[str, object]] = []
    for label in VOCABULARY:
        for n in range(per_class):
            text = " ".join(rng.choice(VOCABULARY[label]) for _ in range(6))
            lines.append(
                {"id": f"{label}-{n}", "prompt": text + SEPARATOR, "completion": " " + label}
            )
    return lines


def write_jsonl(path: Path, lines: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


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


@pytest.fixture(scope="session", autouse=True)
def warm_http_stack(classifier) -> None:
    """Make the SDK's first requests here, outside any pytester run.

    The HTTP stack imports modules lazily on its first request, connection error
    or timeout.  Imported during an in-process pytester run they would be dropped
    with it and imported again later as new classes, and the SDK would no longer
    recognise the errors it retries on.
    """
    from pytest_ftclass.asking.clients import ClientOptions
    from pytest_ftclass.asking.predict import predict
    from pytest_ftclass.asking.shapes import RequestShape
    from pytest_ftclass.cases.sources import load_cases
    from pytest_ftclass.reference import ReferenceServer

    cases = load_cases([{"input": "goal match", "label": "sport"}])
    with ReferenceServer(lambda model: classifier) as server:
        for base_url in (server.base_url, "http://127.0.0.1:9/v1"):  # an answer, a refusal
            for endpoint in ("completions", "chat"):
                predict(
                    cases,
                    RequestShape(endpoint, "ft:babbage-002:warm::up", ("sport",)),
                    ClientOptions(api_key="sk-warm", base_url=base_url, max_retries=0),
                )
        openai.OpenAI(base_url=server.base_url, api_key="sk-warm", max_retries=0).models.list()
