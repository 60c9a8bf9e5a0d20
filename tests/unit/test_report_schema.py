"""Schema 3: sparse matrices, labels once per task, older reports still read, size linear, cost."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.judging.cost import Price, estimate_cost, price_for
from pytest_ftclass.report import (
    build_report,
    load_report,
    render_html,
    render_markdown,
    results_from_report,
    write_json_report,
)
from pytest_ftclass.results import CaseResult
from tests.helpers import dense


def many_classes(k: int, per_class: int = 2) -> list[CaseResult]:
    """``k`` classes, ``per_class`` cases each, one list of labels shared by every case."""
    labels = [f"class-{i:05d}" for i in range(k)]
    results = []
    for i in range(k * per_class):
        expected = labels[i % k]
        predicted = expected if i % 3 else labels[(i * 7 + 1) % k]
        results.append(
            CaseResult(
                f"c{i}",
                f"v.cases.jsonl::c{i}",
                "v.cases.jsonl",
                "ft:m",
                "chat",
                expected,
                predicted,
                logprobs={predicted: math.log(0.4 + (i % 6) / 10)},
                labels=labels,
                usage={"prompt_tokens": 30, "completion_tokens": 2, "total_tokens": 32},
            )
        )
    return results


def test_cases_leave_their_tasks_labels_out_and_get_them_back(tmp_path: Path) -> None:
    results = many_classes(5)
    odd = CaseResult("odd", "n::odd", "v.cases.jsonl", "ft:m", "chat", "class-00000",
                     "class-00000", labels=["class-00000"])  # fmt: skip
    report = build_report([*results, odd], {})
    path = write_json_report(report, tmp_path / "r.json")
    written = [json.loads(line.rstrip(",")) for line in path.read_text().splitlines()
               if line.startswith('    {"case_id"')]  # fmt: skip
    assert len(written) == 11
    assert all("labels" not in case for case in written[:10])
    assert written[10]["labels"] == ["class-00000"]  # not its task's: kept
    (task,) = report["tasks"]
    assert task["labels"] == results[0].labels
    loaded = load_report(path)
    assert [c["labels"] for c in loaded["cases"][:10]] == [task["labels"]] * 10
    assert loaded["cases"][10]["labels"] == ["class-00000"]
    assert results_from_report(loaded)[10] == odd


def schema_2(report: dict[str, Any]) -> dict[str, Any]:
    """The same run as an ``ftclass-report/2`` file: dense matrices, labels on every case."""
    old = json.loads(json.dumps(report))
    old["schema"] = "ftclass-report/2"
    for entry in [*old["tasks"], *old["models"]]:
        metrics = entry.get("metrics") or {}
        entry.pop("labels", None) if "task" in entry else None
        for key in ("abstention",):
            metrics.pop(key, None)
        if metrics.get("confusion_matrix"):
            metrics["confusion_matrix"] = dense(metrics["confusion_matrix"])
    for case in old["cases"]:
        case["labels"] = list(case["labels"])
    return old


def test_a_schema_2_report_still_loads_and_renders(tmp_path: Path) -> None:
    report = build_report(many_classes(4), {"started": "2026-01-02T03:04:05+00:00"})
    old = schema_2(report)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    loaded = load_report(path)
    assert results_from_report(loaded) == many_classes(4)
    page = render_html(loaded)
    # the dense matrix is drawn as a heatmap of 4 × 4 cells with the same counts
    assert page.count('class="cm-cell') == 16
    assert "2 Jan 2026, 03:04:05 UTC" in page
    assert "| class-00000 |" in render_markdown(loaded)


@pytest.mark.parametrize("k", [60, 240])
def test_the_report_grows_with_cases_plus_classes_not_their_product(tmp_path: Path, k: int) -> None:
    small = build_report(many_classes(k), {})
    big = build_report(many_classes(4 * k), {})
    sizes = []
    for name, report in (("small", small), ("big", big)):
        json_size = write_json_report(report, tmp_path / f"{name}.json").stat().st_size
        sizes.append((json_size, len(render_html(report).encode())))
    # four times the classes and the cases: about four times the bytes (k² would be 16)
    assert sizes[1][0] / sizes[0][0] < 5.0
    assert sizes[1][1] / sizes[0][1] < 5.0
    matrix = big["tasks"][0]["metrics"]["confusion_matrix"]
    assert len(matrix["cells"]) <= 2 * 4 * k  # the non-zero cells only


def test_above_fifty_classes_the_page_lists_the_most_confused_pairs() -> None:
    results = many_classes(60)
    page = render_html(build_report(results, {}))
    assert 'class="cm-cell' not in page  # no 60 × 60 heatmap
    assert "60 classes: too many for a heatmap" in page
    assert render_html(build_report(many_classes(50), {})).count('class="cm-cell') == 50 * 50


def test_prices_give_each_task_and_model_its_cost() -> None:
    results = many_classes(3)
    other = [CaseResult(f"o{i}", f"o::{i}", "w.cases.jsonl", "ft:gpt-4o-mini-2024-07-18:acme::x",
                        "chat", "a", "a", labels=["a", "b"],
                        usage={"prompt_tokens": 1000, "completion_tokens": 10,
                               "total_tokens": 1010}, replayed=True)
             for i in range(4)]  # fmt: skip
    prices = (Price.parse("ft:m=2.5,10"), Price.parse("ft:gpt-4o-mini-*=0.30,1.20"))
    report = build_report([*results, *other], {}, model_under_test="ft:m", prices=prices)
    by_model = {m["model"]: m for m in report["models"]}
    # recomputed from the cases' usage: dollars per million tokens in and out
    assert by_model["ft:m"]["cost"]["usd"] == pytest.approx((6 * 30 * 2.5 + 6 * 2 * 10) / 1e6)
    mini = by_model["ft:gpt-4o-mini-2024-07-18:acme::x"]
    assert mini["cost"]["usd"] == pytest.approx((4000 * 0.30 + 40 * 1.20) / 1e6)
    assert mini["cost"]["price"]["model"] == "ft:gpt-4o-mini-*"
    assert mini["n_replayed"] == 4 and mini["usage"]["total_tokens"] == 4040
    assert [t["cost"]["usd"] for t in report["tasks"]] == [
        by_model["ft:m"]["cost"]["usd"],
        mini["cost"]["usd"],
    ]
    page = render_html(report)
    assert "estimated cost" in page and "as recorded" in page
    assert build_report(results, {})["tasks"][0]["cost"] is None  # tokens alone without a price


def test_price_syntax_and_lookup() -> None:
    assert Price.parse(" ft:a::b = 0.5 , 2 ") == Price("ft:a::b", 0.5, 2.0)
    for bad in ("ft:a=1", "=1,2", "ft:a=x,2", "ft:a=-1,2"):
        with pytest.raises(ValueError):
            Price.parse(bad)
    exact, pattern = Price("ft:a:x", 1, 1), Price("ft:a:*", 2, 2)
    assert price_for("ft:a:x", [pattern, exact]) == exact  # the exact one wins
    assert price_for("ft:a:y", [pattern, exact]) == pattern
    assert price_for("other", [pattern]) is None
    assert estimate_cost(None, exact) is None and estimate_cost({"prompt_tokens": 1}, None) is None


def test_the_collector_shares_one_label_list_per_source_and_model() -> None:
    """Under pytest-xdist every result arrives with its own copy of the labels."""
    from pytest_ftclass.options import Settings
    from pytest_ftclass.running.session import ReportCollector

    collector = ReportCollector(Settings())
    for i, result in enumerate(many_classes(3)):
        result.labels = list(result.labels)  # a copy, as reports from a worker give
        collector.results[f"n{i}"] = result
    cases = collector._cases()
    assert len({id(case.labels) for case in cases}) == 1
    assert cases[0].labels == many_classes(3)[0].labels
