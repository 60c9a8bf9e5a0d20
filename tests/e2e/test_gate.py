"""Every exit-status rule of the quality gate, as a user meets it (pytester, real HTTP)."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import BAD, GOOD, SEPARATOR, read_report, validation_lines, write_jsonl


def suite_with(
    pytester: pytest.Pytester, server, *, sport: int, extra: list[dict] | None = None
) -> list[str]:
    """Cases: ``sport`` sport cases, 3 tech, 3 politics, all right for GOOD; then ``extra``."""
    wanted = {"sport": sport, "tech": 3, "politics": 3}
    lines = [
        line
        for line in validation_lines(per_class=max(sport, 3))
        if int(str(line["id"]).rsplit("-", 1)[1]) < wanted[str(line["completion"]).strip()]
    ]
    write_jsonl(pytester.path / "valid.cases.jsonl", lines + (extra or []))
    return [f"--ft-base-url={server.base_url}", "--ft-record-mode=once"]


TRICKY = {"id": "tricky", "prompt": "goal match striker" + SEPARATOR, "completion": " tech"}


def test_threshold_just_met_and_just_missed(pytester: pytest.Pytester, server) -> None:
    args = suite_with(pytester, server, sport=3, extra=[TRICKY])  # 9 right of 10
    met = pytester.runpytest(f"--ft-model={GOOD}", *args, "--ft-min", "accuracy=0.9")
    assert met.ret == pytest.ExitCode.OK
    met.stdout.fnmatch_lines(["*gate passed*"])
    assert read_report(pytester)["gate"]["passed"] is True

    missed = pytester.runpytest(f"--ft-model={GOOD}", *args, "--ft-min", "accuracy=0.901")
    assert missed.ret == pytest.ExitCode.TESTS_FAILED
    missed.stdout.fnmatch_lines(
        ["*FAIL accuracy = 0.9 (needs >= 0.901) [[]valid.cases.jsonl @ ft:babbage-002:acme::good]*"]
    )
    verdicts = read_report(pytester)["gate"]["verdicts"]
    first = next(v for v in verdicts if v["criterion"] == "accuracy")
    assert (first["criterion"], first["value"], first["bound"], first["passed"]) == (
        "accuracy",
        0.9,
        0.901,
        False,
    )


def test_max_bound_and_ini_list(pytester: pytest.Pytester, server) -> None:
    args = suite_with(pytester, server, sport=3, extra=[TRICKY])
    pytester.makeini(
        """
        [pytest]
        ft_min =
            accuracy=0.85
            macro_f1=0.8
        ft_max = error_rate=0
        """
    )
    result = pytester.runpytest(f"--ft-model={GOOD}", *args)
    assert result.ret == pytest.ExitCode.OK
    # 3 bounds, the error budget and "cases scored"
    assert len(read_report(pytester)["gate"]["verdicts"]) == 5


def test_per_class_threshold(pytester: pytest.Pytester, server) -> None:
    args = suite_with(pytester, server, sport=3, extra=[TRICKY])
    ok = pytester.runpytest(f"--ft-model={GOOD}", *args, "--ft-min", "recall[sport]=1.0")
    assert ok.ret == pytest.ExitCode.OK
    bad = pytester.runpytest(f"--ft-model={GOOD}", *args, "--ft-min", "recall[tech]=1.0")
    assert bad.ret == pytest.ExitCode.TESTS_FAILED
    bad.stdout.fnmatch_lines(["*FAIL recall[[]tech] = 0.75 (needs >= 1)*"])
    # a class no case file has is a usage error before any request, naming the labels
    shutil.rmtree(pytester.path / "reports")
    unknown = pytester.runpytest(f"--ft-model={GOOD}", *args, "--ft-min", "recall[golf]=0.5")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(
        ["*recall[[]golf]: no case has the label 'golf' (labels: politics, sport, tech)*"]
    )
    assert not (pytester.path / "reports").exists()


def test_critical_miss_fails_the_gate(pytester: pytest.Pytester, server) -> None:
    args = suite_with(pytester, server, sport=3, extra=[{**TRICKY, "critical": True}])
    result = pytester.runpytest(f"--ft-model={GOOD}", *args, "--ft-min", "accuracy=0.5")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*FAIL critical cases mispredicted = 1 (needs <= 0) [[]run]: tricky*"]
    )


def test_errors_within_and_over_budget(pytester: pytest.Pytester, server) -> None:
    # six cases recorded one per request; three more replay as errors (not in the cassette)
    lines = validation_lines(per_class=3)
    path = write_jsonl(pytester.path / "valid.cases.jsonl", lines[:6])
    model = [f"--ft-model={GOOD}", "--ft-batch-size=1"]
    pytester.runpytest(*model, f"--ft-base-url={server.base_url}", "--ft-record-mode=once")
    write_jsonl(path, lines[:9])
    within = pytester.runpytest(*model, "--ft-max-errors=3")
    within.assert_outcomes(passed=6, errors=3)
    assert within.ret == pytest.ExitCode.OK
    within.stdout.fnmatch_lines(["*6 passed, 3 errors, 1 gate passed*"])  # one story
    over = pytester.runpytest(*model, "--ft-max-errors=2")
    assert over.ret == pytest.ExitCode.TESTS_FAILED
    over.stdout.fnmatch_lines(["*FAIL errors = 3 (needs <= 2) [[]run]*", "*1 gate failed*"])
    plain = pytester.runpytest(*model)
    assert plain.ret == pytest.ExitCode.TESTS_FAILED
    plain.stdout.fnmatch_lines(["*no quality gate configured*"])


def test_a_budget_never_passes_a_run_where_every_case_errored(pytester: pytest.Pytester) -> None:
    # no cassette, replay only: every case is an error saying how to record it
    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=1))
    result = pytester.runpytest(f"--ft-model={GOOD}", "--ft-max-errors=100")
    result.assert_outcomes(errors=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*FAIL cases scored = 0 (needs >= 1) [[]run]: "
            "no case was scored: all 3 asked ended in errors*"
        ]
    )
    assert read_report(pytester)["gate"]["passed"] is False


@pytest.mark.parametrize(("sport", "significant"), [(2, False), (5, True)])
def test_baseline_drop_significant_or_not(
    pytester: pytest.Pytester, server, sport: int, significant: bool
) -> None:
    args = suite_with(pytester, server, sport=sport)
    baseline = pytester.path / "baseline.json"
    pytester.runpytest(f"--ft-model={GOOD}", *args, f"--ft-save-baseline={baseline}")
    assert baseline.is_file()

    gate = [f"--ft-baseline={baseline}", "--ft-max-drop", "accuracy=0.01"]
    plain = pytester.runpytest(f"--ft-model={BAD}", *args, *gate)
    assert plain.ret == pytest.ExitCode.TESTS_FAILED  # any drop over 0.01 fails

    tested = pytester.runpytest(f"--ft-model={BAD}", *args, *gate, "--ft-significance=0.05")
    # BAD gets exactly the sport cases wrong: one-sided McNemar p = 0.5 ** sport
    expected = pytest.ExitCode.TESTS_FAILED if significant else pytest.ExitCode.OK
    assert tested.ret == expected
    (verdict,) = [
        v for v in read_report(pytester)["gate"]["verdicts"] if v["criterion"].startswith("drop")
    ]
    assert f"p={0.5**sport:.3g}" in verdict["detail"]
    assert verdict["passed"] is (not significant)


@pytest.mark.parametrize(("sport", "significant"), [(2, False), (5, True)])
def test_comparison_gate(pytester: pytest.Pytester, server, sport: int, significant: bool) -> None:
    """--ft-gate-compare fails when the model under test is significantly worse than a compared one.

    BAD gets exactly the sport cases wrong that GOOD gets right: one-sided McNemar p = 0.5 ** sport.
    """
    args = suite_with(pytester, server, sport=sport)
    result = pytester.runpytest(
        f"--ft-model={BAD}", f"--ft-compare={GOOD}", "--ft-gate-compare", *args, "-v"
    )
    n = sport + 6
    result.assert_outcomes(passed=2 * n - sport)
    result.stdout.fnmatch_lines(
        ["*valid.cases.jsonl::sport-0[[]ft:babbage-002:acme:bad] MISPREDICTED*"]
    )
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if significant else pytest.ExitCode.OK)
    (verdict,) = [v for v in read_report(pytester)["gate"]["verdicts"] if "worse" in v["criterion"]]
    assert verdict["criterion"] == f"p-value that {BAD} is worse than {GOOD}"
    assert verdict["value"] == pytest.approx(0.5**sport) and verdict["passed"] is not significant
    comparison = json.loads((pytester.path / "reports" / "ftclass-compare.json").read_text())
    (pair,) = comparison["pairs"]
    assert (pair["model_a"], pair["model_b"]) == (BAD, GOOD)  # A: the model under test
    (source,) = pair["sources"]
    assert (source["paired"]["a_only"], source["paired"]["b_only"]) == (0, sport)
    assert {f["case_id"] for f in source["flips_b_right"]} == {f"sport-{i}" for i in range(sport)}
    assert (pytester.path / "reports" / "ftclass-compare.html").is_file()

    # the better model under test never fails for being compared with a worse one
    better = pytester.runpytest(f"--ft-model={GOOD}", f"--ft-compare={BAD}", "--ft-gate-compare")
    assert better.ret == pytest.ExitCode.OK


def test_bad_gate_options_are_usage_errors(pytester: pytest.Pytester) -> None:
    for args, message in [
        (["--ft-min", "accuracy"], "*--ft-min: expected METRIC=NUMBER*"),
        (["--ft-max-drop", "accuracy=0.1"], "*--ft-max-drop needs --ft-baseline*"),
        (["--ft-baseline=nope.json"], "*--ft-baseline *nope.json: no such file*"),
        (["--ft-gate-compare"], "*--ft-gate-compare needs --ft-compare=MODEL*"),
        (["--ft-compare=local"], "*--ft-compare local is the model under test (--ft-model)*"),
        (["--ft-prices", "local=1"], "*--ft-prices: expected MODEL=INPUT,OUTPUT*"),
        (["--ft-significance=2"], "*ft_significance must be between 0 and 1*"),
    ]:
        result = pytester.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        result.stderr.fnmatch_lines([message])
