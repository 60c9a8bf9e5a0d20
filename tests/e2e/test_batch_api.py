"""The Batch API path (``--ft-batch-api``) over real HTTP to the reference server.

Predictions through a batch must equal the live path's for the same cases; a
failing line must touch exactly its cases; a recorded batch must replay with the
server stopped and no prompt text, boundary or in-progress poll in the cassette.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest

from pytest_ftclass.asking.batch_api import batch_input, batch_lines, custom_id, predict_via_batch
from pytest_ftclass.asking.clients import ClientOptions
from pytest_ftclass.asking.predict import predict
from pytest_ftclass.asking.shapes import RequestShape, plan_shape
from pytest_ftclass.cases.sources import Case, load_cases
from pytest_ftclass.recording.batch_traffic import is_unfinished_poll
from pytest_ftclass.recording.recorder import Recorder
from pytest_ftclass.reference import ReferenceServer
from pytest_ftclass.reference.batches import BatchOptions
from pytest_ftclass.results import Prediction
from pytest_ftclass.running.credentials import UNUSED_BASE_URL
from tests.faults import FaultProxy
from tests.helpers import (
    SEPARATOR,
    VOCABULARY,
    ask_every_case,
    recording_evaluation,
    validation_lines,
    write_jsonl,
)

LABELS = sorted(VOCABULARY)
FAST = 0.01  # seconds between polls against the local server
COMPLETIONS = RequestShape("completions", "local", tuple(LABELS))
CHAT = RequestShape("chat", "local", tuple(LABELS))
POISON = "quarantined"  # a word the poisoned model refuses to classify


def prompt_cases(per_class: int = 4) -> list[Case]:
    return load_cases(validation_lines(per_class))


def chat_cases(per_class: int = 3) -> list[Case]:
    rng = random.Random(5)
    lines = []
    for label, words in VOCABULARY.items():
        for n in range(per_class):
            text = " ".join(rng.choice(words) for _ in range(6))
            lines.append(
                {
                    "id": f"chat-{label}-{n}",
                    "messages": [
                        {"role": "system", "content": "Classify the headline."},
                        {"role": "user", "content": text},
                        {"role": "assistant", "content": label},
                    ],
                }
            )
    return load_cases(lines)


def without_latency(predictions: dict[str, Prediction]) -> dict[str, Prediction]:
    return {key: replace(p, latency_s=None) for key, p in predictions.items()}


def client_for(server: Any, *, base_url: str | None = None) -> ClientOptions:
    return ClientOptions(api_key="sk-test", base_url=base_url or server.base_url, max_retries=0)


class PoisonedModel:
    """The reference classifier, failing (HTTP 500 from the server) on any text with POISON."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict_log_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if any(POISON in text for text in texts):
            raise RuntimeError("poisoned input")
        return self.model.predict_log_proba(texts)


@pytest.fixture
def poisoned_server(classifier: Any) -> Iterator[ReferenceServer]:
    with ReferenceServer(lambda model: PoisonedModel(classifier)) as server:
        yield server


# -- end to end, live ----------------------------------------------------------------


def test_completions_batch_equals_the_live_path(reference_server: Any) -> None:
    cases = prompt_cases()  # 12 cases, pages of 5: two full lines and a short one
    client = client_for(reference_server)
    batched = predict_via_batch(cases, COMPLETIONS, client, batch_size=5, poll_interval=FAST)
    live = predict(cases, COMPLETIONS, client, batch_size=5)
    assert batched == without_latency(live)
    assert all(p.ok and p.label == c.label for c, p in zip(cases, batched.values(), strict=True))
    posts = [r for r in reference_server.requests if r.path == "/v1/completions"]
    assert sorted(r.inputs for r in posts) == [2, 5, 5]  # only the live path's requests
    input_file = reference_server.requests[0]
    assert (input_file.method, input_file.path) == ("POST", "/v1/files")


def test_a_subset_is_cut_in_the_live_path_pages(reference_server: Any) -> None:
    cases = prompt_cases()
    subset = [c for c in cases if not c.id.endswith("-1")]
    lines, failed = batch_lines(subset, COMPLETIONS, batch_size=5, source_cases=cases)
    assert not failed
    pages = [[c.id for c in cases[i : i + 5]] for i in range(0, len(cases), 5)]
    assert [list(line.case_ids) for line in lines] == [
        [i for i in page if not i.endswith("-1")] for page in pages
    ]
    client = client_for(reference_server)
    batched = predict_via_batch(
        subset, COMPLETIONS, client, batch_size=5, source_cases=cases, poll_interval=FAST
    )
    assert set(batched) == {c.id for c in subset}
    assert batched == without_latency(predict(subset, COMPLETIONS, client, batch_size=5))


