"""End to end, as a user meets it: case files and marked tests, asked of the reference model
over real HTTP, recorded into cassettes, replayed with the server gone, reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ftclass.recording.names import cassette_path
from tests.helpers import SEPARATOR, dense, read_report, validation_lines, write_jsonl

COMPLETIONS_MODEL = "ft:babbage-002:acme::abc123"
CHAT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::xyz789"


def cases_by_id(report: dict) -> dict[str, dict]:
    return {case["case_id"]: case for case in report["cases"]}


def comparable(report: dict) -> tuple[dict, list]:
    """Per-case answers and metrics, without run-dependent fields (latency, times, replay)."""
    cases = [
        {k: v for k, v in case.items() if k not in ("latency_s", "replayed")}
        for case in sorted(report["cases"], key=lambda c: c["nodeid"])
    ]
    metrics = [
        {k: v for k, v in task["metrics"].items() if "latency" not in k and k != "n_replayed"}
        for task in report["tasks"]
    ]
    return cases, metrics


def test_record_then_replay_without_server(suite: pytest.Pytester, reference_server) -> None:
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines())
    recorded = suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
    )
    recorded.assert_outcomes(passed=12)
    first = read_report(suite)
    reference_server.stop()

    replayed = suite.runpytest(f"--ft-model={COMPLETIONS_MODEL}")
    replayed.assert_outcomes(passed=12)
    second = read_report(suite)
    assert comparable(first) == comparable(second)
    assert second["metadata"]["record_mode"] == "none"


def test_completions_sends_several_prompts_per_request(
    suite: pytest.Pytester, reference_server
) -> None:
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines(per_class=5))  # 15 cases
    result = suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
        "--ft-batch-size=4",
    )
    result.assert_outcomes(passed=15)
    requests = [r for r in reference_server.requests if r.path.endswith("/completions")]
    assert [r.inputs for r in requests] and sum(r.inputs for r in requests) == 15
    assert len(requests) == 4  # ceil(15 / 4), not 15
    assert max(r.inputs for r in requests) == 4


def test_only_selected_cases_are_sent(suite: pytest.Pytester, reference_server) -> None:
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines())
    result = suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
        "-k",
        "sport",
    )
    result.assert_outcomes(passed=4)
    assert sum(r.inputs for r in reference_server.requests) == 4
    assert {c["case_id"] for c in read_report(suite)["cases"]} == {f"sport-{n}" for n in range(4)}


def test_subset_replays_from_a_full_recording(suite: pytest.Pytester, reference_server) -> None:
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines())
    suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
        "--ft-batch-size=5",
    ).assert_outcomes(passed=12)
    reference_server.stop()
    result = suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}", "--ft-batch-size=5", "-k", "tech-1 or politics-3"
    )
    result.assert_outcomes(passed=2)


def test_chat_model_requests_run_concurrently_and_replay(
    suite: pytest.Pytester, reference_server
) -> None:
    lines = [
        {
            "id": line["id"],
            "messages": [
                {"role": "system", "content": "Classify the headline."},
                {"role": "user", "content": str(line["prompt"]).removesuffix(SEPARATOR)},
                {"role": "assistant", "content": str(line["completion"]).strip()},
            ],
        }
        for line in validation_lines()
    ]
    write_jsonl(suite.path / "chat.cases.jsonl", lines)
    suite.runpytest(
        f"--ft-model={CHAT_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
    ).assert_outcomes(passed=12)
    chat_requests = [r for r in reference_server.requests if r.path.endswith("/chat/completions")]
    assert len(chat_requests) == 12
    report = read_report(suite)
    assert {c["endpoint"] for c in report["cases"]} == {"chat"}
    assert all(c["logprobs"][c["expected"]] > -1.0 for c in report["cases"])
    reference_server.stop()
    suite.runpytest(f"--ft-model={CHAT_MODEL}").assert_outcomes(passed=12)


def test_missing_cassette_is_an_error_saying_how_to_record(suite: pytest.Pytester) -> None:
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines(per_class=1))
    result = suite.runpytest(f"--ft-model={COMPLETIONS_MODEL}")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*does not exist*--ft-record-mode=once*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = read_report(suite)
    assert report["models"][0]["metrics"]["n_errors"] == 3


def test_prediction_error_is_reported_as_its_message_under_the_case(
    suite: pytest.Pytester,
) -> None:
    lines = validation_lines(per_class=1)
    lines[1]["id"] = "sport.v2"
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    result = suite.runpytest(f"--ft-model={COMPLETIONS_MODEL}", "-v")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "valid.cases.jsonl::sport.v2 ERROR*",
            "*_ ERROR at setup of case sport.v2 _*",
            "valid.cases.jsonl:2: case 'sport.v2': cassette * does not exist *",
        ]
    )
    # the message alone: no traceback through the plugin's frames
    assert "plugin.py" not in result.stdout.str()
    assert "test session" not in result.stdout.str().split("= ERRORS =")[1]


def test_misprediction_is_shown_but_does_not_fail(suite: pytest.Pytester, reference_server) -> None:
    lines = validation_lines(per_class=2)
    lines.append(
        {"id": "tricky", "prompt": "goal match striker league" + SEPARATOR, "completion": " tech"}
    )
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    args = [f"--ft-model={COMPLETIONS_MODEL}", f"--ft-base-url={reference_server.base_url}"]
    result = suite.runpytest(*args, "--ft-record-mode=once", "-v")
    result.stdout.fnmatch_lines(
        ["*valid.cases.jsonl::tricky MISPREDICTED*", "*6 passed*1 mispredicted*"]
    )
    assert result.ret == pytest.ExitCode.OK
    report = read_report(suite)
    tricky = cases_by_id(report)["tricky"]
    assert (tricky["expected"], tricky["predicted"], tricky["outcome"]) == (
        "tech",
        "sport",
        "mispredicted",
    )
    html = (suite.path / "reports" / "ftclass.html").read_text(encoding="utf-8")
    assert "tricky" in html

    strict = suite.runpytest(*args, "--ft-strict")
    strict.assert_outcomes(passed=6, failed=1)
    strict.stdout.fnmatch_lines(
        ["*case 'tricky': expected 'tech', predicted 'sport' (--ft-strict)*"]
    )


def test_critical_misprediction_fails(suite: pytest.Pytester, reference_server) -> None:
    lines = validation_lines(per_class=1)
    lines.append(
        {
            "id": "vip",
            "prompt": "goal match striker" + SEPARATOR,
            "completion": " tech",
            "critical": True,
        }
    )
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    result = suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["*case 'vip': expected 'tech', predicted 'sport' (critical case)*"]
    )
    assert cases_by_id(read_report(suite))["vip"]["outcome"] == "failed"


def test_report_metrics_equal_sklearn_recomputation(
    suite: pytest.Pytester, reference_server
) -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    lines = validation_lines(per_class=3)
    lines += [
        {"id": "odd-1", "prompt": "goal match referee" + SEPARATOR, "completion": " politics"},
        {"id": "odd-2", "prompt": "software chip laptop" + SEPARATOR, "completion": " sport"},
    ]
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
    )
    report = read_report(suite)
    expected = [c["expected"] for c in report["cases"]]
    predicted = [c["predicted"] for c in report["cases"]]
    metrics = report["models"][0]["metrics"]
    labels = metrics["confusion_matrix"]["labels"]
    assert metrics["accuracy"] == pytest.approx(accuracy_score(expected, predicted))
    assert metrics["accuracy"] < 1.0
    assert metrics["macro_f1"] == pytest.approx(f1_score(expected, predicted, average="macro"))
    assert metrics["weighted_f1"] == pytest.approx(
        f1_score(expected, predicted, average="weighted")
    )
    assert (
        dense(metrics["confusion_matrix"])["matrix"]
        == confusion_matrix(expected, predicted, labels=labels).tolist()
    )


def test_marked_test_function_gets_case_and_prediction(
    suite: pytest.Pytester, reference_server
) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        [
            {"text": line["prompt"], "label": str(line["completion"]).strip()}
            for line in validation_lines()
        ]
    )
    frame.to_csv(suite.path / "valid.csv", index=False)
    suite.makepyfile(
        test_marked=f"""
        import pandas as pd
        import pytest

        FRAME = pd.read_csv("{(suite.path / "valid.csv").as_posix()}")

        @pytest.mark.ft_cases("valid.csv")
        def test_from_csv(ft_case, ft_prediction):
            assert ft_prediction.label == ft_case.label

        @pytest.mark.ft_cases(FRAME)
        def test_confident(ft_case, ft_prediction):
            assert ft_prediction.probability(ft_case.label) > 0.5

        @pytest.mark.ft_cases([{{"id": "x", "input": "goal match", "label": "tech"}}])
        def test_listed(ft_case, ft_prediction):
            assert ft_prediction.label == "sport"
        """
    )
    args = [f"--ft-model={COMPLETIONS_MODEL}", f"--ft-base-url={reference_server.base_url}"]
    suite.runpytest(*args, "--ft-record-mode=once").assert_outcomes(passed=25)
    report = read_report(suite)
    sources = {c["source"] for c in report["cases"]}
    # the DataFrame's rows are the CSV's cases: asked once, scored once, used by two tests
    assert sources == {"valid.csv", "test_marked.py::test_listed"}
    assert len(report["cases"]) == 12 + 1
    for case in report["cases"]:
        if case["source"] == "valid.csv":
            assert case["nodeid"].startswith("test_marked.py::test_confident[")
            assert [n.split("[")[0] for n in case["other_nodeids"]] == [
                "test_marked.py::test_from_csv"
            ]
    assert cases_by_id(report)["x"]["predicted"] == "sport"
    reference_server.stop()
    suite.runpytest(f"--ft-model={COMPLETIONS_MODEL}").assert_outcomes(passed=25)


def test_canary_key_and_prompt_text_never_written(
    suite: pytest.Pytester, reference_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "sk-canary-1b0c3e5f7a9d"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    lines = validation_lines()
    secret_words = "zebracorn quasarfish"
    lines.append(
        {
            "id": "private",
            "prompt": f"goal {secret_words} match" + SEPARATOR,
            "completion": " sport",
        }
    )
    write_jsonl(suite.path / "cases" / "valid.cases.jsonl", lines)
    suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
    ).assert_outcomes(passed=13)
    written = [p for p in suite.path.rglob("*") if p.is_file() and "cases" not in p.parts]
    assert any(p.suffix == ".json" and "cassettes" in p.parts for p in written)
    for path in written:
        data = path.read_bytes()
        assert canary.encode() not in data, path
        assert b"zebracorn" not in data, path
        assert b"striker" not in data and b"minister" not in data, path
    cassette = next(p for p in written if "cassettes" in p.parts)
    assert "authorization" not in cassette.read_text().lower()


def test_local_model_started_in_process_and_replayed(suite: pytest.Pytester) -> None:
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines())
    suite.runpytest("--ft-record-mode=once").assert_outcomes(passed=12)
    cassette = cassette_path(suite.path / "cassettes", "valid.cases.jsonl", "local")
    assert cassette.is_file()
    suite.runpytest().assert_outcomes(passed=12)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            '{"prompt": "a", "completion": " x"}\n{"prompt": "b"\n',
            "valid.cases.jsonl:2: not valid JSON",
        ),
        ('{"prompt": "a"}\n', "valid.cases.jsonl:1: missing label"),
        (
            '{"id": "a", "prompt": "x", "completion": " y"}\n'
            '{"id": "a", "prompt": "z", "completion": " y"}\n',
            "valid.cases.jsonl:2: duplicate id 'a' (first on line 1)",
        ),
        (
            '{"messages": [{"role": "user", "content": "hi"}]}\n',
            "valid.cases.jsonl:1: missing label",
        ),
        (b'{"prompt": "caf\xe9", "completion": " x"}\n', "valid.cases.jsonl:1: not valid UTF-8"),
    ],
    ids=["bad-json", "no-label", "duplicate-id", "chat-no-assistant", "bad-utf8"],
)
def test_bad_case_file_is_a_collection_error(
    suite: pytest.Pytester, content: str | bytes, problem: str
) -> None:
    path = suite.path / "valid.cases.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    result = suite.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{problem}*"])
    assert "Traceback" not in result.stdout.str()


def test_bad_marker_source_is_a_collection_error(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.ft_cases("missing.csv")
        def test_it(ft_case, ft_prediction):
            pass
        """
    )
    result = suite.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_bad.py::test_it: missing.csv: cannot read file*"])


