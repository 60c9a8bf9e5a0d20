"""The two OpenAI endpoints a classifier is asked through: request bodies and answers.

Pure functions, no network: build the keyword arguments for
``client.completions.create`` / ``client.chat.completions.create`` and turn a
response body (a dict, as it came over the wire) into :class:`Prediction` objects.

>>> infer_endpoint("ft:babbage-002:acme::abc123")
'completions'
>>> infer_endpoint("ft:gpt-4o-mini-2024-07-18:acme::xyz")
'chat'
>>> with_separator("Goal!", "\\n\\n###\\n\\n")
'Goal!\\n\\n###\\n\\n'
>>> body = {"choices": [{"index": 0, "text": " sport", "finish_reason": "length",
...          "logprobs": {"tokens": [" sport"], "token_logprobs": [-0.1],
...                       "top_logprobs": [{" sport": -0.1, " tech": -2.5}]}}]}
>>> parse_completions(body, 1, labels=["sport", "tech"])[0].label
'sport'
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pytest_ftclass.cases.sources import Case, completion_label
from pytest_ftclass.cases.tokens import base_model
from pytest_ftclass.results import Prediction

if TYPE_CHECKING:
    from pytest_ftclass.cases.tokens import Tokenizer

Endpoint = Literal["completions", "chat"]

#: Most ``logit_bias`` entries one request may carry (the OpenAI API's limit).
MAX_LOGIT_BIAS_ENTRIES = 300
#: The bias given to every label token under ``ft_constrain``: only they can be sampled.
CONSTRAIN_BIAS = 100

#: Base models served on the legacy Completions endpoint (and their ``ft:`` fine-tunes).
COMPLETIONS_MODELS = ("babbage-002", "davinci-002", "gpt-3.5-turbo-instruct", "text-")
#: Model families served on Chat Completions (checked after :data:`COMPLETIONS_MODELS`).
CHAT_MODELS = ("gpt-", "chatgpt-", "o1", "o3", "o4")

LOCAL_MODEL = "local"


def is_local_model(model: str) -> bool:
    """Whether ``model`` names the local reference model: ``local``, ``local:…``, ``local@…``."""
    return model == LOCAL_MODEL or model.startswith((LOCAL_MODEL + ":", LOCAL_MODEL + "@"))


def parse_local_model(model: str) -> tuple[str | None, float]:
    """(training file or ``None`` for the configured one, share of it used) of a local model id.

    ``local`` is trained on ``ft_reference_train``; ``local:PATH`` on PATH;
    a suffix ``@FRACTION`` keeps that share of the training file (a weaker model).

    >>> parse_local_model("local:data/train.jsonl@0.1")
    ('data/train.jsonl', 0.1)
    >>> parse_local_model("local")
    (None, 1.0)
    """
    rest = model[len(LOCAL_MODEL) :]
    fraction = 1.0
    if "@" in rest:
        rest, _, share = rest.rpartition("@")
        try:
            fraction = float(share)
        except ValueError:
            raise ValueError(f"model {model!r}: {share!r} after '@' is not a number") from None
        if not 0 < fraction <= 1:
            raise ValueError(f"model {model!r}: the share after '@' must be in (0, 1]")
    return (rest[1:] if rest.startswith(":") else None), fraction


@functools.lru_cache(maxsize=256)  # asked once per case and item: few distinct answers
def infer_endpoint(model: str, configured: str = "auto", case_format: str = "prompt") -> Endpoint:
    """Which endpoint to ask ``model`` through.

    An explicit ``configured`` endpoint wins.  Otherwise a model id OpenAI's
    families name decides (``babbage-002`` → Completions, ``gpt-4o-mini`` →
    Chat, and their ``ft:`` fine-tunes); any other id (the local reference
    model, a model on a compatible server) follows the case's format, so one
    suite can hold prompt/completion files and chat files for the same model.

    >>> infer_endpoint("my-model", case_format="prompt"), infer_endpoint("my-model", "auto", "chat")
    ('completions', 'chat')
    """
    if configured in ("completions", "chat"):
        return configured  # type: ignore[return-value]
    name = base_model(model)
    if name.startswith(COMPLETIONS_MODELS):
        return "completions"
    if name.startswith(CHAT_MODELS):
        return "chat"
    return "chat" if case_format == "chat" else "completions"


def with_separator(prompt: str, separator: str) -> str:
    """``prompt`` ending in ``separator`` exactly once."""
    if not separator or prompt.endswith(separator):
        return prompt
    return prompt + separator


def without_separator(prompt: str, separator: str) -> str:
    if separator and prompt.endswith(separator):
        return prompt[: -len(separator)]
    return prompt


def completions_request(
    cases: Sequence[Case],
    model: str,
    *,
    separator: str,
    max_tokens: int,
    top_logprobs: int,
    stop: str = "",
    logit_bias: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for one batched Completions request (one prompt per case).

    ``logit_bias`` (token id as a string → bias), when given, is sent as is.
    """
    prompts = []
    for case in cases:
        if case.format != "prompt":
            raise ValueError(
                f"case {case.id!r} is in chat format but the model is asked through the "
                "Completions endpoint; set ft_endpoint = chat"
            )
        prompts.append(with_separator(str(case.input), separator))
    request: dict[str, Any] = {
        "model": model,
        "prompt": prompts,
        "max_tokens": max_tokens,
        "temperature": 0,
        "logprobs": min(top_logprobs, 5),
    }
    if stop and max_tokens > 1:
        request["stop"] = [stop]
    if logit_bias:
        request["logit_bias"] = dict(logit_bias)
    return request


