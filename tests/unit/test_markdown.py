"""Markdown summary, GitHub step summary, JUnit properties and re-rendering from JSON."""

from __future__ import annotations

import math
from pathlib import Path

from pytest_ftclass.report import (
    append_step_summary,
    build_report,
    junit_properties,
    load_report,
    render_from_json,
    render_markdown,
    write_json_report,
    write_markdown_report,
)
from pytest_ftclass.results import CaseResult


def results() -> list[CaseResult]:
    labels = ["ham", "spam"]
    pairs = [("ham", "ham"), ("spam", "spam"), ("ham", "spam"), ("spam", "ham"), ("ham", "ham")]
    out = [
        CaseResult(f"c{i}", f"t::c{i}", "mail.jsonl", "ft:m", "chat", e, p, labels=labels,
                   logprobs={p: math.log(0.9 - 0.1 * i)}, tags=["short"])
        for i, (e, p) in enumerate(pairs)
    ]  # fmt: skip
    out.append(CaseResult("x|<b>*y*</b>", "t::x", "mail.jsonl", "ft:m", "chat", "ham", "spam",
                          labels=labels, logprobs={"spam": -0.01}))  # fmt: skip
    return out


def test_markdown_has_headline_per_class_table_and_most_confident_mistakes() -> None:
    report = build_report(results(), {})
    text = render_markdown(report)
    lines = text.splitlines()
    assert lines[0] == "## ftclass: mail.jsonl @ ft:m"
    assert any(line.startswith("| accuracy (95 % CI) | 0.500 (") for line in lines)
    assert "| ham | 0.667 | 0.500 | 0.571 | 4 |" in lines
    mistakes = lines[lines.index("| case | expected | predicted | confidence |") + 2 :]
    # the most confident first; user data escaped for Markdown and HTML
    assert mistakes[0] == "| x\\|&lt;b&gt;\\*y\\*&lt;/b&gt; | ham | spam | 0.990 |"
    assert mistakes[1:3] == ["| c2 | ham | spam | 0.700 |", "| c3 | spam | ham | 0.600 |"]
    assert "<b>" not in text


def test_markdown_with_several_models_tasks_and_none() -> None:
    other = CaseResult("o1", "t::o1", "other.jsonl", "ft:n", "chat", "a", "a", labels=["a", "b"])
    again = CaseResult("m1", "t::m1", "more.jsonl", "ft:m", "chat", "ham", "ham",
                       labels=["ham", "spam"])  # fmt: skip
    text = render_markdown(build_report([*results(), other, again], {}, model_under_test="ft:m"))
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    # the model under test first, its two tasks (one label set) pooled; never across models
    assert headings == [
        "## ftclass: overview",
        "## ftclass: model under test ft:m, 2 tasks pooled",
        "## ftclass: mail.jsonl @ ft:m",
        "## ftclass: more.jsonl @ ft:m",
        "## ftclass: other.jsonl @ ft:n",
    ]
    assert "all tasks" not in text
    assert "No cases were run." in render_markdown(build_report([], {}))


def test_step_summary_is_appended_only_when_the_variable_is_set(tmp_path: Path) -> None:
    report = build_report(results(), {})
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    assert append_step_summary(report, {}) is None
    assert append_step_summary(report, {"GITHUB_STEP_SUMMARY": str(summary)}) == summary
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## ftclass: mail.jsonl @ ft:m")
    assert write_markdown_report(report, tmp_path / "r.md").read_text(encoding="utf-8") == (
        render_markdown(report)
    )


def test_render_from_json_rewrites_html_and_markdown(tmp_path: Path) -> None:
    report = build_report(results(), {"plugin_version": "0.1.0"},
                          texts={"t::c2": "the text of c2"})  # fmt: skip
    json_path = write_json_report(report, tmp_path / "run.json")
    written = render_from_json(json_path, tmp_path / "out")
    assert [p.relative_to(tmp_path).as_posix() for p in written] == ["out/run.html", "out/run.md"]
    assert "the text of c2" in written[0].read_text(encoding="utf-8")
    assert written[1].read_text(encoding="utf-8") == render_markdown(load_report(json_path))
    assert [p.name for p in render_from_json(json_path)] == ["run.html", "run.md"]


def test_junit_properties_are_flat_strings_of_the_report_numbers() -> None:
    report = build_report(results(), {}, model_under_test="ft:m")
    pairs = junit_properties(report)
    props = dict(pairs)
    model = report["models"][0]["metrics"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in pairs)
    assert pairs[0] == ("ftclass.model_under_test", "ft:m")  # it leads
    assert not any("overall" in name for name in props)
    assert props["ftclass.model[ft:m].role"] == "under_test"
    assert float(props["ftclass.model[ft:m].accuracy"]) == model["accuracy"]
    assert float(props["ftclass.model[ft:m].accuracy_ci_low"]) == model["accuracy_ci"][0]
    assert float(props["ftclass.model[ft:m].macro_f1_ci_high"]) == model["macro_f1_ci"][1]
    assert props["ftclass.model[ft:m].positive_class"] == "spam"
    assert float(props["ftclass.model[ft:m].classification/auroc"]) == model["binary"]["auroc"]
    task = "ftclass.task[mail.jsonl @ ft:m]"
    assert float(props[f"{task}.ece"]) == report["tasks"][0]["metrics"]["ece"]
    assert props[f"{task}.n_cases"] == "6"