def test_bad_option_is_a_usage_error(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--ft-batch-size=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ft_batch_size must be at least 1*"])


def test_ini_settings_and_command_line_precedence(suite: pytest.Pytester, reference_server) -> None:
    suite.makeini(
        f"""
        [pytest]
        ft_model = {COMPLETIONS_MODEL}
        ft_base_url = {reference_server.base_url}
        ft_record_mode = once
        ft_case_files = *.jsonl
        ft_batch_size = 100
        ft_report_dir = out
        """
    )
    write_jsonl(suite.path / "valid.jsonl", validation_lines())
    suite.runpytest("--ft-batch-size=5").assert_outcomes(passed=12)
    assert len(reference_server.requests) == 3
    assert (suite.path / "out" / "ftclass.json").is_file()


def test_out_of_set_prediction_is_kept(suite: pytest.Pytester, reference_server) -> None:
    # The binary cases never mention 'politics', but the model may answer it.
    lines = [
        {"id": "p", "prompt": "minister vote election" + SEPARATOR, "completion": " sport"},
        {"id": "s", "prompt": "goal match" + SEPARATOR, "completion": " sport"},
        {"id": "t", "prompt": "chip laptop" + SEPARATOR, "completion": " tech"},
    ]
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    result = suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
    )
    result.assert_outcomes(passed=2)
    assert result.parseoutcomes()["mispredicted"] == 1
    report = read_report(suite)
    assert cases_by_id(report)["p"]["predicted"] == "politics"
    assert "politics" in report["models"][0]["metrics"]["confusion_matrix"]["labels"]
    assert report["models"][0]["metrics"]["n_out_of_set"] == 1


