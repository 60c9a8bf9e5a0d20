"""SVG geometry for the report's charts: numbers in, shapes out (the templates draw them).

Every chart maps data in [0, 1] (or a narrower y range) onto a square plot; the
templates turn the shapes into inline SVG.  Nothing here is user text.

>>> chart = line_chart([(0.0, 0.5), (1.0, 1.0)], x_label="coverage", y_label="accuracy")
>>> chart["points"]
'44.0,122.0 264.0,12.0'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["abstention_chart", "line_chart", "pr_chart", "reliability", "roc_chart"]

# Geometry of the plots (SVG user units).
_LEFT, _TOP, _SIZE, _HIST, _GAP = 44, 12, 220, 44, 14


def line_chart(
    points: Sequence[tuple[float, float]],
    *,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] = (0.0, 1.0),
    marks: Sequence[Mapping[str, Any]] = (),
    diagonal: bool = False,
) -> dict[str, Any]:
    """A polyline through ``points`` (data units) with ``marks`` (``x``, ``y``, ``title``).

    ``y_range`` is the data range of the y axis; x always runs from 0 to 1.
    """
    low, high = y_range
    span = (high - low) or 1.0

    def x_of(x: float) -> float:
        return _LEFT + min(max(x, 0.0), 1.0) * _SIZE

    def y_of(y: float) -> float:
        return _TOP + _SIZE - (min(max(y, low), high) - low) / span * _SIZE

    return {
        "width": _LEFT + _SIZE + 14,
        "height": _TOP + _SIZE + 34,
        "left": _LEFT,
        "top": _TOP,
        "right": _LEFT + _SIZE,
        "bottom": _TOP + _SIZE,
        "size": _SIZE,
        "points": " ".join(f"{x_of(x):.1f},{y_of(y):.1f}" for x, y in points),
        "marks": [
            {
                "x": f"{x_of(m['x']):.1f}",
                "y": f"{y_of(m['y']):.1f}",
                "title": m["title"],
                "kind": m.get("kind", ""),
            }
            for m in marks
            if m.get("x") is not None and m.get("y") is not None
        ],
        "diagonal": diagonal,
        "x_ticks": [{"label": f"{v:g}", "x": f"{x_of(v):.1f}"} for v in (0.0, 0.5, 1.0)],
        "y_ticks": [
            {"label": f"{v:g}", "y": f"{y_of(v):.1f}"} for v in (low, (low + high) / 2, high)
        ],
        "x_label": x_label,
        "y_label": y_label,
    }


def abstention_chart(abstention: Mapping[str, Any]) -> dict[str, Any]:
    """Accuracy on the cases kept against the share kept, the table's thresholds marked."""
    curve = abstention["curve"]
    points = list(zip(curve["coverage"], curve["accuracy"], strict=True))
    lowest = min(curve["accuracy"])
    y_low = min(0.9, math.floor(lowest * 10) / 10)
    marks = [
        {
            "x": row["coverage"],
            "y": row["accuracy"],
            "title": f"abstain below p = {row['threshold']:g}: keeps {row['kept']} "
            f"({100 * row['coverage']:.1f} %), accuracy "
            + ("—" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f} %"),
        }
        for row in abstention["table"]
        if row["kept"]
    ]
    return line_chart(
        points, x_label="share of cases kept", y_label="accuracy kept",
        y_range=(y_low, 1.0), marks=marks,
    )  # fmt: skip


def roc_chart(curves: Mapping[str, Any]) -> dict[str, Any]:
    """The ROC curve from (0, 0) to (1, 1), the model's operating point marked."""
    points = [(0.0, 0.0), *zip(curves["fpr"], curves["tpr"], strict=True), (1.0, 1.0)]
    point = curves["operating_point"]
    mark = {
        "x": point["fpr"],
        "y": point["tpr"],
        "title": f"the model's answers: TPR {point['tpr']:.3f}, FPR {point['fpr']:.3f}",
        "kind": "operating",
    }
    return line_chart(
        points, x_label="false-positive rate", y_label="true-positive rate",
        marks=[mark], diagonal=True,
    )  # fmt: skip


def pr_chart(curves: Mapping[str, Any]) -> dict[str, Any]:
    """Precision against recall, the model's operating point marked."""
    points = list(zip(curves["tpr"], curves["precision"], strict=True))
    point = curves["operating_point"]
    precision = point["precision"]
    mark = {
        "x": point["tpr"],
        "y": precision,
        "title": f"the model's answers: recall {point['tpr']:.3f}, precision "
        + ("—" if precision is None else f"{precision:.3f}"),
        "kind": "operating",
    }
    return line_chart(points, x_label="recall", y_label="precision", marks=[mark])


def reliability(calibration: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Shapes of the reliability diagram: accuracy per confidence bin against the diagonal.

    Each non-empty bin is a bar as tall as its accuracy with a tick at its mean
    confidence; below, a histogram of how many cases fell in each bin.
    """
    if not calibration or not calibration.get("n"):
        return None
    left, top, size = _LEFT, _TOP, _SIZE
    hist_top = top + size + _GAP
    bins = calibration["bins"]
    most = max(b["count"] for b in bins) or 1
    bars = []
    for b in bins:
        if not b["count"]:
            continue
        x = left + b["lower"] * size
        width = (b["upper"] - b["lower"]) * size
        height = b["accuracy"] * size
        count_height = b["count"] / most * _HIST
        bars.append(
            {
                "x": f"{x + 1:.1f}",
                "width": f"{width - 2:.1f}",
                "x2": f"{x + width - 1:.1f}",
                "y": f"{top + size - height:.1f}",
                "height": f"{height:.1f}",
                "conf_y": f"{top + size - b['mean_confidence'] * size:.1f}",
                "hist_y": f"{hist_top + _HIST - count_height:.1f}",
                "hist_height": f"{count_height:.1f}",
                "title": f"confidence {b['lower']:.1f}–{b['upper']:.1f}: {b['count']} cases, "
                f"mean confidence {b['mean_confidence']:.3f}, accuracy {b['accuracy']:.3f}",
            }
        )
    ticks = [
        {"value": f"{v:.1f}", "x": f"{left + v * size:.1f}", "y": f"{top + size - v * size:.1f}"}
        for v in (0.0, 0.5, 1.0)
    ]
    return {
        "width": left + size + 10,
        "height": hist_top + _HIST + 30,
        "left": left,
        "top": top,
        "size": size,
        "right": left + size,
        "bottom": top + size,
        "hist_top": hist_top,
        "hist_bottom": hist_top + _HIST,
        "bars": bars,
        "ticks": ticks,
        "n": calibration["n"],
    }
