"""What a run writes besides the JSON: HTML and Markdown with the gate, JUnit properties,
the GitHub step summary, and ``ftclass report`` re-rendering."""

from __future__ import annotations

import json

import pytest

from tests.helpers import read_report, validation_lines, write_jsonl

MODEL = "ft:babbage-002:acme::abc123"


def test_gate_junit_step_summary_and_rerender(
    suite: pytest.Pytester, reference_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = suite.path / "step-summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines(per_class=2))
    result = suite.runpytest(
        f"--ft-model={MODEL}",
        f"--ft-base-url={reference_server.base_url}",
        "--ft-record-mode=once",
        "--ft-min",
        "accuracy=0.99",
        "--junitxml=junit.xml",
    )
    assert result.ret == pytest.ExitCode.OK
    reports = suite.path / "reports"
    report = json.loads((reports / "ftclass.json").read_text(encoding="utf-8"))
    accuracy = report["models"][0]["metrics"]["accuracy"]

    # the gate's verdicts in the HTML and the Markdown
    html = (reports / "ftclass.html").read_text(encoding="utf-8")
    assert '<h2>Quality gate: <span class="state">passed</span>' in html and "accuracy" in html
    markdown = (reports / "ftclass.md").read_text(encoding="utf-8")
    assert "## Quality gate: passed" in markdown

    # appended to the step summary, after what was there
    written = summary.read_text(encoding="utf-8")
    assert written.startswith("# earlier step\n") and "Quality gate: passed" in written

    # metrics as test-suite properties of the JUnit XML
    from xml.etree import ElementTree

    suite_element = ElementTree.parse(suite.path / "junit.xml").getroot().find("testsuite")
    properties = {p.get("name"): p.get("value") for p in suite_element.iter("property")}
    assert properties["ftclass.model_under_test"] == MODEL
    assert float(properties[f"ftclass.model[{MODEL}].accuracy"]) == pytest.approx(accuracy)

    # ftclass report renders the HTML and Markdown again from the JSON alone
    from pytest_ftclass.cli import main

    out = suite.path / "again"
    assert main(["report", str(reports / "ftclass.json"), "--out", str(out)]) == 0
    assert (out / "ftclass.html").read_text(encoding="utf-8") == html
    assert (out / "ftclass.md").is_file()
    assert main(["report", str(suite.path / "missing.json")]) == 2


@pytest.mark.parametrize("with_text", [False, True], ids=["default", "ft-report-text"])
def test_case_texts_reach_the_report_only_when_asked(
    suite: pytest.Pytester, reference_server, with_text: bool
) -> None:
    lines = validation_lines(per_class=2)
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    args = [f"--ft-model={MODEL}", f"--ft-base-url={reference_server.base_url}"]
    result = suite.runpytest(*args, "--ft-record-mode=once", *(["--ft-report-text"] * with_text))
    assert result.ret == pytest.ExitCode.OK
    report = read_report(suite)
    assert len(report["cases"]) == len(lines)
    assert all("text" not in case for case in report["cases"])  # texts stay in one place
    prompts = {f"valid.cases.jsonl::{line['id']}": line["prompt"] for line in lines}
    if with_text:
        assert report["texts"] == prompts
    else:
        assert "texts" not in report
        html = (suite.path / "reports" / "ftclass.html").read_text(encoding="utf-8")
        everything = json.dumps(report) + html
        sentences = [str(prompt).split("\n")[0] for prompt in prompts.values()]
        assert not any(sentence in everything for sentence in sentences)
