"""pytest plugin for the benchmarks: the run's cassettes are opened as ``IndexedCassette``.

Loaded with ``-p indexed_cassettes`` (``benchmarks/`` on ``PYTHONPATH``), it makes
``Recorder.use`` do what the proposed change to ``pytest_ftclass/recording.py``
does, so one benchmark run measures replay with and without the index side by
side.  Once ``recording.py`` opens indexed cassettes itself, loading it changes
nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    from pytest_ftclass import recording
    from pytest_ftclass.cassette_index import use_indexed_cassette

    @contextlib.contextmanager
    def use(self: Any, path: Path) -> Iterator[Any]:
        if self._vcr is None:
            self._vcr = self._build_vcr()
        with use_indexed_cassette(self._vcr, path, allow_playback_repeats=True) as cassette:
            yield cassette

    recording.Recorder.use = use  # type: ignore[method-assign]