def chat_request(
    case: Case,
    model: str,
    *,
    separator: str,
    max_tokens: int,
    top_logprobs: int,
    logit_bias: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for one Chat Completions request for ``case``."""
    if case.format == "chat":
        messages = [dict(m) for m in case.input if not isinstance(m, str)]
    else:
        messages = [{"role": "user", "content": without_separator(str(case.input), separator)}]
    request: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_completion_tokens": max_tokens,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": min(top_logprobs, 20),
    }
    if logit_bias:
        request["logit_bias"] = dict(logit_bias)
    return request


def label_text(label: str, endpoint: str) -> str:
    """The text a model generates for ``label``: with its leading space on Completions.

    >>> label_text("sport", "completions"), label_text("sport", "chat")
    (' sport', 'sport')
    """
    return " " + label if endpoint == "completions" else label


def auto_max_tokens(
    labels: Sequence[str], endpoint: str, encoding: Tokenizer | None, *, stop: str = ""
) -> int:
    """``max_tokens`` that lets the longest label (in tokens) be generated whole.

    Tokens of the longest label as the endpoint generates it (see
    :func:`label_text`), one more for the stop sequence when there is one; 1
    without a tokenizer.

    >>> from pytest_ftclass.cases.tokens import load_encoding
    >>> enc = load_encoding("cl100k_base")
    >>> enc is None or auto_max_tokens(["sport", "tech"], "completions", enc) == 1
    True
    >>> auto_max_tokens(["sport", "tech"], "chat", None, stop="END")
    1
    """
    if encoding is None or not labels:
        return 1
    longest = max(len(encoding.encode_ordinary(label_text(label, endpoint))) for label in labels)
    return max(longest, 1) + (1 if stop else 0)


def shares_first_token(labels: Sequence[str], endpoint: str, encoding: Tokenizer | None) -> bool:
    """Whether two classes begin with the same token, so the first token's log-probs are rough.

    Without a tokenizer: whether one label is a prefix of another, or two labels
    share their first word.

    >>> shares_first_token(["sport", "sports news"], "chat", None)
    True
    >>> shares_first_token(["sport", "tech"], "chat", None)
    False
    """
    names = [label for label in dict.fromkeys(labels) if label]
    if encoding is not None:
        firsts = [encoding.encode_ordinary(label_text(label, endpoint))[:1] for label in names]
        keys = [tuple(first) for first in firsts if first]
        return len(keys) != len(set(keys))
    words = [label.split()[0] if label.split() else label for label in names]
    if len(words) != len(set(words)):
        return True
    return any(a != b and b.startswith(a) for a in names for b in names)


def constraining_bias(
    labels: Sequence[str], endpoint: str, encoding: Tokenizer, *, stop: str = ""
) -> dict[str, int]:
    """``logit_bias`` that lets the model write nothing but label tokens (``ft_constrain``).

    Every token id of every label (as :func:`label_text` writes it), and of the
    stop sequence when there is one, gets :data:`CONSTRAIN_BIAS`.  More than
    :data:`MAX_LOGIT_BIAS_ENTRIES` distinct tokens is a ``ValueError``: the API
    refuses such a request, and silently asking unconstrained would mislabel the run.

    >>> from pytest_ftclass.cases.tokens import load_encoding
    >>> enc = load_encoding("cl100k_base")
    >>> enc is None or len(constraining_bias(["sport", "tech"], "completions", enc)) == 2
    True
    """
    texts = [label_text(label, endpoint) for label in labels]
    if stop:
        texts.append(stop)
    ids = sorted({token for text in texts for token in encoding.encode_ordinary(text)})
    if len(ids) > MAX_LOGIT_BIAS_ENTRIES:
        raise ValueError(
            f"--ft-constrain: the labels take {len(ids)} distinct tokens, more than the "
            f"{MAX_LOGIT_BIAS_ENTRIES} logit_bias entries the API accepts; "
            "run without --ft-constrain or with fewer or shorter labels"
        )
    return {str(token): CONSTRAIN_BIAS for token in ids}


def parse_completions(
    body: Any,
    n_prompts: int,
    *,
    labels: Sequence[str],
    stop: str = "",
    constrained: bool = False,
) -> list[Prediction]:
    """One Prediction per prompt of a batched Completions response, matched by ``index``.

    Choices may come in any order; a prompt with no choice (or a duplicated index)
    gets an error Prediction instead of someone else's answer.  ``constrained``:
    the request carried a constraining ``logit_bias`` (see :func:`normalise_label`).
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("choices"), list):
        return [
            Prediction.failed("malformed response: no 'choices' list") for _ in range(n_prompts)
        ]
    by_index: dict[int, Mapping[str, Any]] = {}
    duplicated: set[int] = set()
    for position, choice in enumerate(body["choices"]):
        if not isinstance(choice, Mapping):
            continue
        index = choice.get("index", position if n_prompts == len(body["choices"]) else None)
        if not isinstance(index, int) or isinstance(index, bool):
            continue
        if index in by_index:
            duplicated.add(index)
        by_index[index] = choice
    usages = split_usage(body.get("usage"), n_prompts)
    predictions = []
    for index in range(n_prompts):
        choice = by_index.get(index)
        if choice is None or index in duplicated:
            problem = "no choice" if choice is None else "several choices"
            predictions.append(
                Prediction.failed(f"malformed response: {problem} for prompt {index}")
            )
            continue
        finish_reason = choice.get("finish_reason")
        filtered = _filtered(finish_reason)
        if filtered is not None:
            predictions.append(filtered)
            continue
        text = choice.get("text")
        if not isinstance(text, str):
            predictions.append(Prediction.failed("malformed response: choice has no 'text'"))
            continue
        alternatives = _completion_alternatives(choice.get("logprobs"))
        predictions.append(
            _answer(text, alternatives, finish_reason, usages[index], labels, stop, constrained)
        )
    return predictions


