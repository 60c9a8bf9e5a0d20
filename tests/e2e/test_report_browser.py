"""The HTML report opened in real headless Chromium: the first screen, the filters, scale, safety.

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

from pytest_ftclass.judging.compare import by_model, compare_runs
from pytest_ftclass.judging.gate import Bound, GateConfig, evaluate_gate
from pytest_ftclass.report import build_report, write_html_report
from pytest_ftclass.report.comparison import comparison_summary, render_comparison_html
from pytest_ftclass.results import CaseResult
from tests.browser import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class Opened:
    """A loaded report page and the errors it logged."""

    def __init__(self, page: Any, errors: list[str], load_ms: float) -> None:
        self.page = page
        self.errors = errors
        self.load_ms = load_ms


@pytest.fixture
def open_report(browser: Any, tmp_path: Path) -> Iterator[Any]:
    contexts = []

    def opener(
        report: dict[str, Any], name: str = "report", height: int = 1000, **kwargs: Any
    ) -> Opened:
        path = write_html_report(report, tmp_path / f"{name}.html", **kwargs)
        context = browser.new_context(viewport={"width": 1400, "height": height})
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
    n_cases: int,
    n_classes: int,
    *,
    seed: int = 3,
    accuracy: float = 0.8,
    long_names: bool = False,
    model: str = "ft:gpt-4o-mini:acme::x1",
    source: str = "valid.cases.jsonl",
    tags: int = 2,
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
                nodeid=f"{source}::case-{i}[{model}]",
                source=source,
                model=model,
                endpoint="chat",
                expected=expected,
                predicted=predicted,
                logprobs=logprobs,
                labels=labels,
                tags=[f"tag-{rng.randrange(tags):03d}"],
                input_digest=f"{i:016x}",
                usage={"prompt_tokens": 40, "completion_tokens": 1, "total_tokens": 41},
                latency_s=rng.uniform(0.05, 0.6),
                outcome="passed" if expected == predicted else "mispredicted",
            )
        )
    return results


UNDER_TEST, CANDIDATE, TAGGER = "ft:gpt-4o-mini:acme::prod", "ft:gpt-4o-mini:acme::cand", "ft:tags"


def full_run() -> tuple[dict[str, Any], list[CaseResult]]:
    """A run as the plugin writes it: two sources asked of two models, a third model's task,
    a gate of eight criteria and the comparison (the same shape as the example suite)."""
    results = []
    for model, accuracy in ((UNDER_TEST, 0.9), (CANDIDATE, 0.8)):
        results += synthetic(240, 5, model=model, source="topic.cases.jsonl", accuracy=accuracy)
        results += synthetic(60, 5, model=model, source="chat.cases.jsonl", accuracy=accuracy,
                             seed=4)  # fmt: skip
    results += synthetic(200, 2, model=TAGGER, source="sport.csv", seed=5)
    report = build_report(
        results, {"started": "2026-11-30T12:00:00+00:00", "partial": False},
        model_under_test=UNDER_TEST, compare_models=[CANDIDATE],
    )  # fmt: skip
    gate = GateConfig(minimums=(Bound("accuracy", 0.7), Bound("macro_f1", 0.7)), max_errors=0)
    report["gate"] = evaluate_gate(report, gate).to_dict()
    comparison = compare_runs(by_model(results, [UNDER_TEST, CANDIDATE]))
    report["comparison"] = comparison_summary(comparison)
    return report, results


def box(page: Any, selector: str) -> dict[str, float]:
    return page.locator(selector).bounding_box()


def test_the_first_screen_holds_the_verdict_and_the_overview(open_report: Any) -> None:
    report, _ = full_run()
    opened = open_report(report, "first", height=900)
    page = opened.page
    assert opened.errors == []
    assert page.evaluate("window.scrollY") == 0
    verdicts = report["gate"]["verdicts"]
    assert len(verdicts) == 8
    # the verdict: each criterion with pass or fail, its value and bound
    assert page.text_content("#verdict h2 .state") == "passed"
    rows = page.locator("#verdict table.criteria tbody tr")
    assert rows.count() == len(verdicts)
    first = [c.strip() for c in rows.nth(1).locator("td").all_text_contents()]
    assert first[:3] == ["pass", "accuracy", "topic.cases.jsonl @ " + UNDER_TEST]
    assert first[3] == f"{verdicts[1]['value']:.4g}" and first[4] == ">= 0.7"
    # the overview: tasks × models, the model under test first in each source, B − A and p
    overview = page.locator("#overview table.overview tbody tr")
    assert overview.count() == len(report["tasks"]) == 5
    cells = [c.strip() for c in overview.nth(1).locator("td").all_text_contents()]
    pair = report["comparison"]["pairs"][0]["sources"][0]
    assert cells[1].startswith(CANDIDATE) and "comparison model" in cells[1]
    assert cells[6] == f"{pair['delta']['accuracy']:+.3f}".replace("-", "−")
    assert cells[7] == f"{pair['paired']['p_value']:.3g}"
    assert (
        page.locator("#overview tbody tr")
        .first.locator("td.model")
        .text_content()
        .startswith(UNDER_TEST)
    )
    # both within the first 900 pixels, at 1400 × 900
    for selector in ("#verdict", "#overview table.overview"):
        assert box(page, selector)["y"] + box(page, selector)["height"] <= 900, selector
    # the run's details are folded at the bottom, in words
    assert page.locator("details#run").get_attribute("open") is None
    page.click("details#run summary")
    details = page.text_content("details#run")
    assert "30 Nov 2026, 12:00:00 UTC" in details and "partial" in details
    assert "no" in page.locator("details#run tr", has_text="partial").text_content()
    page.screenshot(path=f"{report_dir(page)}/first.png")
    print(f"screenshot: {report_dir(page)}/first.png")


def shown_rows(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        ".explorer tbody tr",
        """rows => rows.map(r => ({
            id: r.querySelector('.case-id').textContent,
            task: r.querySelector('.task').textContent,
            expected: r.querySelector('.expected').textContent,
            predicted: r.querySelector('.predicted').textContent,
            confidence: r.querySelector('.confidence').textContent,
            text: r.querySelector('.text-cell').textContent,
        }))""",
    )


def status_count(page: Any) -> int:
    return int(page.text_content(".ex-status-line").split(" of ")[0])


def test_the_explorer_filters_by_model_task_class_expected_and_predicted(open_report: Any) -> None:
    report, results = full_run()
    page = open_report(report, "filters").page
    wrong = [r for r in results if not r.correct]
    assert status_count(page) == len(wrong)  # mispredicted, every model, by default
    assert len(shown_rows(page)) == 50

    page.select_option(".ex-model", label=CANDIDATE)
    assert status_count(page) == sum(1 for r in wrong if r.model == CANDIDATE)
    # the task list offers the chosen model's tasks only
    tasks = page.eval_on_selector_all(".ex-task option", "os => os.map(o => o.textContent)")
    assert tasks == [
        "all tasks",
        f"topic.cases.jsonl @ {CANDIDATE}",
        f"chat.cases.jsonl @ {CANDIDATE}",
    ]
    page.select_option(".ex-task", label=f"chat.cases.jsonl @ {CANDIDATE}")
    mine = [r for r in wrong if r.task == f"chat.cases.jsonl @ {CANDIDATE}"]
    assert [row["id"] for row in shown_rows(page)] == [r.case_id for r in mine]

    page.fill(".ex-class", "class_2")
    involving = [r for r in mine if "class_2" in (r.expected, r.predicted)]
    assert [row["id"] for row in shown_rows(page)] == [r.case_id for r in involving]
    page.fill(".ex-class", "")
    page.fill(".ex-expected", "class_1")
    page.fill(".ex-predicted", "class_3")
    pair = [r for r in mine if (r.expected, r.predicted) == ("class_1", "class_3")]
    assert [row["id"] for row in shown_rows(page)] == [r.case_id for r in pair]
    page.select_option(".ex-status", label="correct")
    assert shown_rows(page) == []  # expected 1, predicted 3: never right
    page.fill(".ex-predicted", "class_1")
    right = [r for r in results if r.task == mine[0].task and r.correct and r.expected == "class_1"]
    assert {row["id"] for row in shown_rows(page)} == {r.case_id for r in right}
    page.fill(".ex-expected", "no such class")
    assert shown_rows(page) == [] and status_count(page) == 0
    page.click(".ex-reset")
    assert status_count(page) == len(wrong)


def test_a_heatmap_cell_lists_its_cases(open_report: Any) -> None:
    report, results = full_run()
    page = open_report(report, "cells").page
    # the model under test's own section for the topic source: its first off-diagonal cell
    section = page.locator("section.task", has_text=f"topic.cases.jsonl @ {UNDER_TEST}").first
    assert section.locator("h2").text_content() == f"topic.cases.jsonl @ {UNDER_TEST}"
    cell = section.locator("td.cm-cell:not(.zero):not(.diagonal)").first
    expected = cell.evaluate("td => td.parentNode.querySelector('th').title")
    predicted = cell.evaluate(
        "td => td.closest('table').querySelectorAll('thead th.col')[td.cellIndex - 1].title"
    )
    count = int(cell.text_content())
    cell.click()
    cases = [r for r in results if r.task == f"topic.cases.jsonl @ {UNDER_TEST}"
             and (r.expected, r.predicted) == (expected, predicted)]  # fmt: skip
    assert len(cases) == count > 0
    rows = shown_rows(page)
    assert [row["id"] for row in rows] == [r.case_id for r in cases]
    assert {(row["expected"], row["predicted"]) for row in rows} == {(expected, predicted)}
    # the explorer came into view
    top = page.evaluate("document.getElementById('explorer').getBoundingClientRect().top")
    assert 0 <= top < page.viewport_size["height"] - 200
    # a diagonal cell lists right answers
    section.locator("td.cm-cell.diagonal").first.click()
    rows = shown_rows(page)
    assert rows and all(row["expected"] == row["predicted"] for row in rows)


def test_above_fifty_classes_the_most_confused_pairs_and_a_searchable_class_table(
    open_report: Any,
) -> None:
    results = synthetic(2000, 87, long_names=True, accuracy=0.6)
    opened = open_report(build_report(results, {}), "many")
    page = opened.page
    assert opened.errors == []
    assert page.locator("td.cm-cell").count() == 0  # no 87 × 87 heatmap
    pairs = page.locator(".ctable.pairs tbody tr")
    assert pairs.count() == 20  # 30 listed, 20 shown before "show all"
    first = [c.strip() for c in pairs.first.locator("td").all_text_contents()]
    confused: dict[tuple[str, str], int] = {}
    for r in results:
        if not r.correct:
            confused[(r.expected, str(r.predicted))] = (
                confused.get((r.expected, str(r.predicted)), 0) + 1
            )
    most = max(confused.values())
    assert int(first[2]) == most and confused[(first[0], first[1])] == most
    pairs.first.locator("button.show-cases").click()
    assert len(shown_rows(page)) == most
    # the per-class table: 20 rows, then a search box and the rest
    per_class = page.locator(".ctable.per-class")
    assert per_class.locator("tbody tr").count() == 20
    per_class.locator(".ct-search").fill("category_05_")
    assert per_class.locator("tbody tr code").all_text_contents() == ["category_05_subtopic"]
    per_class.locator(".ct-search").fill("")
    per_class.locator(".ct-all").click()
    assert per_class.locator("tbody tr").count() == 87


def test_slices_beyond_twenty_rows_collapse_with_a_search_box(open_report: Any) -> None:
    results = synthetic(3000, 4, tags=100)
    page = open_report(build_report(results, {}), "tags").page
    slices = page.locator(".ctable.slices")
    assert slices.locator("tbody tr").count() == 20
    assert slices.locator(".ct-search").get_attribute("placeholder") == "search 100 rows"
    slices.locator(".ct-search").fill("tag-07")
    shown = slices.locator("tbody tr code").all_text_contents()
    assert shown == [f"tag-07{i}" for i in range(10)]
    cases = [r for r in results if r.tags == ("tag-070",)]
    row = [c.strip() for c in slices.locator("tbody tr").first.locator("td").all_text_contents()]
    assert int(row[1]) == len(cases)
    assert float(row[3]) == pytest.approx(sum(r.correct for r in cases) / len(cases), abs=5e-4)
    # the page stays short: 100 tags no longer make it tens of thousands of pixels tall
    assert page.evaluate("document.body.scrollHeight") < 6000


def test_hostile_text_ids_and_labels_execute_nothing_and_show_as_text(open_report: Any) -> None:
    labels = ["ham", "<img src=x onerror=window.__pwned=3>"]
    payloads = {
        "a": "<script>window.__pwned = 1</script>",
        "b": '<img src=x onerror="window.__pwned = 2">',
        "c": "</script><script>window.__pwned = 4</script>" + "x" * 200,
    }
    results = [
        CaseResult(f"<script>window.__pwned=5</script>{k}", f"n::{k}", "mail.jsonl",
                   "<b>ft:m</b>", "chat", "ham", labels[1], labels=labels,
                   logprobs={labels[1]: -0.1})
        for k in payloads
    ]  # fmt: skip
    texts = {f"n::{k}": text for k, text in payloads.items()}
    report = build_report(results, {"note": "<script>window.__pwned=6</script>"})
    report["comparison"] = comparison_summary(
        compare_runs({"<b>ft:m</b>": results, "<i>B</i>": results})
    )
    opened = open_report(report, "hostile", texts=texts)
    page = opened.page
    page.click("th[data-key='case_id'] button")
    page.click(".explorer details summary")  # expand the long text
    page.select_option(".ex-model", label="<b>ft:m</b>")
    page.fill(".ex-expected", "ham")
    page.locator("table.confusion td.cm-cell:not(.zero)").first.click()
    page.wait_for_timeout(100)
    assert page.evaluate("window.__pwned") is None
    assert opened.errors == []
    rows = shown_rows(page)
    assert [r["predicted"] for r in rows] == [labels[1]] * 3
    assert {r["id"] for r in rows} == {f"<script>window.__pwned=5</script>{k}" for k in payloads}
    assert payloads["a"] in [r["text"] for r in rows]
    # only the report's own two script elements exist; no markup came from the data
    assert page.locator("script").count() == 2
    assert page.locator("img").count() == 0 and page.locator("b, i").count() == 0


def test_1000_classes_two_cases_each_make_a_small_page_that_opens_fast(open_report: Any) -> None:
    results = synthetic(2000, 1000, accuracy=0.7)
    started = time.perf_counter()
    report = build_report(results, {})
    build_s = time.perf_counter() - started
    opened = open_report(report, "thousand")
    size = Path(report_dir(opened.page), "thousand.html").stat().st_size
    print(f"1,000 classes × 2 cases: built in {build_s:.2f} s, HTML {size / 1e6:.2f} MB, "
          f"loaded in {opened.load_ms:.0f} ms")  # fmt: skip
    assert size <= 5_000_000
    assert opened.load_ms < 10_000
    assert opened.errors == []
    assert opened.page.locator(".ctable.per-class tbody tr").count() == 20


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
    assert len(shown_rows(opened.page)) == 50


def test_the_comparison_page_of_three_models_shows_the_leaderboard(
    browser: Any, tmp_path: Path
) -> None:
    runs = {
        model: synthetic(300, 4, model=model, accuracy=accuracy, seed=9)
        for model, accuracy in (("ft:a", 0.9), ("ft:b", 0.6), ("ft:c", 0.88))
    }
    comparison = compare_runs(runs)
    path = tmp_path / "compare.html"
    path.write_text(render_comparison_html(comparison), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-ready='1']")
    assert errors == []
    (board,) = comparison["leaderboards"]
    rows = page.locator("table.board tbody tr")
    assert [rows.nth(i).locator("code").text_content() for i in range(3)] == [
        m["model"] for m in board["models"]
    ]
    assert page.locator("section.pair").count() == 1 + 2  # the board, then B and C against A
    assert page.locator("table.confusion").count() == 4  # side by side, per pair
    page.close()


def report_dir(page: Any) -> str:
    return str(Path(page.url.removeprefix("file://")).parent)
