"""Headless Chromium for the tests that open a report: Debian's binary, driven by Playwright.

Importing this module skips the importing test module when Playwright or the
browser is missing, and fails it instead under ``CI=true``: CI installs
Chromium, so a green run there has really opened the pages.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

CHROMIUM = os.environ.get("FTCLASS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def unavailable(reason: str) -> NoReturn:
    """Skip (a developer's machine) or fail (``CI=true``) for want of the browser."""
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}; CI=true needs the browser tests to run", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    import playwright.sync_api as sync_api
except ImportError:  # pragma: no cover - depends on the machine
    unavailable("playwright is not installed (pip install playwright)")

if not Path(CHROMIUM).exists():
    unavailable("no Chromium binary (apt-get install chromium, or set FTCLASS_CHROMIUM)")


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, launched headless through Playwright, closed at the end::

    @pytest.fixture(scope="module")
    def browser():
        with chromium() as launched:
            yield launched
    """
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as error:  # pragma: no cover - depends on the machine
            unavailable(f"Chromium does not start: {error}")
        yield launched
        launched.close()


__all__ = ["ARGS", "CHROMIUM", "chromium", "sync_api", "unavailable"]