def test_chat_batch_equals_the_live_path(reference_server: Any) -> None:
    cases = chat_cases()
    client = client_for(reference_server)
    shape = RequestShape("chat", "ft:gpt-4o-mini:acme::x", tuple(LABELS))
    batched = predict_via_batch(cases, shape, client, poll_interval=FAST)
    live = predict(cases, shape, client)
    assert batched == without_latency(live)
    assert all(p.ok and p.label == c.label for c, p in zip(cases, batched.values(), strict=True))


def test_input_file_is_deterministic_with_stable_safe_custom_ids() -> None:
    cases = prompt_cases()
    first, _ = batch_lines(cases, COMPLETIONS, batch_size=5)
    again, _ = batch_lines(list(reversed(list(reversed(cases)))), COMPLETIONS, batch_size=5)
    assert batch_input(first, "completions") == batch_input(again, "completions")
    ids = [line.custom_id for line in first]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("ftclass-") and i.replace("-", "").isalnum() for i in ids)
    assert ids[0] == custom_id(c.id for c in cases[:5])
    records = [json.loads(line) for line in batch_input(first, "completions").splitlines()]
    assert {r["url"] for r in records} == {"/v1/completions"}
    assert records[0]["body"]["prompt"][0].endswith(SEPARATOR)


def test_progress_is_reported_at_every_poll(reference_server: Any) -> None:
    reference_server.batches.options = BatchOptions(polls=4)
    seen: list[tuple[int, int]] = []
    cases = chat_cases()
    predict_via_batch(
        cases,
        CHAT,
        client_for(reference_server),
        poll_interval=FAST,
        progress=lambda done, total: seen.append((done, total)),
    )
    total = len(cases)
    assert len(seen) == 4  # three polls in progress, then completed
    assert all(t == total for _, t in seen)
    assert all(done < total for done, _ in seen[:-1]) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[1][0] > 0
    polls = [r for r in reference_server.requests if r.path.startswith("/v1/batches/")]
    assert len(polls) == 4


