"""Honest numbers: per model, each case once, and a gate that never passes on nothing.

Every test runs pytest the way a user does (pytester, real HTTP to the local
reference model on 127.0.0.1) and checks what the run says against answers
known by construction: ``GOOD`` gets every case right, ``BAD`` every sport case
wrong.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import (
    BAD,
    GOOD,
    SEPARATOR,
    by_id,
    read_report,
    validation_lines,
    write_jsonl,
)

TRICKY = {"id": "tricky", "prompt": "goal match striker" + SEPARATOR, "completion": " tech"}


def record(server: Any) -> list[str]:
    return [f"--ft-base-url={server.base_url}", "--ft-record-mode=once"]


def cases_file(pytester: pytest.Pytester, per_class: int = 3, extra: list[dict] | None = None):
    lines = validation_lines(per_class=per_class) + (extra or [])
    return write_jsonl(pytester.path / "valid.cases.jsonl", lines)


# -- per model, never pooled across models -------------------------------------------


def test_the_model_under_test_leads_and_the_comparison_model_is_never_pooled(
    pytester: pytest.Pytester, server: Any
) -> None:
    # sport cases only: GOOD gets all six right, BAD none (pooled, that was "0.500")
    lines = [line for line in validation_lines(per_class=6) if "sport" in str(line["id"])]
    write_jsonl(pytester.path / "valid.cases.jsonl", lines)
    result = pytester.runpytest(
        f"--ft-model={GOOD}", f"--ft-compare={BAD}", *record(server), "--junitxml=junit.xml"
    )
    assert result.ret == pytest.ExitCode.OK  # the comparison model is informational
    report = read_report(pytester)
    assert [(m["model"], m["role"], m["metrics"]["accuracy"]) for m in report["models"]] == [
        (GOOD, "under_test", 1.0),
        (BAD, "comparison", 0.0),
    ]
    assert "overall" not in report
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            f"model under test: {GOOD}",
            f"valid.cases.jsonl @ {GOOD}: accuracy 1.000 (6/6)*",
            f"comparison model: {BAD}",
            f"valid.cases.jsonl @ {BAD}: accuracy 0.000 (0/6)*",
        ]
    )
    assert out.index(f"model under test: {GOOD}") < out.index(f"comparison model: {BAD}")
    markdown = (pytester.path / "reports" / "ftclass.md").read_text(encoding="utf-8")
    html = (pytester.path / "reports" / "ftclass.html").read_text(encoding="utf-8")
    junit = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    for text in (out, markdown, html, junit):
        assert "0.500" not in text and "(6/12)" not in text  # nothing pools the two models
    assert markdown.index(GOOD) < markdown.index(f"{BAD} (comparison model)")
    assert f'name="ftclass.model_under_test" value="{GOOD}"' in junit
    assert f'name="ftclass.model[{GOOD}].accuracy" value="1"' in junit
    assert f'name="ftclass.model[{BAD}].role" value="comparison"' in junit


def test_tasks_of_one_model_pool_only_when_they_share_a_label_set(
    pytester: pytest.Pytester, server: Any
) -> None:
    cases_file(pytester)  # sport, tech, politics
    three = validation_lines(per_class=2, seed=5)
    write_jsonl(pytester.path / "more.cases.jsonl", three)
    binary = [
        line for line in validation_lines(per_class=2, seed=7) if "politics" not in line["id"]
    ]
    write_jsonl(pytester.path / "pair.cases.jsonl", binary)  # sport and tech only
    result = pytester.runpytest(f"--ft-model={GOOD}", *record(server))
    assert result.ret == pytest.ExitCode.OK
    (model,) = read_report(pytester)["models"]
    assert model["pooled"] is False and model["metrics"] is None
    result.stdout.fnmatch_lines([f"{GOOD}: 3 tasks with different label sets, not pooled"])

    (pytester.path / "pair.cases.jsonl").unlink()
    pytester.runpytest(f"--ft-model={GOOD}", *record(server))
    (model,) = read_report(pytester)["models"]
    assert model["pooled"] is True and model["labels"] == ["politics", "sport", "tech"]
    assert model["metrics"]["n_cases"] == 9 + 6


# -- each case asked once and scored once ---------------------------------------------


def test_a_case_file_used_by_a_file_a_symlink_and_a_marker_is_read_once(
    pytester: pytest.Pytester, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_ftclass.running import items

    cases_file(pytester)
    (pytester.path / "link.cases.jsonl").symlink_to(pytester.path / "valid.cases.jsonl")
    pytester.makepyfile(
        test_same="""
        import pytest

        @pytest.mark.ft_cases("valid.cases.jsonl")
        def test_again(ft_case):
            pass
        """
    )
    reads: list[str] = []
    load_cases = items.load_cases

    def counted(source: Any, **options: Any) -> Any:
        reads.append(options["name"])
        return load_cases(source, **options)

    monkeypatch.setattr(items, "load_cases", counted)
    pytester.runpytest_inprocess(f"--ft-model={GOOD}", *record(server)).assert_outcomes(passed=27)
    assert reads == ["valid.cases.jsonl"]


def test_a_case_used_by_a_file_a_symlink_and_a_marker_is_asked_and_scored_once(
    pytester: pytest.Pytester, server: Any
) -> None:
    cases_file(pytester)  # 9 cases: 3 of each class
    (pytester.path / "link.cases.jsonl").symlink_to(pytester.path / "valid.cases.jsonl")
    pytester.makepyfile(
        test_same="""
        import pytest

        @pytest.mark.ft_cases("valid.cases.jsonl")
        def test_again(ft_case, ft_prediction):
            assert ft_prediction.label is not None
        """
    )
    baseline = pytester.path / "baseline.json"
    first = pytester.runpytest(
        f"--ft-model={GOOD}", *record(server), f"--ft-save-baseline={baseline}"
    )
    first.assert_outcomes(passed=27)  # three items per case
    assert len(server.requests) == 1  # one page of nine prompts, asked once
    report = read_report(pytester)
    assert report["models"][0]["metrics"]["n_cases"] == 9
    assert all(len(case["other_nodeids"]) == 2 for case in by_id(report).values())

    # BAD gets the 3 sport cases wrong: McNemar p = 0.5 ** 3 = 0.125, not 0.5 ** 9 (tripled)
    run = pytester.runpytest(
        f"--ft-model={BAD}",
        *record(server),
        f"--ft-baseline={baseline}",
        "--ft-max-drop",
        "accuracy=0.01",
        "--ft-significance=0.05",
    )
    assert run.ret == pytest.ExitCode.OK
    (drop,) = [v for v in read_report(pytester)["gate"]["verdicts"] if "drop" in v["criterion"]]
    assert "McNemar p=0.125" in drop["detail"] and "9 shared cases" in drop["detail"]


# -- the gate fails closed --------------------------------------------------------------


@pytest.mark.parametrize(
    "layout",
    ["empty case file", "header-only CSV", "glob typo", "-k matching plain tests only"],
)
def test_a_gate_never_passes_on_no_case(pytester: pytest.Pytester, layout: str) -> None:
    args = [f"--ft-model={GOOD}", "--ft-min", "accuracy=0.9"]
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    if layout == "empty case file":
        (pytester.path / "valid.cases.jsonl").write_text("\n", encoding="utf-8")
    elif layout == "header-only CSV":
        (pytester.path / "valid.csv").write_text("text,label\n", encoding="utf-8")
        pytester.makepyfile(
            test_csv="""
            import pytest

            @pytest.mark.ft_cases("valid.csv")
            def test_case(ft_case, ft_prediction):
                pass
            """
        )
    elif layout == "glob typo":
        cases_file(pytester)
        args.append("--ft-case-files=*.case.jsonl")
    else:
        cases_file(pytester)
        args += ["-k", "plain"]
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAIL cases scored = 0 (needs >= 1) [[]run]: no case was *"])
    result.stdout.fnmatch_lines(["*gate FAILED*", "*1 gate failed*"])


@pytest.mark.parametrize("selection", ["-k", "node id", "--lf"])
def test_a_subset_fails_the_gate_unless_allowed(
    pytester: pytest.Pytester, server: Any, selection: str
) -> None:
    cases_file(pytester, extra=[TRICKY])
    gate = [f"--ft-model={GOOD}", "--ft-min", "accuracy=0.5"]
    pytester.runpytest(*gate, *record(server)).assert_outcomes(passed=9)  # and tricky
    args = {
        "-k": ["-k", "sport"],
        "node id": ["valid.cases.jsonl::sport-1"],
        "--lf": ["--ft-strict", "--lf"],  # under --ft-strict, tricky failed last time...
    }[selection]
    if selection == "--lf":
        pytester.runpytest(*gate, "--ft-strict")  # ...so --lf reruns it alone
    asked = {"-k": 3, "node id": 1, "--lf": 1}[selection]
    result = pytester.runpytest(*gate, *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    how = {"-k": "-k sport", "node id": "node ids", "--lf": "--lf"}[selection]
    result.stdout.fnmatch_lines(
        [
            f"SUBSET: asked {asked} of 10 cases (narrowed by {how})*",
            f"FAIL cases asked = {asked} (needs >= 10) [[]run]: asked {asked} of 10 cases*"
            "--ft-allow-subset judges a subset",
        ]
    )
    report = read_report(pytester)
    assert report["selection"] == {
        "planned": 10,
        "asked": asked,
        "not_asked": 10 - asked,
        "subset": True,
        "narrowed_by": [how],
    }
    assert report["metadata"]["partial"] is True

    allowed = pytester.runpytest(*gate, *args, "--ft-allow-subset")
    if selection != "--lf":  # tricky itself fails under --ft-strict
        assert allowed.ret == pytest.ExitCode.OK


def test_a_baseline_sharing_no_case_fails_the_gate(pytester: pytest.Pytester, server: Any) -> None:
    baseline = pytester.path / "baseline.json"
    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=2, seed=3))
    pytester.runpytest(f"--ft-model={GOOD}", *record(server), f"--ft-save-baseline={baseline}")
    old = json.loads(baseline.read_text(encoding="utf-8"))
    for case in old["cases"]:
        case["case_id"] = "renamed-" + case["case_id"]
    baseline.write_text(json.dumps(old), encoding="utf-8")
    result = pytester.runpytest(
        f"--ft-model={GOOD}",
        *record(server),
        f"--ft-baseline={baseline}",
        "--ft-max-drop",
        "accuracy=0.01",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "FAIL drop in accuracy from the baseline = n/a (needs <= 0.01) *: shares no case*",
            f"FAIL cases shared with the baseline = 0 (needs >= 1) [[]run]: baseline {baseline} "
            "shares no case (same source and id) with this run",
        ]
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"schema": "ftclass-report/2", "cases": [', "not valid JSON (Expecting value at line 1*"),
        ('{"schema": "ftclass-report/2", "cases": {}}', "'cases' is not a list of cases*"),
        ('{"schema": "other/1"}', "not an ftclass-report/3 report (schema: 'other/1')"),
    ],
)
def test_a_broken_baseline_is_a_usage_error_before_any_request(
    pytester: pytest.Pytester, server: Any, content: str, problem: str
) -> None:
    cases_file(pytester)
    baseline = pytester.path / "baseline.json"
    baseline.write_text(content, encoding="utf-8")
    result = pytester.runpytest(
        f"--ft-model={GOOD}",
        *record(server),
        f"--ft-baseline={baseline}",
        "--ft-max-drop",
        "accuracy=0.01",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-ftclass: --ft-baseline {baseline}: {problem}"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert server.requests == []


def test_an_unwritable_report_directory_is_a_usage_error_before_any_request(
    pytester: pytest.Pytester, server: Any
) -> None:
    cases_file(pytester)
    blocker = pytester.path / "not-a-dir"
    blocker.write_text("a file where a directory should be", encoding="utf-8")
    result = pytester.runpytest(
        f"--ft-model={GOOD}", *record(server), f"--ft-report-dir={blocker}/reports"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: pytest-ftclass: --ft-report-dir {blocker}/reports: "
            f"cannot be made: {blocker} is not a directory"
        ]
    )
    assert server.requests == []


# -- one story per run ----------------------------------------------------------------


def test_the_comparison_models_critical_misses_are_listed_not_fatal(
    pytester: pytest.Pytester, server: Any
) -> None:
    lines = validation_lines(per_class=2)
    lines[0] = {**lines[0], "critical": True}  # sport-0: BAD gets it wrong
    write_jsonl(pytester.path / "valid.cases.jsonl", lines)
    informational = pytester.runpytest(f"--ft-model={GOOD}", f"--ft-compare={BAD}", *record(server))
    assert informational.ret == pytest.ExitCode.OK
    informational.stdout.fnmatch_lines(
        [f"critical cases {BAD} mispredicts (not gated): sport-0", "gate passed (2 criteria)"]
    )
    assert "failed" not in informational.stdout.lines[-1]

    # gated, a compared model is still the yardstick: its critical misses are listed, not fatal
    gated = pytester.runpytest(
        f"--ft-model={GOOD}", f"--ft-compare={BAD}", "--ft-gate-compare", *record(server)
    )
    assert gated.ret == pytest.ExitCode.OK
    gated.stdout.fnmatch_lines(
        [f"critical cases {BAD} mispredicts (not gated): sport-0", "gate passed (4 criteria)"]
    )


def test_a_critical_miss_is_a_gate_the_summary_line_agrees_with(
    pytester: pytest.Pytester, server: Any
) -> None:
    cases_file(pytester, extra=[{**TRICKY, "critical": True}])
    result = pytester.runpytest(f"--ft-model={GOOD}", *record(server))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "FAIL critical cases mispredicted = 1 (needs <= 0) [[]run]: tricky",
            "gate FAILED: 1 of 2 criteria",
            "*1 failed, 9 passed, 1 gate failed*",
        ]
    )
    assert "no quality gate configured" not in result.stdout.str()


def test_an_errored_critical_case_is_an_error_not_a_misprediction(
    pytester: pytest.Pytester, server: Any
) -> None:
    lines = validation_lines(per_class=1)
    path = write_jsonl(pytester.path / "valid.cases.jsonl", lines)
    pytester.runpytest(f"--ft-model={GOOD}", "--ft-batch-size=1", *record(server))
    critical = {
        "id": "new",
        "prompt": "vote election" + SEPARATOR,
        "completion": " politics",
        "critical": True,
    }
    write_jsonl(path, [*lines, critical])  # not in the cassette: an error in replay
    result = pytester.runpytest(f"--ft-model={GOOD}", "--ft-batch-size=1")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["FAIL errors = 1 (needs <= 0) [[]run]: 1 of them critical", "gate FAILED: 1 of 2 criteria"]
    )
    verdicts = {v["criterion"]: v for v in read_report(pytester)["gate"]["verdicts"]}
    assert verdicts["critical cases mispredicted"]["value"] == 0


# -- numbers that say what they are -------------------------------------------------------


def test_latency_comes_only_from_live_answers(pytester: pytest.Pytester, server: Any) -> None:
    cases_file(pytester)
    pytester.runpytest(f"--ft-model={GOOD}", *record(server))
    live = read_report(pytester)
    assert all(case["latency_s"] > 0 and not case["replayed"] for case in live["cases"])
    assert live["models"][0]["metrics"]["latency_s"]["n"] == 9

    pytester.runpytest(f"--ft-model={GOOD}")  # replay
    replay = read_report(pytester)
    assert all(case["latency_s"] is None and case["replayed"] for case in replay["cases"])
    metrics = replay["models"][0]["metrics"]
    assert metrics["latency_s"] is None and metrics["n_replayed"] == 9
    assert metrics["usage"] == live["models"][0]["metrics"]["usage"]  # as recorded
    html = (pytester.path / "reports" / "ftclass.html").read_text(encoding="utf-8")
    assert "not measured: answers replayed from cassettes" in html
    assert "tokens" in html and "as recorded" in html


def test_a_slice_whose_cases_are_all_right_has_macro_f1_one(
    pytester: pytest.Pytester, server: Any
) -> None:
    lines = validation_lines(per_class=3)
    for line in lines:
        if str(line["id"]).startswith("sport"):
            line["tags"] = ["sport-only"]
    write_jsonl(pytester.path / "valid.cases.jsonl", lines)
    pytester.runpytest(f"--ft-model={GOOD}", *record(server))
    (task,) = read_report(pytester)["tasks"]
    assert task["metrics"]["slices"]["sport-only"] == {
        "n": 3,
        "n_scored": 3,
        "accuracy": 1.0,
        "accuracy_ci": pytest.approx([0.4385, 1.0], abs=1e-4),
        "macro_f1_present": 1.0,
    }


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_a_filtered_answer_is_an_error_with_its_reason(
    pytester: pytest.Pytester, server: Any, endpoint: str
) -> None:
    from tests.faults import FaultProxy

    cases_file(pytester, per_class=1)
    with FaultProxy(server.base_url) as proxy:
        politics = str(validation_lines(per_class=1)[2]["prompt"]).split()
        proxy.add("content_filter", match=" ".join(politics[:3]))
        result = pytester.runpytest(
            f"--ft-model={GOOD}",
            f"--ft-base-url={proxy.base_url}",
            "--ft-record-mode=once",
            f"--ft-endpoint={endpoint}",
            "--ft-batch-size=1",
        )
    filtered = {
        case_id: case for case_id, case in by_id(read_report(pytester)).items() if case["error"]
    }
    assert list(filtered) == ["politics-0"]
    assert filtered["politics-0"]["finish_reason"] == "content_filter"
    assert "withheld by the content filter" in filtered["politics-0"]["error"]
    result.assert_outcomes(passed=2, errors=1)
    (metrics,) = [m["metrics"] for m in read_report(pytester)["models"]]
    assert metrics["confusion_matrix"]["labels"] == ["politics", "sport", "tech"]  # no '' column


@pytest.mark.parametrize("compare", [False, True])
def test_lf_and_node_ids_work_for_any_case_id(pytester: pytest.Pytester, compare: bool) -> None:
    lines = [
        {"id": "a::b", "prompt": "goal match" + SEPARATOR, "completion": " sport"},
        {"id": "x[1]", "prompt": "chip laptop" + SEPARATOR, "completion": " tech"},
        {"id": "50%", "prompt": "vote law" + SEPARATOR, "completion": " politics"},
        {"id": "plain", "prompt": "vote party" + SEPARATOR, "completion": " politics"},
    ]
    write_jsonl(pytester.path / "valid.cases.jsonl", lines)
    # gated, the comparison model's errors are errors (not informational skips)
    gated = [f"--ft-compare={BAD}", "--ft-gate-compare"] if compare else []
    args = [f"--ft-model={GOOD}", *gated]
    # replay without cassettes: every item errors, and --lf must rerun every one
    first = pytester.runpytest(*args)
    items = 4 * (2 if compare else 1)
    first.assert_outcomes(errors=items)
    again = pytester.runpytest(*args, "--lf")
    again.assert_outcomes(errors=items)
    again.stdout.fnmatch_lines([f"run-last-failure: rerun previous {items} failures*"])
    suffix = "[ft:babbage-002:acme:good]" if compare else ""
    for name in ("a%3A%3Ab", "x%5B1%5D", "50%25"):
        one = pytester.runpytest(*args, f"valid.cases.jsonl::{name}{suffix}")
        one.assert_outcomes(errors=1)


# -- also found ------------------------------------------------------------------------


def test_a_local_model_runs_in_process_whatever_ft_base_url_says(
    pytester: pytest.Pytester, training_file: Any
) -> None:
    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=1))
    pytester.makeini(
        f"""
        [pytest]
        ft_reference_train = {training_file.as_posix()}
        ft_base_url = http://127.0.0.1:9/v1
        """
    )
    result = pytester.runpytest("--ft-model=local", "--ft-record-mode=once")
    result.assert_outcomes(passed=3)


def test_a_connection_error_names_the_url_it_tried(pytester: pytest.Pytester) -> None:
    cases_file(pytester, per_class=1)
    result = pytester.runpytest(
        f"--ft-model={GOOD}",
        "--ft-base-url=http://127.0.0.1:9/v1",
        "--ft-record-mode=once",
        "--ft-max-retries=0",
    )
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        ["*connection error to http://127.0.0.1:9/v1/completions: ConnectError*"]
    )


def test_lint_under_xdist_says_it_is_skipped(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    cases_file(pytester, per_class=1)
    result = pytester.runpytest(f"--ft-model={GOOD}", "--ft-lint", "-n", "2")
    result.stdout.fnmatch_lines(
        ["ftclass: --ft-lint is skipped under pytest-xdist (-n): run `ftclass lint`*"]
    )


def test_with_endpoint_auto_each_file_of_an_unknown_model_goes_by_its_format(
    suite: pytest.Pytester, reference_server: Any
) -> None:
    prompts = validation_lines(per_class=1)
    chats = [
        {
            "id": f"chat-{line['id']}",
            "messages": [
                {"role": "user", "content": str(line["prompt"]).removesuffix(SEPARATOR)},
                {"role": "assistant", "content": str(line["completion"]).strip()},
            ],
        }
        for line in validation_lines(per_class=1, seed=8)
    ]
    write_jsonl(suite.path / "prompts.cases.jsonl", prompts)
    write_jsonl(suite.path / "chats.cases.jsonl", chats)
    result = suite.runpytest(
        "--ft-model=my-model", f"--ft-base-url={reference_server.base_url}", "--ft-record-mode=once"
    )
    result.assert_outcomes(passed=6)
    sent = sorted((r.path, r.inputs) for r in reference_server.requests)
    # one Completions request of three prompts, three Chat requests of one conversation
    assert sent == [("/v1/chat/completions", 1)] * 3 + [("/v1/completions", 3)]


def test_a_chat_file_on_a_completions_model_errors_case_by_case(
    pytester: pytest.Pytester, server: Any
) -> None:
    chats = [
        {
            "id": f"chat-{n}",
            "messages": [
                {"role": "user", "content": "goal match"},
                {"role": "assistant", "content": "sport"},
            ],
        }
        for n in range(3)
    ]
    write_jsonl(pytester.path / "chats.cases.jsonl", chats)
    result = pytester.runpytest(f"--ft-model={GOOD}", *record(server))
    result.assert_outcomes(errors=3)
    for case_id, case in by_id(read_report(pytester)).items():
        assert case["error"].startswith(f"case {case_id!r} is in chat format")
    assert server.requests == []


def test_an_unknown_label_under_xdist_is_a_usage_error_and_nothing_is_asked(
    pytester: pytest.Pytester, server: Any
) -> None:
    pytest.importorskip("xdist")
    cases_file(pytester, per_class=1)
    result = pytester.runpytest(
        f"--ft-model={GOOD}", *record(server), "--ft-min", "recall[golf]=0.5", "-n", "2"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["ERROR: pytest-ftclass: recall[[]golf]: no case has the label 'golf' (labels: *)"]
    )
    assert "INTERNALERROR" not in result.stdout.str()
    assert server.requests == []
