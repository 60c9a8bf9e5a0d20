"""What a fine-tuning job's numbers say: its result file, smoothed curves, its checkpoints.

A result file is the CSV a job writes, one row per step
(``step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy``; the
``valid_*`` cells empty on most rows)::

    >>> rows = ResultFile.parse("step,train_loss,valid_loss\\n1,0.9,\\n2,0.7,0.8\\n3,0.4,\\n")
    >>> rows.rows
    ((1, 0.9, None), (2, 0.7, 0.8), (3, 0.4, None))
    >>> rows.series("valid_loss")
    ([2], [0.8])

Curves are each metric's points (empty cells left out) and the same points
smoothed (:func:`smooth`); a checkpoint is compared with the final model on the
cases both answered (:func:`paired_with_final`).  Pure functions: no pytest,
no HTTP.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_ftclass.judging.significance import PairedComparison, paired
from pytest_ftclass.results import CaseResult

__all__ = [
    "RESULT_COLUMNS",
    "ResultFile",
    "ResultFileError",
    "best_checkpoint",
    "curves",
    "paired_with_final",
    "smooth",
    "smoothing_span",
]

#: The columns of a result file as the API writes them.
RESULT_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")
#: A curve is smoothed over about this share of its points (see :func:`smoothing_span`).
SMOOTHING_SHARE = 0.05

Cell = int | float | None


class ResultFileError(ValueError):
    """A result file that cannot be read: the message names the line and the problem."""


@dataclass(frozen=True)
class ResultFile:
    """A job's result file, whole: its columns and every row (``None`` for an empty cell)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    @classmethod
    def parse(cls, text: str) -> ResultFile:
        """Read a result file's CSV text; :class:`ResultFileError` says what is wrong.

        The first column must be ``step`` (whole numbers); every other cell is
        a number or empty.  Columns beyond the usual five are kept.

        >>> ResultFile.parse("step,train_loss\\n1,abc\\n")
        Traceback (most recent call last):
        ...
        pytest_ftclass.judging.training.ResultFileError: line 2, column train_loss: 'abc' ...
        """
        reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
        try:
            header = next(reader)
        except StopIteration:
            raise ResultFileError("the result file is empty") from None
        columns = tuple(name.strip() for name in header)
        if not columns or columns[0] != "step":
            raise ResultFileError(f"line 1: the first column must be 'step', not {header[:1]}")
        if len(set(columns)) != len(columns) or not all(columns):
            raise ResultFileError(f"line 1: column names must be distinct and not empty: {header}")
        rows: list[tuple[Cell, ...]] = []
        for number, cells in enumerate(reader, start=2):
            if not cells or not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(columns):
                raise ResultFileError(
                    f"line {number}: {len(cells)} cells, but the header names {len(columns)}"
                )
            rows.append(
                tuple(_cell(cell, name, number) for cell, name in zip(cells, columns, strict=True))
            )
        return cls(columns, tuple(rows))

    def series(self, column: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of ``column``'s non-empty cells, in file order."""
        index = self.columns.index(column)
        steps: list[int] = []
        values: list[float] = []
        for row in self.rows:
            value = row[index]
            if value is not None:
                steps.append(int(row[0] or 0))
                values.append(float(value))
        return steps, values

    def last(self, column: str) -> tuple[int, float] | None:
        """``(step, value)`` of ``column``'s last non-empty cell, or ``None``."""
        steps, values = self.series(column)
        return (steps[-1], values[-1]) if steps else None

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "rows": [list(row) for row in self.rows]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResultFile:
        return cls(tuple(data["columns"]), tuple(tuple(row) for row in data["rows"]))


def _cell(text: str, column: str, line: int) -> Cell:
    text = text.strip()
    if not text:
        return None
    if column == "step":
        try:
            return int(text)
        except ValueError:
            raise ResultFileError(
                f"line {line}, column step: {text!r} is not a whole number"
            ) from None
    try:
        value = float(text)
    except ValueError:
        raise ResultFileError(f"line {line}, column {column}: {text!r} is not a number") from None
    return value if math.isfinite(value) else None


def smoothing_span(n_points: int) -> int:
    """The span of the moving average for a curve of ``n_points``: about 5 % of them, at least 1.

    >>> smoothing_span(1), smoothing_span(309), smoothing_span(1428)
    (1, 15, 71)
    """
    return max(1, round(n_points * SMOOTHING_SHARE))


def smooth(values: Sequence[float], span: int) -> list[float]:
    """An exponential moving average of ``values`` with decay ``2 / (span + 1)``, bias-corrected.

    Each point is the weighted mean of the points so far, the weights falling
    by ``1 - 2 / (span + 1)`` per step back (pandas' ``ewm(span=span,
    adjust=True).mean()``), so the curve starts at the first value, not at 0.

    >>> smooth([1.0, 0.0, 0.0], span=3)
    [1.0, 0.3333333333333333, 0.14285714285714285]
    """
    if span < 1:
        raise ValueError(f"span must be at least 1, not {span}")
    keep = 1.0 - 2.0 / (span + 1)
    weighted = total = 0.0
    smoothed = []
    for value in values:
        weighted = value + keep * weighted
        total = 1.0 + keep * total
        smoothed.append(weighted / total)
    return smoothed


def curves(result_file: ResultFile) -> dict[str, dict[str, Any]]:
    """Each metric column with values: its ``steps``, ``raw`` and ``smoothed`` values and ``span``.

    >>> curve = curves(ResultFile.parse("step,train_loss\\n1,1.0\\n2,0.0\\n"))["train_loss"]
    >>> curve["steps"], curve["raw"], curve["span"]
    ([1, 2], [1.0, 0.0], 1)
    """
    drawn: dict[str, dict[str, Any]] = {}
    for column in result_file.columns[1:]:
        steps, values = result_file.series(column)
        if not steps:
            continue
        span = smoothing_span(len(values))
        drawn[column] = {
            "steps": steps,
            "raw": values,
            "smoothed": smooth(values, span),
            "span": span,
        }
    return drawn


def paired_with_final(
    final: Iterable[CaseResult], checkpoint: Iterable[CaseResult]
) -> PairedComparison:
    """Correctness of the final model (A) and a checkpoint (B) on the cases both answered.

    Cases are paired by source and id; a case either model could not answer
    (an error) is left out, so an error never counts as a wrong answer.

    >>> a = [CaseResult("c1", "n", "s", "final", "chat", "x", "x"),
    ...      CaseResult("c2", "n", "s", "final", "chat", "x", "y")]
    >>> b = [CaseResult("c1", "n", "s", "ckpt", "chat", "x", "y"),
    ...      CaseResult("c2", "n", "s", "ckpt", "chat", "x", None, error="HTTP 500")]
    >>> paired_with_final(a, b).to_dict()["n_shared"], paired_with_final(a, b).a_only
    (1, 1)
    """
    answered = {(r.source, r.case_id): r for r in final if r.error is None}
    pairs = [
        (answered[(r.source, r.case_id)].correct, r.correct)
        for r in checkpoint
        if r.error is None and (r.source, r.case_id) in answered
    ]
    return paired(pairs)


def best_checkpoint(evaluations: Sequence[Mapping[str, Any]]) -> int | None:
    """The position of the best evaluated checkpoint: highest macro-F1, then accuracy, then step.

    Checkpoints without a macro-F1 (nothing scored) are never best; a tie goes
    to the later step, the one closer to the final model.

    >>> best_checkpoint([{"step": 1, "macro_f1": 0.9, "accuracy": 0.9},
    ...                  {"step": 2, "macro_f1": 0.9, "accuracy": 0.9},
    ...                  {"step": 3, "macro_f1": None, "accuracy": None}])
    1
    """
    scored = [
        (e["macro_f1"], e.get("accuracy") or 0.0, e.get("step") or 0, i)
        for i, e in enumerate(evaluations)
        if e.get("macro_f1") is not None
    ]
    return max(scored)[3] if scored else None
