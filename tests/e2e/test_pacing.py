"""Rate limits slow a live run down instead of failing it; a progress line counts answers."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_ftclass.asking.clients import ClientOptions
from pytest_ftclass.asking.predict import predict
from pytest_ftclass.asking.shapes import RequestShape
from pytest_ftclass.cases.sources import load_cases
from pytest_ftclass.running.progress import FetchProgress
from tests.faults import FaultProxy
from tests.helpers import validation_lines

MODEL = "ft:babbage-002:acme::abc123"


@pytest.fixture
def proxy(reference_server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(reference_server.base_url, retry_after="1") as running:
        yield running


def ask(proxy: FaultProxy, patience: float) -> dict[str, Any]:
    cases = load_cases(validation_lines(per_class=2))
    return predict(
        cases,
        RequestShape("completions", MODEL, tuple(sorted({c.label for c in cases}))),
        ClientOptions(api_key="sk-test", base_url=proxy.base_url, max_retries=0),
        batch_size=2,
        concurrency=2,
        rate_limit_wait=patience,
    )


def test_a_rate_limit_slows_the_run_down_instead_of_failing_it(proxy: FaultProxy) -> None:
    proxy.add("rate_limit", times=3)  # the SDK does not retry (max_retries=0): the pacer does
    predictions = ask(proxy, patience=10)
    assert len(predictions) == 6 and all(p.ok for p in predictions.values())
    statuses = [r.status for r in proxy.log]
    assert statuses.count(429) == 3 and statuses.count(200) == 3
    # the first round (concurrency 2) was answered 429: every later request waited for
    # Retry-After (1 s); on a busy machine the round's own two may arrive some ms apart
    arrivals = sorted(r.arrived for r in proxy.log)
    assert proxy.log[0].status == 429
    assert arrivals[2] - arrivals[0] >= 0.95


def test_beyond_its_patience_the_cases_fail(proxy: FaultProxy) -> None:
    proxy.add("rate_limit")  # always
    predictions = ask(proxy, patience=1.5)
    assert all(not p.ok and "429" in (p.error or "") for p in predictions.values())
    assert len(predictions) == 6


def test_the_collector_is_frozen_only_while_asking(proxy: FaultProxy) -> None:
    # the objects older than the requests are kept out of full collections, then given back
    cases = load_cases(validation_lines(per_class=2))
    seen: list[int] = []
    assert gc.get_freeze_count() == 0
    predictions = predict(
        cases,
        RequestShape("completions", MODEL, tuple(sorted({c.label for c in cases}))),
        ClientOptions(api_key="sk-test", base_url=proxy.base_url, max_retries=0),
        batch_size=2,
        progress=lambda _n, _pace: seen.append(gc.get_freeze_count()),
    )
    assert all(p.ok for p in predictions.values())
    assert len(seen) == 3 and min(seen) > 0  # frozen while the requests were out
    assert gc.get_freeze_count() == 0


class Screen:
    """Stands in for pytest's terminal reporter: keeps what was written.

    Like pytest's, ``ensure_newline`` ends the line only if results were written on it.
    """

    verbosity = 0

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.results_line = False

    def write_fspath_result(self, nodeid: str, result: str) -> None:
        self.lines.append(nodeid.split("::")[0] + " " + result)
        self.results_line = True

    def ensure_newline(self) -> None:
        if self.results_line:
            self.lines.append("")
            self.results_line = False

    def result(self, letter: str) -> None:
        """A result letter, written where the output ends (pytest wrote the file's name)."""
        if not self.results_line and not self.lines:
            self.write_fspath_result("valid.cases.jsonl::a", "")
        self.lines[-1] += letter

    def rewrite(self, line: str) -> None:
        self.lines[-1] = line

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def test_progress_line_counts_answers_per_group() -> None:
    from pytest_ftclass.running.evaluation import Group

    group = Group("valid.cases.jsonl", MODEL, "completions", [], ["a"])
    group.selected = {str(i): None for i in range(5)}  # type: ignore[misc]
    screen = Screen()
    progress = FetchProgress(screen)
    screen.result(".")
    progress.resume("valid.cases.jsonl::a")  # nothing was shown: the line goes on
    screen.result(".")
    progress(group, 1)
    progress(group, 1)
    progress.resume("valid.cases.jsonl::c")
    screen.result(".")
    progress(group, 3)
    assert screen.lines == [
        "valid.cases.jsonl ..",
        f"[ftclass] valid.cases.jsonl @ {MODEL}: 2/5 predictions",  # rewritten in place
        "valid.cases.jsonl .",  # results go on a new line, never over the progress
        f"[ftclass] valid.cases.jsonl @ {MODEL}: 5/5 predictions",
        "",
    ]


def test_no_progress_line_in_replay_or_off_a_terminal(pytester: pytest.Pytester) -> None:
    from pytest_ftclass.running.progress import progress_for

    config = pytester.parseconfigure()
    assert progress_for(config, live=False) is None  # replay sends nothing
    assert progress_for(config, live=True) is None  # pytester's output is not a terminal


# -- adaptive concurrency, against the reference server ---------------------------------


def peak_in_flight(records: list[Any]) -> int:
    """Most requests the server was handling at once, from its log."""
    events = sorted(
        [(r.received_at, 1) for r in records] + [(r.answered_at, -1) for r in records],
        key=lambda event: (event[0], event[1]),
    )
    peak = current = 0
    for _, change in events:
        current += change
        peak = max(peak, current)
    return peak


def ask_chat(server: Any, n_per_class: int, **kwargs: Any) -> dict[str, Any]:
    cases = load_cases(validation_lines(per_class=n_per_class))
    return predict(
        cases,
        RequestShape("chat", "ft:gpt-4o-mini:acme::x", tuple(sorted({c.label for c in cases}))),
        ClientOptions(api_key="sk-test", base_url=server.base_url, max_retries=2),
        **kwargs,
    )


def test_the_concurrency_grows_from_16_while_answers_come_back_clean(classifier: Any) -> None:
    from pytest_ftclass.reference import ReferenceServer

    with ReferenceServer(lambda model: classifier, latency_s=0.1) as server:
        predictions = ask_chat(server, 100)  # 300 chat requests, adaptive
        adaptive = peak_in_flight(server.requests)
        server.reset_log()
        ask_chat(server, 30, concurrency=4)  # pinned
        pinned = peak_in_flight(server.requests)
    assert all(p.ok for p in predictions.values())
    assert adaptive > 24  # started at 16, grew
    assert pinned <= 4


def test_a_rate_limited_server_slows_the_run_without_one_error(classifier: Any) -> None:
    from pytest_ftclass.reference import ReferenceServer
    from pytest_ftclass.reference.limits import RateLimits

    limits = RateLimits(requests_per_second=40)
    with ReferenceServer(lambda model: classifier, latency_s=0.02, limits=limits) as server:
        predictions = ask_chat(server, 40, rate_limit_wait=60)  # 120 requests, 3 s at 40/s
        answered = [r for r in server.requests if r.status == 200]
    assert all(p.ok for p in predictions.values()), [p.error for p in predictions.values()]
    assert len(answered) == 120
    span = max(r.answered_at for r in answered) - min(r.received_at for r in answered)
    # the bucket starts full (40): the other 80 come at 40 a second, no faster
    assert span >= 80 / 40 * 0.9
