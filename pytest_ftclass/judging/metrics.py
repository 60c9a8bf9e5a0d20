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
{'labels': ['sport', 'tech'], 'cells': [[0, 0, 1], [0, 1, 1], [1, 1, 1]]}
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
- The confusion matrix is sparse: ``{"labels": [...], "cells": [[expected,
  predicted, count], ...]}`` lists its non-zero cells by label position, row
  by row (rows are expected labels, columns predicted ones), so it grows with
  the cases and the labels, not the labels squared; a row's shares are its
  cells divided by the row's total.  :func:`confusion_rows` makes it dense.
- When nothing was scored, the metrics (``accuracy``, ``per_class``,
  ``macro_f1``, ``weighted_f1``, ``confusion_matrix``) are ``None``.

- ``accuracy_ci`` is the 95 % Wilson interval of accuracy; ``macro_f1_ci`` a
  percentile bootstrap interval of macro-F1 (1000 resamples, fixed seed, so the
  same cases always give the same interval; see
  :func:`pytest_ftclass.judging.intervals.bootstrap_macro_f1_interval`).
- ``balanced_accuracy`` is the mean recall over the classes that occur among
  the expected labels; ``cohen_kappa`` and ``mcc`` (Matthews) are computed from
  the whole confusion matrix, out-of-set columns included.  Kappa is ``None``
  when undefined (chance agreement is 1); MCC is 0 when undefined, as in
  scikit-learn.
- ``error_rate`` is ``n_errors / n_cases``, ``out_of_set_rate`` is
  ``n_out_of_set / n_scored``.
- ``log_loss``, ``brier_score``, ``ece`` and ``calibration`` come from the
  log-probabilities of the scored cases, renormalised over the label set as
  :mod:`pytest_ftclass.judging.calibration` describes; cases without any listed label
  are left out (``n_with_probabilities``).
- ``abstention`` is the coverage–accuracy curve of abstaining below a
  confidence, with a table of thresholds and the threshold reaching each
  target accuracy (:mod:`pytest_ftclass.judging.abstention`).
- A *binary* task has exactly two labels.  Its ``binary`` entry has the
  precision/recall/F1 of the positive class (from the predicted labels) and
  AUROC/AUPRC (from the positive class's probability), and under ``curves``
  the ROC and precision–recall points with the model's operating point
  (:mod:`pytest_ftclass.judging.curves`).  The positive class is
  ``positive_class`` when it is one of the two labels; otherwise, if exactly
  one label is (case-insensitively) one of :data:`POSITIVE_NAMES`, that one;
  otherwise the second label in sorted order.  ``legacy`` repeats numbers under
  the names of OpenAI's fine-tuning results file (``classification/accuracy``,
  ``classification/precision``, ``classification/recall``,
  ``classification/auroc``, ``classification/auprc``, ``classification/f1.0``
  for binary tasks; ``classification/accuracy`` and
  ``classification/weighted_f1_score`` otherwise).
- ``slices`` has, for every tag carried by some case, ``n`` (cases with the tag),
  ``n_scored``, ``accuracy``, ``accuracy_ci`` and ``macro_f1_present``: macro-F1
  over the labels present in the slice (expected or predicted there), so a
  slice whose cases are all right scores 1.
