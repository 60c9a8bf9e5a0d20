"""A progress line while predictions are fetched live: ``[ftclass] SOURCE @ MODEL: 120/1000``.

Shown only when something is sent (not in replay), on a terminal, and not from
a pytest-xdist worker (whose output nobody sees); while the items run ahead of
the requests, only when an item waits for its answer.  The line is rewritten in
place while the wait lasts and left on its own line: the items' results go on
the next, under their file's name again.  An item waits while it is set up,
when pytest captures the output, so the line is written with capturing
suspended, as pytest's live logging does.
"""

from __future__ import annotations

import contextlib
from typing import Any


class FetchProgress:
    """Counts answered cases per group and rewrites one terminal line.

    ``capture`` is pytest's capture manager (``None``: nothing to suspend).
    """

    def __init__(self, reporter: Any, capture: Any = None) -> None:
        self.reporter = reporter
        self.capture = capture
        self.done: dict[tuple[str, str, str], int] = {}
        self.shown = False  # a progress line ends the output: results go on a new line

    def _suspended(self) -> Any:
        if self.capture is None:
            return contextlib.nullcontext()
        return self.capture.global_and_fixture_disabled()

    def resume(self, nodeid: str) -> None:
        """After an item's wait: start a new line for the results, headed by its file's name.

        pytest wrote the name before the item was set up, and writes a result
        letter where the output ends; in verbose mode it writes each result's
        line whole, so there is nothing to do.
        """
        if not self.shown:
            return
        self.shown = False
        if self.reporter.verbosity <= 0:
            with self._suspended():
                self.reporter.write_fspath_result(nodeid, "")

    def __call__(self, group: Any, answered: int, pace: Any = None) -> None:
        key = (group.source, group.model, group.endpoint)
        self.done[key] = self.done.get(key, 0) + answered
        total = len(group.selected)
        line = f"[ftclass] {group.source} @ {group.model}: {self.done[key]}/{total} predictions"
        if pace is not None:
            line += f", {pace.in_flight} in flight, {pace.per_second:.0f}/s"
        with self._suspended():
            self.reporter.ensure_newline()  # ends a line of results: never written over
            self.reporter.rewrite(line)
            if self.done[key] >= total:
                self.reporter.write_line("")
        self.shown = True


def progress_for(config: Any, live: bool) -> FetchProgress | None:
    """The progress line for this run, or ``None`` when it should stay quiet."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not live or reporter is None or hasattr(config, "workerinput"):
        return None
    if not getattr(reporter, "isatty", False) or config.option.verbose < 0:
        return None
    return FetchProgress(reporter, config.pluginmanager.get_plugin("capturemanager"))
