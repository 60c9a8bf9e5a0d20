"""Replay without the HTTP stack gives what replay through vcrpy and the openai client gives.

In ``--ft-record-mode=none`` the plugin answers straight from the cassette
(:mod:`pytest_ftclass.asking.replay`).  Here every group of a suite is replayed
both ways, with the same shape and client options, and the predictions (labels,
log-probabilities, usage, finish reasons and error messages alike) must be equal:
on the example suite's committed cassettes, on cassettes recorded through a
proxy that spoils answers and echoes credentials, and on a hand-broken one.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.asking.predict import predict
from pytest_ftclass.asking.replay import replay
from pytest_ftclass.cases.sources import Case, load_cases
from pytest_ftclass.options import Settings
from pytest_ftclass.recording.names import cassette_path
from pytest_ftclass.recording.replay import CassetteReplay
from pytest_ftclass.running.credentials import client_options
from pytest_ftclass.running.evaluation import Evaluation
from tests.faults import FaultProxy
from tests.helpers import SEPARATOR, ask_every_case, validation_lines, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_suite"
COMPLETIONS_MODEL = "ft:babbage-002:acme::abc123"
CHAT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::xyz789"


def both_ways(
    settings: Settings, sources: dict[str, list[Case]], models: list[str]
) -> list[tuple[Any, Any]]:
    """(direct, through vcrpy) predictions of every group of ``sources`` × ``models``."""
    evaluation = Evaluation(settings, environ={})
    for source, cases in sources.items():
        for model in models:
            evaluation.plan(source, cases, model, cases)
    pairs = []
    for group in evaluation.groups.values():
        shape = evaluation.shape_of(group)
        assert not isinstance(shape, str), shape
        client = client_options(group.model, settings, {}, lambda model: "unused")
        path = evaluation.recorder.path_for(group.source, group.model)
        cases = list(group.selected.values())
        common = {"batch_size": settings.batch_size, "source_cases": group.source_cases}
        direct = replay(
            cases, shape, client, CassetteReplay.read(evaluation.recorder, path), **common
        )
        recorder = evaluation.recorder
        with recorder.use(path) as cassette:
            through_vcrpy = predict(
                cases,
                shape,
                client,
                **common,
                page_recorded=functools.partial(recorder.can_replay, cassette),
                replayed=lambda _url, _body: True,
                describe_error=lambda error: str(error),
            )
        pairs.append((direct, through_vcrpy))
    return pairs


def assert_same(pairs: list[tuple[Any, Any]]) -> None:
    for direct, through_vcrpy in pairs:
        assert list(direct) == list(through_vcrpy)
        for case_id, prediction in direct.items():
            other = through_vcrpy[case_id]
            if prediction.ok or other.ok:
                assert prediction == other, case_id
            else:  # both failed: the vcrpy path's error text comes from vcrpy's exception
                assert prediction.error and other.error, case_id


def test_the_example_suites_cassettes_replay_the_same_both_ways() -> None:
    data = EXAMPLE / "data"
    if not (data / "bbc_topic.cases.jsonl").is_file():
        subprocess.run(
            [sys.executable, "-c", "from build_data import build_example_data as b; b('data')"],
            cwd=EXAMPLE,
            check=True,
        )
    settings = Settings(
        record_mode="none",
        cassette_dir=EXAMPLE / "cassettes",
        rootdir=EXAMPLE,
        reference_train=data / "bbc_topic.train.jsonl",
        batch_size=20,
    )
    topic = {
        f"data/{name}": load_cases(data / name, name=f"data/{name}")
        for name in ("bbc_topic.cases.jsonl", "bbc_topic_chat.cases.jsonl")
    }
    pairs = both_ways(settings, topic, ["local", "local@0.1"])
    csv = "data/bbc_sport.valid.csv"
    sport = {csv: load_cases(data / "bbc_sport.valid.csv", name=csv)}
    pairs += both_ways(settings, sport, ["local:data/bbc_sport.train.jsonl"])
    assert len(pairs) == 5 and sum(len(direct) for direct, _ in pairs) == 2 * 271 + 211
    assert all(p.ok for direct, _ in pairs for p in direct.values())
    assert_same(pairs)


@pytest.fixture
def proxy(reference_server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(reference_server.base_url, lifetime_s=60) as running:
        yield running


@pytest.mark.parametrize("model", [COMPLETIONS_MODEL, CHAT_MODEL])
def test_spoiled_echoed_and_missing_answers_replay_the_same_both_ways(
    tmp_path: Path, proxy: FaultProxy, model: str
) -> None:
    lines = validation_lines(per_class=4)
    texts = [json.dumps(str(line["prompt"]).removesuffix(SEPARATOR))[1:-1] for line in lines]
    for fault, n in [
        ("server_error", 0),  # never recorded: missing on replay
        ("out_of_set", 1),
        ("no_logprobs", 2),
        ("content_filter", 3),
        ("echo_in_answer", 4),
        ("echo_credentials", 5),
    ]:
        proxy.add(fault, match=texts[n])
    path = write_jsonl(tmp_path / "valid.cases.jsonl", lines)
    cases = load_cases(path, name="valid.cases.jsonl")
    settings = Settings(
        base_url=proxy.base_url,
        record_mode="once",
        cassette_dir=tmp_path / "cassettes",
        rootdir=tmp_path,
        batch_size=1,
        max_retries=0,
    )
    evaluation = Evaluation(settings, environ={"OPENAI_API_KEY": "sk-canary-0123456789abcdef"})
    recorded = ask_every_case(evaluation, "valid.cases.jsonl", cases, model)
    assert sum(not p.ok for p in recorded.values()) >= 2  # the 500 and the filtered answer

    replaying = Settings(
        record_mode="none", cassette_dir=tmp_path / "cassettes", rootdir=tmp_path, batch_size=1
    )
    pairs = both_ways(replaying, {"valid.cases.jsonl": cases}, [model])
    assert_same(pairs)
    ((direct, _),) = pairs
    assert "does not hold this request" in str(direct[cases[0].id].error)
    for case in cases[1:]:  # every answered case replays as it was recorded
        assert direct[case.id].label == recorded[case.id].label


def test_a_corrupt_interaction_is_named_both_ways(tmp_path: Path, reference_server: Any) -> None:
    lines = validation_lines(per_class=1)
    path = write_jsonl(tmp_path / "valid.cases.jsonl", lines)
    cases = load_cases(path, name="valid.cases.jsonl")
    recording = Settings(
        base_url=reference_server.base_url,
        record_mode="once",
        cassette_dir=tmp_path / "cassettes",
        rootdir=tmp_path,
        batch_size=1,
    )
    evaluation = Evaluation(recording, environ={})
    ask_every_case(evaluation, "valid.cases.jsonl", cases, COMPLETIONS_MODEL)
    file = cassette_path(tmp_path / "cassettes", "valid.cases.jsonl", COMPLETIONS_MODEL)
    data = json.loads(file.read_text(encoding="utf-8"))
    data["interactions"][1]["response"]["status"] = {"code": 500, "message": "Server Error"}
    file.write_text(json.dumps(data), encoding="utf-8")

    replaying = Settings(
        record_mode="none", cassette_dir=tmp_path / "cassettes", rootdir=tmp_path, batch_size=1
    )
    ((direct, through_vcrpy),) = both_ways(
        replaying, {"valid.cases.jsonl": cases}, [COMPLETIONS_MODEL]
    )
    failed = [case_id for case_id, p in direct.items() if not p.ok]
    assert len(failed) == 1
    assert "corrupt interaction 2 (recorded with status 500)" in str(direct[failed[0]].error)
    assert not through_vcrpy[failed[0]].ok
    assert {k: v for k, v in direct.items() if v.ok} == {
        k: v for k, v in through_vcrpy.items() if v.ok
    }


def test_a_replay_imports_neither_the_sdk_nor_httpx_nor_vcrpy(
    pytester: pytest.Pytester, reference_server: Any
) -> None:
    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=2))
    record = pytester.runpytest_subprocess(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
    )
    record.assert_outcomes(passed=6)
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            loaded = sorted(m for m in ("openai", "httpx", "httpx2", "vcr") if m in sys.modules)
            (config.rootpath / "loaded.txt").write_text(" ".join(loaded))
        """
    )
    replayed = pytester.runpytest_subprocess(f"--ft-model={COMPLETIONS_MODEL}")
    replayed.assert_outcomes(passed=6)
    assert (pytester.path / "loaded.txt").read_text() == ""
