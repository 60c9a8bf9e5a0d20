"""Cassettes and reports are safe to commit, and hostile names stay in their directories.

- Credential headers (``authorization``, ``api-key``, ``openai-organization``,
  ``openai-project``, ``cookie``, ``set-cookie``) are stripped from requests and
  responses in every record mode.  The fault proxy adds ``set-cookie``,
  ``openai-organization`` and ``openai-project`` to every answer, and the SDK sends
  organisation and project headers from ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``.
- A canary API key is found nowhere under the run's directory afterwards.
- Model ids and case ids with ``/``, ``..``, ``:`` or hundreds of characters never
  write outside the cassette and report directories, and every file name fits in
  255 bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.recording.recorder import Recorder
from tests.faults import SECRET_RESPONSE_HEADERS, FaultProxy
from tests.helpers import SEPARATOR, read_report, validation_lines, write_jsonl

COMPLETIONS_MODEL = "ft:babbage-002:acme::abc123"
CHAT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::xyz789"
CREDENTIAL_HEADERS = {
    "authorization",
    "api-key",
    "openai-organization",
    "openai-project",
    "cookie",
    "set-cookie",
}
CANARY_KEY = "sk-canary-7d1e0f9a2b4c"
CANARY_ORG = "org-canaryorgid0042"
CANARY_PROJECT = "proj_canaryprojectid0042"
CANARY_AZURE_KEY = "azure-canary-key-5e6f"
CANARY_COOKIE = "session=canary-cookie-0042"
CANARIES = [
    CANARY_KEY,
    CANARY_ORG,
    CANARY_PROJECT,
    CANARY_AZURE_KEY,
    CANARY_COOKIE.split("=")[1],
    *(v.split(";")[0].split("=")[-1] for v in SECRET_RESPONSE_HEADERS.values()),
]


@pytest.fixture
def proxy(reference_server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(reference_server.base_url, lifetime_s=60) as running:
        yield running


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", CANARY_ORG)
    monkeypatch.setenv("OPENAI_PROJECT_ID", CANARY_PROJECT)


def header_names(cassette: Path) -> set[str]:
    data = json.loads(cassette.read_text(encoding="utf-8"))
    names: set[str] = set()
    for interaction in data["interactions"]:
        names |= {name.lower() for name in interaction["request"]["headers"]}
        names |= {name.lower() for name in interaction["response"]["headers"]}
    return names


def assert_no_secret_anywhere(root: Path) -> None:
    cassettes = list((root / "cassettes").rglob("*.json"))
    assert cassettes, "nothing was recorded"
    for cassette in cassettes:
        assert not header_names(cassette) & CREDENTIAL_HEADERS, cassette
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for canary in CANARIES:
                assert canary.encode() not in data, (canary, path)


def chat_suite(root: Path) -> None:
    lines = [
        {
            "id": line["id"],
            "messages": [
                {"role": "user", "content": str(line["prompt"]).removesuffix(SEPARATOR)},
                {"role": "assistant", "content": str(line["completion"]).strip()},
            ],
        }
        for line in validation_lines(per_class=1)
    ]
    write_jsonl(root / "data" / "chat.jsonl", lines)
    (root / "test_chat.py").write_text(
        "import pytest\n\n"
        f"@pytest.mark.ft_cases('data/chat.jsonl', model={CHAT_MODEL!r})\n"
        "def test_chat(ft_case, ft_prediction):\n"
        "    assert ft_prediction.label == ft_case.label\n",
        encoding="utf-8",
    )


def test_no_credential_in_any_cassette_whatever_the_record_mode(
    suite: pytest.Pytester, proxy: FaultProxy, credentials: None
) -> None:
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines(per_class=2))
    chat_suite(suite.path)
    args = [f"--ft-model={COMPLETIONS_MODEL}", f"--ft-base-url={proxy.base_url}"]

    suite.runpytest(*args, "--ft-record-mode=once").assert_outcomes(passed=9)
    sent = set().union(*(record.header_names for record in proxy.log))
    assert {"authorization", "openai-organization", "openai-project"} <= sent
    assert_no_secret_anywhere(suite.path)

    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines(per_class=3))
    proxy.clear()
    result = suite.runpytest(*args, "--ft-record-mode=new_episodes", "--ft-batch-size=4")
    result.assert_outcomes(passed=12)
    assert proxy.log, "new_episodes recorded nothing new"
    assert_no_secret_anywhere(suite.path)

    proxy.clear()
    suite.runpytest(*args, "--ft-record-mode=all").assert_outcomes(passed=12)
    assert len(proxy.log) == 1 + 3  # everything asked again: 1 page of 12 + 3 chat requests
    assert_no_secret_anywhere(suite.path)


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all"])
def test_azure_key_and_cookies_are_stripped_by_the_recorder(
    tmp_path: Path, proxy: FaultProxy, mode: str
) -> None:
    import openai

    path = tmp_path / "cassette.json"
    client = openai.OpenAI(
        api_key=CANARY_KEY,
        organization=CANARY_ORG,
        project=CANARY_PROJECT,
        base_url=proxy.base_url,
        default_headers={"api-key": CANARY_AZURE_KEY, "Cookie": CANARY_COOKIE},
        max_retries=0,
    )

    def ask(words: str) -> None:
        client.completions.create(
            model=COMPLETIONS_MODEL, prompt=[words + SEPARATOR], max_tokens=1, logprobs=2
        )

    if mode != "once":  # start from a cassette that holds another request
        with Recorder(tmp_path, "once").use(path):
            ask("minister vote")
    with Recorder(tmp_path, mode).use(path):
        ask("goal match")
        ask("chip laptop")
    client.close()
    assert {"api-key", "cookie", "authorization"} <= proxy.log[0].header_names
    assert not header_names(path) & CREDENTIAL_HEADERS
    data = path.read_bytes()
    assert all(canary.encode() not in data for canary in CANARIES)


# -- hostile names ---------------------------------------------------------------------

HOSTILE_CASE_IDS = [
    "../../../../etc/passwd",
    "a/b:c",
    "..",
    "x" * 400,
    "C:\\evil\\..\\name",
    "con",
    "ends-with-slash/",
]
HOSTILE_COMPLETIONS_MODEL = "ft:babbage-002:../../../escape/" + "a" * 300 + ":../.."
HOSTILE_CHAT_MODEL = "../" * 40 + "m:" + "é" * 300


def test_hostile_model_and_case_ids_stay_inside(
    suite: pytest.Pytester, reference_server: Any
) -> None:
    lines = validation_lines(per_class=3)
    for line, case_id in zip(lines, HOSTILE_CASE_IDS, strict=False):
        line["id"] = case_id
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    chat_lines = [
        {"id": case_id, "input": "goal match striker", "label": "sport"}
        for case_id in HOSTILE_CASE_IDS
    ]
    (suite.path / "test_marked.py").write_text(
        "import pytest\n\n"
        f"@pytest.mark.ft_cases({chat_lines!r}, model={HOSTILE_CHAT_MODEL!r})\n"
        "def test_hostile(ft_case, ft_prediction):\n"
        "    assert ft_prediction.label == ft_case.label\n",
        encoding="utf-8",
    )
    outside = suite.path.parent
    before = {p.name for p in outside.iterdir()}
    inputs = {p for p in suite.path.rglob("*")}

    args = [f"--ft-model={HOSTILE_COMPLETIONS_MODEL}"]
    recorded = suite.runpytest(
        *args, f"--ft-base-url={reference_server.base_url}", "--ft-record-mode=once"
    )
    recorded.assert_outcomes(passed=9 + len(HOSTILE_CASE_IDS))
    reference_server.stop()
    suite.runpytest(*args).assert_outcomes(passed=9 + len(HOSTILE_CASE_IDS))

    assert {p.name for p in outside.iterdir()} == before, "wrote next to the run directory"
    written = [p for p in suite.path.rglob("*") if p not in inputs]
    assert written
    for path in written:
        relative = path.relative_to(suite.path)
        assert path.resolve().is_relative_to(suite.path.resolve()), path
        assert relative.parts[0] in ("cassettes", "reports", ".pytest_cache", "__pycache__"), (
            relative
        )
        assert all(len(part.encode("utf-8")) <= 255 for part in relative.parts), relative
    cassettes = sorted(p for p in written if p.suffix == ".json" and "cassettes" in p.parts)
    assert len(cassettes) == 2
    assert all(len(p.relative_to(suite.path / "cassettes").parts) == 2 for p in cassettes)
    report = read_report(suite)
    reported = [c["case_id"] for c in report["cases"]]
    assert sorted(reported) == sorted([str(line["id"]) for line in lines] + HOSTILE_CASE_IDS)


# -- what a failing test shows of its case -------------------------------------------

FAILING = """
import pytest

@pytest.mark.ft_cases("private.jsonl")
def test_label(ft_case, ft_prediction):
    assert ft_prediction.label == ft_case.label
"""


@pytest.mark.parametrize("report_text", [False, True])
def test_a_failing_test_shows_the_case_but_not_its_text(
    suite: pytest.Pytester, reference_server: Any, report_text: bool
) -> None:
    suite.makepyfile(test_private=FAILING)
    write_jsonl(
        suite.path / "private.jsonl",
        [{"id": "s0", "prompt": "PRIVATE-PROMPT-TEXT goal match", "completion": " tech"}],
    )
    args = [f"--ft-base-url={reference_server.base_url}", "--ft-record-mode=once"]
    result = suite.runpytest(
        *args, "--junitxml=junit.xml", *(["--ft-report-text"] if report_text else [])
    )
    result.assert_outcomes(failed=1)
    output = "\n".join(result.outlines)
    junit = (suite.path / "junit.xml").read_text(encoding="utf-8")
    assert "Case(id='s0', label='tech', source='private.jsonl:1'" in output
    assert "input_digest=" in output
    assert ("PRIVATE-PROMPT-TEXT" in output) is report_text
    assert ("PRIVATE-PROMPT-TEXT" in junit) is report_text
