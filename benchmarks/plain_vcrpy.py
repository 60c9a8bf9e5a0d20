"""pytest plugin for the benchmarks: cassettes are opened as vcrpy's own ``Cassette``.

Loaded with ``-p plain_vcrpy`` (``benchmarks/`` on ``PYTHONPATH``), it makes
``Recorder.use`` open cassettes with ``vcr.VCR.use_cassette`` instead of
:class:`~pytest_ftclass.recording.cassette_index.IndexedCassette`, so a benchmark can
measure what vcrpy's scan of every interaction per lookup costs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    from pytest_ftclass import recording

    @contextlib.contextmanager
    def use(self: Any, path: Path) -> Iterator[Any]:
        if self._vcr is None:
            self._vcr = self._build_vcr()
        mode = self.mode_for(path)
        with self._vcr.use_cassette(
            str(path), allow_playback_repeats=True, record_mode=mode
        ) as cassette:
            yield cassette

    recording.Recorder.use = use  # type: ignore[method-assign]
