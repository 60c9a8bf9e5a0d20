"""A job's numbers: result files read whole (hypothesis), smoothing (pandas as the oracle),
which bodies are job traffic, the best checkpoint, and the section rendered safely."""

from __future__ import annotations

import base64
import csv
import io
import math
import random

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_ftclass.asking.jobs import Checkpoint, TrainingJob
from pytest_ftclass.judging.training import (
    ResultFile,
    ResultFileError,
    best_checkpoint,
    curves,
    paired_with_final,
    smooth,
)
from pytest_ftclass.recording.job_traffic import (
    cursor_of,
    decode_result_file,
    is_fine_tuning_body,
)
from pytest_ftclass.report.json_report import build_report
from pytest_ftclass.report.training import add_fine_tuning
from pytest_ftclass.results import CaseResult

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COLUMNS = ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]

value = st.one_of(
    st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
)
rows = st.lists(st.tuples(value, value, value, value), max_size=60)


def written(table: list[tuple[float | None, ...]], line_end: str) -> str:
    handle = io.StringIO()
    writer = csv.writer(handle, lineterminator=line_end)
    writer.writerow(COLUMNS)
    for step, cells in enumerate(table, start=1):
        writer.writerow([step, *("" if cell is None else repr(cell) for cell in cells)])
    return handle.getvalue()


@SETTINGS
@given(rows, st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_every_row_and_cell_of_a_result_file_is_read_back_plain_or_base64(
    table: list[tuple[float | None, ...]], line_end: str, encoded: bool
) -> None:
    text = written(table, line_end)
    content = base64.b64encode(text.encode()) if encoded else text.encode()
    decoded = decode_result_file(content)
    assert decoded is not None and decoded[1] == ("base64" if encoded else "plain")
    parsed = ResultFile.parse(decoded[0])
    assert parsed.columns == tuple(COLUMNS)
    assert parsed.rows == tuple((step, *cells) for step, cells in enumerate(table, start=1))
    for index, column in enumerate(COLUMNS[1:]):
        steps, values = parsed.series(column)
        present = [(s, c[index]) for s, c in enumerate(table, start=1) if c[index] is not None]
        assert list(zip(steps, values, strict=True)) == present


def test_base64_wrapped_over_lines_and_a_byte_order_mark_are_read() -> None:
    text = "\ufeffstep,train_loss\n1,0.5\n2,0.25\n"
    wrapped = base64.encodebytes(text.encode("utf-8"))  # 76 characters a line
    assert decode_result_file(wrapped) == ("step,train_loss\n1,0.5\n2,0.25\n", "base64")
    assert decode_result_file(b"not a result file") is None
    assert decode_result_file(base64.b64encode(b"id,label\n1,a\n")) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the result file is empty"),
        ("loss,step\n1,2\n", "line 1: the first column must be 'step'"),
        ("step,a,a\n1,2,3\n", "line 1: column names must be distinct"),
        ("step,train_loss\n1,0.5,7\n", "line 2: 3 cells, but the header names 2"),
        ("step,train_loss\n1.5,0.5\n", "line 2, column step: '1.5' is not a whole number"),
        ("step,train_loss\n1,0.5\n2,high\n", "line 3, column train_loss: 'high' is not a number"),
    ],
)
def test_a_result_file_that_cannot_be_read_names_the_line(text: str, message: str) -> None:
    with pytest.raises(ResultFileError, match=message.replace("(", r"\(")):
        ResultFile.parse(text)


@SETTINGS
@given(
    st.lists(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=1, max_size=80),
    st.integers(min_value=1, max_value=100),
)
def test_smoothing_is_pandas_exponential_moving_average(values: list[float], span: int) -> None:
    expected = pd.Series(values).ewm(span=span, adjust=True).mean().tolist()
    assert smooth(values, span) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_curves_leave_empty_cells_out_and_smooth_over_a_twentieth_of_the_points() -> None:
    rng = random.Random(3)
    lines = ["step,train_loss,valid_loss"]
    for step in range(1, 301):
        valid = f"{rng.random():.4f}" if step % 10 == 0 else ""
        lines.append(f"{step},{rng.random():.4f},{valid}")
    drawn = curves(ResultFile.parse("\n".join(lines) + "\n"))
    assert len(drawn["train_loss"]["steps"]) == 300 and drawn["train_loss"]["span"] == 15
    assert drawn["valid_loss"]["steps"] == list(range(10, 301, 10))
    assert drawn["valid_loss"]["span"] == 2  # 30 points


def test_which_bodies_are_fine_tuning_traffic() -> None:
    assert is_fine_tuning_body(b'{"object": "fine_tuning.job", "id": "ftjob-1"}')
    assert is_fine_tuning_body(b'{"object": "list", "data": [], "has_more": false}')
    assert is_fine_tuning_body(
        b'{"object": "list", "data": [{"object": "fine_tuning.job.checkpoint"}]}'
    )
    assert not is_fine_tuning_body(b'{"object": "list", "data": [{"object": "model"}]}')
    assert not is_fine_tuning_body(b'{"error": {"message": "no"}}')
    assert not is_fine_tuning_body(b"<html>proxy error</html>")
    assert cursor_of("http://h/v1/x?limit=10&api-version=1&after=a") == (
        ("after", "a"),
        ("limit", "10"),
    )


def test_the_best_checkpoint_has_the_highest_macro_f1_then_accuracy_then_the_later_step() -> None:
    evaluations = [
        {"step": 10, "macro_f1": 0.8, "accuracy": 0.9},
        {"step": 20, "macro_f1": 0.8, "accuracy": 0.85},
        {"step": 30, "macro_f1": 0.8, "accuracy": 0.9},
        {"step": 40, "macro_f1": None, "accuracy": None},
    ]
    assert best_checkpoint(evaluations) == 2
    assert best_checkpoint([{"step": 1, "macro_f1": None}]) is None


