"""P5: many classes, few cases each: the whole run, its reports, and the HTML in Chromium.

Targets (1,000 classes × 2 cases): the pytest run at most 60 s and 1 GB peak memory,
the HTML at most 5 MB and loaded in Chromium in under 10 s.

A case file of K classes with 2 cases each is asked of a lookup classifier served
by the local reference server over the OpenAI wire format (each class has a word
of its own; a third of the second cases carry another class's word, so they are
mispredicted).  The suite is recorded once (timed: the live run), then replayed
``--rounds`` times with the server stopped (the figures are the medians); each
run's peak RSS (``VmHWM``, with any child's) is read by ``_common.run_pytest``.
The HTML report is opened in Debian's Chromium through Playwright as in
``p3_html_render.py``::

    python benchmarks/p5_many_classes.py                   # 1,000 classes
    python benchmarks/p5_many_classes.py --classes 10000   # the README's figures
    python benchmarks/p5_many_classes.py --quick           # 200 classes, 1 round
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    COMPLETIONS_MODEL,
    SEPARATOR,
    machine_note,
    print_table,
    run_pytest,
    verdict,
    write_jsonl,
)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TARGETS = {"run_s": 60.0, "peak_mb": 1024.0, "html_mb": 5.0, "load_s": 10.0}


def label(i: int) -> str:
    return f"topic{i:05d}"


def word(i: int) -> str:
    return f"w{i:05d}x"


class LookupClassifier:
    """Answers the class whose word the text holds, with a few runners-up (duck-typed model)."""

    def __init__(self, n: int) -> None:
        self.labels = [label(i) for i in range(n)]
        self._by_word = {word(i): i for i in range(n)}

    def predict_log_proba(self, texts: list[str]) -> list[dict[str, float]]:
        answers = []
        for text in texts:
            found = [self._by_word[w] for w in text.split() if w in self._by_word]
            i = found[0] if found else 0
            n = len(self.labels)
            top = 0.55 + (i % 40) / 100
            rest = (1 - top) / 3
            answers.append(
                {label(i): math.log(top)} | {label((i + k) % n): math.log(rest) for k in (1, 2, 3)}
            )
        return answers


def write_suite(directory: Path, n: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    lines = []
    for copy in range(2):
        for i in range(n):
            said = (i + 1) % n if copy and i % 3 == 0 else i
            lines.append(
                {
                    "id": f"{label(i)}-{copy}",
                    "prompt": f"a note about {word(said)} today{SEPARATOR}",
                    "completion": " " + label(i),
                }
            )
    return write_jsonl(directory / "many.cases.jsonl", lines)


def load_in_chromium(path: Path, rounds: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("FTCLASS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    loads = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
        for _ in range(rounds):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            started = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector("html[data-ready='1']", timeout=120_000)
            loads.append(time.perf_counter() - started)
            page.close()
        browser.close()
    return loads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 classes, 1 round")
    args = parser.parse_args(argv)
    n = 200 if args.quick else args.classes
    rounds = 1 if args.quick else args.rounds
    from pytest_ftclass.reference import ReferenceServer

    print(machine_note())
    directory = Path(tempfile.mkdtemp(prefix="ftclass-p5-"))
    common = [f"--ft-model={COMPLETIONS_MODEL}"]
    try:
        write_suite(directory, n)
        model: Any = LookupClassifier(n)
        with ReferenceServer({COMPLETIONS_MODEL: model}) as server:
            live = run_pytest(
                directory, *common, f"--ft-base-url={server.base_url}", "--ft-record-mode=once"
            )
        assert live.returncode == 0, live.tail
        replays = [run_pytest(directory, *common) for _ in range(rounds)]
        assert all(r.returncode == 0 for r in replays), replays[-1].tail
        reports = directory / "reports"
        sizes = {name: (reports / name).stat().st_size / 1e6 for name in
                 ("ftclass.json", "ftclass.html", "ftclass.md")}  # fmt: skip
        loads = load_in_chromium(reports / "ftclass.html", rounds)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"live: {live.tail}\nreplay: {replays[-1].tail}")
    run_s = statistics.median(r.seconds for r in replays)
    peak = statistics.median(r.total_mb for r in replays)
    load_s = statistics.median(loads)
    print(machine_note())
    print_table(
        f"P5: {n:,} classes × 2 cases = {2 * n:,} cases (medians of {rounds} rounds)",
        ["figure", "value", "target (1,000 classes)", "verdict"],
        [
            ["live run (recording) s", live.seconds, "", ""],
            ["live run peak MiB", live.total_mb, "", ""],
            ["replayed run s", run_s, f"≤ {TARGETS['run_s']:g}", verdict(run_s <= 60)],
            ["replayed run peak MiB", peak, "≤ 1024", verdict(peak <= TARGETS["peak_mb"])],
            ["JSON MB", sizes["ftclass.json"], "", ""],
            ["HTML MB", sizes["ftclass.html"], "≤ 5", verdict(sizes["ftclass.html"] <= 5)],
            ["Markdown MB", sizes["ftclass.md"], "", ""],
            ["HTML load to ready s", load_s, "< 10", verdict(load_s < TARGETS["load_s"])],
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
