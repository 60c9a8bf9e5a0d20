"""pytest-xdist: the same results as a single process, every request sent once."""

from __future__ import annotations

import json

import pytest

from tests.helpers import read_report, validation_lines, write_jsonl

pytest.importorskip("xdist")

COMPLETIONS_MODEL = "ft:babbage-002:acme::abc123"
CHAT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::xyz789"


def per_case(pytester: pytest.Pytester) -> tuple[list, list]:
    report = read_report(pytester)
    cases = sorted(
        (
            {k: v for k, v in c.items() if k not in ("latency_s", "replayed")}
            for c in report["cases"]
        ),
        key=lambda c: c["nodeid"],
    )
    metrics = [
        {k: v for k, v in t["metrics"].items() if "latency" not in k and k != "n_replayed"}
        for t in report["tasks"]
    ]
    return cases, metrics


def test_four_workers_match_one_process_and_send_each_request_once(
    suite: pytest.Pytester, reference_server
) -> None:
    write_jsonl(suite.path / "a.cases.jsonl", validation_lines(per_class=6))
    write_jsonl(suite.path / "b.cases.jsonl", validation_lines(per_class=3, seed=9))
    suite.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.ft_cases([{"id": f"m{i}", "input": "goal match " * i, "label": "sport"}
                               for i in range(1, 9)])
        def test_marked(ft_case, ft_prediction):
            assert ft_prediction.label == ft_case.label
        """
    )
    base = [
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
        "--ft-batch-size=4",
    ]

    single = suite.runpytest(f"--ft-model={COMPLETIONS_MODEL}", *base, "-p", "no:xdist")
    single.assert_outcomes(passed=35)
    sent_single = sorted((r.path, r.inputs) for r in reference_server.requests)
    expected = per_case(suite)

    for directory in ("cassettes", "reports"):
        for path in sorted((suite.path / directory).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    reference_server.reset_log()

    parallel = suite.runpytest(f"--ft-model={COMPLETIONS_MODEL}", *base, "-n", "4")
    parallel.assert_outcomes(passed=35)
    sent_parallel = sorted((r.path, r.inputs) for r in reference_server.requests)
    assert sent_parallel == sent_single  # no worker repeated another's request
    assert per_case(suite) == expected

    # cassettes written once, complete: the parallel run replays with the server gone
    cassettes = sorted((suite.path / "cassettes").rglob("*.json"))
    assert len(cassettes) == 3
    interactions = sum(len(json.loads(p.read_text())["interactions"]) for p in cassettes)
    assert interactions == len(sent_parallel)
    reference_server.stop()
    suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}", "--ft-batch-size=4", "-n", "4"
    ).assert_outcomes(passed=35)
    assert per_case(suite) == expected
    replayed = read_report(suite)
    assert all(c["replayed"] and c["latency_s"] is None for c in replayed["cases"])


def test_chat_under_xdist(suite: pytest.Pytester, reference_server) -> None:
    write_jsonl(suite.path / "a.cases.jsonl", validation_lines(per_class=4))
    result = suite.runpytest(
        f"--ft-model={CHAT_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
        "-n",
        "2",
    )
    result.assert_outcomes(passed=12)
    assert len(reference_server.requests) == 12
