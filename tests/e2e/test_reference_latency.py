"""The reference server's injected latency: each answer waits, concurrent ones side by side."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from pytest_ftclass.reference import ReferenceServer

LATENCY = 0.2


def ask(base_url: str) -> float:
    client = openai.OpenAI(base_url=base_url, api_key="sk-local", max_retries=0)
    started = time.perf_counter()
    reply = client.completions.create(
        model="any", prompt=["goal match\n\n###\n\n"], max_tokens=1, logprobs=3
    )
    assert reply.choices[0].text.startswith(" ")
    client.close()
    return time.perf_counter() - started


def test_no_latency_by_default(classifier) -> None:
    with ReferenceServer(lambda model: classifier) as server:
        assert server.latency_s == 0.0
        assert ask(server.base_url) < LATENCY


def test_each_answer_waits_the_latency(classifier) -> None:
    with ReferenceServer(lambda model: classifier, latency_s=LATENCY) as server:
        before = time.monotonic()
        assert ask(server.base_url) >= LATENCY
        after = time.monotonic()
        [record] = server.requests
    assert record.status == 200
    # the log says when the request was taken up and when its answer was ready
    assert before <= record.received_at <= record.received_at + LATENCY <= record.answered_at
    assert record.answered_at <= after


def test_concurrent_requests_wait_side_by_side(classifier) -> None:
    with ReferenceServer(lambda model: classifier, latency_s=LATENCY) as server:
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            each = list(pool.map(lambda _: ask(server.base_url), range(4)))
        elapsed = time.perf_counter() - started
    assert min(each) >= LATENCY
    assert elapsed < 4 * LATENCY  # not one after the other


def test_negative_latency_is_refused(classifier) -> None:
    with pytest.raises(ValueError, match="latency_s"):
        ReferenceServer(lambda model: classifier, latency_s=-1)
    with pytest.raises(ValueError, match="latency_spread"):
        ReferenceServer(lambda model: classifier, latency_spread=-0.5)


def test_spread_waits_are_log_normal_around_the_latency(classifier) -> None:
    server = ReferenceServer(lambda model: classifier, latency_s=0.3, latency_spread=0.6)
    waits = [server.wait() for _ in range(4000)]
    logs = sorted(math.log(w / 0.3) for w in waits)
    assert abs(logs[len(logs) // 2]) < 0.05  # the median is the latency
    sd = math.sqrt(sum(x * x for x in logs) / len(logs))
    assert sd == pytest.approx(0.6, rel=0.05)
    again = ReferenceServer(lambda model: classifier, latency_s=0.3, latency_spread=0.6)
    assert [again.wait() for _ in range(5)] == waits[:5]  # a run's waits repeat


def test_a_spread_answer_waits_its_draw(classifier) -> None:
    with ReferenceServer(lambda model: classifier, latency_s=0.1, latency_spread=0.5) as server:
        expected = ReferenceServer(lambda model: classifier, latency_s=0.1, latency_spread=0.5)
        ask(server.base_url)
        [record] = server.requests
    assert record.answered_at - record.received_at >= expected.wait()
