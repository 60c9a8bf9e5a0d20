"""Request bodies and response parsing, on the wire shapes real responses take."""

from __future__ import annotations

import math

import pytest

from pytest_ftclass.asking.endpoints import (
    chat_request,
    class_logprobs,
    completions_request,
    infer_endpoint,
    parse_chat,
    parse_completions,
    split_usage,
)
from pytest_ftclass.cases.sources import Case

LABELS = ["business", "sport", "tech"]
SEP = "\n\n###\n\n"


@pytest.mark.parametrize(
    ("model", "endpoint"),
    [
        ("babbage-002", "completions"),
        ("ft:babbage-002:acme::abc123", "completions"),
        ("ft:davinci-002:acme:custom:xyz", "completions"),
        ("gpt-3.5-turbo-instruct", "completions"),
        ("ft:gpt-4o-mini-2024-07-18:acme::xyz", "chat"),
        ("gpt-4.1-nano", "chat"),
    ],
)
def test_endpoint_from_model_id(model: str, endpoint: str) -> None:
    assert infer_endpoint(model) == endpoint
    assert infer_endpoint(model, "chat") == "chat"


def test_local_model_follows_case_format() -> None:
    assert infer_endpoint("local", case_format="prompt") == "completions"
    assert infer_endpoint("local:data/x.jsonl", case_format="chat") == "chat"


def test_separator_appended_never_twice() -> None:
    cases = [Case("a", "Goal!", "sport"), Case("b", "Chip" + SEP, "tech")]
    request = completions_request(cases, "babbage-002", separator=SEP, max_tokens=1, top_logprobs=9)
    assert request["prompt"] == ["Goal!" + SEP, "Chip" + SEP]
    assert (request["max_tokens"], request["temperature"], request["logprobs"]) == (1, 0, 5)


def test_chat_request_from_prompt_case_drops_separator() -> None:
    request = chat_request(
        Case("a", "Goal!" + SEP, "sport"),
        "gpt-4o-mini",
        separator=SEP,
        max_tokens=1,
        top_logprobs=30,
    )
    assert request["messages"] == [{"role": "user", "content": "Goal!"}]
    assert request["logprobs"] is True and request["top_logprobs"] == 20


def completion_choice(
    index: int, token: str, top: dict[str, float], finish: str = "length"
) -> dict:
    return {
        "index": index,
        "text": token,
        "finish_reason": finish,
        "logprobs": {
            "tokens": [token],
            "token_logprobs": [top.get(token, -0.5)],
            "top_logprobs": [top],
            "text_offset": [0],
        },
    }


def test_batched_choices_matched_by_index_not_order() -> None:
    body = {
        "choices": [
            completion_choice(2, " tech", {" tech": -0.1}),
            completion_choice(0, " sport", {" sport": -0.2}),
            completion_choice(1, " business", {" business": -0.3}),
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33},
    }
    predictions = parse_completions(body, 3, labels=LABELS)
    assert [p.label for p in predictions] == ["sport", "business", "tech"]
    assert sum(p.usage["prompt_tokens"] for p in predictions) == 30


def test_missing_and_duplicated_choices_are_errors_for_those_prompts_only() -> None:
    body = {"choices": [completion_choice(0, " sport", {}), completion_choice(0, " tech", {})]}
    first, second = parse_completions(body, 2, labels=LABELS)
    assert "several choices" in first.error and "no choice for prompt 1" in second.error
    assert all(p.error for p in parse_completions({"nope": 1}, 2, labels=LABELS))
    assert parse_completions(None, 1, labels=LABELS)[0].error


def test_sampled_token_missing_from_its_top_list_and_odd_numbers() -> None:
    # top list holds fewer alternatives than asked, in no order, the sampled token absent
    choice = {
        "index": 0,
        "text": " sport",
        "finish_reason": "length",
        "logprobs": {
            "tokens": [" sport"],
            "token_logprobs": [-3.4e-06],
            "top_logprobs": [{"tech": -27, " tech": -13.0, " weather": 0}],
        },
    }
    (prediction,) = parse_completions({"choices": [choice]}, 1, labels=LABELS)
    assert prediction.label == "sport"
    assert prediction.logprobs["sport"] == pytest.approx(-3.4e-06)
    assert prediction.logprobs["tech"] == pytest.approx(math.log(math.exp(-27) + math.exp(-13)))
    assert "weather" not in prediction.logprobs


def test_logprobs_null_when_not_requested() -> None:
    choice = {"index": 0, "text": " tech", "finish_reason": "length", "logprobs": None}
    (prediction,) = parse_completions({"choices": [choice]}, 1, labels=LABELS)
    assert prediction.label == "tech" and prediction.logprobs == {}
    assert prediction.usage is None  # usage absent


def test_truncated_first_token_maps_to_the_one_class_it_starts() -> None:
    choice = completion_choice(0, " bus", {" bus": -0.1, " spo": -3.0})
    (prediction,) = parse_completions({"choices": [choice]}, 1, labels=LABELS)
    assert prediction.label == "business"
    assert set(prediction.logprobs) == {"business", "sport"}


def test_out_of_set_answer_kept() -> None:
    (prediction,) = parse_completions(
        {"choices": [completion_choice(0, " weather", {})]}, 1, labels=LABELS
    )
    assert prediction.label == "weather" and prediction.error is None


def test_chat_response() -> None:
    body = {
        "model": "gpt-4o-mini-2024-07-18",  # a snapshot name, not the requested id
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "sport", "refusal": None},
                "finish_reason": "length",
                "logprobs": {
                    "content": [
                        {
                            "token": "sport",
                            "logprob": -0.01,
                            "bytes": [115],
                            "top_logprobs": [{"token": "tech", "logprob": -5.0, "bytes": []}],
                        }
                    ]
                },
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }
    prediction = parse_chat(body, labels=LABELS)
    assert prediction.label == "sport"
    assert prediction.logprobs == {"sport": -0.01, "tech": -5.0}
    assert prediction.usage == {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}
    assert parse_chat({"choices": []}, labels=LABELS).error
    refused = {"choices": [{"message": {"content": None, "refusal": "no"}}]}
    assert "refused" in parse_chat(refused, labels=LABELS).error


def test_class_logprobs_merges_spellings() -> None:
    merged = class_logprobs([(" sport", math.log(0.3)), ("sport", math.log(0.2))], LABELS)
    assert math.exp(merged["sport"]) == pytest.approx(0.5)


def test_split_usage_preserves_totals() -> None:
    shares = split_usage({"prompt_tokens": 10, "completion_tokens": 3}, 4)
    assert sum(s["prompt_tokens"] for s in shares) == 10
    assert sum(s["completion_tokens"] for s in shares) == 3
    assert split_usage(None, 2) == [None, None]
