"""Answering from a cassette instead of the network: the replay of ``--ft-record-mode=none``.

The requests are those a live run plans (:func:`pytest_ftclass.asking.requests.plan_requests`,
pages cut from the whole source, a full page when it is on record) and the
answers are read by the same parsers; only the sending differs: each request
is looked up in a :class:`~pytest_ftclass.recording.replay.CassetteReplay`.
Neither the openai SDK nor httpx nor vcrpy is imported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_ftclass.asking.clients import ClientOptions, request_url
from pytest_ftclass.asking.requests import plan_requests
from pytest_ftclass.asking.shapes import RequestShape
from pytest_ftclass.cases.sources import Case
from pytest_ftclass.recording.replay import CassetteReplay, NotRecorded
from pytest_ftclass.results import Prediction

if TYPE_CHECKING:
    from pytest_ftclass.recording.redaction import Redactor


def replay(
    cases: Sequence[Case],
    shape: RequestShape,
    client: ClientOptions,
    cassette: CassetteReplay,
    *,
    batch_size: int = 20,
    source_cases: Sequence[Case] | None = None,
    redactor: Redactor | None = None,
) -> dict[str, Prediction]:
    """Predictions for ``cases`` from ``cassette``, keyed by case id in their order.

    ``client`` says where a live run would have sent them (the recorded paths
    must match).  Every case gets a prediction, marked ``replayed``; a request
    the cassette does not hold fails its cases saying how to record it.
    """
    url = request_url(client, shape.path)
    planned, results = plan_requests(
        cases,
        shape,
        source_cases=source_cases,
        batch_size=batch_size,
        recorded=lambda body: cassette.holds(url, body),
    )
    for request in planned:
        try:
            text = cassette.answer(url, request.body)
        except NotRecorded as missing:
            results.update(request.failed(str(missing)))
            continue
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        answers = request.answers(shape, body)
        for prediction in answers.values():
            prediction.replayed = True
        results.update(answers)
    if redactor is not None:
        results = {key: redactor.prediction(p) for key, p in results.items()}
    return {case.id: results[case.id] for case in cases if case.id in results}