- ``latency_s`` is ``{"n", "p50", "p95"}`` over the cases answered live
  (linear-interpolation percentiles, numpy's default); a replayed answer has no latency
  (the time a cassette took is not the model's), so a replay has ``None``.
  ``usage`` sums the token counts of the cases that report them (a replayed
  answer's are those recorded with it), and ``usage_by_model`` does so per
  model; ``n_replayed`` counts the answers read from cassettes.

All numbers are plain ``int``/``float``, so the result is ready for ``json.dumps``.
Everything is computed in plain Python from counts and sorted scores: neither numpy
(15 MiB of memory to import) nor scikit-learn, which the tests use as the oracle these
numbers are checked against.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pytest_ftclass.results import CaseResult

__all__ = [
    "LEGACY_METRICS",
    "PER_CLASS_METRICS",
    "POSITIVE_NAMES",
    "SCALAR_METRICS",
    "choose_positive_class",
    "classification_metrics",
    "confidence",
    "confusion_cells",
    "confusion_entries",
    "confusion_rows",
    "declared_labels",
    "group_by_task",
    "is_scored",
    "label_set",
    "remembered_metrics",
]


#: The numbers of :func:`classification_metrics` a gate bound can name (``accuracy=0.95``).
SCALAR_METRICS = (
    "n_cases", "n_scored", "n_errors", "n_correct", "n_mispredicted", "n_out_of_set",
    "accuracy", "macro_f1", "weighted_f1", "balanced_accuracy", "cohen_kappa", "mcc",
    "error_rate", "out_of_set_rate", "log_loss", "brier_score", "ece",
)  # fmt: skip
#: Per-class numbers, named ``recall[LABEL]`` in a bound.
PER_CLASS_METRICS = ("precision", "recall", "f1", "support")
#: The names of OpenAI's fine-tuning results file, under ``legacy``.
LEGACY_METRICS = (
    "classification/accuracy", "classification/precision", "classification/recall",
    "classification/auroc", "classification/auprc", "classification/f1.0",
    "classification/weighted_f1_score",
)  # fmt: skip


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
    labels = set(declared_labels(results))
    labels.update(result.expected for result in results if is_scored(result))
    return sorted(labels)


def declared_labels(results: Iterable[CaseResult]) -> frozenset[str]:
    """The union of the results' declared ``labels``, each list read once.

    Results of one task share one list, so this costs the cases plus the labels,
    not their product.

    >>> from pytest_ftclass.results import CaseResult
    >>> shared = ["a", "b"]
    >>> rs = [CaseResult(f"c{i}", "n", "s", "m", "chat", "a", "a", labels=shared) for i in range(3)]
    >>> sorted(declared_labels(rs))
    ['a', 'b']
    """
    labels: set[str] = set()
    seen: set[int] = set()
    previous: list[str] | None = None
    for result in results:
        listed = result.labels
        if listed is previous or id(listed) in seen:
            continue
        seen.add(id(listed))
        previous = listed
        labels.update(listed)
    return frozenset(labels)


POSITIVE_NAMES = frozenset({"1", "yes", "true", "positive", "spam", "sport"})
"""Label names taken as the positive class of a binary task (compared lower-cased)."""


def choose_positive_class(labels: Sequence[str], positive_class: str | None = None) -> str:
    """The positive class of a two-label task, by the rule in the module docstring.

    >>> choose_positive_class(["no", "yes"]), choose_positive_class(["Spam", "ham"])
    ('yes', 'Spam')
    >>> choose_positive_class(["cat", "dog"]), choose_positive_class(["cat", "dog"], "cat")
    ('dog', 'cat')
    """
    ordered = sorted(labels)
    if positive_class is not None and positive_class in ordered:
        return positive_class
    named = [label for label in ordered if label.strip().lower() in POSITIVE_NAMES]
    return named[0] if len(named) == 1 else ordered[-1]


def classification_metrics(
    results: Sequence[CaseResult], *, positive_class: str | None = None
) -> dict[str, Any]:
    """Counts, accuracy, per-class precision/recall/F1, macro/weighted F1 and the confusion matrix.

    Returns a dict with ``n_cases``, ``n_scored``, ``n_errors``, ``n_correct``,
    ``n_mispredicted``, ``n_out_of_set``, ``accuracy``, ``per_class``
    (``{label: {"precision", "recall", "f1", "support"}}``), ``macro_f1``,
    ``weighted_f1`` and ``confusion_matrix`` (``{"labels": [...], "cells":
    [[expected, predicted, count], ...]}``, its non-zero cells), plus the
    intervals, agreement, calibration, abstention, binary, legacy, slice,
    latency and usage entries described in the module docstring.  Time and
    memory grow with the cases plus the labels.  ``positive_class`` picks the
    positive class of a binary task.  Never raises on empty input.

    >>> from pytest_ftclass.results import CaseResult
    >>> rs = [CaseResult(f"c{i}", f"t::c{i}", "s", "m", "chat", e, p, labels=["no", "yes"],
    ...                  logprobs={p: -0.1}, tags=["short"])
    ...       for i, (e, p) in enumerate([("yes", "yes"), ("no", "no"), ("yes", "no")])]
    >>> m = classification_metrics(rs)
    >>> [round(x, 3) for x in m["accuracy_ci"]], m["binary"]["positive_class"]
    ([0.208, 0.939], 'yes')
    >>> m["legacy"]["classification/recall"], m["slices"]["short"]["n"]
    (0.5, 3)
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
        "accuracy_ci": None,
        "macro_f1_ci": None,
        "balanced_accuracy": None,
        "cohen_kappa": None,
        "mcc": None,
        "error_rate": (len(results) - len(scored)) / len(results) if results else None,
        "out_of_set_rate": n_out_of_set / len(scored) if scored else None,
        "n_with_probabilities": 0,
        "log_loss": None,
        "brier_score": None,
        "ece": None,
        "calibration": None,
        "abstention": None,
        "binary": None,
        "legacy": {},
        "slices": _slices(results),
        "n_replayed": sum(1 for r in results if r.replayed),
        "latency_s": _latency(results),
        "usage": _usage(results),
        "usage_by_model": {
            model: usage
            for model, group in _group(results, lambda r: [r.model]).items()
            if (usage := _usage(group)) is not None
        },
    }
    if not scored:
        return metrics

    from pytest_ftclass.judging.intervals import macro_f1_interval_of_cells, wilson_interval

    y_pred = [str(r.predicted) for r in scored]
    out_of_set = sorted({p for p in y_pred if p not in known})
    matrix_labels = labels + out_of_set
    index = {label: i for i, label in enumerate(matrix_labels)}
    true_codes = [index[r.expected] for r in scored]
    predicted_codes = [index[p] for p in y_pred]
    cells = confusion_cells(true_codes, predicted_codes, len(matrix_labels))
    counts = class_counts(cells, len(matrix_labels))
    precision, recall, f1, support = scores_from_counts(*counts, len(labels))

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
        macro_f1=sum(f1) / len(f1),
        weighted_f1=sum(f * s for f, s in zip(f1, support, strict=True)) / sum(support)
        if sum(support)
        else 0.0,
        confusion_matrix={"labels": matrix_labels, "cells": cells},
        accuracy_ci=_pair(wilson_interval(n_correct, len(scored))),
        macro_f1_ci=_pair(
            macro_f1_interval_of_cells({(i, j): k for i, j, k in cells}, len(labels))
        ),
        balanced_accuracy=_mean([float(recall[i]) for i in range(len(labels)) if support[i]]),
        cohen_kappa=_kappa(n_correct, counts[1], counts[2]),
        mcc=_mcc(n_correct, counts[1], counts[2]),
    )
    metrics.update(_probabilistic(scored, labels))
    metrics["abstention"] = _abstention(scored)
    if len(labels) == 2:
        metrics["binary"] = _binary(scored, labels, positive_class, metrics["per_class"])
        binary = metrics["binary"]
        metrics["legacy"] = {
            "classification/accuracy": metrics["accuracy"],
            "classification/precision": binary["precision"],
            "classification/recall": binary["recall"],
            "classification/auroc": binary["auroc"],
            "classification/auprc": binary["auprc"],
            "classification/f1.0": binary["f1"],
        }
    else:
        metrics["legacy"] = {
            "classification/accuracy": metrics["accuracy"],
            "classification/weighted_f1_score": metrics["weighted_f1"],
        }
    return metrics


def remembered_metrics() -> Callable[[Sequence[CaseResult]], dict[str, Any]]:
    """:func:`classification_metrics`, computed once for each list of the same results.

    A comparison asks for a model's metrics on the same cases for every pair it
    is in and for the leaderboard; this answers the repeats from memory.  The
    key is the results' identities in order, so keep the results alive while
    the function is in use.

    >>> from pytest_ftclass.results import CaseResult
    >>> results = [CaseResult("c0", "t::c0", "s", "m", "chat", "a", "a")]
    >>> metrics_of = remembered_metrics()
    >>> metrics_of(results) is metrics_of(list(results))
    True
    """
    seen: dict[tuple[int, ...], dict[str, Any]] = {}

    def metrics_of(results: Sequence[CaseResult]) -> dict[str, Any]:
        key = tuple(map(id, results))
        if key not in seen:
            seen[key] = classification_metrics(results)
        return seen[key]

    return metrics_of


def confusion_cells(
    true_codes: Sequence[int], predicted_codes: Sequence[int], n: int
) -> list[list[int]]:
    """The non-zero cells of the confusion matrix of label positions, row by row.

    Each cell is ``[expected, predicted, count]`` (positions in the matrix's
    labels); cells missing from the list are 0.  Sorted by row, then column.

    >>> confusion_cells([0, 0, 1], [0, 1, 1], 2)
    [[0, 0, 1], [0, 1, 1], [1, 1, 1]]
    """
    cells = Counter(zip(true_codes, predicted_codes, strict=True))
    return [[i, j, cells[i, j]] for i, j in sorted(cells)]


def confusion_rows(matrix: Mapping[str, Any]) -> list[list[int]]:
    """The dense rows of a report's ``confusion_matrix``, sparse (this schema) or dense (older).

    For a few classes only: it is as large as the number of labels squared.

    >>> confusion_rows({"labels": ["a", "b"], "cells": [[0, 1, 2], [1, 1, 3]]})
    [[0, 2], [0, 3]]
    >>> confusion_rows({"labels": ["a"], "matrix": [[4]]})
    [[4]]
    """
    if "matrix" in matrix:
        return [list(row) for row in matrix["matrix"]]
    n = len(matrix["labels"])
    rows = [[0] * n for _ in range(n)]
    for i, j, count in confusion_entries(matrix):
        rows[i][j] = count
    return rows


def confusion_entries(matrix: Mapping[str, Any]) -> list[tuple[int, int, int]]:
    """The non-zero ``(expected, predicted, count)`` cells of a sparse or dense confusion matrix.

    >>> confusion_entries({"labels": ["a", "b"], "matrix": [[1, 0], [2, 0]]})
    [(0, 0, 1), (1, 0, 2)]
    """
    if "matrix" in matrix:
        return [
            (i, j, int(count))
            for i, row in enumerate(matrix["matrix"])
            for j, count in enumerate(row)
            if count
        ]
    return [(int(i), int(j), int(count)) for i, j, count in matrix.get("cells") or []]


def class_counts(cells: Iterable[Sequence[int]], n: int) -> tuple[list[int], list[int], list[int]]:
    """Per label position: right answers, cases expected (row sums), predictions (column sums).

    ``cells`` are :func:`confusion_cells`' ``[expected, predicted, count]``.

    >>> class_counts(confusion_cells([0, 0, 1], [0, 1, 2], 3), 3)
    ([1, 0, 0], [2, 1, 0], [1, 1, 1])
    """
    right, expected, predicted = [0] * n, [0] * n, [0] * n
    for true, answer, count in cells:
        expected[true] += count
        predicted[answer] += count
        if true == answer:
            right[true] += count
    return right, expected, predicted


def scores_from_counts(
    right: Sequence[int], expected: Sequence[int], predicted: Sequence[int], k: int
) -> tuple[list[float], list[float], list[float], list[int]]:
    """Precision, recall, F1 and support of the first ``k`` label positions.

    Positions past ``k`` are predictions outside the label set: wrong for every
    class.  A score whose denominator is 0 is 0, as scikit-learn's
    ``zero_division=0``; F1 is ``2·tp / (predicted + support)``.

    >>> p, r, f, s = scores_from_counts([1, 1, 0], [2, 1, 0], [1, 2, 0], 2)
    >>> p, r, s
    ([1.0, 0.5], [0.5, 1.0], [2, 1])
    """
    from pytest_ftclass.judging.intervals import f1_scores

    tp, support, said = right[:k], list(expected[:k]), predicted[:k]
    precision = [t / n if n else 0.0 for t, n in zip(tp, said, strict=True)]
    recall = [t / n if n else 0.0 for t, n in zip(tp, support, strict=True)]
    return precision, recall, f1_scores(tp, said, support), support


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [float(interval[0]), float(interval[1])]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _kappa(right: int, rows: Sequence[int], cols: Sequence[int]) -> float | None:
    """Cohen's kappa from the diagonal's total and the matrix's row and column sums."""
    n = sum(rows)
    if not n:
        return None
    observed = right / n
    chance = sum(r * c for r, c in zip(rows, cols, strict=True)) / (n * n)
    return None if chance >= 1.0 else (observed - chance) / (1.0 - chance)


def _mcc(right: int, rows: Sequence[int], cols: Sequence[int]) -> float | None:
    """Matthews correlation (multiclass) from the diagonal's total and the row and column sums."""
    n = sum(rows)
    if not n:
        return None
    numerator = right * n - sum(r * c for r, c in zip(rows, cols, strict=True))
    denominator = math.sqrt(n * n - sum(c * c for c in cols)) * math.sqrt(
        n * n - sum(r * r for r in rows)
    )
    return numerator / denominator if denominator else 0.0


def _macro_f1(pairs: Sequence[tuple[str, str]], labels: Sequence[str]) -> float | None:
    if not pairs or not labels:
        return None
    right = Counter(e for e, p in pairs if e == p)
    seen = Counter(e for e, _ in pairs) + Counter(p for _, p in pairs)
    scores = [2 * right[label] / seen[label] if seen[label] else 0.0 for label in labels]
    return sum(scores) / len(scores)


def _group(results: Iterable[CaseResult], keys: Any) -> dict[str, list[CaseResult]]:
    groups: dict[str, list[CaseResult]] = {}
    for result in results:
        for key in keys(result):
            groups.setdefault(key, []).append(result)
    return groups


def _slices(results: Sequence[CaseResult]) -> dict[str, Any]:
    from pytest_ftclass.judging.intervals import wilson_interval

    slices = {}
    by_tag = _group(results, lambda r: list(dict.fromkeys(r.tags or [])))
    for tag in sorted(by_tag):
        group = by_tag[tag]
        pairs = [(r.expected, str(r.predicted)) for r in group if is_scored(r)]
        right = sum(1 for e, p in pairs if e == p)
        slices[tag] = {
            "n": len(group),
            "n_scored": len(pairs),
            "accuracy": right / len(pairs) if pairs else None,
            "accuracy_ci": _pair(wilson_interval(right, len(pairs))),
            "macro_f1_present": _macro_f1(
                pairs, sorted({label for pair in pairs for label in pair})
            ),
        }
    return slices


def _latency(results: Sequence[CaseResult]) -> dict[str, Any] | None:
    values = [float(r.latency_s) for r in results if r.latency_s is not None]
    if not values:
        return None
    from pytest_ftclass.judging.intervals import percentile

    values.sort()
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}


_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _usage(results: Sequence[CaseResult]) -> dict[str, int] | None:
    reported = [r.usage for r in results if r.usage]
    if not reported:
        return None
    return {key: sum(int(u.get(key) or 0) for u in reported) for key in _USAGE_KEYS}


def _probabilistic(scored: Sequence[CaseResult], labels: Sequence[str]) -> dict[str, Any]:
    from pytest_ftclass.judging.calibration import bins_from_confidence, score_probabilities

    summed = score_probabilities([r.logprobs for r in scored], labels, [r.expected for r in scored])
    if not summed.true:
        return {}
    calibration = bins_from_confidence(summed.top, summed.right)
    return {
        "n_with_probabilities": len(summed.true),
        "log_loss": summed.log_loss,
        "brier_score": summed.brier_score,
        "ece": calibration["ece"],
        "calibration": {"n": calibration["n"], "bins": calibration["bins"]},
    }


def _binary(
    scored: Sequence[CaseResult],
    labels: Sequence[str],
    positive_class: str | None,
    per_class: Mapping[str, Mapping[str, float]],
) -> dict[str, Any]:
    """The positive class's precision, recall and F1 (its row of ``per_class``), AUROC, curves."""
    from pytest_ftclass.judging.calibration import auprc, auroc, probability_matrix
    from pytest_ftclass.judging.curves import binary_curves

    positive = choose_positive_class(labels, positive_class)
    matrix, has = probability_matrix([r.logprobs for r in scored], labels)
    column = list(labels).index(positive)
    scores = [row[column] for row, ok in zip(matrix, has, strict=True) if ok]
    with_scores = [r for r, ok in zip(scored, has, strict=True) if ok]
    truth = [int(r.expected == positive) for r in with_scores]
    return {
        "positive_class": positive,
        "positive_class_given": positive_class is not None and positive == positive_class,
        "precision": per_class[positive]["precision"],
        "recall": per_class[positive]["recall"],
        "f1": per_class[positive]["f1"],
        "auroc": auroc(scores, truth),
        "auprc": auprc(scores, truth),
        "n_with_probabilities": len(truth),
        "curves": binary_curves(scores, truth, [r.predicted == positive for r in with_scores]),
    }


def _abstention(scored: Sequence[CaseResult]) -> dict[str, Any] | None:
    from pytest_ftclass.judging.abstention import coverage_accuracy

    return coverage_accuracy([confidence(r) for r in scored], [r.correct for r in scored])


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
