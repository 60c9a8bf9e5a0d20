"""Metrics computed in a helper process that loads scikit-learn while the tests run.

Importing scikit-learn (with the scipy and pandas modules it pulls in) takes
about 1.5 s, more than a whole replay of a small suite.  The metrics are only
needed once every case has run, so the plugin starts a helper process as
collection ends: it imports scikit-learn on another CPU while the items run,
then waits.  At the end of the session the plugin sends it the results
(pickled, over its standard input) and reads back the metrics
:func:`pytest_ftclass.metrics.metrics_of_groups` computed there: the same
function, the same numbers as in this process.  It answers each request (the
report's, then a comparison's) until its standard input closes::

    from pytest_ftclass.metrics_process import MetricsProcess

    helper = MetricsProcess.start(len(cases))  # None where it would not help
    ...  # the tests run
    if helper is not None:
        [metrics] = helper.metrics_of([results])
        helper.close()

No helper is started where it cannot save time: on a machine (or CPU set)
with one CPU, or when scikit-learn is loaded in this process already; nor for
more than :data:`MAX_CASES` cases, where the 1.5 s it saves is a small part of
the run and its copy of the results (about 2 KB a case) would weigh on the
run's memory.  If the helper cannot be started, dies or answers nothing
usable, the metrics are computed in this process instead, as if there had been
no helper.  It ignores Ctrl-C (which reaches the whole process group), so an
interrupted run's partial report is computed there too; it exits by itself
when its standard input closes, so a killed pytest leaves no helper behind.
:meth:`MetricsProcess.close` reaps it, and ends one that was never asked.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .collector import collector_paused
from .metrics import metrics_of_groups
from .results import CaseResult

__all__ = ["MAX_CASES", "MetricsProcess", "serve"]

#: The most cases a helper is started for.
MAX_CASES = 20_000

_EXIT_WAIT_S = 5.0  # for a helper that answered to finish exiting
_SERVE = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from pytest_ftclass.metrics_process import serve; serve()"
)


class MetricsProcess:
    """A helper process with scikit-learn loaded, asked for metrics until it is closed."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.asked = False
        self.broken = False

    @classmethod
    def start(cls, n_cases: int) -> MetricsProcess | None:
        """Start the helper for a run of ``n_cases``, or return ``None`` where it would not help."""
        if not 0 < n_cases <= MAX_CASES or "sklearn" in sys.modules or _cpus() < 2:
            return None
        return cls.spawn()

    @classmethod
    def spawn(cls) -> MetricsProcess | None:
        """Start the helper in any case (``None`` if no process can be started)."""
        if not sys.executable:
            return None
        root = str(Path(__file__).resolve().parents[1])
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _SERVE.format(root=root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return None
        return cls(process)

    def metrics_of(
        self, groups: Sequence[Sequence[CaseResult]], *, positive_class: str | None = None
    ) -> list[dict[str, Any]]:
        """``metrics_of_groups(groups)`` as the helper computed it (here, if it could not)."""
        answer = self._ask(groups, positive_class)
        if answer is None:
            return metrics_of_groups(groups, positive_class=positive_class)
        return answer

    def _ask(
        self, groups: Sequence[Sequence[CaseResult]], positive_class: str | None
    ) -> list[dict[str, Any]] | None:
        process = self.process
        if self.broken or process.stdin is None or process.stdout is None:
            return None
        self.asked = True
        try:
            pickle.dump((list(map(list, groups)), positive_class), process.stdin)
            process.stdin.flush()
            answer = pickle.load(process.stdout)
        except (OSError, EOFError, pickle.UnpicklingError):
            answer = None
        if not isinstance(answer, list) or len(answer) != len(groups):
            self.broken = True  # out of step or gone: ask no more
            return None
        return answer

    def close(self) -> None:
        """End the helper: it exits as its input closes; one never asked is killed."""
        process = self.process
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        if self.asked:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_EXIT_WAIT_S)
        if process.poll() is None:
            process.kill()
        process.wait()


def serve() -> None:
    """The helper's side: load scikit-learn, then answer requests on stdin until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # pytest handles Ctrl-C, then asks
    with collector_paused():
        import sklearn.metrics  # noqa: F401  (what the helper is for)

        from . import intervals  # noqa: F401

    while True:
        try:
            groups, positive_class = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        answer = metrics_of_groups(groups, positive_class=positive_class)
        pickle.dump(answer, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
        sys.stdout.flush()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
