"""JSON, HTML and terminal reports: recomputable from their own cases, escaped, self-contained."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.report import (
    SCHEMA,
    build_report,
    load_report,
    render_html,
    results_from_report,
    summary_lines,
    write_html_report,
    write_json_report,
)
from pytest_ftclass.results import CaseResult
from tests.helpers import dense, explorer_cases


def make(
    case_id: str,
    expected: str,
    predicted: str | None,
    *,
    source: str,
    model: str,
    labels: Sequence[str],
    error: str | None = None,
    logprobs: dict[str, float] | None = None,
    critical: bool = False,
) -> CaseResult:
    return CaseResult(
        case_id=case_id,
        nodeid=f"tests/test_model.py::test_case[{case_id}]",
        source=source,
        model=model,
        endpoint="completions" if model == "ft:a" else "chat",
        expected=expected,
        predicted=predicted,
        logprobs=logprobs or {},
        labels=list(labels),
        tags=["smoke"],
        critical=critical,
        input_digest="0123456789abcdef",
        usage=None if error else {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
        latency_s=0.01,
        error=error,
        outcome="failed" if error else "passed",
    )


def task_a() -> list[CaseResult]:
    """valid.jsonl @ ft:a: ten scored cases, three wrong (a→b, b→c, c→a), one error."""
    pairs = [
        ("a", "a"), ("a", "a"), ("a", "a"), ("a", "b"),
        ("b", "b"), ("b", "b"), ("b", "c"),
        ("c", "c"), ("c", "c"), ("c", "a"),
    ]  # fmt: skip
    results = [
        make(f"a{i}", e, p, source="valid.jsonl", model="ft:a", labels=["a", "b", "c"],
             logprobs={p: math.log(0.62) if e != p else -0.01})
        for i, (e, p) in enumerate(pairs)
    ]  # fmt: skip
    results.append(
        make("a10", "b", None, source="valid.jsonl", model="ft:a", labels=["a", "b", "c"],
             error="HTTP 500: upstream\nsecond line")
    )  # fmt: skip
    return results


def task_b() -> list[CaseResult]:
    """other.jsonl @ ft:b: four cases, one predicted outside the label set."""
    pairs = [("a", "a"), ("a", "zzz"), ("b", "b"), ("b", "b")]
    return [
        make(f"b{i}", e, p, source="other.jsonl", model="ft:b", labels=["a", "b"])
        for i, (e, p) in enumerate(pairs)
    ]


@pytest.fixture
def results() -> list[CaseResult]:
    return task_a() + task_b()


@pytest.fixture
def report(results: list[CaseResult]) -> dict[str, Any]:
    return build_report(
        results, {"command": "pytest --ft-model=ft:a", "seed": 7}, model_under_test="ft:a"
    )


# --- JSON ------------------------------------------------------------------------------


def test_report_shape(report: dict[str, Any], results: list[CaseResult]) -> None:
    assert list(report) == ["schema", "metadata", "models", "tasks", "cases"]  # no texts
    assert report["schema"] == SCHEMA == "ftclass-report/3"
    assert report["metadata"] == {"command": "pytest --ft-model=ft:a", "seed": 7}
    assert [
        (t["task"], t["source"], t["model"], t["role"], t["endpoint"]) for t in report["tasks"]
    ] == [
        ("valid.jsonl @ ft:a", "valid.jsonl", "ft:a", "under_test", "completions"),
        ("other.jsonl @ ft:b", "other.jsonl", "ft:b", "task_model", "chat"),
    ]
    assert report["cases"] == [r.to_dict() for r in results]
    # one entry per model, the model under test first; nothing pooled across models
    models = report["models"]
    assert [(m["model"], m["role"], m["tasks"]) for m in models] == [
        ("ft:a", "under_test", ["valid.jsonl @ ft:a"]),
        ("ft:b", "task_model", ["other.jsonl @ ft:b"]),
    ]
    assert models[0]["metrics"]["n_cases"] == 11 and models[0]["metrics"]["n_errors"] == 1
    assert models[1]["metrics"]["n_cases"] == 4
    assert report["tasks"][0]["metrics"]["accuracy"] == pytest.approx(0.7)
    assert report["tasks"][1]["metrics"]["accuracy"] == pytest.approx(0.75)


def test_json_report_round_trips_the_results(
    tmp_path: Path, report: dict[str, Any], results: list[CaseResult]
) -> None:
    path = write_json_report(report, tmp_path / "report.json")
    loaded = load_report(path)
    assert loaded == json.loads(json.dumps(report))
    assert results_from_report(loaded) == results


def test_json_report_is_utf8_indented_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    results = [make("é-1", "café", "thé", source="s.jsonl", model="m", labels=["café", "thé"])]
    path = write_json_report(build_report(results, {"where": Path("/x/y")}), tmp_path / "r.json")
    text = path.read_bytes().decode("utf-8")
    assert '"café"' in text
    assert text.startswith('{\n  "schema"')
    assert load_report(path)["metadata"] == {"where": "/x/y"}
    assert os.listdir(tmp_path) == ["r.json"]


def test_json_report_is_replaced_atomically(
    tmp_path: Path, report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "report.json"
    path.write_text("previous report", encoding="utf-8")

    def interrupted(src: str, dst: str) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(OSError, match="disk went away"):
        write_json_report(report, path)
    assert path.read_text(encoding="utf-8") == "previous report"
    assert os.listdir(tmp_path) == ["report.json"]

    monkeypatch.undo()
    write_json_report(report, path)
    assert load_report(path)["schema"] == SCHEMA
    assert os.listdir(tmp_path) == ["report.json"]


def test_load_report_rejects_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"schema": "something-else/3"}), encoding="utf-8")
    with pytest.raises(ValueError, match="not an ftclass-report/3 report"):
        load_report(path)


def test_empty_run_builds_a_report_with_no_tasks(tmp_path: Path) -> None:
    report = build_report([], {})
    assert report["tasks"] == [] and report["cases"] == []
    assert report["models"] == []
    assert load_report(write_json_report(report, tmp_path / "r.json")) == report
    assert "No cases were run" in render_html(report)
    assert summary_lines(report) == ["no cases were run"]


# --- HTML ------------------------------------------------------------------------------


class Page(HTMLParser):
    """Collects what the HTML tests look at: tags, link targets and confusion-matrix cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.resource_attributes: list[tuple[str, str, str | None]] = []
        self.matrices: list[list[list[str]]] = []  # per matrix: rows of cell texts
        self._in_matrix = False
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        for name in ("src", "href", "action", "data", "poster", "srcset"):
            if name in attributes:
                self.resource_attributes.append((tag, name, attributes[name]))
        if tag == "table" and "confusion" in classes:
            self._in_matrix = True
            self.matrices.append([])
        elif self._in_matrix and tag == "tr":
            self.matrices[-1].append([])
        elif self._in_matrix and tag == "td" and "cm-cell" in classes:
            self._in_cell = True
            self.matrices[-1][-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_matrix = False
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.matrices[-1][-1][-1] += data


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    return parser


def hostile_results() -> list[CaseResult]:
    labels = ["ham", "spam"]
    return [
        make("<script>alert(1)</script>", "ham", "<img src=x onerror=alert(2)>",
             source="mail.jsonl", model="ft:a", labels=labels),
        make("ok-1", "spam", "spam", source="mail.jsonl", model="ft:a", labels=labels),
        make("ok-2", "ham", "spam", source="mail.jsonl", model="ft:a", labels=labels,
             logprobs={"spam": -0.5}, critical=True),
        make('e"1', "ham", None, source="mail.jsonl", model="ft:a", labels=labels,
             error="</pre><script>steal(document.cookie)</script>"),
    ]  # fmt: skip


def test_html_escapes_case_ids_labels_errors_and_metadata() -> None:
    report = build_report(hostile_results(), {"note": "<script>meta()</script>"})
    page = render_html(report)

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;steal(document.cookie)&lt;/script&gt;" in page
    assert "&lt;script&gt;meta()&lt;/script&gt;" in page
    # the only scripts are the report's own: its data blob and its code
    assert page.lower().count("<script") == 2
    assert '<script type="application/json" id="ftclass-data">' in page
    assert "<img" not in page.lower()
    blob = page.split('id="ftclass-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in blob and ">" not in blob and "&" not in blob
    rows = explorer_cases(page)
    assert rows[0]["case_id"] == "<script>alert(1)</script>"
    assert rows[0]["predicted"] == "<img src=x onerror=alert(2)>"
    assert rows[3]["error"] == "</pre><script>steal(document.cookie)</script>"
    tags = parse(page).tags
    assert tags.count("script") == 2
    assert not set(tags) & {"img", "iframe", "object", "embed", "link"}


def test_csp_allows_only_the_report_script_by_its_hash(report: dict[str, Any]) -> None:
    import base64
    import hashlib

    page = render_html(report)
    csp = page.split('http-equiv="Content-Security-Policy" content="', 1)[1].split('"', 1)[0]
    code = page.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "unsafe-eval" not in csp


def test_texts_are_shown_only_when_given(results: list[CaseResult]) -> None:
    plain = build_report(results, {})
    assert "texts" not in plain
    texts = {r.nodeid: f"text of {r.case_id} </script>" for r in results}
    with_texts = build_report(results, {}, texts=texts)
    assert with_texts["texts"] == texts
    for page in (render_html(plain, texts=texts), render_html(with_texts)):
        rows = explorer_cases(page)
        assert [row["text"] for row in rows] == [texts[r.nodeid] for r in results]
    rows = explorer_cases(render_html(plain))
    assert {row["text"] for row in rows} == {None}
    # a case that is not right shows its input digest in place of the text
    assert rows[3]["case_id"] == "a3" and rows[3]["digest"] == "0123456789abcdef"
    assert rows[0]["status"] == "correct" and rows[0]["digest"] is None


def test_html_is_self_contained(report: dict[str, Any]) -> None:
    page = render_html(report)
    assert "http://" not in page and "https://" not in page
    assert "<style>" in page
    parsed = parse(page)
    # the only references are links to anchors within the page
    for tag, name, value in parsed.resource_attributes:
        assert (tag, name) == ("a", "href") and (value or "").startswith("#"), (tag, name, value)


def test_html_confusion_matrix_has_n_by_n_cells_with_the_counts(report: dict[str, Any]) -> None:
    parsed = parse(render_html(report))
    # one section per task, each with its own matrix: nothing pooled across models
    expected = [t["metrics"] for t in report["tasks"]]
    assert len(parsed.matrices) == len(expected) == 2
    for matrix, metrics in zip(parsed.matrices, expected, strict=True):
        n = len(metrics["confusion_matrix"]["labels"])
        cells = [row for row in matrix if row]
        assert sum(len(row) for row in cells) == n * n
        counts = dense(metrics["confusion_matrix"])["matrix"]
        assert [[int(text) for text in row] for row in cells] == counts
    # task b: a, b and the out-of-set zzz
    assert len(report["tasks"][1]["metrics"]["confusion_matrix"]["labels"]) == 3


def test_html_shows_headline_mispredicted_and_errored_cases() -> None:
    page = render_html(build_report(hostile_results(), {}))
    assert "<dt>accuracy</dt><dd>0.333<small>95 % CI 0.061–0.792</small></dd>" in page
    ok_2 = next(row for row in explorer_cases(page) if row["case_id"] == "ok-2")
    assert ok_2["confidence"] == pytest.approx(0.607, abs=5e-4)  # exp(-0.5)
    assert (ok_2["status"], ok_2["critical"]) == ("mispredicted", True)
    assert "critical" in page
    assert "e&#34;1" in page
    assert "All tasks" not in page  # a single task needs no overall section


def test_html_report_written_atomically_into_a_new_directory(
    tmp_path: Path, report: dict[str, Any]
) -> None:
    path = write_html_report(report, tmp_path / "reports" / "ftclass.html")
    assert path.read_text(encoding="utf-8") == render_html(report)
    assert os.listdir(path.parent) == ["ftclass.html"]


# --- terminal --------------------------------------------------------------------------


def test_summary_lines_headlines_table_and_mispredictions(report: dict[str, Any]) -> None:
    lines = summary_lines(report)[1:]
    assert summary_lines(report)[0] == "model under test: ft:a"
    assert lines[0] == (
        "valid.jsonl @ ft:a: accuracy 0.700 (7/10), macro-F1 0.694, weighted-F1 0.700, 1 error"
    )
    assert lines[1:5] == [
        "  class  precision  recall     F1  support",
        "  a          0.750   0.750  0.750        4",
        "  b          0.667   0.667  0.667        3",
        "  c          0.667   0.667  0.667        3",
    ]
    assert lines[5:9] == [
        "  mispredicted:",
        "    a3: expected 'a', predicted 'b' (p=0.62)",
        "    a6: expected 'b', predicted 'c' (p=0.62)",
        "    a9: expected 'c', predicted 'a' (p=0.62)",
    ]
    assert lines[9:11] == ["  errors:", "    a10: HTTP 500: upstream …"]
    assert (
        "other.jsonl @ ft:b: accuracy 0.750 (3/4), macro-F1 0.833, weighted-F1 0.833, "
        "1 out of label set, 0 errors"
    ) in lines
    assert "    b1: expected 'a', predicted 'zzz'" in lines
    assert lines[lines.index("model named by tests: ft:b") + 1].startswith("other.jsonl @ ft:b")
    assert not any("overall" in line or "(10/14)" in line for line in lines)  # never pooled


def test_summary_lines_cut_the_list_after_max_listed(report: dict[str, Any]) -> None:
    lines = summary_lines(report, max_listed=2)
    start = lines.index("  mispredicted:")
    assert lines[start + 1 : start + 4] == [
        "    a3: expected 'a', predicted 'b' (p=0.62)",
        "    a6: expected 'b', predicted 'c' (p=0.62)",
        "    … and 1 more",
    ]
    assert "  mispredicted:" in summary_lines(report, max_listed=0)
    assert "    … and 3 more" in summary_lines(report, max_listed=0)


def test_summary_lines_escape_control_characters_in_case_ids() -> None:
    results = [make("x\x1b[2Jy", "a", "b", source="s.jsonl", model="m", labels=["a", "b"])]
    lines = summary_lines(build_report(results, {}))
    assert not any("\x1b" in line for line in lines)
    assert "    x\\x1b[2Jy: expected 'a', predicted 'b'" in lines
