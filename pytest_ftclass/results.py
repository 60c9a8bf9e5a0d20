"""What the model answered for a case, and the per-case record the reports are built from.

A :class:`Prediction` is what the predictor returns for one case; a
:class:`CaseResult` joins it with the case's expected label.  Both convert to and
from plain dicts of builtin types (``to_dict`` / ``from_dict``) because they
travel from pytest-xdist workers to the controlling process inside test reports
and are written verbatim into the JSON report.

>>> p = Prediction(label="sport", logprobs={"sport": -0.05, "tech": -3.2})
>>> round(p.probability("sport"), 3)
0.951
>>> p.probability("politics")
0.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Prediction:
    """The model's answer for one case.

    ``label`` is the predicted class as the model wrote it (normalised: stop
    sequence and surrounding whitespace removed, a truncated first token mapped to
    the one class it starts).  It may lie outside the label set; it is ``None``
    only when ``error`` is set.  ``logprobs`` maps each class the response
    mentioned among its top log-probabilities to its log-probability.
    ``logprobs_approximate`` is true when those come from a first token that
    several classes share, so they are a rough guide, not the class probability.
    """

    label: str | None
    logprobs: dict[str, float] = field(default_factory=dict)
    raw_text: str | None = None
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    latency_s: float | None = None
    error: str | None = None
    logprobs_approximate: bool = False
    #: Read from a cassette rather than asked: ``latency_s`` is then ``None``.
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def probability(self, label: str) -> float:
        """Probability the model gave ``label`` (0.0 when it was not in the top log-probs)."""
        logprob = self.logprobs.get(label)
        return 0.0 if logprob is None else math.exp(logprob)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prediction:
        fields: dict[str, Any] = {k: data[k] for k in _PREDICTION_FIELDS if k in data}
        return cls(**fields)

    @classmethod
    def failed(
        cls, error: str, latency_s: float | None = None, *, finish_reason: str | None = None
    ) -> Prediction:
        return cls(label=None, error=error, latency_s=latency_s, finish_reason=finish_reason)


_PREDICTION_FIELDS = tuple(Prediction.__dataclass_fields__)


@dataclass(slots=True)
class CaseResult:
    """One case's outcome: expected label, prediction and where the case came from.

    A case is one (``source``, ``case_id``, ``model``): asked once and scored
    once however many items use it.  ``nodeid`` is the first of those items,
    ``other_nodeids`` the rest; ``source`` the case source (a file path relative
    to the rootdir, or the test function's id for a DataFrame or list whose cases
    are in no case file), ``input_digest`` a digest of the request input: the
    prompt text itself is never stored.  ``replayed``: the answer came from a
    cassette, so ``latency_s`` is ``None`` and ``usage`` is what was recorded.
    """

    case_id: str
    nodeid: str
    source: str
    model: str
    endpoint: str
    expected: str
    predicted: str | None
    logprobs: dict[str, float] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    tags: Sequence[str] = ()
    critical: bool = False
    input_digest: str = ""
    usage: dict[str, int] | None = None
    latency_s: float | None = None
    error: str | None = None
    outcome: str = ""
    logprobs_approximate: bool = False
    finish_reason: str | None = None
    replayed: bool = False
    other_nodeids: Sequence[str] = ()

    def __post_init__(self) -> None:
        # tuples, whatever they were given as (lists in JSON): one empty tuple is shared
        if not isinstance(self.tags, tuple):
            self.tags = tuple(self.tags)
        if not isinstance(self.other_nodeids, tuple):
            self.other_nodeids = tuple(self.other_nodeids)

    @property
    def correct(self) -> bool:
        return self.error is None and self.predicted == self.expected

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the case in a run: ``(source, case_id, model)``."""
        return (self.source, self.case_id, self.model)

    @property
    def task(self) -> str:
        """The group metrics are computed over: one case source against one model."""
        return f"{self.source} @ {self.model}"

    def to_dict(self) -> dict[str, Any]:
        """The fields as builtin types, plus ``correct``.

        The lists and dicts are shared with the result, not copied: results are
        never changed once made, and a large run holds 100,000 of them.
        """
        data = {name: getattr(self, name) for name in _CASE_RESULT_FIELDS}
        data["correct"] = self.correct
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        return cls(**{k: data[k] for k in _CASE_RESULT_FIELDS if k in data})


_CASE_RESULT_FIELDS = tuple(CaseResult.__dataclass_fields__)