def test_a_batch_can_finish_after_a_delay(reference_server: Any) -> None:
    reference_server.batches.options = BatchOptions(delay_s=0.3)
    seen: list[tuple[int, int]] = []
    predictions = predict_via_batch(
        prompt_cases(),
        COMPLETIONS,
        client_for(reference_server),
        batch_size=2,
        poll_interval=0.05,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert all(p.ok for p in predictions.values())
    assert len(seen) >= 3 and seen[0][0] < 6 and seen[-1] == (6, 6)


def test_giving_up_waiting_fails_every_case_naming_the_batch(reference_server: Any) -> None:
    reference_server.batches.options = BatchOptions(polls=1000)
    cases = chat_cases(1)
    predictions = predict_via_batch(
        cases, CHAT, client_for(reference_server), poll_interval=FAST, max_wait_s=0.1
    )
    assert set(predictions) == {c.id for c in cases}
    for prediction in predictions.values():
        assert prediction.error is not None
        assert "batch batch_" in prediction.error and "in_progress" in prediction.error


# -- failures stay with their cases ----------------------------------------------------


def poisoned(cases: list[Case], ids: set[str]) -> list[Case]:
    return [replace(c, input=POISON + " " + str(c.input)) if c.id in ids else c for c in cases]


def test_a_failing_line_fails_exactly_its_cases(poisoned_server: ReferenceServer) -> None:
    cases = poisoned(prompt_cases(), {"tech-1"})
    client = client_for(poisoned_server)  # pages of 2: tech-1 shares its line with tech-0
    batched = predict_via_batch(cases, COMPLETIONS, client, batch_size=2, poll_interval=FAST)
    failed = {case_id for case_id, p in batched.items() if not p.ok}
    assert failed == {"tech-0", "tech-1"}
    assert "HTTP 500 server_error" in (batched["tech-1"].error or "")
    live = predict(cases, COMPLETIONS, client, batch_size=2)
    assert {case_id for case_id, p in live.items() if not p.ok} == failed
    assert {k: v for k, v in batched.items() if k not in failed} == without_latency(
        {k: v for k, v in live.items() if k not in failed}
    )


def test_a_failing_chat_line_fails_only_its_case(poisoned_server: ReferenceServer) -> None:
    cases = chat_cases()
    target = cases[4]
    messages = tuple(
        {**m, "content": POISON + " " + m["content"]} if m["role"] == "user" else m
        for m in target.input  # type: ignore[union-attr]
    )
    cases[4] = replace(target, input=messages)
    batched = predict_via_batch(cases, CHAT, client_for(poisoned_server), poll_interval=FAST)
    assert {case_id for case_id, p in batched.items() if not p.ok} == {target.id}


def test_an_api_error_while_polling_fails_every_case(reference_server: Any) -> None:
    cases = chat_cases(1)
    with FaultProxy(reference_server.base_url) as proxy:
        proxy.add("server_error", match=None, times=100)
        predictions = predict_via_batch(
            cases, CHAT, client_for(reference_server, base_url=proxy.base_url), poll_interval=FAST
        )
    assert {p.error for p in predictions.values()} == {next(iter(predictions.values())).error}
    assert "HTTP 500" in (next(iter(predictions.values())).error or "")


def test_a_chat_case_on_completions_fails_on_its_own_as_live(reference_server: Any) -> None:
    # three pages of three: prompts, the chat cases, prompts (ids unique across pages)
    cases = [*prompt_cases(1), *chat_cases(1), *[c for c in prompt_cases(2) if c.id.endswith("-1")]]
    client = client_for(reference_server)
    batched = predict_via_batch(cases, COMPLETIONS, client, batch_size=3, poll_interval=FAST)
    live = predict(cases, COMPLETIONS, client, batch_size=3)
    failed = {case_id: p.error for case_id, p in batched.items() if not p.ok}
    chat = [c.id for c in cases[3:6]]
    assert list(failed) == chat  # each chat case, and only those: its page-mates are asked
    assert all(error.startswith(f"case {c!r} is in chat format") for c, error in failed.items())
    assert batched == without_latency(live)


# -- the reference server's Files and Batches endpoints ------------------------------


def test_files_and_batches_are_openai_shaped(reference_server: Any) -> None:
    api = openai.OpenAI(base_url=reference_server.base_url, api_key="sk-test", max_retries=0)
    lines, _ = batch_lines(prompt_cases(1), COMPLETIONS)
    data = batch_input(lines, "completions")
    uploaded = api.files.create(file=("in.jsonl", data, "application/jsonl"), purpose="batch")
    assert uploaded.id.startswith("file-") and uploaded.bytes == len(data)
    assert (uploaded.object, uploaded.purpose, uploaded.filename) == ("file", "batch", "in.jsonl")
    assert api.files.retrieve(uploaded.id).id == uploaded.id
    assert api.files.content(uploaded.id).content == data
    reference_server.batches.options = BatchOptions(polls=1)
    batch = api.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/completions", completion_window="24h"
    )
    assert batch.id.startswith("batch_") and batch.status == "validating"
    done = api.batches.retrieve(batch.id)
    assert done.status == "completed" and done.error_file_id is None
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (1, 1)
    (record,) = [
        json.loads(x) for x in api.files.content(done.output_file_id or "").text.splitlines()
    ]
    assert record["custom_id"] == lines[0].custom_id and record["error"] is None
    assert record["response"]["status_code"] == 200
    assert record["response"]["body"]["object"] == "text_completion"

    with pytest.raises(openai.NotFoundError):
        api.batches.retrieve("batch_unknown")
    with pytest.raises(openai.NotFoundError):
        api.files.content("file-unknown")
    with pytest.raises(openai.NotFoundError):
        api.batches.create(
            input_file_id="file-unknown", endpoint="/v1/completions", completion_window="24h"
        )
    with pytest.raises(openai.BadRequestError) as bad:
        api.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
        )
    assert bad.value.body["param"] == "endpoint"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        api.files.create(file=("x.jsonl", data, "application/jsonl"), purpose="assistants")
    tuning = api.files.create(file=("x.jsonl", data, "application/jsonl"), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError) as wrong_purpose:  # not a batch file
        api.batches.create(
            input_file_id=tuning.id, endpoint="/v1/completions", completion_window="24h"
        )
    assert wrong_purpose.value.param == "input_file_id"


def test_a_malformed_input_file_fails_the_batch(reference_server: Any) -> None:
    api = openai.OpenAI(base_url=reference_server.base_url, api_key="sk-test", max_retries=0)
    good = json.dumps(
        {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}
    )
    data = f"{good}\nnot json\n{good}\n".encode()
    uploaded = api.files.create(file=("in.jsonl", data, "application/jsonl"), purpose="batch")
    batch = api.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.errors is not None
    problems = [(e.line, e.code) for e in batch.errors.data or []]
    assert problems == [(2, "invalid_json_line"), (3, "duplicate_custom_id")]
    assert api.batches.retrieve(batch.id).status == "failed"


