"""Cassette naming and the request filter, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_ftclass.recording.digests import private_body, text_digest
from pytest_ftclass.recording.names import cassette_path, safe_file_name
from pytest_ftclass.recording.recorder import Recorder


@pytest.mark.parametrize(
    "name",
    ["ft:babbage-002:acme::abc123", "../../etc/passwd", "a/b\\c", "..", "", "x" * 600, "模型/🙂"],
)
def test_safe_file_name_stays_one_short_component(name: str) -> None:
    safe = safe_file_name(name)
    assert safe and "/" not in safe and "\\" not in safe and not safe.startswith(".")
    assert len(safe.encode()) <= 100


def test_long_names_stay_distinct() -> None:
    assert safe_file_name("x" * 300 + "a") != safe_file_name("x" * 300 + "b")


def test_cassette_path_stays_under_the_cassette_dir(tmp_path: Path) -> None:
    path = cassette_path(tmp_path, "../../outside.jsonl", "../../../model")
    assert path.resolve().is_relative_to(tmp_path.resolve())


def test_private_body_digests_prompts_and_messages() -> None:
    body = {
        "model": "m",
        "prompt": ["secret one", "secret two"],
        "messages": [{"role": "user", "content": "secret three"}],
        "max_tokens": 1,
    }
    private = json.loads(private_body(json.dumps(body).encode()))
    assert private["prompt"] == [text_digest("secret one"), text_digest("secret two")]
    assert private["messages"][0] == {"role": "user", "content": text_digest("secret three")}
    assert private["max_tokens"] == 1 and private["model"] == "m"
    assert b"secret" not in private_body(json.dumps(body).encode())
    # digesting is idempotent, so a recorded body matches a fresh one
    assert private_body(private_body(json.dumps(body).encode())) == private_body(json.dumps(body))
    kept = json.loads(private_body(json.dumps(body), keep_text=True))
    assert kept["prompt"] == ["secret one", "secret two"]


def test_body_key_order_does_not_matter() -> None:
    assert private_body('{"a": 1, "prompt": "x"}') == private_body('{"prompt": "x", "a": 1}')


def test_failed_responses_are_not_recorded_and_only_allowed_headers_are_kept() -> None:
    recorder = Recorder(Path("unused"))
    failed = {"status": {"code": 429}, "headers": {}, "body": {"string": b"{}"}}
    assert recorder._before_record_response(failed) is None
    response = {
        "status": {"code": 200},
        "headers": {
            "Set-Cookie": ["a=b"],
            "openai-organization": ["org-x"],
            "x-debug-auth": ["Bearer sk-anything"],  # a header no deny-list knows
            "Content-Type": ["application/json"],
        },
        "body": {"string": b'{"choices": []}'},
    }
    kept = recorder._before_record_response(response)
    assert kept is not None and list(kept["headers"]) == ["Content-Type"]
