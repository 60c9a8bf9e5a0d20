"""Reading ahead: the rest of a group is asked for while the items whose answers are in run.

The conftest written into each run makes every case item take 50 ms and logs
when it ran (``time.monotonic()``, the clock of the reference server's request
log), so the tests can say which came first: an item or a request.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.options import Settings
from pytest_ftclass.recording.names import cassette_path
from pytest_ftclass.running.evaluation import Evaluation
from pytest_ftclass.running.read_ahead import ReadAhead

from .conftest import validation_lines, write_jsonl
from .faults import FaultProxy

MODEL = "ft:babbage-002:acme::abc123"
CASES = 24  # batch 2, concurrency 1: windows of 8 and 16 cases
CASSETTE = cassette_path(Path("cassettes"), "valid.cases.jsonl", MODEL)

SLOW_ITEMS = """
import json, time
import pytest
from pytest_ftclass.plugin import CaseItem

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    if isinstance(item, CaseItem):
        time.sleep(0.05)
        with open("items.log", "a") as log:
            log.write(json.dumps([item.case.id, time.monotonic()]) + "\\n")
"""


def run(pytester: pytest.Pytester, server: Any, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "-p",
        "no:cacheprovider",
        f"--ft-model={MODEL}",
        f"--ft-base-url={server.base_url}",
        "--ft-record-mode=once",
        "--ft-batch-size=2",
        "--ft-concurrency=1",
        *args,
    )


def slow_suite(pytester: pytest.Pytester) -> list[dict[str, object]]:
    """The case file (its lines returned) and the conftest that slows case items down."""
    lines = validation_lines(per_class=CASES // 3)
    write_jsonl(pytester.path / "valid.cases.jsonl", lines)
    pytester.makeconftest(SLOW_ITEMS)
    return lines


def item_times(pytester: pytest.Pytester) -> dict[str, float]:
    lines = (pytester.path / "items.log").read_text().splitlines()
    return dict(json.loads(line) for line in lines)


def test_later_windows_are_asked_for_while_the_items_of_the_first_run(
    pytester: pytest.Pytester, reference_server: Any
) -> None:
    lines = slow_suite(pytester)

    result = run(pytester, reference_server)

    result.assert_outcomes(passed=CASES)
    requests = sorted(reference_server.requests, key=lambda r: r.received_at)
    # every case asked once, two per request
    assert [r.inputs for r in requests] == [2] * (CASES // 2)
    ran = item_times(pytester)
    first_window = [line["id"] for line in lines[:8]]
    # the second window's first request came in while the first window's items ran
    assert requests[4].received_at < ran[first_window[-1]]
    cassette = pytester.path / CASSETTE
    assert len(json.loads(cassette.read_text())["interactions"]) == CASES // 2
    assert not cassette.with_name(cassette.name + ".incomplete").exists()

    replayed = pytester.runpytest(
        "-p", "no:cacheprovider", f"--ft-model={MODEL}", "--ft-batch-size=2"
    )
    replayed.assert_outcomes(passed=CASES)


def test_an_item_waits_for_its_own_answer_only(
    pytester: pytest.Pytester, reference_server: Any
) -> None:
    """With a slow model, items run as their answers come, not when their window's are in."""
    lines = slow_suite(pytester)

    with FaultProxy(reference_server.base_url, slow_s=0.3) as proxy:
        proxy.add("slow")  # 0.3 s a request, one at a time: 3.6 s in all
        result = run(pytester, proxy)
        arrivals = sorted(record.arrived for record in proxy.log)

    result.assert_outcomes(passed=CASES)
    ran = item_times(pytester)
    assert len(arrivals) == CASES // 2
    assert ran[lines[0]["id"]] < arrivals[2]  # before its own window's answers were all in
    assert ran[lines[8]["id"]] < arrivals[-1]  # before the last request was even sent


