"""A progress line while predictions are fetched live: ``[ftclass] SOURCE @ MODEL: 120/1000``.

Shown only when something is sent (not in replay), on a terminal, and not from
a pytest-xdist worker (whose output nobody sees); while the items run ahead of
the requests, only when an item waits for its answer.  The line is rewritten in
place while the wait lasts and left on its own line: the items' results go on
the next (pytest starts their line again).
"""

from __future__ import annotations

from typing import Any


class FetchProgress:
    """Counts answered cases per group and rewrites one terminal line."""

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter
        self.done: dict[tuple[str, str, str], int] = {}

    def __call__(self, group: Any, answered: int) -> None:
        key = (group.source, group.model, group.endpoint)
        self.reporter.ensure_newline()  # ends a line of results: never written over
        self.done[key] = self.done.get(key, 0) + answered
        total = len(group.selected)
        line = f"[ftclass] {group.source} @ {group.model}: {self.done[key]}/{total} predictions"
        self.reporter.rewrite(line)
        if self.done[key] >= total:
            self.reporter.write_line("")


def progress_for(config: Any, live: bool) -> FetchProgress | None:
    """The progress line for this run, or ``None`` when it should stay quiet."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not live or reporter is None or hasattr(config, "workerinput"):
        return None
    if not getattr(reporter, "isatty", False) or config.option.verbose < 0:
        return None
    return FetchProgress(reporter)