# -- recording and replay --------------------------------------------------------------


def run_batch(
    recorder: Recorder,
    path: Path,
    cases: list[Case],
    endpoint: str,
    base_url: str,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Prediction]:
    with recorder.use(path):
        return predict_via_batch(
            cases,
            COMPLETIONS if endpoint == "completions" else CHAT,
            ClientOptions(api_key="sk-test", base_url=base_url, max_retries=0),
            batch_size=5,
            poll_interval=FAST,
            progress=progress,
        )


@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_a_recorded_batch_replays_with_the_server_stopped(
    classifier: Any, tmp_path: Path, endpoint: str
) -> None:
    cases = prompt_cases() if endpoint == "completions" else chat_cases()
    path = tmp_path / "cassette.json"
    with ReferenceServer(lambda model: classifier) as server:
        server.batches.options = BatchOptions(polls=3)
        recorded_progress: list[tuple[int, int]] = []
        recorded = run_batch(
            Recorder(tmp_path, "once"),
            path,
            cases,
            endpoint,
            server.base_url,
            lambda done, total: recorded_progress.append((done, total)),
        )
        live_requests = server.requests
        base = server.base_url
    assert all(p.ok for p in recorded.values())
    assert len(recorded_progress) == 3  # recording polled the live server to the end

    text = path.read_text(encoding="utf-8")
    cassette = json.loads(text)
    interactions = cassette["interactions"]
    assert [
        (i["request"]["method"], re.sub(r"(batch_|file-)\w+", r"\1ID", i["request"]["uri"]))
        for i in interactions
    ] == [
        ("POST", f"{base}/files"),
        ("POST", f"{base}/batches"),
        ("GET", f"{base}/batches/batch_ID"),
        ("GET", f"{base}/files/file-ID/content"),
    ]
    assert len(live_requests) == 6  # upload, create, 3 polls, download
    upload = json.loads(interactions[0]["request"]["body"])
    assert upload["purpose"] == "batch" and upload["file"].startswith("ftclass-sha256:")
    assert "boundary" not in text
    for case in cases:  # no prompt text anywhere
        assert case.text.split(SEPARATOR)[0] not in text
    assert '"in_progress"' not in text and "x-request-id" not in text.lower()

    replayed_progress: list[tuple[int, int]] = []
    replayed = run_batch(
        Recorder(tmp_path, "none"),
        path,
        cases,
        endpoint,
        UNUSED_BASE_URL,
        lambda done, total: replayed_progress.append((done, total)),
    )
    assert replayed == recorded
    assert replayed_progress == [recorded_progress[-1]]  # replay sees the final poll at once


def test_a_request_missing_from_the_cassette_fails_every_case_with_the_reason(
    classifier: Any, tmp_path: Path
) -> None:
    cases = prompt_cases()
    path = tmp_path / "cassette.json"
    with ReferenceServer(lambda model: classifier) as server:
        run_batch(Recorder(tmp_path, "once"), path, cases, "completions", server.base_url)
    other = cases[:-1]  # another selection: another input file
    replayed = run_batch(Recorder(tmp_path, "none"), path, other, "completions", UNUSED_BASE_URL)
    assert set(replayed) == {c.id for c in other}
    assert all(p.error and "CannotOverwriteExistingCassette" in p.error for p in replayed.values())


def edit_cassette(path: Path, edit: Callable[[list[dict[str, Any]]], None]) -> None:
    cassette = json.loads(path.read_text(encoding="utf-8"))
    edit(cassette["interactions"])
    path.write_text(json.dumps(cassette), encoding="utf-8")


def test_a_line_missing_from_the_output_fails_exactly_its_cases(
    classifier: Any, tmp_path: Path
) -> None:
    cases = prompt_cases()
    path = tmp_path / "cassette.json"
    with ReferenceServer(lambda model: classifier) as server:
        recorded = run_batch(
            Recorder(tmp_path, "once"), path, cases, "completions", server.base_url
        )

    def drop_second_line(interactions: list[dict[str, Any]]) -> None:
        body = interactions[-1]["response"]["body"]
        lines = body["string"].splitlines(keepends=True)
        body["string"] = lines[0] + lines[2]

    edit_cassette(path, drop_second_line)
    replayed = run_batch(Recorder(tmp_path, "none"), path, cases, "completions", UNUSED_BASE_URL)
    second_line = {c.id for c in cases[5:10]}
    assert {case_id for case_id, p in replayed.items() if not p.ok} == second_line
    assert "completed without an answer" in (replayed[cases[5].id].error or "")
    assert {k: v for k, v in replayed.items() if k not in second_line} == {
        k: v for k, v in recorded.items() if k not in second_line
    }


