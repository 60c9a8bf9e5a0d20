"""The helper process that loads scikit-learn while the cases run, then computes the metrics."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import pytest

from pytest_ftclass import metrics_process
from pytest_ftclass.metrics import metrics_of_groups
from pytest_ftclass.metrics_process import MetricsProcess
from pytest_ftclass.results import CaseResult

from .conftest import SEPARATOR, validation_lines, write_jsonl
from .test_reports import recompute

MODEL = "ft:babbage-002:acme::abc123"

# Writes whether scikit-learn was loaded in the pytest process, and the helper's pid.
REPORT_PROCESSES = """
import json, sys
import pytest
from pytest_ftclass.plugin import COLLECTOR

@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    helper = session.config.stash[COLLECTOR].metrics_helper
    session.config.helper_pid = None if helper is None else helper.process.pid

def pytest_unconfigure(config):
    with open("processes.json", "w") as out:
        json.dump({"sklearn": "sklearn" in sys.modules, "helper": config.helper_pid}, out)
"""


def result(i: int, expected: str, predicted: str | None, **fields: Any) -> CaseResult:
    return CaseResult(
        f"c{i}",
        f"t::c{i}",
        fields.pop("source", "valid.jsonl"),
        fields.pop("model", "ft:a"),
        "completions",
        expected,
        predicted,
        labels=["sport", "tech", "politics"],
        **fields,
    )


def groups() -> list[list[CaseResult]]:
    first = [
        result(0, "sport", "sport", logprobs={"sport": -0.1, "tech": -2.5}, tags=["short"]),
        result(1, "sport", "tech", logprobs={"tech": -0.4, "sport": -1.2}, latency_s=0.2),
        result(2, "tech", "tech", usage={"prompt_tokens": 9, "total_tokens": 10}),
        result(3, "politics", "weather"),  # out of the label set
        result(4, "politics", None, error="HTTP 500"),
    ]
    second = [
        result(5, "tech", "politics", source="other.jsonl", model="ft:b"),
        result(6, "politics", "politics", source="other.jsonl", model="ft:b"),
    ]
    return [first, second, first + second]


def test_the_helper_computes_what_this_process_computes() -> None:
    helper = MetricsProcess.spawn()
    assert helper is not None
    wanted = groups()
    assert helper.metrics_of(wanted, positive_class=None) == metrics_of_groups(wanted)
    again = wanted[:2]  # a second request: a comparison's, say
    assert helper.metrics_of(again, positive_class="tech") == metrics_of_groups(
        again, positive_class="tech"
    )
    helper.close()
    assert helper.process.returncode == 0  # its input closed: it exited by itself


def test_the_helper_outlives_ctrl_c_to_answer_for_the_partial_report() -> None:
    helper = MetricsProcess.spawn()
    assert helper is not None
    time.sleep(0.5)  # Python is up, and its handlers set
    helper.process.send_signal(signal.SIGINT)  # Ctrl-C reaches the whole process group
    wanted = groups()
    assert helper.metrics_of(wanted) == metrics_of_groups(wanted)
    helper.close()
    assert helper.process.returncode == 0


def test_a_dead_helper_leaves_the_metrics_to_this_process() -> None:
    helper = MetricsProcess.spawn()
    assert helper is not None
    helper.process.kill()
    helper.process.wait()
    wanted = groups()
    assert helper.metrics_of(wanted) == metrics_of_groups(wanted)


def test_no_helper_where_it_would_save_no_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "sklearn" in sys.modules  # loaded by this test run
    assert MetricsProcess.start(100) is None
    monkeypatch.delitem(sys.modules, "sklearn")
    monkeypatch.setattr(metrics_process, "_cpus", lambda: 1)
    assert MetricsProcess.start(100) is None
    monkeypatch.setattr(metrics_process, "_cpus", lambda: 2)
    assert MetricsProcess.start(0) is None
    assert MetricsProcess.start(metrics_process.MAX_CASES + 1) is None
    helper = MetricsProcess.start(metrics_process.MAX_CASES)
    assert helper is not None
    helper.close()
    assert helper.process.returncode is not None


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_run_loads_scikit_learn_only_in_the_helper(
    pytester: pytest.Pytester, reference_server: Any
) -> None:
    lines = validation_lines(per_class=2)
    tricky = {"id": "tricky", "prompt": "goal match striker" + SEPARATOR, "completion": " tech"}
    lines.append(tricky)
    write_jsonl(pytester.path / "valid.cases.jsonl", lines)
    pytester.makeconftest(REPORT_PROCESSES)
    run = pytester.runpytest_subprocess(
        f"--ft-model={MODEL}",
        f"--ft-compare={MODEL}-b",  # the comparison's metrics come from the helper too
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
        "-p",
        "no:cacheprovider",
    )
    run.assert_outcomes(passed=2 * (len(lines) - 1))  # and "tricky" mispredicted, twice
    processes = json.loads((pytester.path / "processes.json").read_text())
    if (metrics_process._cpus()) < 2:
        pytest.skip("one CPU: no helper is started")
    assert processes["sklearn"] is False
    assert gone(processes["helper"])
    report = json.loads((pytester.path / "reports" / "ftclass.json").read_text())
    expected = recompute([c for c in report["cases"] if c["model"] == MODEL])
    overall = report["models"][0]["metrics"]
    assert overall["n_mispredicted"] == 1  # the model under test's own, never pooled
    comparison = json.loads((pytester.path / "reports" / "ftclass-compare.json").read_text())
    assert [s["metrics_a"]["n_correct"] for s in comparison["sources"]] == [len(lines) - 1]
    for key in ("n_cases", "n_scored", "n_correct", "accuracy", "macro_f1", "weighted_f1"):
        assert overall[key] == pytest.approx(expected[key]), key


def test_a_session_without_reports_leaves_no_helper_behind(pytester: pytest.Pytester) -> None:
    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=1))
    pytester.makeconftest(REPORT_PROCESSES)
    run = pytester.runpytest_subprocess(f"--ft-model={MODEL}", "--collect-only", "-q")
    assert run.ret == pytest.ExitCode.OK
    helper = json.loads((pytester.path / "processes.json").read_text())["helper"]
    if helper is None:
        pytest.skip("one CPU: no helper is started")
    assert gone(helper)  # it would still be loading scikit-learn, had it been left to itself
