"""Metrics over per-case results, checked against numbers worked out by hand and by counting."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_ftclass.judging.metrics import (
    classification_metrics,
    confidence,
    group_by_task,
    is_scored,
    label_set,
)
from pytest_ftclass.results import CaseResult
from tests.helpers import dense

LABELS = ("a", "b", "c")


def make(
    case_id: str,
    expected: str,
    predicted: str | None,
    *,
    labels: Sequence[str] = LABELS,
    error: str | None = None,
    source: str = "valid.jsonl",
    model: str = "ft:m",
    logprobs: dict[str, float] | None = None,
) -> CaseResult:
    return CaseResult(
        case_id=case_id,
        nodeid=f"test_cases.py::{case_id}",
        source=source,
        model=model,
        endpoint="completions",
        expected=expected,
        predicted=predicted,
        logprobs=logprobs or {},
        labels=list(labels),
        error=error,
    )


def from_pairs(pairs: Sequence[tuple[str, str | None]], **kwargs: object) -> list[CaseResult]:
    return [make(f"c{i}", e, p, **kwargs) for i, (e, p) in enumerate(pairs)]  # type: ignore[arg-type]


# Ten cases, three wrong: one a→b, one b→c, one c→a.
TEN = [
    ("a", "a"), ("a", "a"), ("a", "a"), ("a", "b"),
    ("b", "b"), ("b", "b"), ("b", "c"),
    ("c", "c"), ("c", "c"), ("c", "a"),
]  # fmt: skip


def test_ten_cases_three_wrong_match_hand_computed_numbers() -> None:
    m = classification_metrics(from_pairs(TEN))

    assert (m["n_cases"], m["n_scored"], m["n_errors"]) == (10, 10, 0)
    assert (m["n_correct"], m["n_mispredicted"], m["n_out_of_set"]) == (7, 3, 0)
    assert m["accuracy"] == pytest.approx(0.7)
    # a: tp 3, predicted a 4 times (3 + the c→a), 4 expected → P = R = F1 = 3/4
    # b: tp 2, predicted b 3 times (2 + the a→b), 3 expected → P = R = F1 = 2/3
    # c: tp 2, predicted c 3 times (2 + the b→c), 3 expected → P = R = F1 = 2/3
    assert m["per_class"] == {
        "a": {"precision": pytest.approx(0.75), "recall": pytest.approx(0.75),
              "f1": pytest.approx(0.75), "support": 4},
        "b": {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3),
              "f1": pytest.approx(2 / 3), "support": 3},
        "c": {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3),
              "f1": pytest.approx(2 / 3), "support": 3},
    }  # fmt: skip
    assert m["macro_f1"] == pytest.approx((0.75 + 2 / 3 + 2 / 3) / 3)  # 0.6944…
    assert m["weighted_f1"] == pytest.approx((4 * 0.75 + 3 * 2 / 3 + 3 * 2 / 3) / 10)  # 0.7
    assert dense(m["confusion_matrix"]) == {
        "labels": ["a", "b", "c"],
        "matrix": [[3, 1, 0], [0, 2, 1], [1, 0, 2]],
    }


def independent_matrix(pairs: Sequence[tuple[str, str]], labels: Sequence[str]) -> list[list[int]]:
    counts = Counter(pairs)
    return [[counts[(expected, predicted)] for predicted in labels] for expected in labels]


def reference_metrics(pairs: Sequence[tuple[str, str]], declared: Sequence[str]) -> dict:
    """Metrics by counting, without scikit-learn, following the definitions in the module."""
    label_list = sorted(set(declared) | {e for e, _ in pairs})
    out_of_set = sorted({p for _, p in pairs} - set(label_list))
    per_class = {}
    for label in label_list:
        tp = sum(1 for e, p in pairs if e == label and p == label)
        n_predicted = sum(1 for _, p in pairs if p == label)
        n_expected = sum(1 for e, _ in pairs if e == label)
        precision = tp / n_predicted if n_predicted else 0.0
        recall = tp / n_expected if n_expected else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1,
                            "support": n_expected}  # fmt: skip
    total = sum(c["support"] for c in per_class.values())
    return {
        "accuracy": sum(1 for e, p in pairs if e == p) / len(pairs),
        "per_class": per_class,
        "macro_f1": sum(c["f1"] for c in per_class.values()) / len(per_class),
        "weighted_f1": sum(c["f1"] * c["support"] for c in per_class.values()) / total,
        "n_out_of_set": sum(1 for _, p in pairs if p in out_of_set),
        "confusion_matrix": {
            "labels": label_list + out_of_set,
            "matrix": independent_matrix(pairs, label_list + out_of_set),
        },
    }


def assert_matches_reference(m: dict, reference: dict) -> None:
    assert m["accuracy"] == pytest.approx(reference["accuracy"])
    assert m["macro_f1"] == pytest.approx(reference["macro_f1"])
    assert m["weighted_f1"] == pytest.approx(reference["weighted_f1"])
    assert m["n_out_of_set"] == reference["n_out_of_set"]
    assert dense(m["confusion_matrix"]) == reference["confusion_matrix"]
    assert list(m["per_class"]) == list(reference["per_class"])
    for label, numbers in reference["per_class"].items():
        assert m["per_class"][label] == pytest.approx(numbers)


def test_confusion_matrix_matches_an_independent_count() -> None:
    m = classification_metrics(from_pairs(TEN))
    assert dense(m["confusion_matrix"])["matrix"] == independent_matrix(TEN, ["a", "b", "c"])
    # rows are expected labels: each row sums to that class's support
    for label, row in zip(m["confusion_matrix"]["labels"], dense(m["confusion_matrix"])["matrix"],
                          strict=True):  # fmt: skip
        assert sum(row) == m["per_class"][label]["support"]


def test_out_of_set_prediction_is_its_own_column_and_is_wrong() -> None:
    pairs = [("a", "a"), ("a", "zzz"), ("b", "b"), ("b", "b")]
    m = classification_metrics(from_pairs(pairs, labels=["a", "b"]))

    assert m["n_out_of_set"] == 1
    assert (m["n_correct"], m["n_mispredicted"]) == (3, 1)
    assert m["accuracy"] == pytest.approx(0.75)
    assert dense(m["confusion_matrix"]) == {
        "labels": ["a", "b", "zzz"],
        "matrix": [[1, 0, 1], [0, 2, 0], [0, 0, 0]],
    }
    # not a class of its own: a's recall drops, nobody's precision does
    assert set(m["per_class"]) == {"a", "b"}
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.5,
                                   "f1": pytest.approx(2 / 3), "support": 2}  # fmt: skip
    assert m["per_class"]["b"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["weighted_f1"] == pytest.approx((2 * 2 / 3 + 2 * 1) / 4)


def test_out_of_set_labels_come_after_the_label_set_sorted() -> None:
    pairs = [("x", "x"), ("x", "mmm"), ("y", "aaa"), ("y", "y"), ("y", "aaa")]
    m = classification_metrics(from_pairs(pairs, labels=["x", "y"]))
    assert m["confusion_matrix"]["labels"] == ["x", "y", "aaa", "mmm"]
    assert dense(m["confusion_matrix"])["matrix"] == [
        [1, 0, 0, 1],
        [0, 1, 2, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    assert m["n_out_of_set"] == 3


def test_errors_are_excluded_from_metrics_but_counted() -> None:
    results = [
        *from_pairs(TEN),
        make("e1", "a", None, error="HTTP 500 from the API"),
        make("e2", "c", None, error="malformed response"),
    ]
    m = classification_metrics(results)
    clean = classification_metrics(from_pairs(TEN))

    assert (m["n_cases"], m["n_scored"], m["n_errors"]) == (12, 10, 2)
    assert (m["n_correct"], m["n_mispredicted"]) == (7, 3)
    for key in ("accuracy", "per_class", "macro_f1", "weighted_f1", "confusion_matrix"):
        assert m[key] == clean[key]


def test_a_result_without_prediction_or_error_counts_as_an_error() -> None:
    results = [make("c0", "a", "a"), make("c1", "b", None)]
    assert not is_scored(results[1])
    m = classification_metrics(results)
    assert (m["n_scored"], m["n_errors"], m["accuracy"]) == (1, 1, 1.0)


def test_an_errored_case_with_a_stale_prediction_is_not_scored() -> None:
    results = [make("c0", "a", "a"), make("c1", "b", "c", error="timed out")]
    m = classification_metrics(results)
    assert (m["n_scored"], m["n_errors"], m["n_mispredicted"]) == (1, 1, 0)


@pytest.mark.parametrize(
    "results",
    [
        pytest.param([], id="empty"),
        pytest.param(
            [make("e1", "a", None, error="boom"), make("e2", "b", None, error="boom")],
            id="all-errored",
        ),
    ],
)
def test_nothing_scored_gives_counts_and_no_metrics(results: list[CaseResult]) -> None:
    m = classification_metrics(results)
    legacy_keys = ("n_cases", "n_scored", "n_errors", "n_correct", "n_mispredicted",
                   "n_out_of_set", "accuracy", "per_class", "macro_f1", "weighted_f1",
                   "confusion_matrix")  # fmt: skip
    assert {key: m[key] for key in legacy_keys} == {
        "n_cases": len(results),
        "n_scored": 0,
        "n_errors": len(results),
        "n_correct": 0,
        "n_mispredicted": 0,
        "n_out_of_set": 0,
        "accuracy": None,
        "per_class": None,
        "macro_f1": None,
        "weighted_f1": None,
        "confusion_matrix": None,
    }
    for key in ("accuracy_ci", "macro_f1_ci", "balanced_accuracy", "cohen_kappa", "mcc",
                "abstention", "out_of_set_rate", "log_loss", "brier_score",
                "ece", "calibration", "binary", "latency_s", "usage"):  # fmt: skip
        assert m[key] is None, key
    assert m["error_rate"] == (1.0 if results else None)
    assert (m["legacy"], m["slices"], m["usage_by_model"]) == ({}, {}, {})
    assert json.loads(json.dumps(m)) == m


def test_declared_class_that_never_occurs_scores_zero_in_the_macro_average() -> None:
    # a perfect model on a and b; c is declared by the source but absent
    m = classification_metrics(from_pairs([("a", "a"), ("b", "b"), ("b", "b")]))
    assert m["accuracy"] == 1.0
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert m["weighted_f1"] == pytest.approx(1.0)
    assert m["confusion_matrix"]["labels"] == ["a", "b", "c"]


def test_expected_label_missing_from_declared_labels_joins_the_label_set() -> None:
    results = [make("c0", "a", "a", labels=[]), make("c1", "b", "a", labels=[])]
    assert label_set(results) == ["a", "b"]
    m = classification_metrics(results)
    assert m["n_out_of_set"] == 0
    assert dense(m["confusion_matrix"])["matrix"] == [[1, 0], [1, 0]]


def test_a_single_class_computes_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(from_pairs([("a", "a"), ("a", "a")], labels=["a"]))
    assert dense(m["confusion_matrix"]) == {"labels": ["a"], "matrix": [[2]]}
    assert (m["accuracy"], m["macro_f1"], m["weighted_f1"]) == (1.0, 1.0, 1.0)


def test_results_are_json_ready_plain_types() -> None:
    m = classification_metrics(from_pairs([*TEN, ("a", "zzz")]))

    def check(value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                assert type(key) is str
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)
        else:
            assert value is None or type(value) in (int, float, str, bool), type(value)

    check(m)
    assert json.loads(json.dumps(m)) == m


label_names = st.sampled_from(["a", "b", "c", "d", "other"])


@settings(max_examples=75, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), label_names), min_size=1),
    declared=st.lists(st.sampled_from(["a", "b", "c"]), unique=True),
)
def test_agrees_with_counting_by_hand(pairs: list[tuple[str, str]], declared: list[str]) -> None:
    m = classification_metrics(from_pairs(pairs, labels=declared))
    assert_matches_reference(m, reference_metrics(pairs, declared))
    assert m["n_correct"] + m["n_mispredicted"] == m["n_scored"] == len(pairs)


def test_group_by_task_keeps_first_seen_order() -> None:
    results = [
        make("c0", "a", "a", source="b.jsonl"),
        make("c1", "a", "a", source="a.jsonl"),
        make("c2", "a", "a", source="b.jsonl", model="ft:other"),
        make("c3", "a", "b", source="b.jsonl"),
    ]
    groups = group_by_task(results)
    assert list(groups) == ["b.jsonl @ ft:m", "a.jsonl @ ft:m", "b.jsonl @ ft:other"]
    assert [r.case_id for r in groups["b.jsonl @ ft:m"]] == ["c0", "c3"]
    assert group_by_task([]) == {}


def test_confidence_is_the_probability_of_the_predicted_label() -> None:
    assert confidence(make("c0", "a", "b", logprobs={"b": math.log(0.62)})) == pytest.approx(0.62)
    assert confidence(make("c0", "a", "b", logprobs={"a": -0.1})) is None
    assert confidence(make("c0", "a", None, error="boom")) is None


# --- new metrics, each against an independent computation from the JSON's cases -------


def test_bootstrap_handles_10000_cases_and_87_classes() -> None:
    # its speed is measured in benchmarks/, not here
    from pytest_ftclass.judging.intervals import bootstrap_macro_f1_interval

    rng = __import__("random").Random(0)
    y_true = [rng.randrange(87) for _ in range(10_000)]
    y_pred = [t if rng.random() < 0.8 else rng.randrange(87) for t in y_true]
    low, high = bootstrap_macro_f1_interval(y_true, y_pred, 87)
    assert 0 < low < high < 1


def test_bootstrap_in_python_and_in_numpy_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    # few occupied cells are drawn in plain Python, many with numpy: the same law either way
    from pytest_ftclass.judging import intervals

    rng = __import__("random").Random(5)
    y_true = [rng.randrange(8) for _ in range(3_000)]
    y_pred = [t if rng.random() < 0.7 else rng.randrange(9) for t in y_true]  # 8: out of set
    cells = len(set(zip(y_true, y_pred, strict=True)))
    monkeypatch.setattr(intervals, "PYTHON_CELLS", cells)
    in_python = intervals.bootstrap_macro_f1_interval(y_true, y_pred, 8)
    monkeypatch.setattr(intervals, "PYTHON_CELLS", cells - 1)
    in_numpy = intervals.bootstrap_macro_f1_interval(y_true, y_pred, 8)
    assert in_python is not None and in_numpy is not None and in_python != in_numpy
    assert in_python == pytest.approx(in_numpy, abs=0.006)  # the interval is about 0.033 wide


@pytest.mark.parametrize(
    ("labels", "given", "chosen"),
    [
        (["ham", "spam"], None, "spam"),
        (["No", "Yes"], None, "Yes"),
        (["cat", "dog"], None, "dog"),
        (["1", "yes"], None, "yes"),  # both are positive names: the second sorted
        (["ham", "spam"], "ham", "ham"),
        (["ham", "spam"], "other", "spam"),  # not a label of this task: the rule applies
    ],
)
def test_positive_class_rule(labels: list[str], given: str | None, chosen: str) -> None:
    results = from_pairs([(labels[0], labels[0]), (labels[1], labels[0])], labels=labels)
    m = classification_metrics(results, positive_class=given)
    assert m["binary"]["positive_class"] == chosen
    assert m["binary"]["positive_class_given"] == (given == chosen)


def _from_json(results: list[CaseResult], **kwargs: object) -> tuple[dict, list[dict]]:
    from pytest_ftclass.report import build_report

    report = json.loads(json.dumps(build_report(results, {}, **kwargs)))  # type: ignore[arg-type]
    (model,) = report["models"]  # one model, one task: its metrics
    return model["metrics"], report["cases"]


def test_build_report_passes_the_positive_class_through() -> None:
    results = from_pairs([("ham", "ham"), ("spam", "ham")], labels=["ham", "spam"])
    metrics, _ = _from_json(results, positive_class="ham")
    assert metrics["binary"]["positive_class"] == "ham"
    assert metrics["legacy"]["classification/precision"] == 0.5


def test_unlisted_true_class_costs_a_floored_log_loss() -> None:
    m = classification_metrics([make("c0", "a", "b", labels=["a", "b"], logprobs={"b": 0.0})])
    assert m["log_loss"] == pytest.approx(-math.log(1e-6 / (1 + 1e-6)))
    assert m["n_with_probabilities"] == 1


def heavy_imports(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    heavy = "('numpy', 'sklearn', 'scipy', 'jinja2')"
    code += f"\nimport sys; print(*(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_importing_metrics_and_report_stays_cheap() -> None:
    code = (
        "import pytest_ftclass.judging.metrics, pytest_ftclass.report, "
        "pytest_ftclass.judging.calibration, pytest_ftclass.judging.intervals"
    )
    assert heavy_imports(code) == []


def test_what_a_live_run_imports_for_its_end_needs_no_numpy() -> None:
    # the warm-up imports them while the answers are awaited, in the same process
    code = (
        "import importlib\n"
        "from pytest_ftclass.running.warm_up import FOR_REPORTS, FOR_SUMMARY\n"
        "for name in FOR_SUMMARY + FOR_REPORTS: importlib.import_module(name)"
    )
    assert heavy_imports(code) == ["jinja2"]


def test_computing_metrics_never_imports_numpy_or_scikit_learn() -> None:
    # every part of the metrics runs: intervals, calibration, abstention, binary curves
    code = (
        "from pytest_ftclass.judging.metrics import classification_metrics\n"
        "from pytest_ftclass.results import CaseResult\n"
        "rs = [CaseResult(f'c{i}', 'n', 's', 'm', 'chat', e, p, labels=['a', 'b'],\n"
        "                 logprobs={p: -0.2}, tags=['t'], latency_s=0.1 * i)\n"
        "      for i, (e, p) in enumerate([('a', 'a'), ('b', 'a'), ('b', 'b')])]\n"
        "m = classification_metrics(rs)\n"
        "assert m['binary']['curves'] and m['abstention'] and m['macro_f1_ci'], m\n"
        "assert m['calibration'] and m['latency_s'], m"
    )
    assert heavy_imports(code) == []
