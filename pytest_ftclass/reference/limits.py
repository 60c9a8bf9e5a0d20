"""Rate limits for the reference server: requests per second and tokens per minute.

Like the real API: every answer carries ``x-ratelimit-limit-*``,
``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*`` for requests and
tokens, and a request over either limit gets a 429 ``rate_limit_exceeded``
with ``Retry-After``.  Both limits are buckets that refill continuously; a
request costs one request and its tokens (the words it is answered on, as the
server's ``usage`` counts them, plus what it may generate)::

    ReferenceServer(models, limits=RateLimits(requests_per_second=50, tokens_per_minute=90_000))

>>> clock = iter([0.0, 0.0, 0.0, 0.0, 0.5]).__next__  # made at 0, three asks at 0, one at 0.5
>>> limits = RateLimits(requests_per_second=2, clock=clock)
>>> [limits.take(10)[0] for _ in range(3)], limits.take(10)[0]
([True, True, False], True)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    capacity: float
    per_second: float
    level: float = field(init=False)
    at: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.level = self.capacity

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.per_second)
        self.at = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` is there (0 when it is)."""
        return max(0.0, (amount - self.level) / self.per_second)


class RateLimits:
    """The server's limits; :meth:`take` asks for one request of ``tokens`` tokens."""

    def __init__(
        self,
        *,
        requests_per_second: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        start = clock()
        self._requests = self._bucket(requests_per_second, requests_per_second, start)
        tokens_per_second = None if tokens_per_minute is None else tokens_per_minute / 60
        self._tokens = self._bucket(tokens_per_minute, tokens_per_second, start)
        self._lock = threading.Lock()
        self.refused = 0

    @staticmethod
    def _bucket(capacity: float | None, per_second: float | None, start: float) -> _Bucket | None:
        if capacity is None or per_second is None:
            return None
        bucket = _Bucket(capacity, per_second)
        bucket.at = start
        return bucket

    def take(self, tokens: int) -> tuple[bool, dict[str, str]]:
        """(whether the request may be answered, the rate-limit headers of its answer)."""
        with self._lock:
            now = self.clock()
            buckets = [(b, n) for b, n in ((self._requests, 1), (self._tokens, tokens)) if b]
            for bucket, _ in buckets:
                bucket.refill(now)
            wait = max((bucket.wait_for(n) for bucket, n in buckets), default=0.0)
            allowed = wait == 0
            if allowed:
                for bucket, amount in buckets:
                    bucket.level -= amount
            else:
                self.refused += 1
            headers = self._headers()
            if not allowed:
                headers["retry-after"] = f"{max(1, math.ceil(wait))}"
                headers["retry-after-ms"] = f"{math.ceil(wait * 1000)}"
            return allowed, headers

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, bucket in (("requests", self._requests), ("tokens", self._tokens)):
            if bucket is None:
                continue
            per_minute = bucket.capacity if name == "tokens" else bucket.per_second * 60
            headers[f"x-ratelimit-limit-{name}"] = f"{per_minute:.0f}"
            headers[f"x-ratelimit-remaining-{name}"] = f"{max(0.0, bucket.level):.0f}"
            until_full = (bucket.capacity - bucket.level) / bucket.per_second
            headers[f"x-ratelimit-reset-{name}"] = f"{max(0.0, until_full):.3f}s"
        return headers
