"""Fine-tunes compared through the plugin: ftclass.md, three models at once, prices, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import BAD, GOOD, read_report, training_lines, validation_lines, write_jsonl

WORSE = "ft:babbage-002:acme::worse"  # sport and politics learnt as tech


@pytest.fixture(scope="module")
def worse_model() -> Any:
    from pytest_ftclass.cases.sources import load_cases
    from pytest_ftclass.reference import ReferenceClassifier

    relabelled = [
        {**line, "completion": " tech" if line["completion"] in (" sport", " politics") else
         line["completion"]}
        for line in training_lines()
    ]  # fmt: skip
    return ReferenceClassifier.train(load_cases(relabelled, name="train-worse"))


@pytest.fixture
def three(models: dict[str, Any], worse_model: Any) -> Iterator[Any]:
    from pytest_ftclass.reference import ReferenceServer

    with ReferenceServer({**models, WORSE: worse_model}) as running:
        yield running


def live(server: Any) -> list[str]:
    return [f"--ft-base-url={server.base_url}", "--ft-record-mode=once"]


def test_the_step_summary_of_a_compare_run_holds_the_comparison_with_mcnemars_p(
    pytester: pytest.Pytester, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=4))
    result = pytester.runpytest(f"--ft-model={GOOD}", f"--ft-compare={BAD}", *live(server))
    assert result.ret == pytest.ExitCode.OK
    report = read_report(pytester)
    cases = report["cases"]
    right = {(c["model"], c["case_id"]): c["correct"] for c in cases}
    ids = sorted({c["case_id"] for c in cases})
    a_only = sum(right[GOOD, i] and not right[BAD, i] for i in ids)
    b_only = sum(right[BAD, i] and not right[GOOD, i] for i in ids)
    assert (a_only, b_only) == (4, 0)  # BAD gets exactly the four sport cases wrong
    p = min(1.0, 2 * 0.5 ** (a_only + b_only))  # McNemar's exact two-sided p, by hand
    markdown = (pytester.path / "reports" / "ftclass.md").read_text(encoding="utf-8")
    accuracy = {m: sum(right[m, i] for i in ids) / len(ids) for m in (GOOD, BAD)}
    row = (
        f"| valid.cases.jsonl | {accuracy[GOOD]:.3f} | {accuracy[BAD]:.3f} "
        f"| {accuracy[BAD] - accuracy[GOOD]:+.3f}".replace("-", "−")
    )
    line = next(x for x in markdown.splitlines() if x.startswith("| valid.cases.jsonl | 1.000"))
    assert line.startswith(row)
    assert line.endswith(f"| {a_only} | {b_only} | {p:.3g} |")
    assert f"{p:.3g}" == "0.125"
    assert "valid.cases.jsonl: 4 cases only A right" in markdown
    assert "| sport-0 | sport | sport | tech |" in markdown
    # the overview says it too, and the step summary is the same text
    assert f"| valid.cases.jsonl | {BAD.replace('_', '')}" in markdown.replace("\\", "")
    assert summary.read_text(encoding="utf-8").strip() == markdown.strip()
    # the HTML report carries the comparison inside it
    html = (pytester.path / "reports" / "ftclass.html").read_text(encoding="utf-8")
    assert 'id="comparison"' in html and "McNemar p = 0.125" in html


def test_three_models_at_once_give_a_leaderboard_with_holm_corrected_p_values(
    pytester: pytest.Pytester, three: Any
) -> None:
    from scipy.stats import binomtest

    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=6))
    result = pytester.runpytest(
        f"--ft-model={GOOD}", f"--ft-compare={BAD}", f"--ft-compare={WORSE}", *live(three)
    )
    assert result.ret == pytest.ExitCode.OK
    report = read_report(pytester)
    assert [(m["model"], m["role"]) for m in report["models"]] == [
        (GOOD, "under_test"), (BAD, "comparison"), (WORSE, "comparison"),
    ]  # fmt: skip
    right = {(c["model"], c["case_id"]): c["correct"] for c in report["cases"]}
    ids = sorted({c["case_id"] for c in report["cases"]})
    (board,) = report["comparison"]["leaderboards"]
    assert [m["model"] for m in board["models"]] == [GOOD, BAD, WORSE]  # 18, 12 and 6 right
    assert [m["n_correct"] for m in board["models"]] == [
        sum(right[m, i] for i in ids) for m in (GOOD, BAD, WORSE)
    ]
    raw = []
    for pair in board["pairs"]:
        a, b = pair["model_a"], pair["model_b"]
        a_only = sum(right[a, i] and not right[b, i] for i in ids)
        b_only = sum(right[b, i] and not right[a, i] for i in ids)
        assert (pair["a_only"], pair["b_only"]) == (a_only, b_only)
        raw.append(binomtest(b_only, a_only + b_only, 0.5).pvalue)
        assert pair["p_value"] == pytest.approx(raw[-1], rel=1e-9)
    # Holm by hand: sorted ascending, the i-th times (m − i), never below the one before
    order = sorted(range(3), key=lambda i: raw[i])
    holm, running = [0.0] * 3, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[i]))
        holm[i] = running
    assert [p["p_holm"] for p in board["pairs"]] == pytest.approx(holm, rel=1e-9)
    assert board["best"] == GOOD
    verdicts = {v["model"]: v["significantly_better"] for v in board["best_against"]}
    assert verdicts == {BAD: holm[0] < 0.05, WORSE: holm[1] < 0.05}
    assert verdicts[WORSE]  # 12 cases only GOOD gets right: p = 2 · 0.5^12, × 3 still tiny
    markdown = (pytester.path / "reports" / "ftclass.md").read_text(encoding="utf-8")
    assert "## ftclass: leaderboard, valid.cases.jsonl" in markdown
    assert f"better (Holm p = {holm[1]:.3g})" in markdown
    pairs = json.loads((pytester.path / "reports" / "ftclass-compare.json").read_text())["pairs"]
    assert [(p["model_a"], p["model_b"]) for p in pairs] == [(GOOD, BAD), (GOOD, WORSE)]
    result.stdout.fnmatch_lines(
        ["leaderboard valid.cases.jsonl (18 shared cases):", f"  1. {GOOD}: *"]
    )

    # the gate: the model under test must not be significantly worse than any compared one
    gated = pytester.runpytest(
        f"--ft-model={WORSE}", f"--ft-compare={BAD}", f"--ft-compare={GOOD}", "--ft-gate-compare",
        *live(three),
    )  # fmt: skip
    assert gated.ret == pytest.ExitCode.TESTS_FAILED
    worse = [v for v in read_report(pytester)["gate"]["verdicts"] if "worse than" in v["criterion"]]
    assert [v["criterion"] for v in worse] == [
        f"p-value that {WORSE} is worse than {BAD}",
        f"p-value that {WORSE} is worse than {GOOD}",
    ]
    one_sided = [0.5**6, 0.5**12]  # BAD: 6 politics cases more; GOOD: 12 more, none fewer
    ranked = sorted(range(2), key=lambda i: one_sided[i])
    expected, running = [0.0, 0.0], 0.0
    for rank, i in enumerate(ranked):
        running = max(running, min(1.0, (2 - rank) * one_sided[i]))
        expected[i] = running
    assert [v["value"] for v in worse] == pytest.approx(expected)
    assert [v["passed"] for v in worse] == [False, False]


def test_prices_in_the_ini_give_the_cost_of_each_task(
    pytester: pytest.Pytester, server: Any
) -> None:
    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=2))
    pytester.makeini(
        """
        [pytest]
        ft_prices =
            ft:babbage-002:acme::*=1.60,1.60
            ft:babbage-002:acme::bad=0.40,0.80
        """
    )
    result = pytester.runpytest(f"--ft-model={GOOD}", f"--ft-compare={BAD}", *live(server))
    assert result.ret == pytest.ExitCode.OK
    report = read_report(pytester)
    prices = {GOOD: (1.60, 1.60), BAD: (0.40, 0.80)}
    for task in report["tasks"]:
        own = [c for c in report["cases"] if c["model"] == task["model"]]
        prompt = sum(c["usage"]["prompt_tokens"] for c in own if c["usage"])
        completion = sum(c["usage"]["completion_tokens"] for c in own if c["usage"])
        assert prompt > 0
        price_in, price_out = prices[task["model"]]
        assert task["cost"]["usd"] == pytest.approx(
            (prompt * price_in + completion * price_out) / 1e6
        )
    assert report["metadata"]["prices"] == [
        "ft:babbage-002:acme::*=1.6,1.6",
        "ft:babbage-002:acme::bad=0.4,0.8",
    ]
    html = (pytester.path / "reports" / "ftclass.html").read_text(encoding="utf-8")
    assert "estimated cost" in html and '<th class="num">cost</th>' in html


def test_ftclass_compare_takes_several_reports(
    pytester: pytest.Pytester, three: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_ftclass.cli import main

    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=6))
    paths = []
    for model in (GOOD, BAD, WORSE):
        path = pytester.path / f"{model.rsplit(':', 1)[1]}.json"
        pytester.runpytest(f"--ft-model={model}", *live(three), f"--ft-save-baseline={path}")
        paths.append(str(path))
    out = pytester.path / "compared"
    assert main(["compare", *paths, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"comparison: A = {GOOD}, B = {BAD}" in printed
    assert f"comparison: A = {GOOD}, B = {WORSE}" in printed
    assert "leaderboard valid.cases.jsonl (18 shared cases):" in printed
    comparison = json.loads((out / "ftclass-compare.json").read_text(encoding="utf-8"))
    assert comparison["schema"] == "ftclass-comparison/2" and comparison["reference"] == GOOD
    assert (out / "ftclass-compare.html").is_file()
    # --gate: a candidate significantly worse than the reference (the first report) fails
    assert main(["compare", *paths, "--out", str(out), "--gate"]) == 1
    assert f"{WORSE} on valid.cases.jsonl" in capsys.readouterr().err
    assert main(["compare", paths[2], paths[0], "--out", str(out), "--gate"]) == 0
