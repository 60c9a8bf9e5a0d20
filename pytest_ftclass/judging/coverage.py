"""How much of the suite a run asked: the gate judges a subset only when told to.

The *suite* is every case of every case source pytest collected, asked of each
model it is asked of (a source named by a path argument is collected; node ids,
``-k``, ``-m``, ``--deselect``, ``--lf`` and ``--sw`` then select from it).  A
run *asks* the cases whose items ran.  When it asked fewer than the suite holds,
it is a subset: the report says how many of how many and what narrowed it, and
a configured gate fails unless ``--ft-allow-subset`` is given.

>>> summary = selection_summary({"planned": 803, "selected": 2, "narrowed_by": ["-k sport"]}, 2)
>>> summary["not_asked"], summary["subset"]
(801, True)
>>> describe_subset(summary)
'asked 2 of 803 cases (narrowed by -k sport)'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["describe_subset", "selection_summary"]


def selection_summary(
    selection: Mapping[str, Any] | None, asked: int, *, interrupted: bool = False
) -> dict[str, Any]:
    """The report's ``selection`` entry from the collection's counts and the cases asked.

    ``selection`` holds ``planned`` (cases in the suite), ``selected`` (cases the
    selected items use), ``narrowed_by`` and ``files_skipped`` (case files
    ``--lf`` left uncollected, whose cases are not counted in ``planned``);
    ``None`` when nothing was collected.
    """
    planned = int((selection or {}).get("planned", 0))
    reasons = list((selection or {}).get("narrowed_by", []))
    selected = int((selection or {}).get("selected", asked))
    if asked < selected:
        reasons.append("interrupted" if interrupted else "stopped early (-x, --maxfail)")
    planned = max(planned, asked)
    skipped = int((selection or {}).get("files_skipped", 0))
    if skipped:
        reasons.append(f"{skipped} {'file' if skipped == 1 else 'files'} not collected by --lf")
    return {
        "planned": planned,
        "asked": asked,
        "not_asked": planned - asked,
        "subset": asked < planned or bool(skipped),
        "narrowed_by": reasons,
    }


def describe_subset(summary: Mapping[str, Any]) -> str:
    """One phrase: how many cases of how many, and what narrowed them."""
    text = f"asked {summary['asked']} of {summary['planned']} cases"
    if summary.get("narrowed_by"):
        text += f" (narrowed by {', '.join(summary['narrowed_by'])})"
    return text
