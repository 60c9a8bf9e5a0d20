"""Writing files so that a reader sees the old content or the new, never half of it.

Cassettes and reports are both written this way: an interrupted run (Ctrl-C,
SIGKILL) leaves the previous file in place, not a truncated one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` so a reader sees the old file or the new one, never half.

    The parent directory is created; the text goes to a temporary file in the
    same directory, which then replaces ``path`` (``os.replace``).  An existing
    file keeps its permission bits, a new one gets ``0o644``.

    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a" / "b.txt"
    >>> atomic_write_text(target, "hi").read_text(encoding="utf-8")
    'hi'
    """
    with atomic_writer(path) as handle:
        handle.write(text)
    return Path(path)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A text handle whose content replaces ``path`` in one step when the block ends.

    For files too large to hold as one string: write them piece by piece.  If
    the block raises, ``path`` is left as it was.  Same rules as
    :func:`atomic_write_text`, which is built on it.

    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "rows.txt"
    >>> with atomic_writer(target) as handle:
    ...     for row in range(3):
    ...         _ = handle.write(f"{row}\\n")
    >>> target.read_text(encoding="utf-8").split()
    ['0', '1', '2']
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
