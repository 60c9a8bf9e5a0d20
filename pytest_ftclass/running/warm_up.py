"""Imports the end of a run needs, made while a live run waits for answers.

A live run spends most of its asking time waiting on the network.  The
modules the summary and the reports need after the last item (the metrics,
jinja2 and the HTML report) are imported then, in a background thread,
instead of after the last item::

    warm_up(reports=True)   # once per process; later calls do nothing

The thread is not a daemon, so the interpreter never exits in the middle of
an import; the main thread importing the same module meanwhile simply waits
for it (Python's per-module import lock).
"""

from __future__ import annotations

import importlib
import threading

#: What every run needs at its end: the metrics (plain Python: no numpy).
FOR_SUMMARY = ("pytest_ftclass.judging.metrics", "pytest_ftclass.judging.calibration")
#: What the reports need besides.
FOR_REPORTS = ("jinja2", "pytest_ftclass.report.html_report")

_started = threading.Lock()
_thread: threading.Thread | None = None


def warm_up(*, reports: bool) -> None:
    """Import the end-of-run modules in a background thread, the first time only."""
    global _thread
    with _started:
        if _thread is not None:
            return
        modules = FOR_SUMMARY + (FOR_REPORTS if reports else ())
        _thread = threading.Thread(target=_import_all, args=(modules,), name="ftclass-warm-up")
        _thread.start()


def _import_all(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:  # the main thread will say so when it needs it
            return
