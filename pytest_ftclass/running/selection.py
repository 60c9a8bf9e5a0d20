"""What on the command line narrowed the suite (:mod:`pytest_ftclass.judging.coverage`).

>>> class Options:
...     keyword, markexpr, deselect, lf, stepwise = "sport", "", None, False, False
>>> class Config:
...     option, args = Options(), ["tests/valid.cases.jsonl::sport-1"]
>>> narrowed_by(Config())
['-k sport', 'node ids']
"""

from __future__ import annotations

from typing import Any

__all__ = ["narrowed_by"]


def narrowed_by(config: Any) -> list[str]:
    """What on the command line selects part of the collected suite, as the user wrote it."""
    option = config.option
    reasons = []
    if getattr(option, "keyword", ""):
        reasons.append(f"-k {option.keyword}")
    if getattr(option, "markexpr", ""):
        reasons.append(f"-m {option.markexpr}")
    if getattr(option, "deselect", None):
        reasons.append("--deselect")
    if getattr(option, "lf", False):
        reasons.append("--lf")
    if getattr(option, "stepwise", False):
        reasons.append("--sw")
    if any("::" in str(arg) for arg in config.args):
        reasons.append("node ids")
    return reasons