def test_an_error_is_never_counted_as_a_wrong_answer_in_the_pairing() -> None:
    def result(
        model: str, case: str, predicted: str | None, error: str | None = None
    ) -> CaseResult:
        return CaseResult(case, case, "s", model, "completions", "a", predicted, error=error)

    final = [result("f", "1", "a"), result("f", "2", "b"), result("f", "3", "a", None)]
    checkpoint = [result("c", "1", "b"), result("c", "2", "a"), result("c", "3", None, "HTTP 500")]
    paired = paired_with_final(final, checkpoint)
    assert (paired.n_shared, paired.a_only, paired.b_only) == (2, 1, 1)


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        ("succeeded", None, None),
        ("running", None, "job j has status 'running', not 'succeeded': it is still running"),
        ("cancelled", None, "job j has status 'cancelled', not 'succeeded'"),
        ("failed", {"code": "x", "message": "bad"}, "not 'succeeded': bad (x)"),
    ],
)
def test_a_job_says_why_it_cannot_be_evaluated(
    status: str, error: dict[str, str] | None, expected: str | None
) -> None:
    job = TrainingJob({"id": "j", "status": status, "fine_tuned_model": "ft:m", "error": error})
    problem = job.problem()
    assert (problem is None) if expected is None else (expected in str(problem))


def hostile_job() -> tuple[dict[str, object], TrainingJob]:
    """A report whose job and checkpoint names are markup."""
    model = "ft:<b>m</b>"
    checkpoint = f"{model}:ckpt-step-2"
    results = [
        CaseResult(
            f"c{i}",
            f"t::c{i}",
            "v.jsonl",
            name,
            "completions",
            "a",
            "a" if i or name == model else "b",
            labels=["a", "b"],
        )
        for name in (model, checkpoint)
        for i in range(4)
    ]
    report = build_report(results, {}, model_under_test=model, checkpoint_models=[checkpoint])
    job = TrainingJob(
        {"id": "ftjob-<i>1</i>", "status": "succeeded", "model": "b|x", "fine_tuned_model": model},
        result_file=ResultFile.parse("step,train_loss\n1,0.9\n2,0.5\n"),
        result_file_id="file-1",
        result_encoding="plain",
        checkpoints=(Checkpoint("ck-2", 2, checkpoint, metrics={"train_loss": 0.5}),),
    )
    add_fine_tuning(report, job, results)
    return report, job


def test_the_section_is_escaped_in_html_and_markdown() -> None:
    from pytest_ftclass.report import render_html, render_markdown

    report, _ = hostile_job()
    assert list(report)[-2:] == ["fine_tuning", "cases"]
    section = report["fine_tuning"]
    (checkpoint,) = section["checkpoints"]
    assert checkpoint["evaluation"]["accuracy"] == 0.75 and checkpoint["best"]
    assert checkpoint["vs_final"]["final_only"] == 1
    page = render_html(report)
    assert "<b>m</b>" not in page and "ft:&lt;b&gt;m&lt;/b&gt;" in page
    assert "<i>1</i>" not in page
    assert page.count("<script") == 2  # the report's own data and script, nothing more
    markdown = render_markdown(report)
    assert "<b>" not in markdown and "b\\|x" in markdown


def test_a_report_without_a_job_has_no_training_section() -> None:
    from pytest_ftclass.report import render_html, render_markdown

    results = [CaseResult("c", "t::c", "v.jsonl", "m", "chat", "a", "a", labels=["a"])]
    report = build_report(results, {}, model_under_test="m")
    assert 'id="fine-tuning"' not in render_html(report)
    assert "Fine-tuning job" not in render_markdown(report)
    assert math.isfinite(report["models"][0]["metrics"]["accuracy"])


def section_of(result_file: str, checkpoints: tuple[Checkpoint, ...] = ()) -> dict[str, object]:
    """A report with a job whose result file is ``result_file`` (and no case asked)."""
    job = TrainingJob(
        {"id": "ftjob-1", "status": "succeeded", "model": "b", "fine_tuned_model": "ft:b::1"},
        result_file=ResultFile.parse(result_file),
        result_file_id="file-1",
        result_encoding="base64",
        checkpoints=checkpoints,
    )
    report: dict[str, object] = {"schema": "ftclass-report/2", "models": [], "cases": []}
    add_fine_tuning(report, job, [])
    return report


def test_a_long_curve_is_drawn_thinned_to_its_limit_but_kept_whole() -> None:
    from pytest_ftclass.report.training import training_view
    from pytest_ftclass.report.training_charts import MAX_DRAWN_POINTS

    rows = "".join(f"{step},{1 / step}\n" for step in range(1, 5002))
    report = section_of("step,train_loss\n" + rows)
    view = training_view(report)
    assert view is not None
    (chart,) = view["charts"]
    raw = next(line for line in chart["lines"] if line["kind"] == "raw")
    assert raw["n_points"] <= MAX_DRAWN_POINTS + 1
    assert raw["points"].split()[-1].startswith(f"{chart['plot']['right']:.2f},")  # last step
    assert len(report["fine_tuning"]["result_file"]["rows"]) == 5001  # type: ignore[index]


def test_one_row_and_no_checkpoint_still_draw() -> None:
    from pytest_ftclass.report import render_html
    from pytest_ftclass.report.training import training_view

    report = section_of("step,train_loss,valid_loss\n1,0.7,\n")
    view = training_view(report)
    assert view is not None and [c["name"] for c in view["charts"]] == ["loss"]
    assert view["missing"] == ["valid_loss"] and view["checkpoints"] == []
    page = render_html(report)
    assert "The job lists no checkpoints." in page and 'data-chart="loss"' in page
