"""A fine-tuning job in the reports: the JSON section, its curves as inline SVG, short summaries.

With ``--ft-job`` the JSON report gains a ``fine_tuning`` section
(:func:`fine_tuning_section`)::

    {
      "job": {...},                  # the API's fields: id, status, model, hyperparameters, ...
      "result_file": {"id", "encoding", "sha256", "columns", "rows"},  # every row, as read
      "curves": {"train_loss": {"steps", "raw", "smoothed", "span"}, ...},
      "final_metrics": {"train_loss": {"step", "value"}, ...},  # each column's last value
      "final_model": {"model", "accuracy", "macro_f1", "n_scored"},
      "checkpoints": [{"id", "step", "model", "created_at", "metrics", "evaluated",
                       "evaluation": {"n_cases", "n_scored", "n_errors", "accuracy",
                                      "accuracy_ci", "macro_f1", "macro_f1_ci"},
                       "vs_final": {"n_shared", "both_right", "both_wrong", "final_only",
                                    "checkpoint_only", "p_value", "significant"},
                       "best"}, ...],             # oldest first
      "best_checkpoint": {"step", "model", "accuracy", "macro_f1"},
      "significance": 0.05,
    }

A checkpoint's ``evaluation`` is its model's metrics in the report (asked with
``--ft-checkpoints``; ``evaluated`` is false without it); ``vs_final`` is
McNemar's exact two-sided test of its correctness against the final model's on
the cases both answered; the best checkpoint has the highest macro-F1 (then
accuracy, then the later step).

The HTML report draws it (``templates/training.html``, from :func:`training_view`):
the job, loss and accuracy per step (raw and smoothed) as inline SVG with each
checkpoint's evaluation over the accuracy curve, and a table of checkpoints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_ftclass.judging.training import best_checkpoint, curves, paired_with_final
from pytest_ftclass.report.html_page import format_number as _number
from pytest_ftclass.report.json_report import models_of
from pytest_ftclass.report.training_charts import COLOURS, chart, nice_top
from pytest_ftclass.results import CaseResult

if TYPE_CHECKING:
    from pytest_ftclass.asking.jobs import TrainingJob

__all__ = [
    "add_fine_tuning",
    "fine_tuning_section",
    "markdown_section",
    "terminal_lines",
    "training_view",
]

DEFAULT_SIGNIFICANCE = 0.05


# -- the JSON section ----------------------------------------------------------------


def add_fine_tuning(
    report: dict[str, Any],
    job: TrainingJob,
    results: Sequence[CaseResult],
    *,
    significance: float | None = None,
) -> dict[str, Any]:
    """Put the job's ``fine_tuning`` section into ``report``, before its cases; returns it."""
    section = fine_tuning_section(job, report, results, significance=significance)
    moved: dict[str, Any] = {key: report.pop(key) for key in ("cases", "texts") if key in report}
    report["fine_tuning"] = section
    report.update(moved)
    return section


def fine_tuning_section(
    job: TrainingJob,
    report: Mapping[str, Any],
    results: Sequence[CaseResult],
    *,
    significance: float | None = None,
) -> dict[str, Any]:
    """The ``fine_tuning`` section of a report whose model under test is ``job``'s model."""
    alpha = DEFAULT_SIGNIFICANCE if significance is None else significance
    final_model = job.fine_tuned_model or ""
    metrics = {m["model"]: m for m in models_of(report)}
    by_model: dict[str, list[CaseResult]] = {}
    for result in results:
        by_model.setdefault(result.model, []).append(result)
    final_results = by_model.get(final_model, [])
    checkpoints = []
    for checkpoint in sorted(job.checkpoints, key=lambda c: c.step):
        entry: dict[str, Any] = {
            "id": checkpoint.id,
            "step": checkpoint.step,
            "model": checkpoint.model,
            "created_at": checkpoint.created_at,
            "metrics": dict(checkpoint.metrics),
            "evaluated": checkpoint.model in metrics,
            "evaluation": None,
            "vs_final": None,
            "best": False,
        }
        if entry["evaluated"]:
            entry["evaluation"] = _evaluation(metrics[checkpoint.model].get("metrics"))
            paired = paired_with_final(final_results, by_model.get(checkpoint.model, []))
            entry["vs_final"] = {
                "n_shared": paired.n_shared,
                "both_right": paired.both_right,
                "both_wrong": paired.both_wrong,
                "final_only": paired.a_only,
                "checkpoint_only": paired.b_only,
                "p_value": paired.p_value,
                "significant": paired.n_shared > 0 and paired.p_value < alpha,
            }
        checkpoints.append(entry)
    best = best_checkpoint(
        [{"step": c["step"], **(c["evaluation"] or {"macro_f1": None})} for c in checkpoints]
    )
    best_entry = None
    if best is not None:
        checkpoints[best]["best"] = True
        chosen = checkpoints[best]
        best_entry = {
            "step": chosen["step"],
            "model": chosen["model"],
            "accuracy": chosen["evaluation"]["accuracy"],
            "macro_f1": chosen["evaluation"]["macro_f1"],
        }
    result_file = job.result_file
    final_evaluation = _evaluation((metrics.get(final_model) or {}).get("metrics"))
    return {
        "job": dict(job.job),
        "result_file": {
            "id": job.result_file_id,
            "encoding": job.result_encoding,
            "sha256": job.result_sha256,
            **(result_file.to_dict() if result_file is not None else {"columns": [], "rows": []}),
        },
        "curves": curves(result_file) if result_file is not None else {},
        "final_metrics": _final_metrics(job),
        "final_model": {
            "model": final_model,
            "accuracy": final_evaluation["accuracy"],
            "macro_f1": final_evaluation["macro_f1"],
            "n_scored": final_evaluation["n_scored"],
        },
        "checkpoints": checkpoints,
        "best_checkpoint": best_entry,
        "significance": alpha,
    }


