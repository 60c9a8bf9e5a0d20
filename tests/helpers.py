"""What the test files share: data whose answers are known, reading a run's reports.

The reference model is trained on synthetic sentences whose class is given by
their vocabulary (:func:`training_lines`), so which cases it gets right is
known by construction: a case written with sport words but labelled ``tech``
is a misprediction.

``GOOD`` answers every case of :func:`tests.conftest.validation_lines` right;
``BAD`` was trained with sport labelled tech, so it gets exactly the sport
cases wrong.  :func:`good_and_bad` builds both for a ``ReferenceServer``.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SEPARATOR = "\n\n###\n\n"
VOCABULARY = {
    "sport": ["goal", "match", "striker", "league", "coach", "stadium", "penalty", "referee"],
    "tech": ["software", "chip", "laptop", "network", "browser", "server", "robot", "app"],
    "politics": ["minister", "vote", "election", "party", "senate", "policy", "campaign", "law"],
}
FILLER = ["the", "a", "today", "new", "big", "after", "with", "over"]


def sentence(label: str, rng: random.Random, words: int = 8) -> str:
    chosen = [rng.choice(VOCABULARY[label]) for _ in range(words // 2)]
    chosen += [rng.choice(FILLER) for _ in range(words - len(chosen))]
    rng.shuffle(chosen)
    return " ".join(chosen)


def training_lines(per_class: int = 30, seed: int = 1) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [
        {"prompt": sentence(label, rng) + SEPARATOR, "completion": " " + label}
        for _ in range(per_class)
        for label in VOCABULARY
    ]


def validation_lines(per_class: int = 4, seed: int = 2) -> list[dict[str, object]]:
    """Cases the reference model answers right: ``<label>-<n>`` ids."""
    rng = random.Random(seed)
    lines: list[dict[str, object]] = []
    for label in VOCABULARY:
        for n in range(per_class):
            text = " ".join(rng.choice(VOCABULARY[label]) for _ in range(6))
            lines.append(
                {"id": f"{label}-{n}", "prompt": text + SEPARATOR, "completion": " " + label}
            )
    return lines


def write_jsonl(path: Path, lines: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


GOOD = "ft:babbage-002:acme::good"
BAD = "ft:babbage-002:acme::bad"


def read_report(pytester: pytest.Pytester, name: str = "ftclass.json") -> dict[str, Any]:
    """The JSON report a pytester run wrote into ``reports/``, each case with its ``labels``.

    A case lists its labels only when they differ from its task's (schema 3): they are
    given back here from the task, as the file's own documentation says.
    """
    report = json.loads((pytester.path / "reports" / name).read_text(encoding="utf-8"))
    labels = {(t["source"], t["model"]): t.get("labels") for t in report.get("tasks", [])}
    for case in report.get("cases", []):
        case.setdefault("labels", labels.get((case["source"], case["model"])))
    return report


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


def dense(confusion_matrix: dict[str, Any]) -> dict[str, Any]:
    """A report's sparse confusion matrix (non-zero ``[row, column, count]`` cells) made dense.

    Written here, apart from the package, so the tests read the format independently.
    """
    labels = confusion_matrix["labels"]
    rows = [[0] * len(labels) for _ in labels]
    for row, column, count in confusion_matrix["cells"]:
        assert count > 0 and rows[row][column] == 0, "cells are non-zero and listed once"
        rows[row][column] = count
    return {"labels": labels, "matrix": rows}


def page_blob(page: str) -> dict[str, Any]:
    """The data blob of an HTML report (``<script type="application/json" id="ftclass-data">``)."""
    return json.loads(page.split('id="ftclass-data">', 1)[1].split("</script>", 1)[0])


EXPLORER_FIELDS = (
    "task", "case_id", "nodeid", "expected", "predicted", "confidence", "status", "flags",
    "digest", "text", "error",
)  # fmt: skip
STATUSES = ("correct", "mispredicted", "error")


def explorer_cases(page: str) -> list[dict[str, Any]]:
    """The explorer's rows of an HTML report as dicts, labels and tasks by name.

    The row layout is the one documented in ``pytest_ftclass.report.html_views``.
    """
    blob = page_blob(page)
    cases = []
    for row in blob["rows"]:
        case = dict(zip(EXPLORER_FIELDS, row, strict=True))
        case["task"] = blob["tasks"][case["task"]]["task"]
        case["expected"] = blob["labels"][case["expected"]]
        case["predicted"] = None if case["predicted"] < 0 else blob["labels"][case["predicted"]]
        case["status"] = STATUSES[case["status"]]
        case["critical"] = bool(case["flags"] & 1)
        case["out_of_set"] = bool(case["flags"] & 2)
        case["error"] = None if case["error"] < 0 else blob["errors"][case["error"]]
        cases.append(case)
    return cases


def recording_evaluation(base_url: str, directory: Path, **settings: Any) -> Any:
    """An Evaluation recording (``record_mode="all"``) into ``directory`` from ``base_url``,
    no retries, with a test key; ``settings`` add to its Settings."""
    from pytest_ftclass.options import Settings
    from pytest_ftclass.running.evaluation import Evaluation

    return Evaluation(
        Settings(
            base_url=base_url,
            record_mode="all",
            cassette_dir=directory,
            rootdir=directory,
            max_retries=0,
            **settings,
        ),
        environ={"OPENAI_API_KEY": "sk-test"},
    )


def ask_every_case(
    evaluation: Any, source: str, cases: list[Any], model: str, asked: list[Any] | None = None
) -> dict[str, Any]:
    """Plan ``asked`` (default: all ``cases``) for ``model`` and fetch each one's prediction."""
    asked = cases if asked is None else asked
    evaluation.plan(source, cases, model, asked)
    return {case.id: evaluation.prediction(source, model, case) for case in asked}


@contextlib.contextmanager
def sigint_handled() -> Iterator[None]:
    """Let a child started meanwhile take Ctrl-C, even if this process ignores SIGINT.

    An ignored signal stays ignored across ``exec`` (a shell starts its background
    jobs with SIGINT ignored), and Python then never raises KeyboardInterrupt.
    """
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
