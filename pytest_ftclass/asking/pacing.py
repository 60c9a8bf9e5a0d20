"""How many requests are in flight: adapted to the server, or pinned; rate limits waited out.

:class:`Concurrency` decides how many requests may be out at once.  Pinned
(``--ft-concurrency N``) it never moves.  Adaptive (the default) it starts at
:data:`START` and grows while answers come back clean: by one per clean
answer at first (it doubles every round trip), then, after the first sign of
congestion, by one per round trip (additive increase), never past
:data:`CEILING`.  A 429 or a timeout halves it (multiplicative decrease, at
most once per round trip).

More requests in flight pay only while the answers come faster.  Once the
first :data:`WINDOW` requests sent have all ended (the first answers in are
the fast ones; judging by them would take the slow ones for a queue), each
answer weighs two ratios over the last :data:`WINDOW` answers:

- *typical*: the median latency of those first requests ÷ that of the last
  answers.  Requests that queue at the server take longer;
- *Little*: the rate the answers came at ÷ the rate Little's law gives for
  the requests that were in flight when each started, at the latencies
  measured.  Below 1, requests wait where no latency shows, such as this
  process's own busy event loop.

Either ratio below :data:`QUEUEING` shrinks the limit by one per round trip,
down to :data:`START`; below :data:`CLEAN` it stops growing.  Real APIs
answer in widely spread times (P2 stands in for them with a log-normal σ of 0.6), and
the ratios then move by chance alone: each threshold is lowered to 2.5 (for
shrinking) and 1.5 (for holding) standard errors of its ratio's logarithm
when nothing queues, estimated from the latencies' spread (:meth:`Concurrency._signals`).
So chance does not hold back a run that could go faster, and the latencies
the report shows are the server's, not time spent in this process's queue.

The rate-limit headers slow it down before the limit: when
``x-ratelimit-remaining-requests`` (or ``-tokens``, at the pace the run spends
them) would not cover the requests in flight, new requests start no faster
than the limit refills (``x-ratelimit-limit-*`` a minute), or, when the limit
is not given, not before the ``x-ratelimit-reset-*`` time.

>>> c = Concurrency(4)
>>> for _ in range(4):
...     c.answered(0.1, c.started())
>>> c.limit                      # slow start: one more per clean answer
8.0
>>> c.congested(); c.limit      # a 429: halved, and growth slows to one per round trip
4.0
>>> Concurrency(4, pinned=True).congested()
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_ftclass.asking.errors import describe_api_error

if TYPE_CHECKING:
    from pytest_ftclass.asking.refusals import ModelAccess

#: Requests in flight an adaptive run starts with.
START = 16
#: Most requests an adaptive run lets out at once (a 2-core machine's client saturates near it).
CEILING = 64
#: Answers over which the rate is judged.
WINDOW = 32
#: Below this share of the rate the requests in flight should give, they queue: shrink.
QUEUEING = 0.8
#: Below this share, more in flight would not pay: stop growing.
CLEAN = 0.9


@dataclass(frozen=True)
class Pace:
    """What the progress line shows: requests allowed in flight, answers a second."""

    in_flight: int
    per_second: float


class Concurrency:
    """The limit on requests in flight (see the module docstring); synchronous, clock-driven."""

    def __init__(
        self,
        start: int = START,
        *,
        pinned: bool = False,
        ceiling: int = CEILING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = float(start)
        self.pinned = pinned
        self.ceiling = max(ceiling, start)
        self.clock = clock
        self.in_flight = 0
        self.slow_start = not pinned
        self.hold_until = 0.0
        self.last_start = -math.inf
        self._spacing: dict[str, float] = {}  # seconds between starts, per limit near its end
        self.baseline: float | None = None  # the median latency of the first WINDOW requests
        self._median_noise = 0.0  # the standard error of log(baseline / a window's median)
        self._first: list[float | None] = []  # their latencies (None: no answer), as they end
        self._starts = 0
        self._level: dict[int, int] = {}  # requests in flight when each one out started
        self._recent: deque[tuple[float, float, int]] = deque(maxlen=WINDOW)
        self._answers = 0
        self._cut_at = -math.inf  # answers counted at the last halving
        self._tokens_left: float | None = None
        self._tokens_per_answer: float | None = None
        self._started_at = clock()
        self.peak = start

    # -- the limit ---------------------------------------------------------
    def may_start(self) -> bool:
        return self.in_flight < max(1, int(self.limit)) and self.clock() >= self.ready_at()

    def ready_at(self) -> float:
        """The clock time from which the rate limits let the next request start."""
        spacing = max(self._spacing.values(), default=0.0)
        return max(self.hold_until, self.last_start + spacing)

    def started(self) -> int:
        """One more request in flight: its number, from 0 in the order they start."""
        self.in_flight += 1
        self.last_start = self.clock()
        self._level[self._starts] = self.in_flight
        self._starts += 1
        return self._starts - 1

    def finished(self, number: int | None = None) -> None:
        """A request ended without an answer (an error, a cancellation): its slot is free."""
        self.in_flight = max(0, self.in_flight - 1)
        if number is not None:
            self._level.pop(number, None)
            if number < WINDOW:
                self._first_ended(None)

    def answered(self, latency: float, number: int | None = None) -> None:
        """A clean answer after ``latency`` seconds to request ``number`` (from
        :meth:`started`; without it, answers count in the order they come): grow,
        unless more in flight no longer pays."""
        level = self._level.pop(number, self.in_flight) if number is not None else self.in_flight
        self._recent.append((self.clock(), latency, level))
        self.in_flight = max(0, self.in_flight - 1)
        if (self._answers if number is None else number) < WINDOW:
            self._first_ended(latency)
        self._answers += 1
        if self.pinned:
            return
        signals = self._signals()
        if any(ratio < min(QUEUEING, math.exp(-2.5 * noise)) for ratio, noise in signals):
            self.slow_start = False
            self.limit = max(min(self.limit, float(START)), self.limit - 1.0 / self.limit)
            return
        if any(ratio < min(CLEAN, math.exp(-1.5 * noise)) for ratio, noise in signals):
            self.slow_start = False
            return
        step = 1.0 if self.slow_start else 1.0 / self.limit
        self.limit = min(float(self.ceiling), self.limit + step)
        self.peak = max(self.peak, int(self.limit))

    def _signals(self) -> list[tuple[float, float]]:
        """The module docstring's two ratios over the last :data:`WINDOW` answers, each with
        the standard error of its logarithm when nothing queues (none until a window is full)."""
        recent = self._recent
        if len(recent) < WINDOW or self.baseline is None:
            return []  # before, the answers in are the fast ones of their requests
        latencies = sorted(latency for _, latency, _ in recent)
        signals = []
        median = latencies[WINDOW // 2]
        if self.baseline > 0 < median:
            signals.append((self.baseline / median, self._median_noise))
        elapsed = recent[-1][0] - recent[0][0]
        in_flight = sum(n for _, _, n in recent) / WINDOW
        mean = sum(latencies) / WINDOW
        if elapsed > 0 and in_flight > 0 and mean > 0:
            rate = (WINDOW - 1) / elapsed
            spread = math.sqrt(sum((x - mean) ** 2 for x in latencies) / WINDOW) / mean
            # the rate of WINDOW answers arriving at random, and their mean latency
            noise = math.sqrt(1 / (WINDOW - 1) + spread * spread / WINDOW)
            signals.append((rate * mean / in_flight, noise))
        return signals

    def _first_ended(self, latency: float | None) -> None:
        """One of the first :data:`WINDOW` requests ended; with the last, set the baseline."""
        self._first.append(latency)
        answered = sorted(x for x in self._first if x is not None)
        if len(self._first) == WINDOW and answered:
            n = len(answered)
            self.baseline = answered[n // 2]
            logs = [math.log(max(latency, 1e-9)) for latency in answered]
            spread = (logs[3 * n // 4] - logs[n // 4]) / 1.349  # log-normal σ from the IQR
            self._median_noise = 1.25 * spread * math.sqrt(1 / n + 1 / WINDOW)

    def congested(self) -> None:
        """A 429 or a timeout: halve the limit, once per round trip."""
        if self.pinned:
            return
        self.slow_start = False
        if self._answers - self._cut_at < max(1.0, self.limit / 2):
            return  # this round trip was cut already
        self.limit = max(1.0, self.limit / 2)
        self._cut_at = self._answers

    def rate_limit_headers(self, headers: Mapping[str, str]) -> None:
        """Slow down before the limit the ``x-ratelimit-*`` headers announce.

        When what remains would not cover the requests in flight and one more,
        new requests start one at a time at the pace the limit refills; when
        the limit is not given, not before its reset.  Plenty remaining lifts
        the pacing again.
        """
        remaining = _number(headers.get("x-ratelimit-remaining-requests"))
        if remaining is not None:
            self._near_limit(
                "requests",
                1.0 + self.in_flight - remaining,
                1.0,
                _number(headers.get("x-ratelimit-limit-requests")),
                _duration(headers.get("x-ratelimit-reset-requests")),
            )
        tokens = _number(headers.get("x-ratelimit-remaining-tokens"))
        if tokens is None:
            return
        if self._tokens_left is not None and tokens < self._tokens_left:
            spent = self._tokens_left - tokens
            previous = self._tokens_per_answer
            self._tokens_per_answer = spent if previous is None else 0.8 * previous + 0.2 * spent
        self._tokens_left = tokens
        if self._tokens_per_answer is not None:
            self._near_limit(
                "tokens",
                self._tokens_per_answer * (1 + self.in_flight) - tokens,
                self._tokens_per_answer,
                _number(headers.get("x-ratelimit-limit-tokens")),
                _duration(headers.get("x-ratelimit-reset-tokens")),
            )

    def _near_limit(
        self, kind: str, deficit: float, each: float, per_minute: float | None, reset: float | None
    ) -> None:
        """Pace starts ``each`` units apart at ``per_minute`` while ``deficit`` > 0."""
        if deficit <= 0:
            self._spacing.pop(kind, None)
        elif per_minute:
            self._spacing[kind] = each * 60 / per_minute
        elif reset is not None:
            self.hold_until = max(self.hold_until, self.clock() + reset)

    def pace(self) -> Pace:
        elapsed = max(self.clock() - self._started_at, 1e-9)
        return Pace(max(1, int(self.limit)), self._answers / elapsed)


class Turns:
    """Requests waiting for a slot, first come first served.

    A request that ends (or a hold that expires) wakes only as many waiting
    requests as :class:`Concurrency` lets start, so a thousand requests cost
    nothing while they wait::

        number = await turns.take()     # counted in flight when it returns
        ...                             # the request
        concurrency.answered(latency, number); turns.wake()
    """

    def __init__(self, concurrency: Concurrency) -> None:
        self.concurrency = concurrency
        self._queue: deque[asyncio.Future[int]] = deque()
        self._timer: asyncio.TimerHandle | None = None  # wakes the queue when a hold ends

    async def take(self) -> int:
        """Wait in line until one more request may be in flight, and count it: its number."""
        if not self._queue and self.concurrency.may_start():
            return self.concurrency.started()
        turn: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        self.wake()
        try:
            return await turn
        except BaseException:
            if turn.done() and not turn.cancelled():  # given a slot, then cancelled
                self.concurrency.finished(turn.result())
                self.wake()
            else:
                self._queue.remove(turn)
            raise

    def wake(self) -> None:
        """Give free slots to the requests first in line; come back when a hold ends."""
        concurrency = self.concurrency
        while self._queue and concurrency.may_start():
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(concurrency.started())
        held = concurrency.ready_at() - concurrency.clock()
        if self._queue and self._timer is None and held > 0:
            self._timer = asyncio.get_running_loop().call_later(held, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.wake()


class Pacer:
    """Sends each request when :class:`Concurrency` allows; after a 429, every request waits.

    The SDK retries a 429 itself (``max_retries``, honouring ``Retry-After``).  When
    it gives up, the pacer holds back every request until the server's
    ``Retry-After`` (or a growing backoff, 0.5 s doubling up to 30 s) has passed,
    and asks again, for as long as the waits add up to at most ``patience``
    seconds: a rate limit slows the run down instead of failing its cases.

    With an ``access`` (:class:`~pytest_ftclass.asking.refusals.ModelAccess`), at most
    ``first_wave`` requests are in flight until the model has answered once
    (``1 + max_retries``: a refusal then costs no more requests than one
    failing request may), and none goes after a definitive error (401, 403,
    404 ``model_not_found``): they raise
    :class:`~pytest_ftclass.asking.errors.ModelRefused` with its message, made by
    ``describe_error``.  :meth:`observe` is given every HTTP response the client
    receives (its 429s and rate-limit headers, the SDK's own retries included).
    """

    def __init__(
        self,
        concurrency: Concurrency,
        patience: float = 0.0,
        access: ModelAccess | None = None,
        describe_error: Callable[[BaseException], str] = describe_api_error,
        first_wave: int = 1,
    ) -> None:
        self.concurrency = concurrency
        self.patience = patience
        self.waited = 0.0
        self.resume_at = 0.0
        self.access = access
        self.describe_error = describe_error
        self.first_wave = max(1, first_wave)
        self._unanswered = 0  # requests out before the model's first answer
        self._first_answer: asyncio.Event | None = None  # set when a first-wave request ends
        self.turns = Turns(concurrency)

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """A response came in: a 429 congests, rate-limit headers may hold new requests back."""
        if status == 429:
            self.concurrency.congested()
        self.concurrency.rate_limit_headers(headers)

    async def send(self, client: Any, path: str, request: dict[str, Any]) -> tuple[str, float]:
        """POST ``request`` to ``path`` in turn: the response text and the last attempt's duration.

        The request goes through the client's own ``post``: its retries, auth
        headers, errors (``openai.APIStatusError`` and the rest) and Azure
        deployment routing are those of ``client.completions.create``.  The
        typed method would first re-check every prompt of the body against the
        SDK's parameter types, which costs about 0.4 s per 10,000 cases in a
        replay, for a body that is plain JSON.
        """
        import openai

        attempt = 0
        while True:
            first = self._first_of_wave()
            while first is None:  # the model has not answered yet: wait for the first wave
                await self._first_wave_ended()
                first = self._first_of_wave()
            number = await self.turns.take()
            released = False  # the slot given back
            try:
                delay = self.resume_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.access is not None:
                    self.access.check()
                started = time.perf_counter()
                try:
                    answer = await client.post(path, body=request, cast_to=str)
                except openai.RateLimitError as error:
                    self._model_answered()
                    wait = _retry_after(error) or min(30.0, 0.5 * 2**attempt)
                    if self.waited + wait > self.patience:
                        raise
                    self.waited += wait
                    self.resume_at = max(self.resume_at, time.monotonic() + wait)
                    attempt += 1
                    continue
                except openai.APITimeoutError as error:
                    self.concurrency.congested()
                    self._refuse_or_go_on(error)
                    raise
                except Exception as error:
                    self._refuse_or_go_on(error)
                    raise
                elapsed = time.perf_counter() - started
                self._model_answered()
                self.concurrency.answered(elapsed, number)  # gives the slot back
                released = True
                return answer, elapsed
            finally:
                if not released:
                    self.concurrency.finished(number)
                if first:
                    self._unanswered -= 1
                    if self._first_answer is not None:
                        self._first_answer.set()
                self.turns.wake()

    async def _first_wave_ended(self) -> None:
        if self._first_answer is None:
            self._first_answer = asyncio.Event()
        event = self._first_answer
        await event.wait()
        if self._first_answer is event:
            self._first_answer = None  # the next wait is for the next first-wave request

    def _first_of_wave(self) -> bool | None:
        """Whether this request goes out before the model's first answer (``None``: it waits)."""
        access = self.access
        if access is None or access.answered or access.refused is not None:
            return False
        if self._unanswered < self.first_wave:
            self._unanswered += 1
            return True
        return None

    def _model_answered(self) -> None:
        if self.access is not None:
            self.access.answered = True

    def _refuse_or_go_on(self, error: BaseException) -> None:
        from pytest_ftclass.asking.refusals import is_definitive

        if self.access is None:
            return
        if is_definitive(error):
            self.access.refuse(self.describe_error(error))
        else:  # a 5xx, a timeout: not the model's last word, requests may go at once
            self.access.answered = True


def _retry_after(error: Any) -> float | None:
    """Seconds the 429's ``retry-after-ms`` (preferred, as the SDK does) or ``retry-after`` asks."""
    response = getattr(error, "response", None)
    if response is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        seconds = _number(response.headers.get(name))
        if seconds is not None:
            return max(0.0, seconds * scale)
    return None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def _duration(value: str | None) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` value: ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"0.5"``.

    >>> _duration("6m0s"), _duration("20ms"), _duration("1.5s"), _duration("2"), _duration("x")
    (360.0, 0.02, 1.5, 2.0, None)
    """
    if value is None:
        return None
    text = value.strip()
    plain = _number(text)
    if plain is not None:
        return plain
    parts = _DURATION.findall(text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[unit] for n, unit in parts)
