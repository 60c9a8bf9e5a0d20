"""Azure OpenAI through ``openai.AsyncAzureOpenAI``: the plugin against the reference
model's Azure routes over real HTTP, recorded, then replayed with the server gone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from pytest_ftclass.asking.clients import DEFAULT_AZURE_API_VERSION
from pytest_ftclass.options import Settings
from pytest_ftclass.recording.names import cassette_path
from pytest_ftclass.running.credentials import client_options
from tests.helpers import SEPARATOR, read_report, validation_lines, write_jsonl

AZURE_KEY = "azure-canary-5e1f0c"
DEPLOYMENT = "my-deploy"
COMPLETIONS_MODEL = "ft:babbage-002:acme::abc123"
CHAT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::xyz789"


@pytest.fixture
def keyed_server(classifier: Any) -> Iterator[Any]:
    """The reference model that wants ``AZURE_KEY``, as ``api-key`` or ``Bearer``."""
    from pytest_ftclass.reference import ReferenceServer

    with ReferenceServer(lambda _: classifier, api_key=AZURE_KEY) as server:
        yield server


def root_of(server: Any) -> str:
    return server.base_url.removesuffix("/v1")


def chat_lines() -> list[dict[str, object]]:
    return [
        {
            "id": line["id"],
            "messages": [
                {"role": "user", "content": str(line["prompt"]).removesuffix(SEPARATOR)},
                {"role": "assistant", "content": str(line["completion"]).strip()},
            ],
        }
        for line in validation_lines()
    ]


@pytest.mark.parametrize(
    ("model", "lines", "route"),
    [
        (COMPLETIONS_MODEL, validation_lines, "completions"),
        (CHAT_MODEL, chat_lines, "chat/completions"),
    ],
    ids=["completions", "chat"],
)
def test_azure_deployment_recorded_then_replayed(
    suite: pytest.Pytester,
    keyed_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    lines: Any,
    route: str,
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    write_jsonl(suite.path / "valid.cases.jsonl", lines())
    args = [f"--ft-model={model}", f"--ft-azure-deployment={DEPLOYMENT}"]
    suite.runpytest(
        *args, f"--ft-base-url={root_of(keyed_server)}", "--ft-record-mode=once"
    ).assert_outcomes(passed=12)
    requests = keyed_server.requests
    assert requests
    assert {(r.method, r.path, r.model, r.status) for r in requests} == {
        ("POST", f"/openai/deployments/{DEPLOYMENT}/{route}", DEPLOYMENT, 200)
    }

    cassette = cassette_path(suite.path / "cassettes", "valid.cases.jsonl", model)
    text = cassette.read_text(encoding="utf-8")
    assert AZURE_KEY not in text
    for interaction in json.loads(text)["interactions"]:
        request = interaction["request"]
        assert not {name.lower() for name in request["headers"]} & {"api-key", "authorization"}
        assert f"/openai/deployments/{DEPLOYMENT}/{route}?api-version=" in request["uri"]
        assert json.loads(request["body"])["model"] == DEPLOYMENT

    keyed_server.stop()
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    replayed = suite.runpytest(*args)  # no key, no endpoint, no server
    replayed.assert_outcomes(passed=12)
    report = read_report(suite)
    assert {c["model"] for c in report["cases"]} == {model}


def test_wrong_azure_key_is_an_error(
    suite: pytest.Pytester, keyed_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "not-the-key")
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines(per_class=1))
    result = suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-azure-deployment={DEPLOYMENT}",
        f"--ft-base-url={root_of(keyed_server)}",
        "--ft-record-mode=once",
    )
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*HTTP 401 invalid_api_key*"])


def test_server_takes_the_key_as_api_key_or_bearer(keyed_server: Any) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=root_of(keyed_server),
        azure_deployment=DEPLOYMENT,
        api_version=DEFAULT_AZURE_API_VERSION,
        api_key=AZURE_KEY,
        max_retries=0,
    )
    reply = azure.completions.create(model="ignored", prompt=["goal match"], max_tokens=1)
    assert reply.choices[0].text == " sport"
    plain = openai.OpenAI(base_url=keyed_server.base_url, api_key=AZURE_KEY, max_retries=0)
    plain.completions.create(model="m", prompt=["goal match"], max_tokens=1)
    wrong = openai.OpenAI(base_url=keyed_server.base_url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.completions.create(model="m", prompt=["goal match"], max_tokens=1)
    assert [r.path for r in keyed_server.requests] == [
        f"/openai/deployments/{DEPLOYMENT}/completions",
        "/v1/completions",
        "/v1/completions",
    ]


def test_unknown_azure_path_is_a_404(keyed_server: Any) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=root_of(keyed_server),
        api_version=DEFAULT_AZURE_API_VERSION,
        api_key=AZURE_KEY,
        max_retries=0,
    )
    with pytest.raises(openai.NotFoundError):
        azure.embeddings.create(model=DEPLOYMENT, input="goal")


# -- client options -----------------------------------------------------------------


def no_local(model: str) -> str:  # the local model is never asked here
    raise AssertionError(f"{model} is asked of Azure, not of the local reference model")


def azure_settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(azure_deployment=DEPLOYMENT, cassette_dir=tmp_path, rootdir=tmp_path, **changes)


def test_client_options_for_azure(tmp_path: Path) -> None:
    settings = azure_settings(
        tmp_path, record_mode="once", base_url="https://acme.openai.azure.com"
    )
    environ = {"AZURE_OPENAI_API_KEY": "azure", "OPENAI_API_KEY": "openai"}
    options = client_options("local", settings, environ, no_local)
    assert (options.api_key, options.base_url) == ("azure", "https://acme.openai.azure.com")
    assert (options.azure_deployment, options.azure_api_version) == (DEPLOYMENT, "2024-10-21")
    fallback = client_options("m", settings, {"OPENAI_API_KEY": "openai"}, no_local)
    assert fallback.api_key == "openai"


def test_azure_endpoint_from_the_environment(tmp_path: Path) -> None:
    settings = azure_settings(tmp_path, record_mode="once", azure_api_version="2025-01-01")
    environ = {"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "https://x.example"}
    options = client_options("m", settings, environ, no_local)
    assert (options.base_url, options.azure_api_version) == ("https://x.example", "2025-01-01")


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"AZURE_OPENAI_API_KEY": "k"}, "--ft-base-url"),
        ({"AZURE_OPENAI_ENDPOINT": "https://x.example"}, "AZURE_OPENAI_API_KEY"),
    ],
)
def test_recording_from_azure_needs_endpoint_and_key(
    tmp_path: Path, environ: dict[str, str], problem: str
) -> None:
    settings = azure_settings(tmp_path, record_mode="once")
    with pytest.raises(RuntimeError, match=problem):
        client_options("m", settings, environ, no_local)


def test_replaying_azure_needs_neither(tmp_path: Path) -> None:
    options = client_options("m", azure_settings(tmp_path), {}, no_local)
    assert options.api_key and options.base_url
    assert options.max_retries == 0
