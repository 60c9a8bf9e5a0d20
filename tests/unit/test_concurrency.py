"""Adaptive concurrency: slow start, additive increase, multiplicative decrease, rate-limit headers.

Driven by a clock the test moves, so every step is checked exactly; then the
line of requests waiting for a slot (first come first served, cancellation,
holds).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random

import pytest

from pytest_ftclass.asking.pacing import CEILING, START, WINDOW, Concurrency, Turns


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


def serve(c: Concurrency, clock: Clock, answers: int, latency: float, capacity: float) -> None:
    """Answer requests one by one, ``c.limit`` in flight, from a server of ``capacity``
    answers a second that takes ``latency`` when nothing queues (Little's law beyond)."""
    for _ in range(answers):
        while c.may_start():
            c.started()
        rate = min(capacity, c.in_flight / latency)
        clock.now += 1 / rate
        c.answered(c.in_flight / rate)


def test_more_in_flight_than_the_rate_supports_stops_the_growth_and_shrinks_back() -> None:
    clock = Clock()
    c = Concurrency(clock=clock)
    serve(c, clock, 3000, latency=0.1, capacity=300)  # 30 in flight are all it takes
    assert not c.slow_start
    # slow start overshoots (a window's answers are judged once they are in), then it
    # shrinks back to where the rate is at least 0.8 of what the requests in flight
    # would give at the lowest median latency seen (0.1 s, or a little more)
    assert 30 <= c.limit <= 30 / 0.8 * 1.1 < c.peak < CEILING


def test_a_server_that_keeps_up_lets_it_grow_to_the_ceiling() -> None:
    clock = Clock()
    c = Concurrency(clock=clock)
    serve(c, clock, 2000, latency=0.1, capacity=10_000)
    assert c.limit == CEILING


def simulate(
    seed: int, requests: int, median: float, spread: float, capacity: float | None = None
) -> tuple[float, Concurrency, list[float]]:
    """Requests as the pacer sends them, one event at a time, to a server whose latencies
    are log-normal around ``median`` (σ ``spread``); with a ``capacity`` (answers a second)
    it serves them in turn as well.  The time the last answer came, and the limit after
    each answer."""
    rng = random.Random(seed)
    clock = Clock()
    c = Concurrency(clock=clock)
    pending: list[tuple[float, float, int]] = []  # (answered at, sent at, number)
    sent, free_at, limits = 0, 0.0, []
    while len(limits) < requests:
        while sent < requests and c.may_start():
            number, sent = c.started(), sent + 1
            done = clock.now + median * math.exp(spread * rng.gauss(0.0, 1.0))
            if capacity is not None:
                free_at = max(free_at, clock.now) + 1 / capacity
                done = max(done, free_at)
            heapq.heappush(pending, (done, clock.now, number))
        clock.now, sent_at, number = heapq.heappop(pending)
        c.answered(clock.now - sent_at, number)
        limits.append(c.limit)
    return clock.now, c, limits


@pytest.mark.parametrize("spread", [0.0, 0.3, 0.6, 0.9])
def test_widely_spread_latencies_are_not_taken_for_queueing(spread: float) -> None:
    # a real API answers in times that vary a lot; none of it is a queue, so all 64 go out
    took, _, limits = simulate(7, 4000, median=0.5, spread=spread)
    assert min(limits[len(limits) // 4 :]) >= 0.95 * CEILING  # a chance hold, at most
    ideal = 4000 * 0.5 * math.exp(spread * spread / 2) / CEILING  # the mean latency, 64 at once
    assert took < 1.1 * ideal + 2 * 0.5 * math.exp(2 * spread)  # and the slowest last answers


def test_the_baseline_counts_the_first_requests_slow_ones_too() -> None:
    # the first answers in are the fast ones; the baseline waits for the first WINDOW sent
    c = Concurrency()
    numbers = [c.started() for _ in range(WINDOW + 20)]
    slow, fast = numbers[:20], numbers[20:]
    for number in fast:  # WINDOW answers in, 0.1 s each
        c.answered(0.1, number)
    assert c.baseline is None  # 20 of the first WINDOW have not ended
    for number in slow:
        c.answered(5.0, number)
    assert c.baseline == 5.0  # 20 of the first 32 took 5 s


def test_a_server_of_fixed_capacity_is_not_kept_waiting() -> None:
    # 300 answers a second at 0.1 s: 30 in flight suffice; beyond, requests only queue
    took, _, limits = simulate(3, 6000, median=0.1, spread=0.2, capacity=300)
    assert took < 1.05 * 6000 / 300
    settled = limits[len(limits) // 2 :]
    assert 30 <= sum(settled) / len(settled) <= 45 and max(settled) < CEILING


def test_a_pinned_limit_never_moves() -> None:
    c = Concurrency(4, pinned=True)
    answer(c, 100)
    c.congested()
    assert c.limit == 4


def test_near_the_request_limit_starts_are_paced_at_its_refill_rate() -> None:
    clock = Clock()
    c = Concurrency(8, clock=clock)
    for _ in range(5):
        c.started()
    assert c.may_start()
    # 3 requests left of 600 a minute (10 a second): short of 5 in flight + 1
    headers = {"x-ratelimit-limit-requests": "600", "x-ratelimit-reset-requests": "5s"}
    c.rate_limit_headers({**headers, "x-ratelimit-remaining-requests": "3"})
    assert not c.may_start()
    clock.now = 0.1  # one start every 0.1 s, counted from the last one
    assert c.may_start()
    c.started()
    clock.now = 0.19
    assert not c.may_start()
    clock.now = 0.2
    assert c.may_start()
    c.rate_limit_headers({**headers, "x-ratelimit-remaining-requests": "400"})  # plenty again
    c.started()
    assert c.may_start()


def test_without_the_limit_new_requests_wait_for_the_reset() -> None:
    clock = Clock()
    c = Concurrency(8, clock=clock)
    c.started()
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    c.rate_limit_headers(headers)
    assert not c.may_start() and c.ready_at() == pytest.approx(2.0)
    clock.now = 2.0
    assert c.may_start()


def test_tokens_are_paced_at_the_rate_the_run_spends_them() -> None:
    clock = Clock()
    c = Concurrency(4, clock=clock)
    c.started()
    headers = {"x-ratelimit-limit-tokens": "60000", "x-ratelimit-reset-tokens": "1s"}
    c.rate_limit_headers({**headers, "x-ratelimit-remaining-tokens": "10000"})
    c.rate_limit_headers({**headers, "x-ratelimit-remaining-tokens": "9000"})  # 1000 an answer
    assert c.may_start() and c.ready_at() == 0
    # 6000 spent: 0.8·1000 + 0.2·6000 = 2000 an answer, short for 1 in flight + 1
    c.rate_limit_headers({**headers, "x-ratelimit-remaining-tokens": "3000"})
    assert not c.may_start()
    assert c.ready_at() == pytest.approx(2.0)  # one answer's 2000 tokens at 1000 a second


def run_in_turns(concurrency: Concurrency, n: int, *, cancel: int | None = None) -> list[int]:
    """``n`` requests through :class:`Turns`, each holding its slot for one loop pass."""
    turns = Turns(concurrency)
    order: list[int] = []
    most = [0]

    async def request(i: int) -> None:
        await turns.take()
        order.append(i)
        most[0] = max(most[0], concurrency.in_flight)
        await asyncio.sleep(0)
        concurrency.finished()
        turns.wake()

    async def main() -> None:
        tasks = [asyncio.ensure_future(request(i)) for i in range(n)]
        await asyncio.sleep(0)  # every request is waiting in line now
        if cancel is not None:
            tasks[cancel].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    assert most[0] <= max(1, int(concurrency.limit))
    return order


def test_waiting_requests_go_first_come_first_served_within_the_limit() -> None:
    concurrency = Concurrency(3, pinned=True)
    assert run_in_turns(concurrency, 200) == list(range(200))
    assert concurrency.in_flight == 0


def test_a_request_cancelled_while_waiting_leaves_no_slot_taken() -> None:
    concurrency = Concurrency(2, pinned=True)
    order = run_in_turns(concurrency, 50, cancel=30)
    assert order == [i for i in range(50) if i != 30]
    assert concurrency.in_flight == 0


def test_no_request_starts_before_a_hold_ends() -> None:
    concurrency = Concurrency(4, pinned=True)
    concurrency.hold_until = concurrency.clock() + 0.05  # what x-ratelimit-* headers set
    turns = Turns(concurrency)
    started: list[float] = []

    async def request() -> None:
        await turns.take()
        started.append(concurrency.clock())
        concurrency.finished()
        turns.wake()

    async def main() -> None:
        await asyncio.gather(*(request() for _ in range(10)))

    asyncio.run(main())
    assert len(started) == 10 and min(started) >= concurrency.hold_until


def test_paced_requests_start_one_spacing_apart() -> None:
    concurrency = Concurrency(8, pinned=True)
    concurrency.rate_limit_headers(
        {"x-ratelimit-limit-requests": "3000", "x-ratelimit-remaining-requests": "0"}
    )  # 50 a second: one start every 20 ms
    turns = Turns(concurrency)
    started: list[float] = []

    async def request() -> None:
        await turns.take()
        # when the slot was given: the task itself may resume later on a busy machine
        started.append(concurrency.last_start)
        await asyncio.sleep(0.05)
        concurrency.finished()
        turns.wake()

    async def main() -> None:
        await asyncio.gather(*(request() for _ in range(6)))

    asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert len(started) == 6 and min(gaps) >= 0.02 * 0.99
