"""Builds the demo's data (the example suite's BBC files) before anything is collected.

The demo has its own rootdir (``pytest.ini`` here), so the example suite's
``conftest.py`` is not loaded: the same builder writes the same files into
``data/`` here (git-ignored, as there).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from build_data import build_example_data  # noqa: E402

DATA = build_example_data(HERE / "data")
