"""The end-to-end tests: pytest runs in-process (pytester) against servers on 127.0.0.1.

Heavy modules are imported once, here: pytester's in-process runs forget every
module first imported inside them, and would import (and rewrite) them again.
The unit tests in ``tests/unit`` load none of this.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterator
from typing import Any

import hypothesis  # noqa: F401
import jinja2  # noqa: F401
import openai
import pandas  # noqa: F401
import pytest
import tiktoken  # noqa: F401
import vcr
import vcr.stubs.httpx_stubs  # noqa: F401

import pytest_ftclass

for module in pkgutil.walk_packages(pytest_ftclass.__path__, "pytest_ftclass."):
    importlib.import_module(module.name)  # all of it: what the plugin imports lazily too


@pytest.fixture(scope="session", autouse=True)
def suites_without_hypothesis() -> Iterator[None]:
    """The suites these tests run load no Hypothesis plugin (``PYTEST_ADDOPTS``).

    None of them uses it, and it costs every pytest process they start (each
    subprocess, each pytest-xdist worker) about 0.15 s of CPU to import.
    """
    with pytest.MonkeyPatch.context() as patch:
        addopts = os.environ.get("PYTEST_ADDOPTS", "")
        patch.setenv("PYTEST_ADDOPTS", f"{addopts} -p no:hypothesispytest".strip())
        yield


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


@pytest.fixture(scope="session")
def models() -> dict[str, Any]:
    """``GOOD`` and ``BAD`` (see :mod:`tests.helpers`): answers known by construction."""
    from tests.helpers import good_and_bad

    return good_and_bad()


@pytest.fixture
def server(models: dict[str, Any]) -> Iterator[Any]:
    """The reference server answering for ``GOOD`` and ``BAD`` (a fresh request log)."""
    from pytest_ftclass.reference import ReferenceServer

    with ReferenceServer(models) as running:
        yield running
