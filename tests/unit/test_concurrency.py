"""Adaptive concurrency: slow start, additive increase, multiplicative decrease, rate-limit headers.

Driven by a clock the test moves, so every step is checked exactly.
"""

from __future__ import annotations

import pytest

from pytest_ftclass.asking.pacing import CEILING, START, Concurrency


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def answer(c: Concurrency, n: int, latency: float = 0.1) -> None:
    for _ in range(n):
        c.started()
        c.answered(latency)


def test_slow_start_doubles_each_round_trip_up_to_the_ceiling() -> None:
    c = Concurrency()
    assert c.limit == START == 16
    answer(c, 16)
    assert c.limit == 32
    answer(c, 32)
    assert c.limit == CEILING == 64
    answer(c, 200)
    assert c.limit == CEILING and c.peak == CEILING


def test_a_429_halves_once_per_round_trip_then_growth_is_additive() -> None:
    c = Concurrency(32)
    c.congested()
    assert c.limit == 16
    c.congested()  # the same round trip: not halved again
    assert c.limit == 16
    answer(c, 16)  # one round trip of clean answers: about one more
    assert c.limit == pytest.approx(17, abs=0.1)
    c.congested()
    assert c.limit == pytest.approx(8.5, abs=0.1)


def test_answers_slowing_down_stop_the_growth() -> None:
    c = Concurrency(16)
    answer(c, 8, latency=0.1)
    answer(c, 8, latency=0.5)  # five times the fastest: something queues
    stopped = c.limit
    answer(c, 40, latency=0.5)
    assert c.limit == stopped < 16 + 16 and not c.slow_start


def test_a_pinned_limit_never_moves() -> None:
    c = Concurrency(4, pinned=True)
    answer(c, 100)
    c.congested()
    assert c.limit == 4


def test_rate_limit_headers_hold_new_requests_before_the_limit() -> None:
    clock = Clock()
    c = Concurrency(8, clock=clock)
    for _ in range(5):
        c.started()
    assert c.may_start()
    # 3 requests left of 600 a minute (10 a second): 3 short of 5 in flight + 1
    c.rate_limit_headers(
        {"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "3",
         "x-ratelimit-reset-requests": "5s"}
    )  # fmt: skip
    assert not c.may_start()
    assert c.hold_until == pytest.approx(0.3)  # 3 requests at 10 a second
    clock.now = 0.31
    assert c.may_start()


def test_tokens_are_held_at_the_pace_the_run_spends_them() -> None:
    clock = Clock()
    c = Concurrency(4, clock=clock)
    c.started()
    headers = {"x-ratelimit-limit-tokens": "60000", "x-ratelimit-reset-tokens": "1s"}
    c.rate_limit_headers({**headers, "x-ratelimit-remaining-tokens": "10000"})
    c.rate_limit_headers({**headers, "x-ratelimit-remaining-tokens": "9000"})  # 1000 an answer
    assert c.may_start() and c.hold_until == 0
    c.rate_limit_headers({**headers, "x-ratelimit-remaining-tokens": "1500"})  # needs 2 × ~2500
    assert not c.may_start() and c.hold_until > 0
