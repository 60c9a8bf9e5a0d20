"""The training charts' geometry: a few curves and markers in one SVG plot, as numbers.

:func:`chart` maps steps and values to SVG user units; ``templates/training.html``
draws the result.  Each chart keeps its domains and plot box, so a drawn point
can be read back as a step and a value::

    shape = chart("loss", "Loss per step", curves, ["train_loss"], (1, 309), (0.0, 2.0), [])
    shape["lines"][0]["points"]   # "58.00,…" one "x,y" per drawn point

No HTML here, and nothing user-written: titles and labels are escaped by the template.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["CHART", "COLOURS", "MAX_DRAWN_POINTS", "chart", "nice_top", "points", "ticks"]

#: At most this many points of one curve are drawn (every k-th beyond; the JSON keeps all).
MAX_DRAWN_POINTS = 2000
#: Geometry of one chart, in SVG user units.
CHART = {"width": 720, "height": 250, "left": 58, "right": 16, "top": 14, "bottom": 36}
#: Colours of the curves: a training metric and a validation one; the markers.
COLOURS = {"train": "#0969da", "valid": "#bc4c00", "accuracy": "#1a7f37", "macro_f1": "#8250df"}


def chart(
    name: str,
    title: str,
    curves: Mapping[str, Mapping[str, Any]],
    columns: Sequence[str],
    x_domain: tuple[float, float],
    y_domain: tuple[float, float],
    markers: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The shapes of one chart: ``columns`` of ``curves`` (raw and smoothed) and ``markers``.

    ``curves`` are the report's (``steps``, ``raw``, ``smoothed``); a marker is
    a ``step`` and a ``value`` (clipped to ``y_domain``), drawn at ``x``, ``y``.
    """
    width, height = CHART["width"], CHART["height"]
    left, top = CHART["left"], CHART["top"]
    plot_width = width - left - CHART["right"]
    plot_height = height - top - CHART["bottom"]
    x0, x1 = x_domain
    y0, y1 = y_domain

    def x(step: float) -> float:
        return left + (step - x0) / ((x1 - x0) or 1) * plot_width

    def y(value: float) -> float:
        clipped = min(max(value, y0), y1)
        return top + plot_height - (clipped - y0) / ((y1 - y0) or 1) * plot_height

    lines = []
    for column in columns:
        curve = curves[column]
        colour = COLOURS["valid" if column.startswith("valid") else "train"]
        stride = max(1, math.ceil(len(curve["steps"]) / MAX_DRAWN_POINTS))
        for kind in ("raw", "smoothed"):
            drawn = points(curve["steps"], curve[kind], stride, x, y)
            lines.append(
                {
                    "metric": column,
                    "kind": kind,
                    "colour": colour,
                    "points": drawn,
                    "n_points": len(drawn.split()),
                    "dashed": "accuracy" in column and column.startswith("valid"),
                }
            )
    drawn_markers = [
        {
            **marker,
            "x": f"{x(marker['step']):.2f}",
            "y": f"{y(marker['value']):.2f}",
            # the "best" label above the marker, or below it when that would leave the plot
            "label_y": f"{y(marker['value']) + (-14 if y(marker['value']) > top + 20 else 22):.2f}",
        }
        for marker in markers
    ]
    return {
        "name": name,
        "title": title,
        "width": width,
        "height": height,
        "plot": {
            "left": left,
            "top": top,
            "width": plot_width,
            "height": plot_height,
            "right": left + plot_width,
            "bottom": top + plot_height,
        },
        "x_domain": f"{x0:g} {x1:g}",
        "y_domain": f"{y0:g} {y1:g}",
        "x_ticks": [{"label": f"{v:g}", "x": f"{x(v):.2f}"} for v in ticks(x0, x1, whole=True)],
        "y_ticks": [{"label": f"{v:g}", "y": f"{y(v):.2f}"} for v in ticks(y0, y1)],
        "lines": lines,
        "markers": drawn_markers,
        "checkpoint_steps": sorted({f"{x(m['step']):.2f}" for m in markers}),
        "legend": [
            {"label": column, "colour": COLOURS["valid" if column.startswith("valid") else "train"]}
            for column in columns
        ],
    }


def points(
    steps: Sequence[float],
    values: Sequence[float],
    stride: int,
    x: Callable[[float], float],
    y: Callable[[float], float],
) -> str:
    """SVG ``points`` of a curve: every ``stride``-th point, and always the last one.

    >>> points([1, 2, 3], [0.5, 0.25, 0.0], 2, lambda s: 10 * s, lambda v: 100 * v)
    '10.00,50.00 30.00,0.00'
    """
    chosen = list(range(0, len(steps), stride))
    if chosen and chosen[-1] != len(steps) - 1:
        chosen.append(len(steps) - 1)
    return " ".join(f"{x(steps[i]):.2f},{y(values[i]):.2f}" for i in chosen)


def nice_top(value: float) -> float:
    """A round upper bound at or above ``value`` (1, 2, 2.5 or 5 times a power of ten).

    >>> nice_top(1.609), nice_top(0.07), nice_top(0)
    (2.0, 0.1, 1.0)
    """
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if value <= factor * power * (1 + 1e-12):
            return float(factor * power)
    return float(10 * power)


def ticks(low: float, high: float, *, whole: bool = False, count: int = 5) -> list[float]:
    """About ``count`` round tick values from ``low`` to ``high``.

    >>> ticks(0, 1), ticks(1, 309, whole=True)
    ([0.0, 0.25, 0.5, 0.75, 1.0], [1, 100, 200, 300])
    """
    if high <= low:
        return [low]
    raw_step = (high - low) / (count - 1)
    power = 10 ** math.floor(math.log10(raw_step))
    step = min((f * power for f in (1, 2, 2.5, 5, 10) if f * power >= raw_step), default=10 * power)
    if whole:
        step = max(1, round(step))
    first = math.ceil(low / step) * step
    ticks: list[float] = [low] if whole and first > low else []
    value = first
    while value <= high * (1 + 1e-12):
        ticks.append(round(value, 10) if not whole else round(value))
        value += step
    return ticks