def test_a_failed_batch_fails_every_case_with_its_errors(classifier: Any, tmp_path: Path) -> None:
    cases = chat_cases(1)
    path = tmp_path / "cassette.json"
    with ReferenceServer(lambda model: classifier) as server:
        run_batch(Recorder(tmp_path, "once"), path, cases, "chat", server.base_url)

    batch_ids = []

    def fail(interactions: list[dict[str, Any]]) -> None:
        poll = interactions[2]["response"]["body"]
        batch = json.loads(poll["string"])
        batch_ids.append(batch["id"])
        batch.update(
            status="failed",
            output_file_id=None,
            errors={"object": "list", "data": [{"line": 1, "code": "x", "message": "bad line"}]},
        )
        poll["string"] = json.dumps(batch)

    edit_cassette(path, fail)
    replayed = run_batch(Recorder(tmp_path, "none"), path, cases, "chat", UNUSED_BASE_URL)
    assert {p.error for p in replayed.values()} == {
        f"batch {batch_ids[0]} failed: line 1: x: bad line"
    }


def test_unfinished_polls_are_recognised() -> None:
    class Request:
        method, path = "GET", "/v1/batches/batch_1"

    def response(status: str, code: int = 200) -> dict[str, Any]:
        body = json.dumps({"object": "batch", "status": status}).encode()
        return {"status": {"code": code}, "headers": {}, "body": {"string": body}}

    assert is_unfinished_poll(Request(), response("in_progress"))
    assert is_unfinished_poll(Request(), response("validating"))
    assert not is_unfinished_poll(Request(), response("completed"))
    assert not is_unfinished_poll(Request(), response("in_progress", 500))
    Request.method, Request.path = "POST", "/v1/batches"
    assert not is_unfinished_poll(Request(), response("validating"))


# -- through pytest (needs the options.py, evaluation.py and recording.py diffs) -------


def test_ft_batch_api_records_and_replays_like_the_live_path(
    suite: pytest.Pytester, reference_server: Any
) -> None:
    from .test_plugin_e2e import comparable, read_report

    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines())
    model = "ft:babbage-002:acme::abc123"
    live = suite.runpytest(
        f"--ft-model={model}", f"--ft-base-url={reference_server.base_url}", "--ft-record-mode=all"
    )
    live.assert_outcomes(passed=12)
    expected = comparable(read_report(suite))
    live_posts = len(reference_server.requests)
    args = (f"--ft-model={model}", "--ft-batch-api", "--ft-cassette-dir=batch-cassettes")

    recorded = suite.runpytest(
        *args, f"--ft-base-url={reference_server.base_url}", "--ft-record-mode=once"
    )
    recorded.assert_outcomes(passed=12)
    assert comparable(read_report(suite)) == expected
    batch_requests = reference_server.requests[live_posts:]
    assert [r.path for r in batch_requests[:2]] == ["/v1/files", "/v1/batches"]  # one batch
    assert sum(r.path == "/v1/batches" for r in batch_requests) == 1
    reference_server.stop()

    replayed = suite.runpytest(*args)
    replayed.assert_outcomes(passed=12)
    assert comparable(read_report(suite)) == expected


@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_shaped_requests_equal_the_live_path(reference_server: Any, endpoint: str) -> None:
    cases = prompt_cases(2) if endpoint == "completions" else chat_cases(2)
    shape = plan_shape("local", endpoint, LABELS, constrain=True)
    client = client_for(reference_server)
    batched = predict_via_batch(cases, shape, client, batch_size=4, poll_interval=FAST)
    assert batched == without_latency(predict(cases, shape, client, batch_size=4))
    assert all(p.ok for p in batched.values())


def test_a_batch_run_counts_its_answers_on_the_progress_line(
    reference_server: Any, tmp_path: Path
) -> None:
    reference_server.batches.options = BatchOptions(polls=4)
    cases = chat_cases()
    model = "ft:gpt-4o-mini-2024-07-18:acme::batch"
    evaluation = recording_evaluation(reference_server.base_url, tmp_path, batch_api=True)
    shown: list[int] = []
    evaluation.progress = lambda group, answered, pace: shown.append(answered)
    predictions = ask_every_case(evaluation, "s.jsonl", cases, model)
    assert all(p.error is None for p in predictions.values())
    assert sum(shown) == len(cases)  # each answer counted once
    assert len(shown) >= 2  # at polls while the batch ran, not only at its end
