"""What many test files share: reading a run's reports, and two models whose answers are known.

``GOOD`` answers every case of :func:`tests.conftest.validation_lines` right;
``BAD`` was trained with sport labelled tech, so it gets exactly the sport
cases wrong.  :func:`good_and_bad` builds both for a ``ReferenceServer``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import training_lines

GOOD = "ft:babbage-002:acme::good"
BAD = "ft:babbage-002:acme::bad"


def read_report(pytester: pytest.Pytester, name: str = "ftclass.json") -> dict[str, Any]:
    """The JSON report a pytester run wrote into ``reports/``."""
    return json.loads((pytester.path / "reports" / name).read_text(encoding="utf-8"))


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The report's cases by case id (each id once: a case is never reported twice)."""
    ids = [case["case_id"] for case in report["cases"]]
    assert len(ids) == len(set(ids)), "a case was reported twice"
    return {case["case_id"]: case for case in report["cases"]}


def good_and_bad() -> dict[str, Any]:
    """Reference classifiers for ``GOOD`` and ``BAD`` (see the module docstring)."""
    from pytest_ftclass.cases.sources import load_cases
    from pytest_ftclass.reference import ReferenceClassifier

    good = load_cases(training_lines(), name="train")
    bad = load_cases(
        [
            {
                **line,
                "completion": " tech" if line["completion"] == " sport" else line["completion"],
            }
            for line in training_lines()
        ],
        name="train-bad",
    )
    return {GOOD: ReferenceClassifier.train(good), BAD: ReferenceClassifier.train(bad)}


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())
