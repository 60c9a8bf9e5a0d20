"""Hostile servers: no secret reaches disk or the terminal, and a refusal stops the asking.

A proxy (``tests/faults.py``) in front of the reference model echoes the
request's credentials in a response header, in a body field and in the answer
itself, and answers one model's requests with a 401 that quotes the full key.
The base URL carries the key as userinfo and as a query parameter.  After
runs in ``once``, ``new_episodes`` and ``all`` modes under pytest-xdist, on
Completions, Chat, Azure and the Batch API, the canary key (and its tail
without ``sk-``) is found in no file of the run directory (cassettes, reports,
JUnit XML, ``.ftclass-tokens``, a copy of the xdist shared directory taken
before it is removed) and in no line of the terminal.

After a 401, 403 or 404 ``model_not_found``, no further request is sent for
that model: its remaining cases error with the same message.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults import FaultProxy
from tests.helpers import SEPARATOR, read_report, validation_lines, write_jsonl

pytest.importorskip("xdist")

CANARY = "sk-canary-7c41d09be2f35a68"
CANARY_TAIL = CANARY.removeprefix("sk-")
AZURE_CANARY = "azure-canary-5e0b9d2c71f4"
CANARIES = (
    CANARY,
    CANARY_TAIL,
    AZURE_CANARY,
    base64.b64encode(f"user:{CANARY}".encode()).decode(),  # the userinfo as Basic auth
)
COMPLETIONS_MODEL = "ft:babbage-002:acme::abc123"
CHAT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::xyz789"
DENIED_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::denied"
DENIED_WORD = "zebracorn"  # only the denied model's requests carry it
DEPLOYMENT = "my-deploy"

SHARED_COPY = """
import shutil
import uuid


def pytest_sessionfinish(session):
    # the controller removes the xdist shared directory when it ends: keep a copy to grep
    hooks = session.config.pluginmanager.get_plugin("ftclass-xdist")
    if hooks is not None and hooks.directory:
        target = session.config.rootpath / "shared-copies" / uuid.uuid4().hex
        shutil.copytree(hooks.directory, target)
"""

USER_TESTS = """
import os


def test_that_shows_the_key_it_compares():
    key = os.environ["OPENAI_API_KEY"]
    print("the key in use:", key)
    assert key == "a different key"