def _evaluation(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """The numbers of a model's evaluation the section shows (``None``: nothing pooled)."""
    m = metrics or {}
    return {
        "n_cases": m.get("n_cases"),
        "n_scored": m.get("n_scored"),
        "n_errors": m.get("n_errors"),
        "accuracy": m.get("accuracy"),
        "accuracy_ci": m.get("accuracy_ci"),
        "macro_f1": m.get("macro_f1"),
        "macro_f1_ci": m.get("macro_f1_ci"),
    }


def _final_metrics(job: TrainingJob) -> dict[str, dict[str, float]]:
    result_file = job.result_file
    if result_file is None:
        return {}
    final = {}
    for column in result_file.columns[1:]:
        last = result_file.last(column)
        if last is not None:
            final[column] = {"step": last[0], "value": last[1]}
    return final


# -- the HTML partial --------------------------------------------------------------


def training_view(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """What ``templates/training.html`` draws from a report's ``fine_tuning``; ``None`` without.

    >>> training_view({"schema": "ftclass-report/2"}) is None
    True
    """
    section = report.get("fine_tuning")
    if not section:
        return None
    job = section.get("job") or {}
    curves_ = section.get("curves") or {}
    rows = (section.get("result_file") or {}).get("rows") or []
    steps = [row[0] for row in rows if row and isinstance(row[0], (int, float))]
    checkpoints = section.get("checkpoints") or []
    steps += [c["step"] for c in checkpoints]
    x_domain = (min(steps), max(steps)) if steps else (0, 1)
    loss = [name for name in curves_ if "loss" in name]
    accuracy = [name for name in curves_ if "accuracy" in name]
    charts = []
    if loss:
        top = max(max(curves_[name]["raw"]) for name in loss)
        charts.append(
            chart("loss", "Loss per step", curves_, loss, x_domain, (0.0, nice_top(top)), [])
        )
    markers = _markers(section)
    if accuracy or markers:
        charts.append(
            chart(
                "accuracy",
                "Accuracy per step, and each checkpoint's evaluation",
                curves_,
                accuracy,
                x_domain,
                (0.0, 1.0),
                markers,
            )
        )
    return {
        "id": job.get("id", ""),
        "job": _job_rows(job, section),
        "charts": charts,
        "missing": [
            name
            for name in (section.get("result_file") or {}).get("columns", [])[1:]
            if name not in curves_
        ],
        "n_rows": len(rows),
        "checkpoints": [_checkpoint_row(c) for c in checkpoints],
        "evaluated": any(c.get("evaluated") for c in checkpoints),
        "final_model": section.get("final_model") or {},
        "best": section.get("best_checkpoint"),
        "significance": section.get("significance", DEFAULT_SIGNIFICANCE),
        "colours": COLOURS,
    }


def _job_rows(job: Mapping[str, Any], section: Mapping[str, Any]) -> list[tuple[str, str]]:
    hyper = job.get("hyperparameters") or {}
    result_file = section.get("result_file") or {}
    created, finished = job.get("created_at"), job.get("finished_at")
    took = ""
    if isinstance(created, int) and isinstance(finished, int):
        took = f" ({_duration(finished - created)})"
    rows = [
        ("job", job.get("id")),
        ("status", job.get("status")),
        ("base model", job.get("model")),
        ("fine-tuned model", job.get("fine_tuned_model")),
        ("suffix", job.get("user_provided_suffix")),
        ("created", _time(created)),
        ("finished", (_time(finished) or "") + took if finished else None),
        ("hyperparameters", ", ".join(f"{k} {v}" for k, v in hyper.items()) or None),
        ("trained tokens", f"{job['trained_tokens']:,}" if job.get("trained_tokens") else None),
        ("seed", job.get("seed")),
        ("training file", job.get("training_file")),
        ("validation file", job.get("validation_file")),
        (
            "result file",
            f"{result_file.get('id')} ({result_file.get('encoding')}, "
            f"{len(result_file.get('rows') or [])} rows)"
            if result_file.get("id")
            else None,
        ),
    ]
    return [(name, str(value)) for name, value in rows if value not in (None, "")]


def _time(epoch: Any) -> str | None:
    if not isinstance(epoch, (int, float)):
        return None
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _checkpoint_row(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    evaluation = checkpoint.get("evaluation") or {}
    vs_final = checkpoint.get("vs_final") or {}
    api = checkpoint.get("metrics") or {}
    return {
        "step": checkpoint["step"],
        "model": checkpoint["model"],
        "best": checkpoint.get("best", False),
        "evaluated": checkpoint.get("evaluated", False),
        "accuracy": evaluation.get("accuracy"),
        "accuracy_ci": evaluation.get("accuracy_ci"),
        "macro_f1": evaluation.get("macro_f1"),
        "n_scored": evaluation.get("n_scored"),
        "n_errors": evaluation.get("n_errors"),
        "final_only": vs_final.get("final_only"),
        "checkpoint_only": vs_final.get("checkpoint_only"),
        "p_value": vs_final.get("p_value"),
        "significant": vs_final.get("significant", False),
        "train_loss": api.get("train_loss"),
        "valid_loss": api.get("full_valid_loss", api.get("valid_loss")),
    }


def _markers(section: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Points over the accuracy curve: each evaluated checkpoint's accuracy and macro-F1."""
    markers = []
    for checkpoint in section.get("checkpoints") or []:
        evaluation = checkpoint.get("evaluation") or {}
        for metric in ("accuracy", "macro_f1"):
            value = evaluation.get(metric)
            if value is None:
                continue
            markers.append(
                {
                    "step": checkpoint["step"],
                    "value": value,
                    "metric": metric,
                    "best": checkpoint.get("best", False),
                    "title": _marker_title(checkpoint, metric, value),
                }
            )
    return markers


def _marker_title(checkpoint: Mapping[str, Any], metric: str, value: float) -> str:
    name = "accuracy" if metric == "accuracy" else "macro-F1"
    title = f"checkpoint step {checkpoint['step']} ({checkpoint['model']}): {name} {value:.3f}"
    vs_final = checkpoint.get("vs_final")
    if vs_final:
        title += f"; McNemar vs the final model p={vs_final['p_value']:.3g}"
    return title + ("; best checkpoint" if checkpoint.get("best") else "")


# -- Markdown and the terminal --------------------------------------------------------


def markdown_section(report: Mapping[str, Any], escape: Callable[[object], str]) -> str:
    """A short Markdown summary of the job: final metrics and the checkpoints ('' without one).

    ``escape`` makes user data safe in a table cell (the Markdown report's own).
    """
    section = report.get("fine_tuning")
    if not section:
        return ""
    job = section.get("job") or {}
    lines = [
        f"## Fine-tuning job {escape(str(job.get('id', '')))}",
        "",
        f"{escape(str(job.get('model', '')))} → {escape(str(job.get('fine_tuned_model', '')))}, "
        f"{len((section.get('result_file') or {}).get('rows') or [])} steps",
        "",
    ]
    final = section.get("final_metrics") or {}
    if final:
        lines += ["| metric | last value | at step |", "| --- | ---: | ---: |"]
        lines += [
            f"| {escape(name)} | {value['value']:.4g} | {value['step']} |"
            for name, value in final.items()
        ]
        lines.append("")
    checkpoints = [c for c in section.get("checkpoints") or [] if c.get("evaluated")]
    if checkpoints:
        final_model = section.get("final_model") or {}
        lines += [
            "| checkpoint step | accuracy | macro-F1 | vs final (McNemar p) |",
            "| ---: | ---: | ---: | ---: |",
        ]
        for c in checkpoints:
            evaluation = c.get("evaluation") or {}
            best = " **best**" if c.get("best") else ""
            p = (c.get("vs_final") or {}).get("p_value")
            lines.append(
                f"| {c['step']}{best} | {_number(evaluation.get('accuracy'))} | "
                f"{_number(evaluation.get('macro_f1'))} | {'—' if p is None else f'{p:.3g}'} |"
            )
        lines.append(
            f"| final | {_number(final_model.get('accuracy'))} | "
            f"{_number(final_model.get('macro_f1'))} | |"
        )
        lines.append("")
    return "\n".join(lines)


def terminal_lines(report: Mapping[str, Any]) -> list[str]:
    """The job in a few terminal lines: final training metrics, each checkpoint's evaluation."""
    section = report.get("fine_tuning")
    if not section:
        return []
    job = section.get("job") or {}
    rows = (section.get("result_file") or {}).get("rows") or []
    final = section.get("final_metrics") or {}
    lines = [
        f"fine-tuning job {job.get('id')}: {job.get('model')} → {job.get('fine_tuned_model')}, "
        f"{len(rows)} steps"
    ]
    if final:
        lines.append(
            "  last values: "
            + ", ".join(f"{name} {value['value']:.4g}" for name, value in final.items())
        )
    for c in section.get("checkpoints") or []:
        if not c.get("evaluated"):
            continue
        evaluation = c.get("evaluation") or {}
        vs_final = c.get("vs_final") or {}
        p = vs_final.get("p_value")
        lines.append(
            f"  checkpoint step {c['step']}: accuracy {_number(evaluation.get('accuracy'))}, "
            f"macro-F1 {_number(evaluation.get('macro_f1'))}"
            + ("" if p is None else f", vs final McNemar p={p:.3g}")
            + (" (best)" if c.get("best") else "")
        )
    return lines