def test_no_window_is_read_ahead_while_another_test_runs(
    pytester: pytest.Pytester, reference_server: Any
) -> None:
    """A test that is not a case item may send HTTP: it waits for the window in flight."""
    write_jsonl(pytester.path / "a.cases.jsonl", validation_lines(per_class=CASES // 3))
    pytester.makeconftest(SLOW_ITEMS)
    pytester.makepyfile(
        test_b="""
        import threading

        def test_runs_alone():
            names = [thread.name for thread in threading.enumerate()]
            assert "ftclass-read-ahead" not in names
        """
    )
    # -p no:randomly keeps the order: the cases, then the test; the windows end with the cases.
    result = run(pytester, reference_server, "--ft-batch-size=2", "-p", "no:randomly")
    result.assert_outcomes(passed=CASES + 1)


def test_a_run_stopped_early_cancels_what_is_read_ahead(
    pytester: pytest.Pytester, reference_server: Any
) -> None:
    """``-x`` stops at the first failure: the requests read ahead are cancelled, not waited for."""
    lines = validation_lines(per_class=CASES // 3)
    other = lines[-1]["completion"]  # another class: the first case fails at once
    lines[0] = {**lines[0], "completion": other, "critical": True}
    write_jsonl(pytester.path / "valid.cases.jsonl", lines)
    pytester.makeconftest(SLOW_ITEMS)

    with FaultProxy(reference_server.base_url, slow_s=0.3) as proxy:
        proxy.add("slow")  # the 12 requests would take 3.6 s
        result = run(pytester, proxy, "-x")

    result.assert_outcomes(failed=1)
    assert "ftclass-read-ahead" not in [t.name for t in threading.enumerate()]
    cassette = pytester.path / CASSETTE
    recorded = json.loads(cassette.read_text())["interactions"]
    assert 1 <= len(recorded) < CASES // 2  # the answers in when it stopped, no more
    assert cassette.with_name(cassette.name + ".incomplete").exists()  # the next run completes it


def test_stop_cancels_a_fetch_in_flight() -> None:
    started = threading.Event()

    def fetch(stop: threading.Event, progress: Any, publish: Any) -> dict[str, str]:
        started.set()
        stop.wait(30)
        raise RuntimeError("cancelled")

    ahead = ReadAhead(fetch)
    started.wait(5)
    began = time.monotonic()
    ahead.cancel()
    assert not ahead.running and time.monotonic() - began < 5
    with pytest.raises(RuntimeError, match="cancelled"):
        ahead.result()


def test_progress_is_shown_only_while_an_item_waits() -> None:
    second = threading.Event()

    def fetch(stop: threading.Event, progress: Any, publish: Any) -> None:
        progress(1)
        publish({"a": 1})
        second.wait(5)
        progress(1)
        publish({"b": 2})

    ahead = ReadAhead(fetch)
    shown: list[int] = []
    assert ahead.wait_for("a", shown.append)
    time.sleep(0.3)  # "b" is not asked for yet: "a" is in, nothing is waited for
    assert ahead.wait_for("a", shown.append)
    assert shown in ([], [1])  # at most what came in while "a" was waited for
    before = len(shown)
    threading.Timer(0.3, second.set).start()
    assert ahead.wait_for("b", shown.append)  # a wait: the counts are handed on
    ahead.result(shown.append)
    assert before < len(shown) and sum(shown) == 2


def test_replay_and_batches_are_never_read_ahead(tmp_path: Path) -> None:
    from pytest_ftclass.cases.sources import Case

    cases = [Case(f"c{i}", f"text {i}", "a") for i in range(40)]
    for settings in (Settings(record_mode="none"), Settings(record_mode="once", batch_api=True)):
        evaluation = Evaluation(settings)
        evaluation.plan("s", cases, MODEL, cases)
        group = evaluation.group_of("s", MODEL, cases[0])
        assert evaluation._window(group, cases[0]) == cases  # one window: nothing follows
        evaluation._read_ahead(group, cases)
        assert evaluation._ahead is None


def test_the_cassette_is_saved_at_the_ends_of_the_windows() -> None:
    """Reading ahead saves after a window's worth of answers, then twice as many more, and on."""
    from pytest_ftclass.results import Prediction
    from pytest_ftclass.running.evaluation import _SavePoints

    published: list[str] = []
    saves: list[int] = []

    class Cassette:
        def save(self) -> None:
            saves.append(len(published))

    evaluation = Evaluation(Settings(batch_size=2, concurrency=1, record_mode="once"))
    points = _SavePoints(
        Cassette(), lambda answers: published.extend(answers), evaluation._first_window
    )
    for request in range(60):  # two cases a request
        points({f"c{2 * request}": Prediction("a"), f"c{2 * request + 1}": Prediction("a")})
    assert saves == [8, 24, 56, 120]  # the first window holds 8 cases, then 16, 32, 64
