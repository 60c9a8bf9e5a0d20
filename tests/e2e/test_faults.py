"""Faults between the client and the model, injected by a real proxy (``tests/faults.py``)
in front of the reference model: rate limits, server errors, timeouts, dropped
connections and spoiled answers.  No mock of the openai client anywhere: the SDK's
own retry logic is what is measured.

What must hold: retries follow ``Retry-After`` (or the SDK's backoff) up to
``ft_max_retries``; afterwards exactly the affected cases are errors, each case is
reported once; broken answers never reach a cassette, so a replay reports them as
missing while every other case replays identically.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_ftclass.asking.clients import ClientOptions
from pytest_ftclass.asking.predict import predict
from pytest_ftclass.asking.shapes import RequestShape
from pytest_ftclass.cases.sources import Case, load_cases
from tests.faults import FaultProxy, ProxyRecord
from tests.helpers import SEPARATOR, by_id, read_report, validation_lines, write_jsonl

COMPLETIONS_MODEL = "ft:babbage-002:acme::abc123"
CHAT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::xyz789"


@pytest.fixture
def proxy(reference_server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(reference_server.base_url, retry_after="1", lifetime_s=60) as running:
        yield running


def interleaved_lines() -> list[dict[str, object]]:
    """Validation lines ordered sport, tech, politics, sport, ...: every page mixes classes."""
    lines = validation_lines()
    by_class = [lines[0:4], lines[4:8], lines[8:12]]
    return [group[n] for n in range(4) for group in by_class]


def prompt_marker(line: dict[str, object]) -> str:
    """A substring of a request body that only the request carrying ``line`` contains."""
    return json.dumps(str(line["prompt"]))


def chat_lines() -> list[dict[str, object]]:
    return [
        {
            "id": line["id"],
            "messages": [
                {"role": "system", "content": "Classify the headline."},
                {"role": "user", "content": str(line["prompt"]).removesuffix(SEPARATOR)},
                {"role": "assistant", "content": str(line["completion"]).strip()},
            ],
        }
        for line in validation_lines()
    ]


def stable(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k not in ("latency_s", "nodeid", "replayed")}


def attempts(log: list[ProxyRecord], text: str) -> list[ProxyRecord]:
    """The requests (first try and retries) that carried ``text`` as a prompt or message."""
    return [record for record in log if text in record.inputs]


# -- the SDK's retries, measured -------------------------------------------------------


def ask(cases: list[Case], proxy: FaultProxy, *, max_retries: int) -> dict[str, Any]:
    return predict(
        cases,
        RequestShape("completions", COMPLETIONS_MODEL, tuple(sorted({c.label for c in cases}))),
        ClientOptions(
            api_key="sk-test", base_url=proxy.base_url, max_retries=max_retries, timeout=5
        ),
        batch_size=4,
    )


def test_retries_honour_retry_after_then_fall_back_to_backoff(proxy: FaultProxy) -> None:
    lines = validation_lines()
    cases = load_cases(lines)
    marker = prompt_marker(lines[0])  # the first page: sport-0..3
    prompt = str(lines[0]["prompt"])

    # 429 with Retry-After: 1 → the retry comes one second later, and succeeds
    proxy.add("rate_limit", times=1, match=marker)
    predictions = ask(cases, proxy, max_retries=1)
    assert all(
        p.ok and p.label == c.label for c, p in zip(cases, predictions.values(), strict=True)
    )
    first, retry = attempts(proxy.log, prompt)
    assert (first.fault, first.status, retry.fault, retry.status) == (
        "rate_limit",
        429,
        "pass",
        200,
    )
    assert 0.95 <= retry.arrived - first.arrived < 1.6
    assert len(proxy.log) == 4  # 3 pages + 1 retry: nothing asked twice but the failed page

    # 429 without Retry-After → the SDK's own backoff (0.5 s less up to 25 % jitter)
    proxy.clear()
    proxy.add("rate_limit_no_retry_after", times=1, match=marker)
    ask(cases, proxy, max_retries=1)
    first, retry = attempts(proxy.log, prompt)
    assert 0.3 <= retry.arrived - first.arrived < 0.9

    # always 429: 1 + max_retries attempts, then an error on exactly that page's cases
    proxy.clear()
    proxy.add("rate_limit", match=marker)
    predictions = ask(cases, proxy, max_retries=1)
    tries = attempts(proxy.log, prompt)
    assert [t.status for t in tries] == [429, 429]
    failed = {case_id for case_id, p in predictions.items() if not p.ok}
    assert failed == {f"sport-{n}" for n in range(4)}
    assert all(
        (predictions[i].error or "").startswith("HTTP 429 rate_limit_exceeded") for i in failed
    )
    assert len(predictions) == len(cases)


# -- through the plugin: errors on exactly the affected cases, then replay --------------


def test_completions_retries_give_errors_on_exactly_the_affected_cases(
    suite: pytest.Pytester, reference_server: Any, proxy: FaultProxy
) -> None:
    lines = interleaved_lines()  # pages of 4: [s0 t0 p0 s1] [t1 p1 s2 t2] [p2 s3 t3 p3]
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    proxy.add("rate_limit", match=prompt_marker(lines[8]))  # page 3: always rate limited
    proxy.add("server_error", times=1, match=prompt_marker(lines[0]))  # page 1: one 500
    proxy.add("drop", times=1, match=prompt_marker(lines[4]))  # page 2: one dropped connection
    args = [f"--ft-model={COMPLETIONS_MODEL}", "--ft-batch-size=4"]
    result = suite.runpytest(
        *args,
        f"--ft-base-url={proxy.base_url}",
        "--ft-record-mode=once",
        "--ft-max-retries=1",
        "--ft-rate-limit-wait=0",  # fail once the SDK gives up (tests/test_pacing.py waits)
    )
    result.assert_outcomes(passed=8, errors=4)
    result.stdout.fnmatch_lines(["*HTTP 429 rate_limit_exceeded: Rate limit reached*"])
    affected = {str(line["id"]) for line in lines[8:12]}
    recorded = by_id(read_report(suite))
    assert len(recorded) == 12
    assert {i for i, c in recorded.items() if c["error"]} == affected
    assert read_report(suite)["models"][0]["metrics"]["n_errors"] == 4
    assert [r.status for r in attempts(proxy.log, str(lines[8]["prompt"]))] == [429, 429]
    assert sorted(r.fault for r in proxy.log) == sorted(
        ["rate_limit", "rate_limit", "server_error", "pass", "drop", "pass"]
    )

    # the failures were not recorded: replayed with nothing listening, they are missing
    check_replay_offline(suite, [proxy, reference_server], args, recorded, affected, passed=8)


def test_spoiled_completions_answers(
    suite: pytest.Pytester, reference_server: Any, proxy: FaultProxy
) -> None:
    lines = interleaved_lines()  # pages of 2: [s0 t0] [p0 s1] [t1 p1] [s2 t2] [p2 s3] [t3 p3]
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    proxy.add("reverse_choices", match=prompt_marker(lines[0]))
    proxy.add("no_logprobs", match=prompt_marker(lines[2]))
    proxy.add("out_of_set", match=prompt_marker(lines[4]))
    proxy.add("malformed_json", match=prompt_marker(lines[6]))
    proxy.add("no_choices", match=prompt_marker(lines[8]))
    args = [f"--ft-model={COMPLETIONS_MODEL}", "--ft-batch-size=2"]
    result = suite.runpytest(*args, f"--ft-base-url={proxy.base_url}", "--ft-record-mode=once")
    result.assert_outcomes(passed=7, errors=4)
    assert result.parseoutcomes()["mispredicted"] == 1
    cases = by_id(read_report(suite))
    assert len(cases) == 12
    ids = [str(line["id"]) for line in lines]
    # reversed choices are matched by index: each case keeps its own answer and log-probs
    for case_id in ids[0:2]:
        case = cases[case_id]
        assert case["predicted"] == case["expected"]
        assert max(case["logprobs"], key=case["logprobs"].get) == case["expected"]
    # no logprobs: still a label, with no class probabilities
    for case_id in ids[2:4]:
        assert cases[case_id]["predicted"] == cases[case_id]["expected"]
        assert cases[case_id]["logprobs"] == {} and cases[case_id]["error"] is None
    # an out-of-set answer is kept as said
    assert cases[ids[4]]["predicted"] == "weather"
    assert cases[ids[4]]["outcome"] == "mispredicted"
    assert cases[ids[5]]["predicted"] == cases[ids[5]]["expected"]
    assert "weather" in read_report(suite)["models"][0]["metrics"]["confusion_matrix"]["labels"]
    # malformed JSON, no choices: errors on exactly those pages
    broken = set(ids[6:10])
    assert {i for i, c in cases.items() if c["error"]} == broken
    assert all("malformed response" in cases[i]["error"] for i in broken)
    assert read_report(suite)["models"][0]["metrics"]["n_errors"] == 4

    check_replay_offline(suite, [proxy, reference_server], args, cases, broken, passed=7)


def test_chat_faults_timeouts_and_spoiled_answers(
    suite: pytest.Pytester, reference_server: Any, proxy: FaultProxy
) -> None:
    lines = chat_lines()
    write_jsonl(suite.path / "chat.cases.jsonl", lines)

    def user_text(n: int) -> str:
        return json.dumps(lines[n]["messages"][1]["content"])  # type: ignore[index]

    proxy.add("slow", match=user_text(0))  # always slower than the 0.5 s timeout
    proxy.add("unavailable", match=user_text(1))  # always 503
    proxy.add("malformed_json", match=user_text(2))
    proxy.add("rate_limit", times=1, match=user_text(3))  # recovered after Retry-After
    proxy.add("drop", times=1, match=user_text(4))  # recovered
    proxy.add("slow", times=1, match=user_text(5))  # recovered after one timeout
    proxy.add("no_logprobs", match=user_text(6))
    proxy.add("out_of_set", match=user_text(7))
    proxy.add("no_choices", match=user_text(8))
    args = [f"--ft-model={CHAT_MODEL}"]
    result = suite.runpytest(
        *args,
        f"--ft-base-url={proxy.base_url}",
        "--ft-record-mode=once",
        "--ft-timeout=0.5",
        "--ft-max-retries=1",
    )
    result.assert_outcomes(passed=7, errors=4)
    assert result.parseoutcomes()["mispredicted"] == 1
    ids = [str(line["id"]) for line in lines]
    cases = by_id(read_report(suite))
    assert len(cases) == 12
    assert cases[ids[0]]["error"] == f"request to {proxy.base_url}/chat/completions timed out"
    assert cases[ids[1]]["error"].startswith("HTTP 503")
    assert "malformed response" in cases[ids[2]]["error"]
    assert "malformed response" in cases[ids[8]]["error"]
    broken = {ids[0], ids[1], ids[2], ids[8]}
    assert {i for i, c in cases.items() if c["error"]} == broken
    assert read_report(suite)["models"][0]["metrics"]["n_errors"] == 4
    for n in (3, 4, 5):
        assert cases[ids[n]]["predicted"] == cases[ids[n]]["expected"]
    assert cases[ids[6]]["logprobs"] == {}
    assert cases[ids[6]]["predicted"] == cases[ids[6]]["expected"]
    assert cases[ids[7]]["predicted"] == "weather"
    # attempts per case: 1 + --ft-max-retries for the hopeless ones, 2 for the recovered
    for n, expected in ((0, 2), (1, 2), (2, 1), (3, 2), (4, 2), (5, 2), (6, 1)):
        assert len(attempts(proxy.log, json.loads(user_text(n)))) == expected, n

    check_replay_offline(suite, [proxy, reference_server], args, cases, broken, passed=7)


def test_the_proxy_is_bounded(reference_server: Any) -> None:
    import time

    for upstream in ("http://example.com/v1", "https://127.0.0.1:1/v1", "http://10.0.0.1:80/v1"):
        with pytest.raises(ValueError, match="only"):
            FaultProxy(upstream)
    proxy = FaultProxy(reference_server.base_url, lifetime_s=0.2).start()
    assert proxy.base_url.startswith("http://127.0.0.1:")
    time.sleep(0.5)
    with pytest.raises(RuntimeError, match="not running"):
        proxy.base_url  # noqa: B018 - it stopped itself


def check_replay_offline(
    suite: pytest.Pytester,
    servers: list[Any],
    args: list[str],
    recorded: dict[str, Any],
    failed: set[str],
    *,
    passed: int,
) -> None:
    """Replayed with nothing listening: failed cases were not recorded, the rest are as before."""
    for server in servers:
        server.stop()
    replay = suite.runpytest(*args)
    replay.assert_outcomes(passed=passed, errors=len(failed))
    replayed = by_id(read_report(suite))
    assert {i for i, c in replayed.items() if c["error"]} == failed
    assert all("does not hold this request" in replayed[i]["error"] for i in failed)
    for case_id in set(recorded) - failed:
        assert stable(replayed[case_id]) == stable(recorded[case_id])
        # a live answer has its latency; a replayed one says so and has none
        assert recorded[case_id]["replayed"] is False and recorded[case_id]["latency_s"] > 0
        assert replayed[case_id]["replayed"] is True and replayed[case_id]["latency_s"] is None
