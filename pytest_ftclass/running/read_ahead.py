"""A fetch running in a background thread: the rest of a group, asked for while items run.

While pytest runs the items whose answers are in,
:class:`~pytest_ftclass.running.evaluation.Evaluation` asks for the rest of the group in
a :class:`ReadAhead`, so a live run never pauses its requests to run items, and
an item waits only for its own answer.  The fetch is called as ``fetch(stop,
progress, publish)``:

- ``stop``: a :class:`threading.Event` set by :meth:`ReadAhead.cancel` (Ctrl-C,
  ``-x``, the end of the session);
- ``progress(n)``: ``n`` more cases answered, handed to the caller's own
  callback in the thread that waits (terminal output stays in pytest's thread);
- ``publish(predictions)``: answers as they arrive, for :meth:`ReadAhead.wait_for`.

>>> import threading
>>> def fetch(stop: threading.Event, progress, publish):
...     publish({"c1": "sport"})
...     progress(1)
...     return {"c1": "sport", "c2": "tech"}
>>> ahead, shown = ReadAhead(fetch), []
>>> ahead.wait_for("c1", shown.append)
True
>>> ahead.result(shown.append), shown
({'c1': 'sport', 'c2': 'tech'}, [1])
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: How often a waiting thread hands on the progress of the fetch, in seconds.
PROGRESS_INTERVAL = 0.1

Fetch = Callable[[threading.Event, Callable[[int], None], Callable[[dict[str, Any]], None]], Any]


class ReadAhead:
    """``fetch(stop, progress, publish)`` started now in a daemon thread ``ftclass-read-ahead``."""

    def __init__(self, fetch: Fetch) -> None:
        self.stop = threading.Event()
        self._published: dict[str, Any] = {}
        #: How many answers were published in all (taken or not).
        self.published = 0
        self._arrived = threading.Condition()
        self._answered: list[int] = []
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(fetch,), name="ftclass-read-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, fetch: Fetch) -> None:
        try:
            self._value = fetch(self.stop, self._answered.append, self._publish)
        except BaseException as err:  # re-raised by result(), in the waiting thread
            self._error = err
        finally:
            with self._arrived:
                self._arrived.notify_all()

    def _publish(self, answers: dict[str, Any]) -> None:
        with self._arrived:
            self._published.update(answers)
            self.published += len(answers)
            self._arrived.notify_all()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait_for(self, key: str, on_progress: Callable[[int], None] | None = None) -> bool:
        """Wait until the answer for ``key`` is published (``True``) or the fetch ends.

        Progress is handed on only while this waits: a caller whose answer is
        in already writes nothing (the counts keep until a later wait).
        """
        while True:
            with self._arrived:
                found = key in self._published
                if found or not self._thread.is_alive():
                    break
                self._arrived.wait(PROGRESS_INTERVAL)
            self._hand_on(on_progress)  # outside the lock: the fetch publishes meanwhile
        return found

    def take(self) -> dict[str, Any]:
        """The answers published since the last call."""
        with self._arrived:
            taken, self._published = self._published, {}
            return taken

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
