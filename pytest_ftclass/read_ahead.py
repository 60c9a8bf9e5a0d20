"""A fetch running in a background thread: the next window of a group, asked while items run.

While pytest runs the items of one window, :class:`~pytest_ftclass.evaluation.Evaluation`
asks for the next window in a :class:`ReadAhead`, so a live run does not pause
its requests to run items.  The fetch gets a ``stop`` event (set by
:meth:`ReadAhead.cancel`, on Ctrl-C or the end of the session) and a
``progress`` callback; progress is handed to the caller's own callback in the
thread that waits (terminal output stays in pytest's thread).

>>> import threading
>>> def fetch(stop: threading.Event, progress):
...     progress(2)
...     return {"c1": "sport", "c2": "tech"}
>>> ahead = ReadAhead(fetch)
>>> shown = []
>>> ahead.result(on_progress=shown.append)
{'c1': 'sport', 'c2': 'tech'}
>>> shown
[2]
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: How often a waiting thread hands on the progress of the fetch, in seconds.
PROGRESS_INTERVAL = 0.1


class ReadAhead:
    """``fetch(stop, progress)`` started now in a daemon thread named ``ftclass-read-ahead``."""

    def __init__(self, fetch: Callable[[threading.Event, Callable[[int], None]], Any]) -> None:
        self.stop = threading.Event()
        self._answered: list[int] = []
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(fetch,), name="ftclass-read-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, fetch: Callable[[threading.Event, Callable[[int], None]], Any]) -> None:
        try:
            self._value = fetch(self.stop, self._answered.append)
        except BaseException as err:  # re-raised by result(), in the waiting thread
            self._error = err

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self, on_progress: Callable[[int], None] | None = None) -> Any:
        """Wait for the fetch and return what it returned (or raise what it raised)."""
        while True:
            self._thread.join(PROGRESS_INTERVAL)
            self._hand_on(on_progress)
            if not self._thread.is_alive():
                break
        if self._error is not None:
            raise self._error
        return self._value

    def cancel(self, timeout: float = 10.0) -> None:
        """Ask the fetch to stop, and wait up to ``timeout`` seconds for it to end."""
        self.stop.set()
        self._thread.join(timeout)

    def _hand_on(self, on_progress: Callable[[int], None] | None) -> None:
        while self._answered:
            answered = self._answered.pop(0)
            if on_progress is not None:
                on_progress(answered)
