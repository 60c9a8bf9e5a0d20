"""A fine-tuning job's curves and checkpoint evaluations, opened in real headless Chromium.

The report comes from a real run: a job fine-tuned on the reference server,
evaluated with ``--ft-job --ft-checkpoints``.  What the browser draws is read
back (points and markers through the SVG's own transform) and compared with the
result file the API serves and the per-case results of the JSON report.
Needs Playwright and Chromium (see :mod:`tests.browser`).
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from pytest_ftclass.reference import ReferenceServer
from tests.browser import chromium
from tests.e2e.test_fine_tuning_jobs import CANARY_KEY, cases_file, run_job
from tests.helpers import read_report


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


# Maps an SVG element's point to the page through the element's own transform.
_TO_PAGE = """(element, [x, y]) => {
    const svg = element.ownerSVGElement || element;
    const point = svg.createSVGPoint();
    point.x = x; point.y = y;
    const page = point.matrixTransform(element.getScreenCTM());
    return [page.x, page.y];
}"""


def test_the_curves_and_checkpoint_evaluations_are_drawn_where_the_numbers_say(
    pytester: pytest.Pytester, browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ReferenceServer({}) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
        client = openai.OpenAI(base_url=server.base_url, api_key=CANARY_KEY, max_retries=0)
        job = run_job(client, server)
        served = base64.b64decode(client.files.content(job.result_files[0]).content).decode()
        cases_file(pytester.path / "held_out.cases.jsonl", n=45)
        result = pytester.runpytest(
            "--ft-job", job.id, "--ft-checkpoints", "--ft-record-mode", "once"
        )
        assert result.ret == 0, result.stdout.str()
    report = read_report(pytester)
    section = report["fine_tuning"]
    rows = list(csv.DictReader(io.StringIO(served)))

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((pytester.path / "reports" / "ftclass.html").as_uri())
    page.wait_for_selector("html[data-ready='1']", timeout=10_000)
    training = page.locator("#fine-tuning")
    training.scroll_into_view_if_needed()
    assert training.is_visible()
    assert page.locator("#fine-tuning .training-job").inner_text().count(job.id) >= 1

    charts = {
        c.get_attribute("data-chart"): c for c in training.locator("svg.training-curve").all()
    }
    assert sorted(charts) == ["accuracy", "loss"]
    for chart in charts.values():
        box = chart.bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 150

    # every raw train_loss point, read back from the polyline, is the served CSV's row
    loss = charts["loss"]
    x0, x1 = (float(v) for v in loss.get_attribute("data-x-domain").split())
    y0, y1 = (float(v) for v in loss.get_attribute("data-y-domain").split())
    left, top, width, height = (float(v) for v in loss.get_attribute("data-plot").split())
    points = loss.locator("polyline[data-metric='train_loss'][data-kind='raw']").evaluate(
        "line => Array.from(line.points).map(p => [p.x, p.y])"
    )
    assert len(points) == len(rows)
    for (px, py), row in zip(points, rows, strict=True):
        assert abs(x0 + (px - left) / width * (x1 - x0) - int(row["step"])) < 0.01
        assert abs(y0 + (top + height - py) / height * (y1 - y0) - float(row["train_loss"])) < 1e-3
    valid = loss.locator("polyline[data-metric='valid_loss'][data-kind='raw']")
    assert valid.evaluate("line => line.points.length") == sum(1 for r in rows if r["valid_loss"])

    # each checkpoint's accuracy and macro-F1 marker sits at its step and value, on top
    accuracy = charts["accuracy"]
    a_x0, a_x1 = (float(v) for v in accuracy.get_attribute("data-x-domain").split())
    left, top, width, height = (float(v) for v in accuracy.get_attribute("data-plot").split())
    markers = accuracy.locator(".checkpoint-marker").all()
    assert len(markers) == 2 * len(section["checkpoints"]) == 6
    expected = {
        (c["step"], metric): c["evaluation"][metric]
        for c in section["checkpoints"]
        for metric in ("accuracy", "macro_f1")
    }
    for marker in markers:
        step, metric = int(marker.get_attribute("data-step")), marker.get_attribute("data-metric")
        box = marker.evaluate(
            "m => { const b = m.getBBox(); return [b.x + b.width / 2, b.y + b.height / 2]; }"
        )
        assert abs(a_x0 + (box[0] - left) / width * (a_x1 - a_x0) - step) < 0.01
        assert abs((top + height - box[1]) / height - expected[(step, metric)]) < 1e-3
        if metric == "accuracy":  # drawn over the macro-F1 square and the curves
            x, y = marker.evaluate(_TO_PAGE, box)
            on_top = page.evaluate(
                "([x, y]) => document.elementFromPoint(x, y).dataset.metric", [x, y]
            )
            assert on_top == "accuracy"
    best = [c for c in section["checkpoints"] if c["best"]]
    assert len(best) == 1
    ring = accuracy.locator(".best-marker")
    assert ring.count() == 1 and ring.get_attribute("data-step") == str(best[0]["step"])
    assert "best checkpoint" in (ring.locator("title").text_content() or "")
    assert "McNemar vs the final model" in (markers[0].locator("title").text_content() or "")

    # the table: one row per checkpoint (the best marked) and the final model
    table_rows = training.locator("table.checkpoints tr.checkpoint").all()
    assert [int(r.get_attribute("data-step")) for r in table_rows] == [
        c["step"] for c in section["checkpoints"]
    ]
    best_row = training.locator("table.checkpoints tr.best")
    assert best_row.count() == 1 and best_row.get_attribute("data-step") == str(best[0]["step"])
    assert f"{best[0]['evaluation']['accuracy']:.3f}" in best_row.inner_text()
    assert training.locator("tr.final-model").inner_text().startswith("final")
    assert errors == []
    shot = tmp_path / "training.png"
    training.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    context.close()
