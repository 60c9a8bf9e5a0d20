"""Classification metrics: pure functions of a list of :class:`~pytest_ftclass.results.CaseResult`.

>>> from pytest_ftclass.results import CaseResult
>>> def case(i, expected, predicted, error=None):
...     return CaseResult(case_id=f"c{i}", nodeid=f"t::c{i}", source="valid.jsonl",
...                       model="ft:m", endpoint="completions", expected=expected,
...                       predicted=predicted, labels=["sport", "tech"], error=error)
>>> results = [case(0, "sport", "sport"), case(1, "sport", "tech"),
...            case(2, "tech", "tech"), case(3, "tech", None, error="HTTP 500")]
>>> m = classification_metrics(results)
>>> m["n_cases"], m["n_scored"], m["n_errors"], m["n_correct"], round(m["accuracy"], 3)
(4, 3, 1, 2, 0.667)
>>> m["confusion_matrix"]
{'labels': ['sport', 'tech'], 'matrix': [[1, 1], [0, 1]]}
>>> m["per_class"]["tech"]
{'precision': 0.5, 'recall': 1.0, 'f1': 0.6666666666666666, 'support': 1}
>>> classification_metrics([])["accuracy"] is None
True
>>> list(group_by_task(results))
['valid.jsonl @ ft:m']

Definitions (written down because every report and gate relies on them):

- A case is *scored* when it has no ``error`` and a ``predicted`` label; every
  other case counts as an error.  Errors are counted (``n_errors``) but take no
  part in accuracy, per-class numbers or the confusion matrix.
- The *label set* is the union of every result's declared ``labels`` and the
  expected labels of the scored cases.  Per-class precision/recall/F1 and the
  macro/weighted F1 averages are taken over the label set, with scikit-learn's
  ``zero_division=0``: a declared class that never occurs and is never predicted
  scores 0 and so pulls macro-F1 down (weighted-F1 gives it weight 0).
- A prediction outside the label set is *out of set*: it is always wrong, lowers
  the recall of the expected class, and appears as an extra row/column of the
  confusion matrix (appended after the sorted label set, themselves sorted).
- When nothing was scored, the metrics (``accuracy``, ``per_class``,
  ``macro_f1``, ``weighted_f1``, ``confusion_matrix``) are ``None``.

All numbers are plain ``int``/``float``, so the result is ready for ``json.dumps``.
scikit-learn is imported only when there is something to compute.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_ftclass.results import CaseResult

__all__ = [
    "classification_metrics",
    "confidence",
    "group_by_task",
    "is_scored",
    "label_set",
]


def is_scored(result: CaseResult) -> bool:
    """Whether ``result`` takes part in the classification metrics (no error, a prediction).

    >>> from pytest_ftclass.results import CaseResult
    >>> r = CaseResult("c1", "t::c1", "s", "m", "completions", "a", None, error="timeout")
    >>> is_scored(r)
    False
    """
    return result.error is None and result.predicted is not None


def label_set(results: Iterable[CaseResult]) -> list[str]:
    """The sorted label set: declared labels of all results plus expected labels of scored ones.

    >>> from pytest_ftclass.results import CaseResult
    >>> r = CaseResult("c1", "t::c1", "s", "m", "completions", "b", "zzz", labels=["a"])
    >>> label_set([r])
    ['a', 'b']
    """
    labels: set[str] = set()
    for result in results:
        labels.update(result.labels)
        if is_scored(result):
            labels.add(result.expected)
    return sorted(labels)


def classification_metrics(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Counts, accuracy, per-class precision/recall/F1, macro/weighted F1 and the confusion matrix.

    Returns a dict with ``n_cases``, ``n_scored``, ``n_errors``, ``n_correct``,
    ``n_mispredicted``, ``n_out_of_set``, ``accuracy``, ``per_class``
    (``{label: {"precision", "recall", "f1", "support"}}``), ``macro_f1``,
    ``weighted_f1`` and ``confusion_matrix`` (``{"labels": [...], "matrix":
    [[...]]}``, rows are expected labels, columns predicted labels).  See the
    module docstring for the exact definitions; never raises on empty input.
    """
    scored = [r for r in results if is_scored(r)]
    labels = label_set(results)
    known = set(labels)
    n_correct = sum(1 for r in scored if r.predicted == r.expected)
    n_out_of_set = sum(1 for r in scored if r.predicted not in known)
    metrics: dict[str, Any] = {
        "n_cases": len(results),
        "n_scored": len(scored),
        "n_errors": len(results) - len(scored),
        "n_correct": n_correct,
        "n_mispredicted": len(scored) - n_correct,
        "n_out_of_set": n_out_of_set,
        "accuracy": None,
        "per_class": None,
        "macro_f1": None,
        "weighted_f1": None,
        "confusion_matrix": None,
    }
    if not scored:
        return metrics

    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = [r.expected for r in scored]
    y_pred = [str(r.predicted) for r in scored]
    out_of_set = sorted({p for p in y_pred if p not in known})
    matrix_labels = labels + out_of_set

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    _, _, macro_f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    _, _, weighted_f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="weighted", zero_division=0
    )
    with warnings.catch_warnings():
        # sklearn warns about a 1x1 matrix even when the labels were passed explicitly
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        matrix = confusion_matrix(y_true, y_pred, labels=matrix_labels)

    metrics.update(
        accuracy=n_correct / len(scored),
        per_class={
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        macro_f1=float(macro_f1),
        weighted_f1=float(weighted_f1),
        confusion_matrix={
            "labels": matrix_labels,
            "matrix": [[int(count) for count in row] for row in matrix],
        },
    )
    return metrics


def confidence(result: CaseResult) -> float | None:
    """The probability the model gave its own answer, ``exp(logprob)``, or ``None`` if unknown.

    >>> from pytest_ftclass.results import CaseResult
    >>> r = CaseResult("c1", "t::c1", "s", "m", "completions", "a", "b", logprobs={"b": -0.5})
    >>> round(confidence(r), 3)
    0.607
    """
    if result.predicted is None:
        return None
    logprob = result.logprobs.get(result.predicted) if result.logprobs else None
    return None if logprob is None else math.exp(logprob)


def group_by_task(results: Iterable[CaseResult]) -> dict[str, list[CaseResult]]:
    """Results grouped by :attr:`CaseResult.task` (``"source @ model"``), in first-seen order.

    >>> from pytest_ftclass.results import CaseResult
    >>> rs = [CaseResult(f"c{i}", "n", src, "m", "chat", "a", "a") for i, src in
    ...       enumerate(["b.jsonl", "a.jsonl", "b.jsonl"])]
    >>> {task: [r.case_id for r in group] for task, group in group_by_task(rs).items()}
    {'b.jsonl @ m': ['c0', 'c2'], 'a.jsonl @ m': ['c1']}
    """
    groups: dict[str, list[CaseResult]] = {}
    for result in results:
        groups.setdefault(result.task, []).append(result)
    return groups
