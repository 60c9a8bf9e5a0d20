"""A real text classifier trained on a fine-tuning file: the local reference model.

TF-IDF word features and a multinomial logistic regression (scikit-learn).  It
trains on a couple of thousand news articles in about a second, is deterministic,
and gives calibrated-enough class probabilities to stand in for a fine-tune's
log-probabilities.

>>> from pytest_ftclass.cases.sources import load_cases
>>> cases = load_cases(
...     [{"input": f"{w} match score goal", "label": "sport"} for w in ("big", "late", "home")]
...     + [{"input": f"{w} shares market profit", "label": "business"} for w in ("a", "b", "c")]
... )
>>> model = ReferenceClassifier.train(cases)
>>> model.labels
['business', 'sport']
>>> model.predict(["a late goal"])
['sport']
>>> probs = model.predict_proba(["profit on the market"])[0]
>>> sorted(probs) == model.labels, round(sum(probs.values()), 6)
(True, 1.0)

``fraction`` keeps a deterministic, stratified share of the training cases (at
least one per class), which is how a deliberately weaker baseline is built:

>>> ReferenceClassifier.train(cases, fraction=0.4).n_train
2
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pytest_ftclass.cases.sources import Case, load_cases

__all__ = ["ReferenceClassifier", "stratified_subset"]


class ReferenceClassifier:
    """TF-IDF + logistic regression over the text of labelled cases.

    Build one with :meth:`train` or :meth:`from_file`; the constructor takes an
    already fitted scikit-learn pipeline (or ``None`` when there is one class).
    """

    def __init__(self, pipeline: Any, labels: Sequence[str], *, n_train: int = 0) -> None:
        self._pipeline = pipeline
        self._labels = sorted(labels)
        self.n_train = n_train

    @classmethod
    def train(
        cls, cases: Sequence[Case], *, fraction: float = 1.0, seed: int = 0
    ) -> ReferenceClassifier:
        """Fit on ``cases`` (their :attr:`Case.text` and :attr:`Case.label`).

        ``fraction`` in (0, 1] keeps that share of each class (rounded, at least
        one case per class), chosen by a ``seed``-ed shuffle: same inputs, same model.
        """
        if not cases:
            raise ValueError("cannot train a reference model on no cases")
        chosen = stratified_subset(cases, fraction=fraction, seed=seed)
        texts = [case.text for case in chosen]
        targets = [case.label for case in chosen]
        labels = sorted(set(targets))
        if len(labels) == 1:
            return cls(None, labels, n_train=len(chosen))

        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        pipeline = Pipeline(
            [
                ("tfidf", TfidfVectorizer(sublinear_tf=True, dtype=np.float32)),
                ("logreg", LogisticRegression(C=10.0, solver="newton-cg", max_iter=200)),
            ]
        )
        pipeline.fit(texts, targets)
        return cls(pipeline, labels, n_train=len(chosen))

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, fraction: float = 1.0, seed: int = 0
    ) -> ReferenceClassifier:
        """Train on a fine-tuning training file (any format :func:`load_cases` reads)."""
        return cls.train(load_cases(path), fraction=fraction, seed=seed)

    @property
    def pipeline(self) -> Any:
        """The fitted scikit-learn pipeline (``None`` when there is a single class)."""
        return self._pipeline

    @property
    def labels(self) -> list[str]:
        """The classes, sorted."""
        return list(self._labels)

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One ``{label: probability}`` per text, every class present, summing to 1."""
        import math

        return [
            {label: math.exp(lp) for label, lp in row.items()}
            for row in self.predict_log_proba(texts)
        ]

    def predict_log_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One ``{label: log(probability)}`` per text: the model's log-softmax, in float64."""
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not one string")
        if not texts:
            return []
        if self._pipeline is None:
            return [{self._labels[0]: 0.0} for _ in texts]

        import numpy as np
        from scipy.special import log_softmax

        scores = np.asarray(self._pipeline.decision_function(list(texts)), dtype=np.float64)
        if scores.ndim == 1:  # two classes: one score, for the second class
            scores = np.column_stack([np.zeros_like(scores), scores])
        matrix = log_softmax(scores, axis=1)
        classes = [str(c) for c in self._pipeline.classes_]
        return [
            {label: float(lp) for label, lp in sorted(zip(classes, row, strict=True))}
            for row in matrix
        ]

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable class per text (ties go to the first label in sorted order)."""
        return [max(self._labels, key=probs.__getitem__) for probs in self.predict_proba(texts)]

    def __repr__(self) -> str:
        return f"ReferenceClassifier(labels={self._labels!r}, n_train={self.n_train})"


def stratified_subset(cases: Sequence[Case], *, fraction: float, seed: int = 0) -> list[Case]:
    """A deterministic per-class share of ``cases``, at least one per class, in input order.

    >>> from pytest_ftclass.cases.sources import load_cases
    >>> cases = load_cases([{"input": str(i), "label": "ab"[i % 2]} for i in range(10)])
    >>> sorted(c.label for c in stratified_subset(cases, fraction=0.2))
    ['a', 'b']
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if fraction == 1.0:
        return list(cases)
    by_label: dict[str, list[int]] = defaultdict(list)
    for position, case in enumerate(cases):
        by_label[case.label].append(position)
    rng = random.Random(seed)
    keep: set[int] = set()
    for label in sorted(by_label):
        positions = list(by_label[label])
        rng.shuffle(positions)
        keep.update(positions[: max(1, round(fraction * len(positions)))])
    return [case for position, case in enumerate(cases) if position in keep]
