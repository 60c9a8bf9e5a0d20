"""The HTML report opened in real headless Chromium: it runs, scales, and executes no data.

Needs the ``playwright`` Python package and a Chromium binary (Debian's
``chromium`` at /usr/bin/chromium, or ``$FTCLASS_CHROMIUM``); Playwright's own
browser download is never used.  Without them the tests are skipped, except
under ``CI=true``, where a missing browser fails the run.
Screenshots are written to the test's temporary directory and their paths printed.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.report import build_report, write_html_report
from pytest_ftclass.results import CaseResult
from tests.browser import ARGS, CHROMIUM, sync_api, unavailable


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as error:  # pragma: no cover - depends on the machine
            unavailable(f"Chromium does not start: {error}")
        yield launched
        launched.close()


class Opened:
    """A loaded report page and the errors it logged."""

    def __init__(self, page: Any, errors: list[str], load_ms: float) -> None:
        self.page = page
        self.errors = errors
        self.load_ms = load_ms


@pytest.fixture
def open_report(browser: Any, tmp_path: Path) -> Iterator[Any]:
    contexts = []

    def opener(report: dict[str, Any], name: str = "report", **kwargs: Any) -> Opened:
        path = write_html_report(report, tmp_path / f"{name}.html", **kwargs)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        started = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_selector("html[data-ready='1']", timeout=10_000)
        return Opened(page, errors, (time.perf_counter() - started) * 1000)

    yield opener
    for context in contexts:
        context.close()


def synthetic(
    n_cases: int, n_classes: int, *, seed: int = 3, accuracy: float = 0.8, long_names: bool = False
) -> list[CaseResult]:
    rng = random.Random(seed)
    if long_names:
        labels = [f"category_{i:02d}_{'subtopic' if i % 3 else 'x'}" for i in range(n_classes)]
    else:
        labels = [f"class_{i}" for i in range(n_classes)]
    results = []
    for i in range(n_cases):
        expected = labels[i % n_classes] if i < n_classes else rng.choice(labels)
        predicted = expected if rng.random() < accuracy else rng.choice(labels)
        p = rng.uniform(0.35, 0.99)
        logprobs = {predicted: math.log(p)}
        results.append(
            CaseResult(
                case_id=f"case-{i}",
                nodeid=f"valid.cases.jsonl::case-{i}",
                source="valid.cases.jsonl",
                model="ft:gpt-4o-mini:acme::x1",
                endpoint="chat",
                expected=expected,
                predicted=predicted,
                logprobs=logprobs,
                labels=labels,
                tags=[rng.choice(["short", "long"])],
                input_digest=f"{i:016x}",
                usage={"prompt_tokens": 40, "completion_tokens": 1, "total_tokens": 41},
                latency_s=rng.uniform(0.05, 0.6),
                outcome="passed" if expected == predicted else "mispredicted",
            )
        )
    return results


def cell_count(page: Any) -> list[int]:
    """Heatmap cells of each matrix on the page."""
    return page.eval_on_selector_all(
        "table.confusion", "tables => tables.map(t => t.querySelectorAll('td.cm-cell').length)"
    )


def explorer_rows(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        ".explorer tbody tr",
        """rows => rows.map(r => ({
            id: r.querySelector('.case-id').textContent,
            expected: r.querySelector('.expected').textContent,
            predicted: r.querySelector('.predicted').textContent,
            confidence: r.querySelector('.confidence').textContent,
            text: r.querySelector('.text-cell').textContent,
        }))""",
    )


def test_five_classes_render_without_errors_with_an_n_by_n_heatmap(open_report: Any) -> None:
    report = build_report(synthetic(300, 5), {"plugin_version": "0.1.0", "record_mode": "none"})
    opened = open_report(report, "five")
    page = opened.page
    assert opened.errors == []
    assert cell_count(page) == [25]
    # the toggle shows row shares (CSS generated content) and back
    page.click(".cm-toggle")
    assert page.get_attribute(".heatmap", "class") == "heatmap norm"
    assert page.text_content(".cm-toggle") == "show counts"
    tooltip = page.get_attribute("td.cm-cell.diagonal", "title")
    assert tooltip.startswith("expected class_0 → predicted class_0:") and "case-0" in tooltip
    page.click(".cm-toggle")
    assert page.locator("svg.reliability g.bin").count() >= 1
    assert page.locator("table.per-class tbody tr").count() == 5
    shot = opened.page.screenshot(path=str(Path(report_dir(page)) / "five.png"), full_page=True)
    assert shot
    print(f"screenshot: {report_dir(page)}/five.png")


def report_dir(page: Any) -> str:
    return str(Path(page.url.removeprefix("file://")).parent)


def test_87_classes_render_legibly(open_report: Any) -> None:
    report = build_report(synthetic(2000, 87, long_names=True), {"plugin_version": "0.1.0"})
    opened = open_report(report, "many")
    page = opened.page
    assert opened.errors == []
    assert cell_count(page) == [87 * 87]
    assert page.locator("table.confusion.dense").count() == 1
    # the heatmap scrolls inside its own box instead of stretching the page
    box = page.eval_on_selector(
        ".heatmap", "e => [e.scrollWidth > e.clientWidth, e.clientWidth <= window.innerWidth]"
    )
    assert box == [True, True]
    page.screenshot(path=f"{report_dir(page)}/many.png", full_page=False)
    print(f"screenshot: {report_dir(page)}/many.png")


def test_explorer_filters_sorts_and_pages(open_report: Any) -> None:
    results = synthetic(400, 4, accuracy=0.6, seed=11)
    report = build_report(results, {})
    wrong = [r for r in results if not r.correct]
    assert len(wrong) > 50
    page = open_report(report, "explorer").page

    assert len(explorer_rows(page)) == 50  # one page of 50
    assert page.text_content(".ex-page") == f"page 1 of {math.ceil(len(wrong) / 50)}"
    page.click(".ex-next")
    assert explorer_rows(page)[0]["id"] == wrong[50].case_id

    page.select_option(".ex-filter", "class_2")
    rows = explorer_rows(page)
    involving = [r for r in wrong if "class_2" in (r.expected, r.predicted)]
    assert page.text_content(".ex-page") == f"page 1 of {math.ceil(len(involving) / 50)}"
    assert [r["id"] for r in rows] == [r.case_id for r in involving][:50]
    assert all("class_2" in (r["expected"], r["predicted"]) for r in rows)
    assert page.text_content(".ex-status") == f"{len(involving)} of {len(wrong)} mispredicted cases"

    def confidences() -> list[str]:
        return [row["confidence"] for row in explorer_rows(page)]

    by_confidence = sorted(math.exp(r.logprobs[str(r.predicted)]) for r in involving)
    page.click("th[data-key='confidence'] button")  # highest confidence first
    assert confidences() == [f"{p:.3f}" for p in by_confidence[::-1][:50]]
    assert page.get_attribute("th[data-key='confidence']", "aria-sort") == "descending"
    page.click("th[data-key='confidence'] button")
    assert confidences() == [f"{p:.3f}" for p in by_confidence[:50]]

    page.click("th[data-key='expected'] button")
    expected = [r["expected"] for r in explorer_rows(page)]
    assert expected == sorted(expected)
    # without texts the explorer shows each case's input digest
    assert explorer_rows(page)[0]["text"] == next(
        r.input_digest for r in involving if r.case_id == explorer_rows(page)[0]["id"]
    )


def test_hostile_text_ids_and_labels_execute_nothing_and_show_as_text(open_report: Any) -> None:
    labels = ["ham", "<img src=x onerror=window.__pwned=3>"]
    payloads = {
        "a": "<script>window.__pwned = 1</script>",
        "b": '<img src=x onerror="window.__pwned = 2">',
        "c": "</script><script>window.__pwned = 4</script>" + "x" * 200,
    }
    results = [
        CaseResult(f"<script>window.__pwned=5</script>{k}", f"n::{k}", "mail.jsonl", "ft:m",
                   "chat", "ham", labels[1], labels=labels, logprobs={labels[1]: -0.1})
        for k in payloads
    ]  # fmt: skip
    texts = {f"n::{k}": text for k, text in payloads.items()}
    opened = open_report(build_report(results, {"note": "<script>window.__pwned=6</script>"}),
                         "hostile", texts=texts)  # fmt: skip
    page = opened.page
    page.click("th[data-key='case_id'] button")
    page.click("details summary")  # expand the long text
    page.wait_for_timeout(100)
    assert page.evaluate("window.__pwned") is None
    assert opened.errors == []
    rows = explorer_rows(page)
    assert [r["predicted"] for r in rows] == [labels[1]] * 3
    assert rows[0]["text"] == payloads["a"] and rows[1]["text"] == payloads["b"]
    assert payloads["c"] in rows[2]["text"]
    assert rows[0]["id"] == "<script>window.__pwned=5</script>a"
    # only the report's own two script elements exist
    assert page.locator("script").count() == 2
    assert page.locator("img").count() == 0


def test_10000_cases_render_paginated(open_report: Any) -> None:
    # The time to render is a benchmark figure (benchmarks/p3_html_render.py), not asserted here.
    results = synthetic(10_000, 20, accuracy=0.7)
    started = time.perf_counter()
    report = build_report(results, {})
    build_s = time.perf_counter() - started
    opened = open_report(report, "big")
    timing = opened.page.evaluate(
        "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
    )
    print(
        f"10,000 cases: report built in {build_s:.2f} s; page loaded to ready in "
        f"{opened.load_ms:.0f} ms (DOMContentLoaded at {timing:.0f} ms)"
    )
    assert opened.errors == []
    assert len(explorer_rows(opened.page)) == 50