def test_case_file_without_ids_gets_stable_ids(suite: pytest.Pytester) -> None:
    lines = [{k: v for k, v in line.items() if k != "id"} for line in validation_lines(per_class=1)]
    path = write_jsonl(suite.path / "valid.cases.jsonl", lines)
    before = suite.runpytest("--collect-only", "-q").stdout.lines
    write_jsonl(path, [{"prompt": "new first line" + SEPARATOR, "completion": " tech"}, *lines])
    after = suite.runpytest("--collect-only", "-q").stdout.lines
    ids_before = {line for line in before if "::" in line}
    ids_after = {line for line in after if "::" in line}
    assert len(ids_before) == 3 and ids_before < ids_after


def test_cases_path_relative_to_rootdir(suite: pytest.Pytester) -> None:
    write_jsonl(suite.path / "sub" / "dir" / "valid.cases.jsonl", validation_lines(per_class=1))
    result = suite.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["sub/dir/valid.cases.jsonl::sport-0"])
    assert Path(suite.path / "sub").is_dir()


def test_replay_opens_no_socket(suite: pytest.Pytester, reference_server, monkeypatch) -> None:
    import socket

    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines())
    suite.runpytest(
        f"--ft-model={COMPLETIONS_MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
    ).assert_outcomes(passed=12)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("replay opened a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    suite.runpytest(f"--ft-model={COMPLETIONS_MODEL}").assert_outcomes(passed=12)
    # also for a request that is missing: an error, still no socket
    write_jsonl(
        suite.path / "more.cases.jsonl",
        [{"id": "new", "prompt": "goal" + SEPARATOR, "completion": " sport"}],
    )
    result = suite.runpytest(f"--ft-model={COMPLETIONS_MODEL}")
    result.assert_outcomes(passed=12, errors=1)
    assert "replay opened a socket" not in result.stdout.str()


def test_last_failed_reruns_only_those_cases(suite: pytest.Pytester, reference_server) -> None:
    lines = validation_lines(per_class=2)
    lines.append(
        {"id": "vip", "prompt": "goal match" + SEPARATOR, "completion": " tech", "critical": True}
    )
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    args = [f"--ft-model={COMPLETIONS_MODEL}", f"--ft-base-url={reference_server.base_url}"]
    suite.runpytest(*args, "--ft-record-mode=once").assert_outcomes(passed=6, failed=1)
    reference_server.reset_log()
    rerun = suite.runpytest(*args, "--ft-record-mode=new_episodes", "--lf")
    rerun.assert_outcomes(failed=1)
    assert reference_server.requests == []  # answered from the cassette's full page


def test_local_model_without_training_file_says_so(pytester: pytest.Pytester) -> None:
    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=1))
    result = pytester.runpytest("--ft-record-mode=once")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*model 'local' needs a training file: set ft_reference_train*"])
