"""A progress line while predictions are fetched live: ``[ftclass] SOURCE @ MODEL: 120/1000``.

Shown only when something is sent (not in replay), on a terminal, and not from
a pytest-xdist worker (whose output nobody sees).
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
        if key not in self.done:
            self.reporter.ensure_newline()
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
