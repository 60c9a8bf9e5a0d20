"""Importing a heavy dependency with Python's garbage collector paused.

Importing scikit-learn (with scipy and pandas), the openai SDK or vcrpy makes
some 170,000 objects that live as long as the process.  While an import runs,
the collector keeps scanning them, and every object the test session already
holds, to find no garbage: in a replay of 10,000 cases that is a few tenths of
a second.  The plugin imports them inside :func:`collector_paused`::

    from pytest_ftclass.collector import collector_paused

    with collector_paused():
        from sklearn.metrics import confusion_matrix

Only the import is covered: the collector is switched back on as the block
ends (also when the import fails), and left off if it was off already, so the
collection of the user's own objects is as it was before and after.

>>> import gc
>>> with collector_paused():
...     gc.isenabled()
False
>>> gc.isenabled()
True
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Switch automatic garbage collection off for the ``with`` block."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
