"""Which requests ask a group's cases, and which answer belongs to which case.

Completions takes a list of prompts in one request, so prompts go in pages of
``batch_size``; Chat Completions takes one conversation per request.  Pages
are cut from the whole case source, not from whatever subset is selected, so
a subset (``-k``, ``--lf``) can be answered from a recording of the full run:
when ``recorded(body)`` says the full page's request is on record, the full page is
asked and only the selected cases are kept.  A live run and a replay plan the
same requests and read their answers with the same parsers.

>>> from pytest_ftclass.asking.shapes import RequestShape
>>> from pytest_ftclass.cases.sources import load_cases
>>> cases = load_cases([{"id": f"c{i}", "input": "goal", "label": "sport"} for i in range(5)])
>>> shape = RequestShape("completions", "babbage-002", ("sport", "tech"))
>>> planned, failed = plan_requests(cases, shape, batch_size=2)
>>> [[c.id for c in r.cases] for r in planned], failed
([['c0', 'c1'], ['c2', 'c3'], ['c4']], {})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_ftclass.asking.shapes import RequestShape
from pytest_ftclass.cases.sources import Case
from pytest_ftclass.results import Prediction

#: ``recorded(url, body)``: whether a request with this body to this URL is on record.
Recorded = Callable[[str, dict[str, Any]], bool]


@dataclass(frozen=True)
class PlannedRequest:
    """One request: its body, the cases it asks (in the body's order) and those wanted."""

    body: dict[str, Any]
    cases: tuple[Case, ...]
    keep: frozenset[str]

    def answers(self, shape: RequestShape, body: Any) -> dict[str, Prediction]:
        """The wanted cases' predictions in the answer's JSON ``body``."""
        predictions = shape.read(body, len(self.cases))
        return {
            case.id: prediction
            for case, prediction in zip(self.cases, predictions, strict=True)
            if case.id in self.keep
        }

    def failed(self, message: str, latency_s: float | None = None) -> dict[str, Prediction]:
        """Every wanted case failing with ``message``."""
        return {case.id: Prediction.failed(message, latency_s) for case in self.wanted}

    @property
    def wanted(self) -> list[Case]:
        return [case for case in self.cases if case.id in self.keep]


def plan_requests(
    cases: Sequence[Case],
    shape: RequestShape,
    *,
    source_cases: Sequence[Case] | None = None,
    batch_size: int = 20,
    recorded: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[list[PlannedRequest], dict[str, Prediction]]:
    """(the requests asking ``cases``, errors of the cases no request can ask).

    ``source_cases`` (default ``cases``) is the whole source: Completions pages
    are cut from it.  A chat case cannot be a Completions prompt: it fails on
    its own, naming its id, and the pages are cut from the prompt cases only.
    """
    source = list(source_cases) if source_cases is not None else list(cases)
    if shape.endpoint != "completions":
        return [_one(shape.chat_body(case), [case]) for case in cases], {}
    failed = {
        case.id: Prediction.failed(
            f"case {case.id!r} is in chat format but the model is asked through the "
            "Completions endpoint; set ft_endpoint = chat (or name a chat model)"
        )
        for case in cases
        if case.format == "chat"
    }
    wanted = {case.id for case in cases if case.id not in failed}
    source = [case for case in source if case.format != "chat"]
    planned: list[PlannedRequest] = []
    placed: set[str] = set()
    for page in pages_of(source, batch_size):
        selected = [case for case in page if case.id in wanted]
        if not selected:
            continue
        placed.update(case.id for case in selected)
        if len(selected) < len(page) and recorded is not None:
            full = shape.completions_body(page)
            if recorded(full):
                planned.append(PlannedRequest(full, tuple(page), frozenset(c.id for c in selected)))
                continue
        planned.append(_one(shape.completions_body(selected), selected))
    strays = [case for case in cases if case.id in wanted and case.id not in placed]
    for page in pages_of(strays, batch_size):
        planned.append(_one(shape.completions_body(page), page))
    return planned, failed


def _one(body: dict[str, Any], cases: Sequence[Case]) -> PlannedRequest:
    return PlannedRequest(body, tuple(cases), frozenset(case.id for case in cases))


def pages_of(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in consecutive pages of ``size``.

    >>> [len(page) for page in pages_of(list("abcde"), 2)]
    [2, 2, 1]
    """
    return [items[i : i + size] for i in range(0, len(items), size)]