"""


def chat_lines(n_per_class: int, *, word: str = "") -> list[dict[str, object]]:
    return [
        {
            "id": line["id"],
            "messages": [
                {"role": "user", "content": f"{word} {line['prompt']}".removesuffix(SEPARATOR)},
                {"role": "assistant", "content": str(line["completion"]).strip()},
            ],
        }
        for line in validation_lines(per_class=n_per_class)
    ]


def write_suite(root: Path, size: int) -> None:
    """Completions cases (``--ft-model``), chat cases, and chat cases of a denied model."""
    write_jsonl(root / "valid.cases.jsonl", validation_lines(per_class=size))
    write_jsonl(root / "data" / "chat.jsonl", chat_lines(size))
    write_jsonl(root / "data" / "denied.jsonl", chat_lines(1, word=DENIED_WORD))
    for name, model, path in (
        ("test_chat.py", CHAT_MODEL, "data/chat.jsonl"),
        ("test_denied.py", DENIED_MODEL, "data/denied.jsonl"),
    ):
        (root / name).write_text(
            "import pytest\n\n"
            f"@pytest.mark.ft_cases({path!r}, model={model!r})\n"
            "def test_case(ft_case, ft_prediction):\n"
            "    assert ft_prediction.label is not None\n",
            encoding="utf-8",
        )
    (root / "test_user.py").write_text(USER_TESTS, encoding="utf-8")
    (root / "conftest.py").write_text(SHARED_COPY, encoding="utf-8")


@pytest.fixture
def echoing_proxy(reference_server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(reference_server.base_url, lifetime_s=300) as proxy:
        proxy.add("echo_unauthorized", match=DENIED_WORD)
        proxy.add("echo_in_answer", times=1)
        proxy.add("echo_credentials")
        yield proxy


def assert_no_canary(root: Path, terminal: str) -> None:
    for canary in CANARIES:
        assert canary not in terminal, canary
    files = [path for path in root.rglob("*") if path.is_file()]
    for path in files:
        data = path.read_bytes()
        for canary in CANARIES:
            assert canary.encode() not in data, (canary, path.relative_to(root))


@pytest.mark.parametrize("api", ["openai", "azure", "batch"])
def test_no_canary_anywhere_after_hostile_runs_under_xdist(
    suite: pytest.Pytester,
    echoing_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    api: str,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_CANARY)
    temporary = suite.path / "tmp"  # where the xdist shared directory is made
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    root = echoing_proxy.base_url.removesuffix("/v1")
    host = root.removeprefix("http://")
    base_url = f"http://user:{CANARY}@{host}" + ("" if api == "azure" else "/v1")
    args = [
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={base_url}?api_key={CANARY}",
        "--ft-batch-size=4",
        "--junitxml=junit.xml",
        "-n",
        "2",
        "-rA",
    ]
    if api == "azure":
        args.append(f"--ft-azure-deployment={DEPLOYMENT}")
    if api == "batch":
        args.append("--ft-batch-api")

    for mode, size in (("once", 2), ("new_episodes", 3), ("all", 3)):
        write_suite(suite.path, size)
        echoing_proxy.clear()
        echoing_proxy.add("echo_unauthorized", match=DENIED_WORD)
        echoing_proxy.add("echo_in_answer", times=1)
        echoing_proxy.add("echo_credentials")
        result = suite.runpytest(*args, f"--ft-record-mode={mode}")
        terminal = "\n".join(result.outlines + result.errlines)
        outcomes = result.parseoutcomes()
        assert outcomes.get("errors", outcomes.get("error")) == 3, terminal[-3000:]  # denied
        assert outcomes["failed"] == 1  # the user's own test that shows the key
        assert echoing_proxy.log, f"{mode}: nothing was asked"
        assert any(r.fault == "echo_unauthorized" for r in echoing_proxy.log)
        assert_no_canary(suite.path, terminal)

    # what was written shows that the secrets were there, and were replaced
    report = read_report(suite)
    denied = [c for c in report["cases"] if c["model"] == DENIED_MODEL]
    assert denied and all("REDACTED" in c["error"] for c in denied), denied
    assert report["metadata"]["base_url"] == base_url.replace(f"user:{CANARY}@", "")
    junit = (suite.path / "junit.xml").read_text(encoding="utf-8")
    assert "Incorrect API key provided: REDACTED" in junit
    cassettes = list((suite.path / "cassettes").rglob("*.json"))
    assert len(cassettes) == 2  # the Completions and the chat source; nothing of the 401s
    for cassette in cassettes:
        data = json.loads(cassette.read_text(encoding="utf-8"))
        for interaction in data["interactions"]:
            assert set(interaction["response"]["headers"]) <= {"Content-Type", "content-type"}
            assert "api_key=REDACTED" in interaction["request"]["uri"]
        assert "REDACTED" in json.dumps(data["interactions"])  # the echoed credentials
    copies = list((suite.path / "shared-copies").rglob("*.json"))
    assert copies, "the xdist shared directory held nothing to check"


# -- definitive errors -----------------------------------------------------------------


def test_a_401_on_a_1000_case_chat_suite_sends_at_most_one_plus_retries_requests(
    suite: pytest.Pytester, reference_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    lines = [
        {
            "id": f"c{i}",
            "messages": [
                {"role": "user", "content": f"goal match striker {i}"},
                {"role": "assistant", "content": "sport"},
            ],
        }
        for i in range(1000)
    ]
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    with FaultProxy(reference_server.base_url, lifetime_s=120) as proxy:
        proxy.add("echo_unauthorized")
        result = suite.runpytest(
            f"--ft-model={CHAT_MODEL}",
            f"--ft-base-url={proxy.base_url}",
            "--ft-record-mode=once",
            "--ft-max-retries=2",
            "-q",
        )
        sent = len(proxy.log)
    result.assert_outcomes(errors=1000)
    assert 1 <= sent <= 1 + 2
    report = read_report(suite)
    errors = {case["error"] for case in report["cases"]}
    assert len(errors) == 1 and "HTTP 401 invalid_api_key" in errors.pop()
    assert report["tasks"][0]["metrics"]["n_errors"] == 1000


@pytest.mark.parametrize(
    ("fault", "status"), [("forbidden", "HTTP 403"), ("model_not_found", "HTTP 404")]
)
def test_a_refusal_stops_every_window_and_source_of_the_model(
    suite: pytest.Pytester, reference_server: Any, fault: str, status: str
) -> None:
    write_jsonl(suite.path / "a.cases.jsonl", validation_lines(per_class=12))  # two windows
    write_jsonl(suite.path / "b.cases.jsonl", validation_lines(per_class=2, seed=5))
    with FaultProxy(reference_server.base_url, lifetime_s=120) as proxy:
        proxy.add(fault)
        result = suite.runpytest(
            f"--ft-model={COMPLETIONS_MODEL}",
            f"--ft-base-url={proxy.base_url}",
            "--ft-record-mode=once",
            "--ft-batch-size=2",
            "--ft-concurrency=4",
            "--ft-max-retries=0",  # so the first wave is one request
        )
        sent = len(proxy.log)
    result.assert_outcomes(errors=36 + 6)
    assert sent == 1  # not one more for the second window, nor for the second source
    report = read_report(suite)
    errors = {case["error"] for case in report["cases"]}
    assert len(errors) == 1 and errors.pop().startswith(status)


def test_rate_limits_and_server_errors_are_not_definitive(
    suite: pytest.Pytester, reference_server: Any
) -> None:
    lines = validation_lines(per_class=4)  # 6 pages of 2
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    with FaultProxy(reference_server.base_url, retry_after="0", lifetime_s=120) as proxy:
        proxy.add("server_error", match=json.dumps(str(lines[0]["prompt"])))  # the first page
        proxy.add("rate_limit", times=1)
        result = suite.runpytest(
            f"--ft-model={COMPLETIONS_MODEL}",
            f"--ft-base-url={proxy.base_url}",
            "--ft-record-mode=once",
            "--ft-batch-size=2",
            "--ft-max-retries=2",
        )
        faults = proxy.faults()
    # the first page failed after its retries; every other page was still asked, and answered
    result.assert_outcomes(passed=10, errors=2)
    assert sorted(faults) == ["pass"] * 5 + ["rate_limit"] + ["server_error"] * 3


def test_an_error_body_that_is_a_bare_string_errors_its_cases_with_its_message(
    suite: pytest.Pytester, reference_server: Any
) -> None:
    lines = validation_lines(per_class=4)  # 6 pages of 2
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    with FaultProxy(reference_server.base_url, lifetime_s=120) as proxy:
        proxy.add("string_error", match=json.dumps(str(lines[0]["prompt"])))  # the first page
        result = suite.runpytest(
            f"--ft-model={COMPLETIONS_MODEL}",
            f"--ft-base-url={proxy.base_url}",
            "--ft-record-mode=once",
            "--ft-batch-size=2",
            "--ft-max-retries=0",
        )
    # not a definitive refusal: the other pages were asked and answered
    result.assert_outcomes(passed=10, errors=2)
    result.stdout.fnmatch_lines(["*HTTP 404 NotFoundError: Resource not found*"])
