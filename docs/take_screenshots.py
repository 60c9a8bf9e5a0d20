"""Screenshots of the example suite's reports for the README (PNG, in this folder).

Runs ``pytest example_suite`` (offline: it replays its cassettes) with the reports
written to a temporary directory, then opens them in Debian's Chromium through
Playwright (``executable_path``; no browser download) at 1400 × 900::

    python docs/take_screenshots.py

Writes ``report-first-screen.png`` (the verdict and the overview), ``report-comparison.png``
(the comparison inside the report), ``report-task.png`` (one task: heatmap, per-class
bars, reliability, abstention) and ``compare-page.png`` (``ftclass-compare.html``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> int:
    from playwright.sync_api import sync_playwright

    reports = Path(tempfile.mkdtemp(prefix="ftclass-docs-"))
    try:
        command = [sys.executable, "-m", "pytest", "example_suite", "-q", "-p", "no:cacheprovider"]
        subprocess.run([*command, f"--ft-report-dir={reports}"], cwd=ROOT, check=True)
        chromium = os.environ.get("FTCLASS_CHROMIUM") or shutil.which("chromium")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto((reports / "ftclass.html").as_uri())
            page.wait_for_selector("html[data-ready='1']")
            page.screenshot(path=HERE / "report-first-screen.png")
            page.locator("section.pair").first.screenshot(path=HERE / "report-comparison.png")
            page.locator("section.task").nth(1).screenshot(path=HERE / "report-task.png")
            page.goto((reports / "ftclass-compare.html").as_uri())
            page.wait_for_selector("html[data-ready='1']")
            page.screenshot(path=HERE / "compare-page.png")
            browser.close()
    finally:
        shutil.rmtree(reports, ignore_errors=True)
    for name in ("report-first-screen", "report-comparison", "report-task", "compare-page"):
        print(f"written: {(HERE / name).with_suffix('.png').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
