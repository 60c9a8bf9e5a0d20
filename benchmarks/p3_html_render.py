"""P3 (browser side): how long the HTML report of N cases takes to open in headless Chromium.

Builds a report of synthetic results (20 classes, 90 % right, log-probs, tags,
latencies), writes it, opens it in Debian's Chromium through Playwright
(``executable_path``; no browser download) and times load-to-ready (the page
sets ``html[data-ready='1']`` when its script has drawn everything) over a few
repetitions.  Target: 10,000 cases under 2 s.

    python benchmarks/p3_html_render.py            # 10,000 cases, 5 repetitions
    python benchmarks/p3_html_render.py --quick    # 1,000 cases, 3 repetitions
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import synthetic_results

from pytest_ftclass.report import build_report, write_html_report

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases", type=int)
    options = parser.parse_args()
    n = options.cases or (1_000 if options.quick else 10_000)
    repetitions = 3 if options.quick else 5
    chromium = os.environ.get("FTCLASS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    report = build_report(synthetic_results(n, labels=[f"class_{i}" for i in range(20)]), {})
    build_s = time.perf_counter() - started
    path = write_html_report(report, Path(tempfile.mkdtemp()) / "report.html")
    size_mb = path.stat().st_size / 1e6
    loads = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
        for _ in range(repetitions):
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector("html[data-ready='1']", timeout=60_000)
            loads.append(time.perf_counter() - started)
            page.close()
        browser.close()
    median = statistics.median(loads)
    print(f"P3 html render: {n} cases, report {size_mb:.1f} MB, built in {build_s:.2f} s")
    print(
        f"  load to ready: median {median * 1000:.0f} ms over {repetitions} runs "
        f"(min {min(loads) * 1000:.0f}, max {max(loads) * 1000:.0f})"
    )
    verdict = "PASS" if median < 2.0 or n != 10_000 else "FAIL"
    print(f"  target 10,000 cases < 2 s: {verdict}")


if __name__ == "__main__":
    main()
