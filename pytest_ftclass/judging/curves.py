"""ROC and precision–recall curves of a binary task, with the model's own operating point.

The score of a case is the probability of the positive class (renormalised over
the two labels, as for AUROC: :mod:`pytest_ftclass.judging.calibration`).  Each
distinct score, from the highest, is a threshold: a case is called positive
when its score is at least the threshold.  At each one the curve has the
true-positive rate (recall), the false-positive rate and the precision; it is
thinned to at most :data:`~pytest_ftclass.judging.abstention.MAX_POINTS`
points as :func:`~pytest_ftclass.judging.abstention.thin` says.  The operating
point is where the model's answers put it: the same rates, from the labels it
answered, over the same cases.

>>> curve = binary_curves([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0], [True, True, False, False])
>>> curve["threshold"], curve["tpr"], curve["fpr"]
([0.9, 0.8, 0.3, 0.1], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0])
>>> [round(p, 3) for p in curve["precision"]]
[1.0, 0.5, 0.667, 0.5]
>>> curve["operating_point"]
{'tpr': 0.5, 'fpr': 0.5, 'precision': 0.5}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_ftclass.judging.abstention import thin
from pytest_ftclass.judging.calibration import ranked_positives

__all__ = ["binary_curves"]


def binary_curves(
    scores: Sequence[float], positive: Sequence[int], answered_positive: Sequence[bool]
) -> dict[str, Any] | None:
    """The thinned ROC and precision–recall points and the operating point.

    ``scores`` are the positive class's probabilities, ``positive`` whether each
    case's expected label is the positive class, ``answered_positive`` whether
    the model answered it.  ``None`` unless both classes occur.
    """
    n_pos = sum(1 for y in positive if y)
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return None
    s, last, tp = ranked_positives(scores, positive)
    called = [i + 1 for i in last]
    shown = thin(len(last))
    op_called = sum(1 for said in answered_positive if said)
    op_tp = sum(1 for said, y in zip(answered_positive, positive, strict=True) if said and y)
    return {
        "n_positive": n_pos,
        "n_negative": n_neg,
        "threshold": [s[last[i]] for i in shown],
        "tpr": [float(tp[i] / n_pos) for i in shown],
        "fpr": [float((called[i] - tp[i]) / n_neg) for i in shown],
        "precision": [float(tp[i] / called[i]) for i in shown],
        "operating_point": {
            "tpr": op_tp / n_pos,
            "fpr": (op_called - op_tp) / n_neg,
            "precision": op_tp / op_called if op_called else None,
        },
    }