def _answer(
    text: str,
    alternatives: Sequence[tuple[str, float]],
    finish_reason: Any,
    usage: dict[str, int] | None,
    labels: Sequence[str],
    stop: str,
    constrained: bool,
) -> Prediction:
    """The Prediction of one answered choice (either endpoint).

    Short texts (a class, a finish reason) are interned: 100,000 answers naming
    a few classes hold each once.
    """
    reason = _text_or_none(finish_reason)
    return Prediction(
        label=_shared(
            normalise_label(
                text, labels, stop=stop, truncated=reason == "length", constrained=constrained
            )
        ),
        logprobs=class_logprobs(alternatives, labels),
        raw_text=_shared(text),
        finish_reason=None if reason is None else sys.intern(reason),
        usage=usage,
    )


def _shared(text: str) -> str:
    """``text`` interned when it is short enough to be a class name."""
    return sys.intern(text) if len(text) <= _SHARED_LENGTH else text


_SHARED_LENGTH = 64


def parse_chat(
    body: Any, *, labels: Sequence[str], stop: str = "", constrained: bool = False
) -> Prediction:
    """The Prediction in a Chat Completions response."""
    choices = body.get("choices") if isinstance(body, Mapping) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return Prediction.failed("malformed response: no 'choices'")
    choice = choices[0]
    finish_reason = choice.get("finish_reason")
    filtered = _filtered(finish_reason)
    if filtered is not None:
        return filtered
    message = choice.get("message")
    refusal = message.get("refusal") if isinstance(message, Mapping) else None
    if isinstance(refusal, str) and refusal:
        return Prediction.failed(
            "the model refused to answer (refusal)", finish_reason=_text_or_none(finish_reason)
        )
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, str):
        return Prediction.failed("malformed response: message has no text 'content'")
    usage = split_usage(body.get("usage"), 1)[0]
    alternatives = _chat_alternatives(choice.get("logprobs"))
    return _answer(content, alternatives, finish_reason, usage, labels, stop, constrained)


