"""How many requests are in flight, and waiting out rate limits (see :class:`Pacer`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_ftclass.asking.errors import describe_api_error

if TYPE_CHECKING:
    from pytest_ftclass.asking.refusals import ModelAccess


class Pacer:
    """At most ``concurrency`` requests in flight; after a 429, every request waits.

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
    :class:`~pytest_ftclass.asking.refusals.ModelRefused` with its message, made by
    ``describe_error``.
    """

    def __init__(
        self,
        concurrency: int,
        patience: float = 0.0,
        access: ModelAccess | None = None,
        describe_error: Callable[[BaseException], str] = describe_api_error,
        first_wave: int = 1,
    ) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.patience = patience
        self.waited = 0.0
        self.resume_at = 0.0
        self.access = access
        self.describe_error = describe_error
        self.first_wave = max(1, first_wave)
        self._unanswered = 0  # requests out before the model's first answer
        self._settled: asyncio.Event | None = None  # set as each of them ends

    async def send(self, client: Any, path: str, request: dict[str, Any]) -> tuple[str, float]:
        """POST ``request`` to ``path`` in turn: the response text and the last attempt's duration.

        The request goes through the client's own ``post``: its retries, auth
        headers, errors (``openai.APIStatusError`` and the rest) and Azure
        deployment routing are those of ``client.completions.create``.  The
        typed method would first re-check every prompt of the body against the
        SDK's parameter types, which costs about 0.4 s per 10,000 cases in a
        replay, for a body that is plain JSON built by :class:`RequestOptions`.
        """
        import openai

        attempt = 0
        while True:
            async with self.slots:
                first = await self._turn()
                try:
                    delay = self.resume_at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if self.access is not None:
                        self.access.check()
                    started = time.perf_counter()
                    try:
                        answer = await client.post(path, body=request, cast_to=str)
                        self._answered()
                        return answer, time.perf_counter() - started
                    except openai.RateLimitError as error:
                        self._answered()
                        wait = _retry_after(error) or min(30.0, 0.5 * 2**attempt)
                        if self.waited + wait > self.patience:
                            raise
                        self.waited += wait
                        self.resume_at = max(self.resume_at, time.monotonic() + wait)
                        attempt += 1
                    except Exception as error:
                        self._refuse_or_go_on(error)
                        raise
                finally:
                    if first:
                        self._unanswered -= 1
                        settled, self._settled = self._settled, None
                        if settled is not None:
                            settled.set()

    async def _turn(self) -> bool:
        """Wait while the model has not answered yet and ``first_wave`` requests are out.

        Whether this request is one of those sent before the first answer.
        """
        access = self.access
        while access is not None and not access.answered and access.refused is None:
            if self._unanswered < self.first_wave:
                self._unanswered += 1
                return True
            if self._settled is None:
                self._settled = asyncio.Event()
            await self._settled.wait()
        return False

    def _answered(self) -> None:
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
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
