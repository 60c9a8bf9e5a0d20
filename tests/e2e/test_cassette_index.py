"""IndexedCassette answers every lookup as vcrpy's own Cassette does, on a real recording.

A cassette is recorded through the plugin's Recorder against the reference
server over HTTP; it is then opened twice, as a plain vcrpy cassette and as an
IndexedCassette, and every lookup (hits, misses, repeats, new interactions) is
asked of both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vcr.cassette import Cassette
from vcr.errors import UnhandledHTTPRequestError
from vcr.request import Request

from pytest_ftclass.asking.clients import ClientOptions
from pytest_ftclass.asking.predict import predict
from pytest_ftclass.asking.shapes import RequestShape
from pytest_ftclass.cases.sources import load_cases
from pytest_ftclass.recording.cassette_index import (
    IndexedCassette,
    load_cassette,
    use_indexed_cassette,
)
from pytest_ftclass.recording.recorder import Recorder
from tests.helpers import SEPARATOR, validation_lines

MODEL = "ft:babbage-002:acme::index"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def recorded(tmp_path: Path, reference_server: Any) -> tuple[Path, list[Any], dict[str, Any]]:
    """A cassette of 4 Completions requests (12 cases, 3 a batch) and the predictions."""
    cases = load_cases(validation_lines(), name="valid.cases.jsonl")
    recorder = Recorder(tmp_path / "cassettes", "new_episodes")
    path = recorder.path_for("valid.cases.jsonl", MODEL)
    with recorder.use(path):
        predictions = run(cases, reference_server.base_url)
    assert all(p.error is None for p in predictions.values())
    assert len(reference_server.requests) == 4
    return path, cases, predictions


def run(cases: list[Any], base_url: str) -> dict[str, Any]:
    return predict(
        cases,
        RequestShape("completions", MODEL, tuple(sorted({c.label for c in cases}))),
        ClientOptions(api_key="sk-test", base_url=base_url, max_retries=0),
        batch_size=3,
        concurrency=2,
    )


def open_both(path: Path, record_mode: str, **kwargs: Any) -> tuple[Any, Any]:
    """The same cassette opened by vcrpy and as an IndexedCassette (without patching)."""
    vcr = Recorder(path.parent, record_mode)._build_vcr()
    return load_cassette(vcr, path, Cassette, **kwargs), load_cassette(vcr, path, **kwargs)


def stored_requests(path: Path) -> list[Request]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Request._from_dict(i["request"]) for i in data["interactions"]]


def misses(requests: list[Request]) -> list[Request]:
    first = requests[0]
    body = json.loads(first.body)
    other_prompt = Request(
        "POST", first.uri, json.dumps({**body, "prompt": ["x" + SEPARATOR]}), JSON
    )
    other_path = Request(
        "POST", first.uri.replace("/completions", "/chat/completions"), first.body, JSON
    )
    other_method = Request("GET", first.uri, first.body, JSON)
    return [other_prompt, other_path, other_method]


def answer(cassette: Any, request: Request) -> Any:
    try:
        return cassette.play_response(request)
    except UnhandledHTTPRequestError:
        return "unhandled"


@pytest.mark.parametrize("record_mode", ["none", "once", "new_episodes", "all"])
@pytest.mark.parametrize("repeats", [True, False])
def test_lookups_agree_with_vcrpy(recorded: Any, record_mode: str, repeats: bool) -> None:
    path, _, _ = recorded
    plain, indexed = open_both(path, record_mode, allow_playback_repeats=repeats)
    assert len(plain) == len(indexed) == 4
    requests = stored_requests(path)
    hit = answer(plain, requests[0])
    assert hit != "unhandled" and answer(indexed, requests[0]) == hit  # the hits are real
    plain.rewind()
    indexed.rewind()
    asked = requests + misses(requests) + requests  # every hit twice: play counts matter
    for request in asked:
        assert indexed.can_play_response_for(request) == plain.can_play_response_for(request)
        assert (request in indexed) == (request in plain)
        assert answer(indexed, request) == answer(plain, request)
        assert indexed.play_counts == plain.play_counts
    assert played(indexed) == played(plain)


def played(cassette: Any) -> list[tuple[dict[str, Any], Any]]:
    """What ``drop_unused_requests`` would keep (requests compare by identity: use dicts)."""
    return [(request._to_dict(), response) for request, response in cassette._played_interactions]


def test_hits_come_from_any_host_and_key_order(recorded: Any) -> None:
    path, _, _ = recorded
    plain, indexed = open_both(path, "none", allow_playback_repeats=True)
    for request in stored_requests(path):
        body = json.loads(request.body)
        shuffled = json.dumps(dict(reversed(list(body.items()))), indent=1)
        moved = Request("POST", "http://elsewhere:1234/v1/completions", shuffled, JSON)
        assert plain.can_play_response_for(moved)
        assert indexed.play_response(moved) == plain.play_response(moved)


def test_appended_interactions_are_found(recorded: Any) -> None:
    path, _, _ = recorded
    plain, indexed = open_both(path, "new_episodes", allow_playback_repeats=True)
    new = misses(stored_requests(path))[0]
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {},
        "body": {"string": '{"choices": []}'},
    }
    for cassette in (plain, indexed):
        assert new not in cassette
        cassette.append(new, response)
    assert indexed.play_response(new) == plain.play_response(new) == response
    assert indexed.responses_of(new) == plain.responses_of(new)
    indexed.data.append(indexed.data[0])  # changed behind its back: the index catches up
    assert indexed.responses_of(stored_requests(path)[0]) == [indexed.data[0][1]] * 2


def test_replay_through_indexed_cassette_gives_the_recorded_predictions(recorded: Any) -> None:
    path, cases, predictions = recorded
    vcr = Recorder(path.parent, "none")._build_vcr()
    with use_indexed_cassette(vcr, path, allow_playback_repeats=True) as cassette:
        assert isinstance(cassette, IndexedCassette)
        replayed = run(cases, "http://127.0.0.1:9/v1")  # nothing listens there
    assert {k: (p.label, p.logprobs) for k, p in replayed.items()} == {
        k: (p.label, p.logprobs) for k, p in predictions.items()
    }
    assert cassette.play_count == 4


def test_a_request_is_filtered_once_for_the_questions_asked_about_it(recorded: Any) -> None:
    path, _, _ = recorded
    seen: dict[str, list[Any]] = {"plain": [], "indexed": []}

    def counting(name: str) -> Any:
        def before_record_request(request: Any) -> Any:
            seen[name].append(request)
            return request

        return before_record_request

    vcr = Recorder(path.parent, "none")._build_vcr()
    cassettes = {
        name: load_cassette(
            vcr, path, kind, allow_playback_repeats=True, before_record_request=counting(name)
        )
        for name, kind in (("plain", Cassette), ("indexed", IndexedCassette))
    }
    requests = stored_requests(path)
    for calls in seen.values():
        calls.clear()  # loading filters each stored interaction once, in both
    for request in requests:  # what vcrpy's httpx stub asks: can it be played, then play it
        assert cassettes["indexed"].can_play_response_for(request)
        answered = cassettes["indexed"].play_response(request)
        assert cassettes["plain"].can_play_response_for(request)
        assert answered == cassettes["plain"].play_response(request)
    assert len(seen["plain"]) >= 2 * len(requests)  # vcrpy: at least once per question
    assert len(seen["indexed"]) == len(requests)


@pytest.mark.parametrize("drop_unused", [False, True])
def test_what_is_saved_agrees_with_vcrpy(recorded: Any, drop_unused: bool) -> None:
    """Re-recording some requests and adding one: both cassettes would save the same."""
    path, _, _ = recorded
    saved = {}
    for record_mode in ("all", "new_episodes"):
        plain, indexed = open_both(path, record_mode, drop_unused_requests=drop_unused)
        stored = stored_requests(path)
        new = misses(stored)[0]
        for cassette in (plain, indexed):
            cassette.play_response(stored[1])  # one loaded interaction is used
            for request, marker in ((stored[0], "again-0"), (stored[2], "again-2"), (new, "new")):
                cassette.append(request, answer_with(marker))
        for name, cassette in (("plain", plain), ("indexed", indexed)):
            saved[record_mode, name] = [
                (request._to_dict(), response)
                for request, response in (
                    cassette._rerecorded_interactions()
                    if record_mode == "all"
                    else cassette._played_interactions + cassette._new_interactions()
                )
            ]
    for record_mode in ("all", "new_episodes"):
        assert saved[record_mode, "indexed"] == saved[record_mode, "plain"]
    bodies = [
        json.loads(response["body"]["string"]).get("id") for _, response in saved["all", "indexed"]
    ]
    assert bodies.count("again-0") == 1 and bodies.count("again-2") == 1 and "new" in bodies
    assert len(bodies) == (3 if drop_unused else 5)  # two loaded kept, two replaced, one new


def answer_with(marker: str) -> dict[str, Any]:
    body = json.dumps({"id": marker, "choices": []})
    return {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": body}}
