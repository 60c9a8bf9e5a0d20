"""Labels of several tokens, classes sharing a first token, and ``--ft-constrain``.

Unit tests of the sizing and flags, then the plugin end to end against the
reference model over real HTTP: what goes out (the cassette's request bodies,
the server's request log) and what comes back (the JSON report).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from pytest_ftclass.asking.endpoints import (
    MAX_LOGIT_BIAS_ENTRIES,
    auto_max_tokens,
    constraining_bias,
    normalise_label,
    shares_first_token,
)
from pytest_ftclass.asking.shapes import plan_shape
from pytest_ftclass.cases.sources import Case
from pytest_ftclass.cases.tokens import encoding_for, load_encoding
from pytest_ftclass.options import SETTINGS, _convert
from pytest_ftclass.results import CaseResult, Prediction
from pytest_ftclass.running.evaluation import case_result
from tests.helpers import (
    ask_every_case,
    recording_evaluation,
    training_lines,
    validation_lines,
    write_jsonl,
)

COMPLETIONS_MODEL = "ft:babbage-002:acme::abc123"
#: Two classes of two tokens that share their first one (" world"), and one of one token.
RENAMED = {"sport": "world sport", "politics": "world news", "tech": "tech"}

CL100K = load_encoding("cl100k_base")
needs_cl100k = pytest.mark.skipif(CL100K is None, reason="cl100k_base is not available offline")


def renamed(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        label = RENAMED[str(line["completion"]).strip()]
        out.append({**line, "completion": " " + label})
    return out


# -- sizing max_tokens ----------------------------------------------------------------


@needs_cl100k
def test_auto_max_tokens_counts_the_longest_label() -> None:
    labels = ["sport", "entertainment"]
    # " entertainment" is one token, "entertainment" (chat, no leading space) two
    assert auto_max_tokens(labels, "completions", CL100K) == 1
    assert auto_max_tokens(labels, "chat", CL100K) == 2
    assert auto_max_tokens(labels, "chat", CL100K, stop="\n") == 3
    assert auto_max_tokens(list(RENAMED.values()), "completions", CL100K) == 2


def test_auto_max_tokens_without_a_tokenizer_is_one() -> None:
    assert auto_max_tokens(["a very long label indeed"], "chat", None, stop="END") == 1


@needs_cl100k
def test_a_number_wins_over_auto() -> None:
    assert plan_shape("local", "chat", ["entertainment"], max_tokens=7).max_tokens == 7
    assert plan_shape("local", "chat", ["entertainment"]).max_tokens == 2


def test_ft_max_tokens_setting_takes_auto_or_a_number() -> None:
    setting = SETTINGS["ft_max_tokens"]
    assert _convert(setting, None, Path()) is None
    assert _convert(setting, "auto", Path()) is None
    assert _convert(setting, "AUTO", Path()) is None
    assert _convert(setting, "3", Path()) == 3
    with pytest.raises(ValueError, match="whole number"):
        _convert(setting, "lots", Path())


# -- the approximate flag ---------------------------------------------------------------


@needs_cl100k
def test_shared_first_token_under_the_tokenizer() -> None:
    assert shares_first_token(["world news", "world sport", "tech"], "completions", CL100K)
    assert not shares_first_token(["sport", "tech", "politics"], "completions", CL100K)


@pytest.mark.parametrize(
    ("labels", "shared"),
    [
        (["sport", "tech"], False),
        (["sport", "sports"], True),  # one label is a prefix of another
        (["world news", "world sport"], True),  # same first word
        (["news", "world news"], False),
    ],
)
def test_shared_first_token_without_a_tokenizer(labels: list[str], shared: bool) -> None:
    assert shares_first_token(labels, "chat", None) is shared


def test_approximate_flag_travels_into_the_case_result() -> None:
    prediction = Prediction(label="world news", logprobs={"world news": -0.2})
    prediction.logprobs_approximate = True
    assert Prediction.from_dict(prediction.to_dict()).logprobs_approximate is True
    result = case_result(
        Case("c1", "x", "world news"),
        prediction,
        nodeid="f::c1",
        source="f",
        model="m",
        endpoint="completions",
        labels=["world news", "world sport"],
    )
    assert result.logprobs_approximate is True
    assert CaseResult.from_dict(result.to_dict()).logprobs_approximate is True
    assert CaseResult.from_dict({**result.to_dict(), "logprobs_approximate": False}).correct


# -- constraining --------------------------------------------------------------------


@needs_cl100k
def test_constraining_bias_covers_every_label_token() -> None:
    bias = constraining_bias(["world news", "tech"], "completions", CL100K, stop="\n")
    expected = {*CL100K.encode_ordinary(" world news"), *CL100K.encode_ordinary(" tech")}
    expected |= set(CL100K.encode_ordinary("\n"))
    assert bias == {str(token): 100 for token in expected}


@needs_cl100k
def test_too_many_label_tokens_is_an_error_not_a_silent_fallback() -> None:
    labels = [f"category {i}" for i in range(400)]
    with pytest.raises(ValueError, match=f"more than the {MAX_LOGIT_BIAS_ENTRIES}"):
        constraining_bias(labels, "completions", CL100K)


@pytest.mark.skipif(load_encoding("o200k_base") is not None, reason="o200k_base is available here")
def test_constraining_needs_the_models_own_tokenizer() -> None:
    with pytest.raises(ValueError, match="o200k_base"):
        plan_shape("ft:gpt-4o-mini-2024-07-18:acme::x", "chat", ["sport"], constrain=True)


def test_constrained_text_past_the_class_counts_as_the_class() -> None:
    labels = ["sport", "world sport"]
    assert normalise_label("sportworld", labels, truncated=True, constrained=True) == "sport"
    assert normalise_label("sportworld", labels, truncated=True) == "sportworld"
    assert normalise_label("world sport", labels, truncated=True, constrained=True) == (
        "world sport"
    )


# -- the reference server and logit_bias ---------------------------------------------------


@pytest.fixture(scope="module")
def renamed_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from pytest_ftclass.reference import ReferenceClassifier

    path = write_jsonl(
        tmp_path_factory.mktemp("renamed") / "train.jsonl", renamed(training_lines())
    )
    return ReferenceClassifier.from_file(path)


@pytest.fixture
def renamed_server(renamed_model: Any) -> Iterator[Any]:
    """The reference model trained on the renamed classes, answering for any model id."""
    from pytest_ftclass.reference import ReferenceServer

    with ReferenceServer(lambda _: renamed_model) as server:
        yield server


@pytest.mark.parametrize(
    "bias",
    [{"abc": 10}, {"12": 101}, {"12": -100.5}, {"12": "high"}, {"12": True}, ["12"]],
    ids=["not-an-id", "too-high", "too-low", "not-a-number", "bool", "not-a-map"],
)
def test_server_refuses_a_bad_logit_bias(renamed_server: Any, bias: Any) -> None:
    client = openai.OpenAI(base_url=renamed_server.base_url, api_key="sk-x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="m", prompt=["goal match"], max_tokens=1, logit_bias=bias)
    assert err.value.body["param"] == "logit_bias"  # type: ignore[index]


def test_server_logs_the_size_of_the_logit_bias(renamed_server: Any) -> None:
    client = openai.OpenAI(base_url=renamed_server.base_url, api_key="sk-x", max_retries=0)
    renamed_server.reset_log()
    client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "goal match"}],
        logit_bias={"1917": 100, "3754": 100, "10775": -50.5},
    )
    client.completions.create(model="m", prompt="goal match", max_tokens=1)
    assert [r.logit_bias_size for r in renamed_server.requests] == [3, None]


@needs_cl100k
def test_more_label_tokens_than_the_api_takes_fails_every_case(
    renamed_server: Any, tmp_path: Path
) -> None:
    renamed_server.reset_log()
    source = [Case(f"c{i}", f"text {i}", f"category {i}") for i in range(400)]
    evaluation = recording_evaluation(renamed_server.base_url, tmp_path, constrain=True)
    predictions = ask_every_case(evaluation, "s.jsonl", source, COMPLETIONS_MODEL, source[:2])
    assert set(predictions) == {"c0", "c1"}
    assert all("--ft-constrain" in str(p.error) for p in predictions.values())
    assert renamed_server.requests == []  # nothing is asked unconstrained


# -- end to end through the plugin -------------------------------------------------------


def cassette_bodies(root: Path) -> list[dict[str, Any]]:
    bodies = []
    for path in (root / "cassettes").rglob("*.json"):
        for interaction in json.loads(path.read_text(encoding="utf-8"))["interactions"]:
            bodies.append(json.loads(interaction["request"]["body"]))
    return bodies


def report_cases(root: Path) -> list[dict[str, Any]]:
    report = json.loads((root / "reports" / "ftclass.json").read_text(encoding="utf-8"))
    return report["cases"]


@needs_cl100k
def test_multi_token_labels_sized_automatically_and_replayed(
    suite: pytest.Pytester, renamed_server: Any
) -> None:
    write_jsonl(suite.path / "valid.cases.jsonl", renamed(validation_lines()))
    args = [f"--ft-model={COMPLETIONS_MODEL}"]
    suite.runpytest(
        *args, f"--ft-base-url={renamed_server.base_url}", "--ft-record-mode=once"
    ).assert_outcomes(passed=12)
    bodies = cassette_bodies(suite.path)
    assert bodies and {b["max_tokens"] for b in bodies} == {2}  # " world news": 2 tokens
    assert all("logit_bias" not in b for b in bodies)
    cases = report_cases(suite.path)
    assert {c["predicted"] for c in cases} == set(RENAMED.values())
    assert all(c["logprobs_approximate"] for c in cases)  # " world" starts two classes

    renamed_server.stop()
    suite.runpytest(*args).assert_outcomes(passed=12)
    assert all(c["logprobs_approximate"] for c in report_cases(suite.path))


@needs_cl100k
def test_constrain_sends_the_label_tokens_bias(suite: pytest.Pytester, renamed_server: Any) -> None:
    write_jsonl(suite.path / "valid.cases.jsonl", renamed(validation_lines()))
    renamed_server.reset_log()
    args = [f"--ft-model={COMPLETIONS_MODEL}", "--ft-constrain", "--ft-max-tokens=1"]
    suite.runpytest(
        *args, f"--ft-base-url={renamed_server.base_url}", "--ft-record-mode=once"
    ).assert_outcomes(passed=12)
    encoding = encoding_for(COMPLETIONS_MODEL)
    assert encoding is not None
    expected = constraining_bias(list(RENAMED.values()), "completions", encoding)
    assert len(expected) == 4  # " world", " news", " sport", " tech"
    sizes = [r.logit_bias_size for r in renamed_server.requests]
    assert sizes and set(sizes) == {4}
    bodies = cassette_bodies(suite.path)
    assert all(b["logit_bias"] == expected and b["max_tokens"] == 1 for b in bodies)

    renamed_server.stop()
    suite.runpytest(*args).assert_outcomes(passed=12)
    # without --ft-constrain the bodies differ: they are not in the cassette
    without = suite.runpytest(f"--ft-model={COMPLETIONS_MODEL}", "--ft-max-tokens=1")
    without.assert_outcomes(errors=12)
