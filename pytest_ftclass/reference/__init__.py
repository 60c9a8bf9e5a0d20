"""The local reference model: a real classifier served over the OpenAI wire format.

Train a TF-IDF + logistic-regression classifier on a fine-tuning training file
and serve it on 127.0.0.1, so the whole product runs offline and tests talk to a
real HTTP server through the official ``openai`` client::

    from pytest_ftclass.reference import ReferenceClassifier, ReferenceServer

    model = ReferenceClassifier.from_file("train.jsonl")
    with ReferenceServer({"local": model}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-local")
        client.completions.create(model="local", prompt=[...], max_tokens=1, logprobs=5)

The server also keeps files, runs batches and fine-tuning jobs that really train
(:mod:`~pytest_ftclass.reference.fine_tuning`); their pace is set on the server::

    server.batches.options = BatchOptions(polls=1)
    server.fine_tuning.options = FineTuningOptions(seconds_per_step=0.01)

Rate limits like the real API's (429 with ``Retry-After``, ``x-ratelimit-*`` headers)::

    ReferenceServer(models, limits=RateLimits(requests_per_second=50))

From a shell: ``ftclass serve --train train.jsonl --model-id local``.
"""

from __future__ import annotations

from pytest_ftclass.reference.batches import BatchOptions
from pytest_ftclass.reference.classifier import ReferenceClassifier
from pytest_ftclass.reference.fine_tuning import FineTuningOptions
from pytest_ftclass.reference.limits import RateLimits
from pytest_ftclass.reference.server import ReferenceServer

__all__ = [
    "BatchOptions",
    "FineTuningOptions",
    "RateLimits",
    "ReferenceClassifier",
    "ReferenceServer",
]
