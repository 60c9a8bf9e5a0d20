"""Damaged cassettes and cassette names: one clear error naming the file, nothing lost.

A cassette edited by hand or damaged (cut off, not JSON, ``{}``, ``[]``, an
interaction without its response, empty, a directory in its place) is reported
once, naming the file and what is wrong, and every case of it errors with a
pointer to that message: never a traceback.  An interaction recorded with an
error status or without an answer is "corrupt interaction N", not "missing".

Case sources whose names read the same (``a b`` and ``a_b``, ``data/x`` and
``data_x``, names differing in accents) get cassettes of their own; a cassette
recorded under the older name is still read, and recording writes the new one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_ftclass.recording.cassette_files import BrokenCassette, read_cassette
from pytest_ftclass.recording.names import cassette_path, legacy_cassette_path
from tests.helpers import read_report, validation_lines, write_jsonl

MODEL = "ft:babbage-002:acme::abc123"
ARGS = (f"--ft-model={MODEL}", "--ft-batch-size=4")  # 12 cases: 3 interactions of 4


def record(suite: pytest.Pytester, server: Any) -> Path:
    """Record ``valid.cases.jsonl`` (12 cases) and return its cassette."""
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines(per_class=4))
    suite.runpytest(
        *ARGS, f"--ft-base-url={server.base_url}", "--ft-record-mode=once"
    ).assert_outcomes(passed=12)
    path = cassette_path(suite.path / "cassettes", "valid.cases.jsonl", MODEL)
    assert len(json.loads(path.read_text(encoding="utf-8"))["interactions"]) == 3
    return path


def without_response(text: str) -> str:
    data = json.loads(text)
    del data["interactions"][1]["response"]
    return json.dumps(data)


SHAPES = {
    "truncated": (lambda text: text[: len(text) // 2], "not valid JSON at byte"),
    "invalid-json": (
        lambda text: text.replace('"interactions"', "'interactions'", 1),
        "not valid JSON at byte ",
    ),
    "empty-object": (lambda text: "{}", "no interactions list"),
    "array": (lambda text: "[]", "no interactions list"),
    "no-response": (without_response, "interaction 2 has no response"),
    "empty-file": (lambda text: "", "the file is empty"),
    "not-utf8": (lambda text: "\udcff" + text, "not UTF-8 at byte 0"),
    "directory": (None, "a directory is in its place"),
}


def damage(path: Path, shape: str) -> None:
    change, _ = SHAPES[shape]
    if change is None:
        path.unlink()
        (path / "something").mkdir(parents=True)
        return
    text = path.read_text(encoding="utf-8")
    path.write_bytes(change(text).encode("utf-8", errors="surrogateescape"))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_broken_cassette_is_one_error_naming_the_file(
    suite: pytest.Pytester, reference_server: Any, shape: str
) -> None:
    path = record(suite, reference_server)
    damage(path, shape)
    _, problem = SHAPES[shape]

    result = suite.runpytest(*ARGS)  # replay
    result.assert_outcomes(errors=12)
    output = "\n".join(result.outlines + result.errlines)
    for trace in ("Traceback", "JSONDecodeError", "KeyError", "TypeError", "vcr/"):
        assert trace not in output
    report = read_report(suite)
    errors = [case["error"] for case in report["cases"]]
    assert all(str(path) in error for error in errors), errors  # each names the file
    explained = [error for error in errors if problem in error]
    assert len(explained) == 1, errors  # the problem is told once, the others point to it
    assert all("see case" in error for error in errors if error not in explained)
    # the first case of the file carries the explanation, in the terminal as in the report
    assert any(problem in line and "sport-0" in line for line in result.outlines)
    assert len(result.outlines) < 150


@pytest.mark.parametrize("mode", ["once", "new_episodes"])
def test_a_broken_cassette_is_neither_asked_for_nor_overwritten_when_recording(
    suite: pytest.Pytester, reference_server: Any, mode: str
) -> None:
    path = record(suite, reference_server)
    damage(path, "truncated")
    before = path.read_bytes()
    reference_server.reset_log()
    result = suite.runpytest(
        *ARGS, f"--ft-base-url={reference_server.base_url}", f"--ft-record-mode={mode}"
    )
    result.assert_outcomes(errors=12)
    assert reference_server.requests == []
    assert path.read_bytes() == before
    report = read_report(suite)
    assert all(f"cassette {path} cannot be used" in case["error"] for case in report["cases"])


@pytest.mark.parametrize(
    ("spoil", "why"),
    [
        ({"status": {"code": 500, "message": "Internal Server Error"}}, "recorded with status 500"),
        ({"body": {"string": None}}, "its body is not an answer"),
        ({"body": {"string": '{"error": "nothing"}'}}, "its body is not an answer"),
    ],
    ids=["status-500", "null-body", "no-choices"],
)
def test_a_corrupt_interaction_is_named_not_called_missing(
    suite: pytest.Pytester, reference_server: Any, spoil: dict[str, Any], why: str
) -> None:
    path = record(suite, reference_server)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["interactions"][1]["response"].update(spoil)
    path.write_text(json.dumps(data), encoding="utf-8")

    result = suite.runpytest(*ARGS)
    result.assert_outcomes(passed=8, errors=4)  # the second page's four cases
    report = read_report(suite)
    errors = {case["error"] for case in report["cases"] if case["error"]}
    assert errors == {
        f"cassette {path}: corrupt interaction 2 ({why}); "
        "record it again by running pytest with --ft-record-mode=new_episodes"
    }
    # and so it is: new_episodes asks for that page again, and the cassette heals
    reference_server.reset_log()
    suite.runpytest(
        *ARGS, f"--ft-base-url={reference_server.base_url}", "--ft-record-mode=new_episodes"
    ).assert_outcomes(passed=12)
    assert len(reference_server.requests) == 1
    reference_server.stop()
    suite.runpytest(*ARGS).assert_outcomes(passed=12)


# -- names -------------------------------------------------------------------------

COLLIDING = [
    "a b.cases.jsonl",
    "a_b.cases.jsonl",
    "data/x.cases.jsonl",
    "data_x.cases.jsonl",
    "caf\u00e9.cases.jsonl",
    "caf\u00e8.cases.jsonl",
]


def test_case_files_whose_names_read_the_same_record_and_replay_all_their_cases(
    suite: pytest.Pytester, reference_server: Any
) -> None:
    for seed, name in enumerate(COLLIDING):
        write_jsonl(suite.path / name, validation_lines(per_class=1, seed=seed + 10))
    n = 3 * len(COLLIDING)
    suite.runpytest(
        *ARGS, f"--ft-base-url={reference_server.base_url}", "--ft-record-mode=once"
    ).assert_outcomes(passed=n)
    cassettes = sorted((suite.path / "cassettes").rglob("*.json"))
    assert len(cassettes) == len(COLLIDING)
    assert all(path.name.isascii() and path.parent.name.isascii() for path in cassettes)
    reference_server.stop()
    suite.runpytest(*ARGS).assert_outcomes(passed=n)


def test_a_cassette_under_its_older_name_replays_and_recording_writes_the_new_name(
    suite: pytest.Pytester, reference_server: Any, classifier: Any
) -> None:
    path = record(suite, reference_server)
    legacy = legacy_cassette_path(suite.path / "cassettes", "valid.cases.jsonl", MODEL)
    legacy.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, legacy)
    legacy_bytes = legacy.read_bytes()
    reference_server.stop()

    suite.runpytest(*ARGS).assert_outcomes(passed=12)  # replay: read from the older name
    unreachable = "--ft-base-url=http://127.0.0.1:9/v1"
    suite.runpytest(*ARGS, unreachable, "--ft-record-mode=once").assert_outcomes(passed=12)
    assert not path.exists()  # nothing was recorded, so nothing was written

    from pytest_ftclass.reference import ReferenceServer

    extra = [{**line, "id": f"extra-{i}"} for i, line in enumerate(validation_lines(1, seed=9))]
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines(per_class=4) + extra)
    with ReferenceServer(lambda model: classifier) as server:
        suite.runpytest(
            *ARGS, f"--ft-base-url={server.base_url}", "--ft-record-mode=new_episodes"
        ).assert_outcomes(passed=15)
        assert len(server.requests) == 1  # only the new page, of the three new cases
    assert path.is_file() and legacy.read_bytes() == legacy_bytes
    assert len(json.loads(path.read_text(encoding="utf-8"))["interactions"]) == 4
    legacy.unlink()
    suite.runpytest(*ARGS).assert_outcomes(passed=15)


# -- any file --------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
INTERACTION_KEYS = st.sampled_from(["request", "response", "status", "code", "body", "string"])


@settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(max_size=60)
    | JSON.map(lambda value: json.dumps(value).encode())
    | st.dictionaries(INTERACTION_KEYS, JSON, max_size=3).map(
        lambda interaction: json.dumps({"interactions": [interaction]}).encode()
    )
)
def test_any_file_is_read_or_refused_with_a_reason(raw: bytes) -> None:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "cassette.json"
    path.write_bytes(raw)
    try:
        data = read_cassette(path)
    except BrokenCassette as broken:
        assert broken.path == path and broken.problem
    else:
        assert isinstance(data["interactions"], list)