def _filtered(finish_reason: Any) -> Prediction | None:
    """The error of an answer cut by the provider's content filter, else ``None``.

    >>> _filtered("content_filter").error
    'the answer was withheld by the content filter (finish_reason content_filter)'
    >>> _filtered("stop") is None
    True
    """
    if finish_reason != "content_filter":
        return None
    return Prediction.failed(
        "the answer was withheld by the content filter (finish_reason content_filter)",
        finish_reason="content_filter",
    )


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def normalise_label(
    text: str,
    labels: Sequence[str],
    *,
    stop: str = "",
    truncated: bool = False,
    constrained: bool = False,
) -> str:
    """The class a generated text names.

    The text without stop sequence and surrounding space; when generation was cut
    short (``max_tokens``) and the text starts exactly one class, that class.
    When it was cut short under a constraining ``logit_bias`` (the model could
    write nothing but label tokens, so it went on past the class), the longest
    class the text begins with.  Anything else is kept as written: an
    out-of-set prediction.

    >>> normalise_label(" sport", ["sport", "tech"])
    'sport'
    >>> normalise_label(" ent", ["entertainment", "tech"], truncated=True)
    'entertainment'
    >>> normalise_label(" weather", ["sport", "tech"])
    'weather'
    >>> normalise_label(" sport sport", ["sport", "tech"], truncated=True, constrained=True)
    'sport'
    """
    answer = completion_label(text, stop)
    if answer in labels or not truncated or not answer:
        return answer
    starting = [label for label in labels if label.startswith(answer)]
    if len(starting) == 1:
        return starting[0]
    if constrained:
        begun = [label for label in labels if label and answer.startswith(label)]
        if begun:
            return max(begun, key=len)
    return answer


def class_logprobs(
    alternatives: Sequence[tuple[str, float]], labels: Sequence[str]
) -> dict[str, float]:
    """Log-probability per class from the first generated token's alternatives.

    Tokens are matched to classes without their surrounding space (``" sport"`` and
    ``"sport"`` are both the class ``sport``; their probabilities add up).  A token
    that starts exactly one class (a class of several tokens) counts for that class.
    Tokens naming no class are left out.
    """
    grouped: dict[str, list[float]] = {}
    for token, logprob in alternatives:
        name = token.strip()
        if not name:
            continue
        if name in labels:
            label = name
        else:
            starting = [lab for lab in labels if lab.startswith(name)]
            if len(starting) != 1:
                continue
            label = starting[0]
        grouped.setdefault(label, []).append(logprob)
    return {sys.intern(label): _logsumexp(values) for label, values in grouped.items()}


def _logsumexp(values: Sequence[float]) -> float:
    if len(values) == 1:
        return float(values[0])
    top = max(values)
    return float(top + math.log(sum(math.exp(v - top) for v in values)))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) or value == -math.inf else None


def _completion_alternatives(logprobs: Any) -> list[tuple[str, float]]:
    """(token, log-prob) pairs for the first generated token of a Completions choice."""
    if not isinstance(logprobs, Mapping):
        return []
    pairs: dict[str, float] = {}
    top = logprobs.get("top_logprobs")
    if isinstance(top, list) and top and isinstance(top[0], Mapping):
        for token, value in top[0].items():
            number = _number(value)
            if isinstance(token, str) and number is not None:
                pairs[token] = number
    tokens, token_logprobs = logprobs.get("tokens"), logprobs.get("token_logprobs")
    if isinstance(tokens, list) and isinstance(token_logprobs, list) and tokens and token_logprobs:
        number = _number(token_logprobs[0])
        if isinstance(tokens[0], str) and number is not None:
            pairs.setdefault(tokens[0], number)
    return list(pairs.items())


def _chat_alternatives(logprobs: Any) -> list[tuple[str, float]]:
    """(token, log-prob) pairs for the first generated token of a Chat Completions choice."""
    if not isinstance(logprobs, Mapping):
        return []
    content = logprobs.get("content")
    if not isinstance(content, list) or not content or not isinstance(content[0], Mapping):
        return []
    first = content[0]
    pairs: dict[str, float] = {}
    for alternative in first.get("top_logprobs") or []:
        if isinstance(alternative, Mapping):
            token, number = alternative.get("token"), _number(alternative.get("logprob"))
            if isinstance(token, str) and number is not None:
                pairs.setdefault(token, number)
    token, number = first.get("token"), _number(first.get("logprob"))
    if isinstance(token, str) and number is not None:
        pairs.setdefault(token, number)
    return list(pairs.items())


def split_usage(usage: Any, n: int) -> list[dict[str, int] | None]:
    """A request's token usage shared out over its ``n`` prompts (totals preserved)."""
    if not isinstance(usage, Mapping) or n < 1:
        return [None] * max(n, 0)
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    shares: list[dict[str, int]] = [{} for _ in range(n)]
    for key in keys:
        value = usage.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        base, remainder = divmod(value, n)
        for i in range(n):
            shares[i][key] = base + (1 if i < remainder else 0)
    return [share or None for share in shares]
