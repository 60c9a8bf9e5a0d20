"""The JSON report: every per-case result plus the metrics computed from them.

>>> import pathlib, tempfile
>>> from pytest_ftclass.results import CaseResult
>>> results = [CaseResult("c1", "t::c1", "valid.jsonl", "ft:m", "completions",
...                       expected="sport", predicted="tech", labels=["sport", "tech"])]
>>> report = build_report(results, {"run": "demo"}, model_under_test="ft:m")
>>> report["schema"], report["models"][0]["metrics"]["accuracy"], report["tasks"][0]["task"]
('ftclass-report/3', 0.0, 'valid.jsonl @ ft:m')
>>> path = write_json_report(report, pathlib.Path(tempfile.mkdtemp()) / "out" / "report.json")
>>> results_from_report(load_report(path)) == results
True

Shape (``schema`` is bumped when a field changes meaning)::

    {
      "schema": "ftclass-report/3",
      "metadata": {...},                      # as given by the caller
      "selection": {"planned", "asked", "not_asked", "subset", "narrowed_by"},
      "models": [{"model", "role", "tasks", "pooled", "labels", "metrics",
                  "usage", "n_replayed", "cost"}, ...],
      "tasks": [{"task", "source", "model", "role", "endpoint", "labels", "metrics",
                 "cost"}, ...],
      "fine_tuning": {...},                   # with --ft-job (see report.training)
      "cases": [CaseResult.to_dict(), ...],   # one per (source, case id, model)
      "texts": {nodeid: text, ...},           # only when build_report(texts=...) was given
      "gate": {...},                          # added by the plugin
      "comparison": {...},                    # with --ft-compare (see below)
    }

Nothing is pooled across models.  ``models`` lists each model once, the model
under test first (``role`` ``under_test``), then the models tests name with
``model=`` (``task_model``), then the ``--ft-compare`` models (``comparison``,
informational unless ``--ft-gate-compare``), then the checkpoints of the
``--ft-job`` job asked with ``--ft-checkpoints`` (``checkpoint``, never gated).
A model's ``metrics`` pool its tasks only when they share one label set
(``pooled``); otherwise they are ``None`` and its tasks speak for it.  A task
is one case source asked of one model.  Every number in ``models`` and
``tasks`` can be recomputed from ``cases`` (see
:mod:`pytest_ftclass.judging.metrics` for the definitions).  ``usage`` sums a
model's token counts over its tasks (``n_replayed`` of its answers came from
cassettes: their usage is as recorded); ``cost`` is the estimate at the
model's price (``ft_prices``, :mod:`pytest_ftclass.judging.cost`), ``None``
without one.

``comparison`` holds each compared model against the model under test
(``pairs``: per source the headline numbers of both, the deltas B − A,
McNemar's test, per-class F1 deltas and the flip lists; A is the model under
test) and the ``leaderboards`` (:mod:`pytest_ftclass.judging.leaderboard`);
``ftclass-compare.json`` has the same with both models' full metrics.

Schema 3 (this one) stores each confusion matrix sparse (``cells``: the
non-zero ``[expected, predicted, count]`` by label position, instead of
``matrix``) and drops ``confusion_matrix_normalized``; gives each task its
``labels`` and leaves them out of its cases (a case lists ``labels`` only when
they differ from its task's), so a report grows with cases plus classes, not
their product; and adds ``abstention`` to the metrics, ``curves`` to
``binary``, the models' ``usage``, ``n_replayed`` and ``cost``, the tasks'
``cost`` and ``comparison``.  Metrics are written indented, lists of numbers
on one line.  Schema 2 replaced schema 1's ``overall`` (every case of every
model and task pooled) with ``models``, added ``selection``, each task's
``role`` and each case's ``other_nodeids``, ``finish_reason`` and
``replayed``; slices name their macro-F1 ``macro_f1_present``.  Schema 1 and 2
reports are still read (as baselines, by ``ftclass compare`` and ``ftclass
report``): :func:`load_report` gives their cases their task's labels back,
and :func:`~pytest_ftclass.judging.metrics.confusion_rows` reads either
matrix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO, overload

from pytest_ftclass.judging.cost import Price, estimate_cost, price_for
from pytest_ftclass.judging.metrics import (
    classification_metrics,
    declared_labels,
    group_by_task,
)
from pytest_ftclass.recording.atomic import atomic_writer
from pytest_ftclass.results import CaseResult

__all__ = [
    "CHECKPOINT",
    "COMPARISON",
    "SCHEMA",
    "TASK_MODEL",
    "UNDER_TEST",
    "build_report",
    "load_report",
    "model_role",
    "models_of",
    "results_from_report",
    "tested_results",
    "write_json_report",
]

SCHEMA = "ftclass-report/3"
#: Schemas :func:`load_report` reads.
READABLE_SCHEMAS = ("ftclass-report/1", "ftclass-report/2", SCHEMA)
UNDER_TEST, TASK_MODEL, COMPARISON = "under_test", "task_model", "comparison"
#: A checkpoint of the ``--ft-job`` job (``--ft-checkpoints``): never gated, never pooled.
CHECKPOINT = "checkpoint"
_ROLE_ORDER = {UNDER_TEST: 0, TASK_MODEL: 1, COMPARISON: 2, CHECKPOINT: 3}
#: Roles whose models the gate leaves out (a comparison model unless ``--ft-gate-compare``).
NOT_GATED = (COMPARISON, CHECKPOINT)


def model_role(
    model: str,
    model_under_test: str | None,
    compare_models: Iterable[str],
    checkpoint_models: Iterable[str] = (),
) -> str:
    """``under_test``, ``comparison``, ``checkpoint`` or ``task_model`` (named by ``model=``).

    >>> model_role("b", "a", ["b"]), model_role("x", "a", ["b"]), model_role("x", None, ())
    ('comparison', 'task_model', 'under_test')
    >>> model_role("a:ckpt-step-8", "a", [], ["a:ckpt-step-8"])
    'checkpoint'
    """
    if model in checkpoint_models and model != model_under_test:
        return CHECKPOINT
    if model in compare_models:
        return COMPARISON
    if model_under_test is None or model == model_under_test:
        return UNDER_TEST
    return TASK_MODEL


def build_report(
    results: Sequence[CaseResult],
    metadata: Mapping[str, Any],
    *,
    model_under_test: str | None = None,
    compare_models: Sequence[str] = (),
    checkpoint_models: Sequence[str] = (),
    selection: Mapping[str, Any] | None = None,
    positive_class: str | None = None,
    texts: Mapping[str, str] | None = None,
    prices: Sequence[Price] = (),
    case_dicts: bool = True,
) -> dict[str, Any]:
    """The report dict for ``results``: metrics per model and per task, and every case.

    ``results`` hold each case once (see :attr:`CaseResult.key`).  A task is
    one case source against one model (:attr:`CaseResult.task`), in the order
    first seen within its model; its ``endpoint`` is that of its first case.
    ``model_under_test`` leads (``None``: every model is under test);
    ``compare_models`` are labelled ``comparison`` and ``checkpoint_models``
    ``checkpoint``.  ``selection`` is the
    run's (see :mod:`pytest_ftclass.judging.coverage`).  ``positive_class`` is the
    positive class of binary tasks (see
    :func:`pytest_ftclass.judging.metrics.classification_metrics`).  ``texts`` (nodeid
    → the case's input text) is stored as a ``texts`` entry, for the HTML
    explorer, only when given: by default a report holds no prompt text.
    Its ``cases`` are a list of ``CaseResult.to_dict()``; with ``case_dicts=False``
    they are :class:`CaseRows` instead, read from ``results`` as they are written
    (the plugin's way: a run of 100,000 cases holds each result once), and the
    report is then written by :func:`write_json_report`, not ``json.dumps``.
    ``prices`` give each task's and model's estimated ``cost``.
    """
    by_task = group_by_task(results)
    by_model: dict[str, list[str]] = {}
    for task, group in by_task.items():
        by_model.setdefault(group[0].model, []).append(task)
    roles = {
        m: model_role(m, model_under_test, compare_models, checkpoint_models) for m in by_model
    }
    steps = {m: i for i, m in enumerate(checkpoint_models)}  # checkpoints in training order
    order = sorted(by_model, key=lambda m: (_ROLE_ORDER[roles[m]], steps.get(m, 0)))
    groups: list[Sequence[CaseResult]] = [by_task[t] for m in order for t in by_model[m]]
    declared = {task: declared_labels(group) for task, group in by_task.items()}
    pooled: dict[str, list[CaseResult]] = {}
    for model in order:
        names = by_model[model]
        if len(names) > 1 and len({declared[t] for t in names}) == 1:
            pooled[model] = [r for t in names for r in by_task[t]]
    computed = [
        classification_metrics(group, positive_class=positive_class)
        for group in [*groups, *pooled.values()]
    ]
    names = [t for m in order for t in by_model[m]]
    task_metrics = dict(zip(names, computed[: len(groups)], strict=True))
    pooled_metrics = dict(zip(pooled, computed[len(groups) :], strict=True))
    tasks = []
    for model in order:
        price = price_for(model, prices)
        for task in by_model[model]:
            group = by_task[task]
            tasks.append(
                {
                    "task": task,
                    "source": group[0].source,
                    "model": model,
                    "role": roles[model],
                    "endpoint": group[0].endpoint,
                    "labels": sorted(declared[task]),
                    "metrics": task_metrics[task],
                    "cost": estimate_cost(task_metrics[task]["usage"], price),
                }
            )
    models = []
    for model in order:
        names = by_model[model]
        single = len(names) == 1
        metrics = task_metrics[names[0]] if single else pooled_metrics.get(model)
        usage = _summed_usage([task_metrics[t]["usage"] for t in names])
        models.append(
            {
                "model": model,
                "role": roles[model],
                "tasks": names,
                "pooled": single or model in pooled,
                "labels": sorted(declared[names[0]]) if metrics is not None else None,
                "metrics": metrics,
                "usage": usage,
                "n_replayed": sum(task_metrics[t]["n_replayed"] for t in names),
                "cost": estimate_cost(usage, price_for(model, prices)),
            }
        )
    report: dict[str, Any] = {"schema": SCHEMA, "metadata": dict(metadata)}
    if selection is not None:
        report["selection"] = dict(selection)
    report["models"] = models
    report["tasks"] = tasks
    rows = CaseRows(results)
    report["cases"] = list(rows) if case_dicts else rows
    if texts is not None:
        wanted = {result.nodeid for result in results}
        report["texts"] = {node: str(text) for node, text in texts.items() if node in wanted}
    return report


class CaseRows(Sequence[dict[str, Any]]):
    """A report's ``cases``: each result as ``CaseResult.to_dict()``, made when read.

    The dicts are not held, so a run of 100,000 cases keeps each result once;
    ``list(rows)`` makes them all.
    """

    def __init__(self, results: Sequence[CaseResult]) -> None:
        self._results = results

    def __len__(self) -> int:
        return len(self._results)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [result.to_dict() for result in self._results[index]]
        return self._results[index].to_dict()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (result.to_dict() for result in self._results)


def _summed_usage(usages: Iterable[Mapping[str, int] | None]) -> dict[str, int] | None:
    """Token counts summed over the tasks that report them (``None`` when none does)."""
    reported = [usage for usage in usages if usage]
    if not reported:
        return None
    return {key: sum(int(u.get(key) or 0) for u in reported) for key in reported[0]}


def write_json_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``report`` as UTF-8 JSON atomically, creating the directory.

    Metrics are indented by 2, with each list of numbers (a curve, the
    confusion matrix's cells) and each small flat object on one line; each case
    (and each entry of ``texts``) is one line, written as it is encoded, so a
    report of 100,000 cases is never held as one string and diffs line by line.
    A case's ``labels`` are left out when they are its task's.  Values JSON does
    not know (a ``Path`` in the metadata, say) are written as their ``str()``.
    """
    task_labels = {
        (task.get("source"), task.get("model")): task["labels"]
        for task in report.get("tasks") or []
        if "labels" in task
    }
    with atomic_writer(path) as handle:
        handle.write("{")
        for i, (key, value) in enumerate(report.items()):
            handle.write(",\n  " if i else "\n  ")
            handle.write(_ONE_LINE.encode(str(key)) + ": ")
            if key == "cases" and isinstance(value, list | CaseRows):
                rows = (_ONE_LINE.encode(_without_task_labels(case, task_labels)) for case in value)
                _write_lines(handle, "[", rows, "]")
            elif key == "texts" and isinstance(value, Mapping):
                entries = (
                    f"{_ONE_LINE.encode(str(k))}: {_ONE_LINE.encode(v)}" for k, v in value.items()
                )
                _write_lines(handle, "{", entries, "}")
            elif key == "fine_tuning":  # a result file's rows and curves: one line per list
                handle.write(_rows_on_lines(value).replace("\n", "\n  "))
            else:
                handle.write(_pretty(value, 1))
        handle.write("\n}\n")
    return Path(path)


def _without_task_labels(
    case: Mapping[str, Any], task_labels: Mapping[tuple[Any, Any], list[str]]
) -> Mapping[str, Any]:
    """``case`` without its ``labels`` when they are its task's (the common case)."""
    labels = case.get("labels")
    shared = task_labels.get((case.get("source"), case.get("model")))
    if labels is None or shared is None:
        return case
    if labels is not shared and labels != shared:
        return case
    return {key: value for key, value in case.items() if key != "labels"}


def _pretty(value: Any, level: int) -> str:
    """``value`` as indented JSON whose leaves (lists of numbers, small flat objects) keep one line.

    >>> print(_pretty({"a": [1, 2], "b": {"c": {"d": 1}}}, 0))
    {
      "a": [1, 2],
      "b": {
        "c": {"d": 1}
      }
    }
    """
    if isinstance(value, Mapping):
        if not value or (_flat(value) and len(encoded := _ONE_LINE.encode(value)) <= 100):
            return encoded if value else "{}"
        pad = "\n" + "  " * (level + 1)
        items = (f"{_ONE_LINE.encode(str(k))}: {_pretty(v, level + 1)}" for k, v in value.items())
        return "{" + pad + ("," + pad).join(items) + "\n" + "  " * level + "}"
    if isinstance(value, (list, tuple)) and any(
        isinstance(v, (Mapping, list, tuple)) for v in value
    ):
        if all(isinstance(v, (list, tuple)) and _flat(v) for v in value):
            return _ONE_LINE.encode(value)  # e.g. the confusion matrix's cells
        pad = "\n" + "  " * (level + 1)
        items = (_pretty(v, level + 1) for v in value)
        return "[" + pad + ("," + pad).join(items) + "\n" + "  " * level + "]"
    return _ONE_LINE.encode(value)


def _flat(value: Mapping[str, Any] | Sequence[Any]) -> bool:
    """Whether ``value`` holds no object and no list of lists (so it reads well on one line)."""
    values = value.values() if isinstance(value, Mapping) else value
    return not any(
        isinstance(v, Mapping)
        or (isinstance(v, (list, tuple)) and any(isinstance(x, (Mapping, list, tuple)) for x in v))
        for v in values
    )


def _write_lines(handle: TextIO, opening: str, rows: Iterable[str], closing: str) -> None:
    handle.write(opening)
    separator = "\n    "
    for row in rows:
        handle.write(separator)
        handle.write(row)
        separator = ",\n    "
    handle.write(closing if separator == "\n    " else "\n  " + closing)


def _rows_on_lines(value: Any, depth: int = 0) -> str:
    """``value`` as indented JSON whose lists of numbers (or of such lists) take one line each.

    >>> print(_rows_on_lines({"rows": [[1, 0.5], [2, None]], "steps": [1, 2]}))
    {
      "rows": [
        [1, 0.5],
        [2, null]
      ],
      "steps": [1, 2]
    }
    """
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, Mapping) and value:
        items = (f"{inner}{_ONE_LINE.encode(str(k))}: {_rows_on_lines(v, depth + 1)}"
                 for k, v in value.items())  # fmt: skip
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value and not all(_scalar(v) for v in value):
        if all(isinstance(v, list) and all(_scalar(i) for i in v) for v in value):
            rows = (inner + _ONE_LINE.encode(v) for v in value)
        else:
            rows = (inner + _rows_on_lines(v, depth + 1) for v in value)
        return "[\n" + ",\n".join(rows) + f"\n{pad}]"
    return _ONE_LINE.encode(value)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


# The C encoder (no indent) writes every row and every leaf of the metrics.
_ONE_LINE = json.JSONEncoder(ensure_ascii=False, default=str, separators=(", ", ": "))


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON report written by :func:`write_json_report` (schemas 1 to 3).

    Raises ``ValueError`` naming the file and the problem when it is not such a
    report (not JSON, another schema, no list of cases); ``OSError`` when it
    cannot be read.
    """
    name = os.fspath(path)
    with open(path, encoding="utf-8") as handle:
        try:
            report = json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{name}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
            ) from None
        except UnicodeDecodeError as err:
            raise ValueError(f"{name}: not valid UTF-8 (byte {err.start})") from None
    found = report.get("schema") if isinstance(report, dict) else type(report).__name__
    if not isinstance(report, dict) or found not in READABLE_SCHEMAS:
        raise ValueError(f"{name}: not an {SCHEMA} report (schema: {found!r})")
    cases = report.get("cases")
    if not isinstance(cases, list) or not all(
        isinstance(case, dict) and {"case_id", "source", "model"} <= case.keys() for case in cases
    ):
        raise ValueError(f"{name}: 'cases' is not a list of cases with case_id, source and model")
    if not isinstance(report.get("tasks", []), list):
        raise ValueError(f"{name}: 'tasks' is not a list")
    _restore_case_labels(report)
    return report


def _restore_case_labels(report: dict[str, Any]) -> None:
    """Give each case that lists no ``labels`` its task's (one shared list per task)."""
    task_labels = {
        (task.get("source"), task.get("model")): task["labels"]
        for task in report.get("tasks") or []
        if isinstance(task, dict) and isinstance(task.get("labels"), list)
    }
    for case in report["cases"]:
        if "labels" not in case:
            case["labels"] = task_labels.get((case["source"], case["model"]), [])


def models_of(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The report's ``models`` (a schema 1 report: one per model of its tasks, none pooled)."""
    if "models" in report:
        return list(report["models"])
    by_model: dict[str, list[str]] = {}
    for task in report.get("tasks", []):
        by_model.setdefault(task.get("model", ""), []).append(task.get("task", ""))
    return [
        {"model": model, "role": UNDER_TEST, "tasks": names, "pooled": False, "metrics": None}
        for model, names in by_model.items()
    ]


ROLE_TITLES = {
    UNDER_TEST: "model under test",
    TASK_MODEL: "model named by tests",
    COMPARISON: "comparison model",
    CHECKPOINT: "checkpoint",
}
"""How each role is introduced in the summaries."""


def tested_results(report: Mapping[str, Any]) -> list[CaseResult]:
    """The cases of a report's models under test (not of its comparison model or checkpoints)."""
    compared = {m["model"] for m in report.get("models", []) if m.get("role") in NOT_GATED}
    return [r for r in results_from_report(report) if r.model not in compared]


def results_from_report(report: Mapping[str, Any]) -> list[CaseResult]:
    """The per-case results stored in a report, as :class:`CaseResult` objects."""
    return [CaseResult.from_dict(case) for case in report.get("cases", [])]
