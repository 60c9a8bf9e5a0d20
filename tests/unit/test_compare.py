"""Comparing two runs: McNemar against an independent binomial test, pairing by id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_ftclass.judging.compare import compare_results, compare_runs
from pytest_ftclass.judging.significance import mcnemar_exact, paired
from pytest_ftclass.results import CaseResult
from tests.helpers import page_blob


@settings(deadline=None)  # the first example imports scipy
@given(st.integers(0, 300), st.integers(0, 300))
def test_mcnemar_equals_scipy_binomial_test(a_only: int, b_only: int) -> None:
    from scipy.stats import binomtest

    n = a_only + b_only
    if n == 0:
        assert mcnemar_exact(a_only, b_only) == 1.0
        return
    two_sided = binomtest(b_only, n, 0.5, alternative="two-sided").pvalue
    b_worse = binomtest(b_only, n, 0.5, alternative="less").pvalue
    assert mcnemar_exact(a_only, b_only) == pytest.approx(two_sided, rel=1e-9, abs=1e-300)
    assert mcnemar_exact(a_only, b_only, "a_better") == pytest.approx(b_worse, rel=1e-9, abs=1e-300)


def result(model: str, case_id: str, expected: str, predicted: str | None, **kw) -> CaseResult:
    return CaseResult(
        case_id,
        f"v.jsonl::{case_id}",
        "v.jsonl",
        model,
        "chat",
        expected,
        predicted,
        labels=["a", "b"],
        **kw,
    )


def test_flips_pairing_and_unpaired_cases_listed() -> None:
    run_a = [
        result("A", "1", "a", "a"),
        result("A", "2", "b", "b"),
        result("A", "3", "a", "b"),
        result("A", "only-a", "a", "a"),
    ]
    run_b = [
        result("B", "1", "a", "b"),
        result("B", "2", "b", "b"),
        result("B", "3", "a", "a"),
        result("B", "only-b", "b", None, error="HTTP 500"),
    ]
    comparison = compare_results(run_a, run_b)
    (source,) = comparison["sources"]
    assert source["n_shared"] == 3
    assert [f["case_id"] for f in source["flips_a_right"]] == ["1"]
    assert [f["case_id"] for f in source["flips_b_right"]] == ["3"]
    assert comparison["only_in_a"] == ["v.jsonl::only-a"]
    assert comparison["only_in_b"] == ["v.jsonl::only-b"]
    assert source["paired"]["p_value"] == mcnemar_exact(1, 1)
    assert source["delta"]["accuracy"] == pytest.approx(0.0)


def test_paired_counts() -> None:
    counts = paired([(True, True), (False, False), (True, False), (True, False), (False, True)])
    assert (counts.both_right, counts.both_wrong, counts.a_only, counts.b_only) == (1, 1, 2, 1)


def test_comparison_html_escapes_user_data() -> None:
    from pytest_ftclass.report.comparison import render_comparison_html

    run_a = [result("A", "<script>x</script>", "a", "a")]
    run_b = [result("B", "<script>x</script>", "a", "<img src=x onerror=alert(1)>")]
    html = render_comparison_html(compare_runs({"A": run_a, "B": run_b}))
    assert "<script>x" not in html and "<img src=x" not in html
    assert html.lower().count("<script") == 2  # the page's data blob and its own code
    # the flip lists travel in the data blob, escaped there, and reach the page as text
    rows = [row for table in page_blob(html)["tables"] for row in table["rows"]]
    assert ["<script>x</script>", "a", "a", "<img src=x onerror=alert(1)>"] in rows


def test_compare_command_pairs_two_reports(tmp_path, capsys) -> None:
    from pytest_ftclass.cli import main
    from pytest_ftclass.report import build_report, write_json_report

    run_a = [result("A", str(i), "a", "a") for i in range(8)] + [result("A", "x", "b", "b")]
    run_b = [result("B", str(i), "a", "b" if i < 6 else "a") for i in range(8)]
    write_json_report(build_report(run_a, {}), tmp_path / "a.json")
    write_json_report(build_report(run_b, {}), tmp_path / "b.json")
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "6 only A right, 0 only B right" in out
    assert "1 cases only in a: v.jsonl::x" in out
    assert (tmp_path / "ftclass-compare.html").is_file()
    gated = main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--gate"])
    assert gated == 1  # one-sided p = 0.5 ** 6 < 0.05
    assert main(["compare", str(tmp_path / "missing.json"), str(tmp_path / "b.json")]) == 2


def test_the_comparison_quotes_the_latency_percentiles_of_each_side() -> None:
    import numpy as np

    latencies = [0.1 * (i + 1) for i in range(10)]
    a = [result("A", f"c{i}", "a", "a", latency_s=s) for i, s in enumerate(latencies)]
    b = [result("B", f"c{i}", "a", "b", replayed=True) for i in range(10)]
    [source] = compare_results(a, b)["sources"]
    p50, p95 = np.percentile(latencies, [50, 95])  # numpy's interpolation, as in the metrics
    assert source["live_a"]["latency_p50_s"] == pytest.approx(p50)
    assert source["live_a"]["latency_p95_s"] == pytest.approx(p95)  # 0.955, not the 1.0 seen
    assert source["live_b"] is None  # replayed without usage: nothing measured


def test_each_model_s_metrics_are_computed_once_for_its_pairs_and_the_leaderboard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_ftclass.judging import metrics

    computed: list[str] = []
    real = metrics.classification_metrics

    def counted(results: Sequence[CaseResult], **kw: Any) -> dict[str, Any]:
        computed.append(results[0].model)
        return real(results, **kw)

    monkeypatch.setattr(metrics, "classification_metrics", counted)
    runs = {m: [result(m, f"c{i}", "a", "ab"[i % 2]) for i in range(4)] for m in "ABC"}
    comparison = compare_runs(runs)
    assert len(comparison["pairs"]) == 2 and comparison["leaderboards"]
    assert sorted(computed) == ["A", "B", "C"]
    # the remembered numbers are those computed afresh
    assert comparison["pairs"][1]["sources"][0]["metrics_b"] == real(runs["C"])
