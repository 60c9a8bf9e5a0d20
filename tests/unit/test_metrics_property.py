"""Counted metrics equal scikit-learn's on any label vectors (scikit-learn the oracle)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_ftclass.judging.metrics import classification_metrics
from tests.helpers import dense
from tests.unit.test_metrics import make


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_counted_metrics_equal_scikit_learns_on_any_labels(data: st.DataObject) -> None:
    """numpy from counts against scikit-learn, with absent classes and out-of-set answers."""
    import warnings

    import numpy as np
    from sklearn import metrics as sk

    labels = sorted(data.draw(st.sets(st.sampled_from("abcdefgh"), min_size=1, max_size=6)))
    n = data.draw(st.integers(1, 50))
    expected = data.draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
    answers = st.sampled_from([*labels, "zz", "yy"])  # two answers outside the label set
    predicted = data.draw(st.lists(answers, min_size=n, max_size=n))
    pairs = enumerate(zip(expected, predicted, strict=True))
    m = classification_metrics([make(f"c{i}", e, p, labels=labels) for i, (e, p) in pairs])
    extra = sorted(set(predicted) - set(labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's notes on absent labels
        p, r, f, s = sk.precision_recall_fscore_support(
            expected, predicted, labels=labels, zero_division=0
        )
        macro = sk.f1_score(expected, predicted, labels=labels, average="macro", zero_division=0)
        weighted = sk.f1_score(
            expected, predicted, labels=labels, average="weighted", zero_division=0
        )
        matrix = sk.confusion_matrix(expected, predicted, labels=labels + extra)
    assert dense(m["confusion_matrix"]) == {"labels": labels + extra, "matrix": matrix.tolist()}
    for i, label in enumerate(labels):
        row = m["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f[i]))
        assert row["support"] == s[i]
    assert m["macro_f1"] == pytest.approx(macro)
    assert m["weighted_f1"] == pytest.approx(weighted)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(expected, predicted))
    assert m["n_out_of_set"] == sum(answer not in labels for answer in predicted)
    np.testing.assert_equal(sum(map(sum, dense(m["confusion_matrix"])["matrix"])), n)
