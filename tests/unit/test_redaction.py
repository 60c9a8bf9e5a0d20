"""The Redactor on its own, and what a failing test shows of a case.

Secrets are replaced by value (the run's keys, their tails, the credentials of
the base URL) and by shape (bearer and basic tokens, URL userinfo, credential
query parameters, named API keys), JSON stays JSON, and redacting twice
changes nothing more.  A test taking ``ft_case`` that fails shows the case's
id, source line and input digest, not its text (unless ``--ft-report-text``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_ftclass.recording.redaction import MARKER, Redactor, public_url, url_secrets

KEY = "sk-proj-Zq81canaryKEY0042"
REDACTOR = Redactor.for_run(
    environ={"OPENAI_API_KEY": KEY, "AZURE_OPENAI_API_KEY": "azure-secret-123456"},
    base_url="https://gw-user:gw-pass-99887766@gateway.example/v1?api-key=qs-secret-5544",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Incorrect API key provided: {KEY}.", "Incorrect API key provided: REDACTED."),
        ("tail only: proj-Zq81canaryKEY0042", "tail only: REDACTED"),
        ("azure: azure-secret-123456", "azure: REDACTED"),
        ("Authorization: Bearer other-token.x_y", "Authorization: Bearer REDACTED"),
        ("Authorization: Basic dXNlcjpzZWNyZXQ=", "Authorization: Basic REDACTED"),
        ("Basic authentication failed", "Basic authentication failed"),
        ("see https://a:b@host/v1/x", "see https://REDACTED@host/v1/x"),
        ("GET /v1/x?api-version=2&sig=abc%2Fdef&n=1", "GET /v1/x?api-version=2&sig=REDACTED&n=1"),
        ('{"x-api-key": "k-123"}', '{"x-api-key": "REDACTED"}'),
        ('{"token": " sport", "logprob": -0.1}', '{"token": " sport", "logprob": -0.1}'),
        ("the pass gw-pass-99887766 alone", "the pass REDACTED alone"),
        ("query value qs-secret-5544 alone", "query value REDACTED alone"),
    ],
)
def test_secrets_are_replaced_by_value_and_by_shape(text: str, expected: str) -> None:
    assert REDACTOR.text(text) == expected


def test_short_keys_are_not_looked_for_but_known_shapes_still_are() -> None:
    redactor = Redactor.for_run(environ={"OPENAI_API_KEY": "sk-test"})
    assert redactor.secrets == ()
    assert redactor.text("a test of sk-test") == "a test of sk-test"
    assert redactor.text("Bearer sk-test") == f"Bearer {MARKER}"


def test_a_json_body_stays_json() -> None:
    body = json.dumps(
        {
            "choices": [{"text": f" {KEY}", "logprobs": {"tokens": [" sport"]}}],
            "debug": {"auth": f'Bearer {KEY}"; quoted', "url": f"http://u:{KEY}@h/?key={KEY}"},
        }
    ).encode()
    redacted = REDACTOR.body(body)
    data = json.loads(redacted)
    assert KEY.encode() not in redacted and b"Zq81canary" not in redacted
    assert data["choices"][0]["text"] == f" {MARKER}"
    assert data["choices"][0]["logprobs"]["tokens"] == [" sport"]
    lines = REDACTOR.body(b'{"custom_id": "a", "k": "' + KEY.encode() + b'"}\n{"custom_id": "b"}\n')
    assert [json.loads(line)["custom_id"] for line in lines.splitlines()] == ["a", "b"]
    assert KEY.encode() not in lines


def test_the_base_url_is_shown_without_userinfo_or_query() -> None:
    assert public_url(f"http://user:{KEY}@127.0.0.1:8/v1?api_key={KEY}") == "http://127.0.0.1:8/v1"
    assert public_url("http://[::1]:8/v1") == "http://[::1]:8/v1"
    assert public_url(None) is None
    assert url_secrets("http://127.0.0.1/v1") == set()


@given(
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    shape=st.sampled_from(["{}", "Bearer {}", "?api_key={}", "http://u:{}@h", '"api-key": "{}"']),
)
def test_no_secret_survives_and_redacting_twice_changes_nothing(
    before: str, after: str, shape: str
) -> None:
    text = before + shape.format(KEY) + " " + after
    once = REDACTOR.text(text)
    assert KEY not in once and KEY.removeprefix("sk-") not in once
    assert REDACTOR.text(once) == once


def test_a_prediction_keeps_its_identity_when_nothing_changes() -> None:
    from pytest_ftclass.results import Prediction

    clean = Prediction(label="sport")
    assert REDACTOR.prediction(clean) is clean
    dirty = REDACTOR.prediction(Prediction(label=KEY, raw_text=f" {KEY}", error=None))
    assert (dirty.label, dirty.raw_text) == (MARKER, f" {MARKER}")


def test_the_token_memo_never_writes_a_label_that_holds_a_secret(tmp_path: Path) -> None:
    from pytest_ftclass.cases.tokens import TokenMemo

    memo = TokenMemo(tmp_path / ".ftclass-tokens", redactor=REDACTOR)
    encoding = memo.encoding("cl100k_base")
    for label in (" sport", f" {KEY}"):
        encoding.known[label] = [1, 2]
    encoding.learnt = True
    memo.save()
    written = (tmp_path / ".ftclass-tokens").read_text(encoding="utf-8")
    assert '" sport"' in written and KEY not in written
