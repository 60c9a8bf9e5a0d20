"""The reference server over real HTTP, through the official ``openai`` client (no mocks)."""

from __future__ import annotations

import http.client
import json
import math
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from pytest_ftclass.cli import main
from pytest_ftclass.reference import ReferenceClassifier, ReferenceServer

SEPARATOR = "\n\n###\n\n"
TOPICS = {
    "cooking": ["oven", "recipe", "garlic", "simmer", "flour", "butter", "sauce", "bake"],
    "sailing": ["boat", "harbour", "wind", "mast", "anchor", "tide", "keel", "crew"],
    "music": ["guitar", "chord", "drums", "melody", "concert", "singer", "tempo", "album"],
}
FILLER = ["the", "then", "slowly", "we", "again", "with", "near", "every"]
PROMPTS = [
    "simmer the garlic sauce" + SEPARATOR,
    "the crew dropped anchor in the harbour" + SEPARATOR,
    "a melody on the guitar" + SEPARATOR,
]


def write_training_file(path: Path, per_class: int = 20, seed: int = 11) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(per_class):
        for label, words in TOPICS.items():
            text = " ".join(rng.sample(words, 3) + rng.sample(FILLER, 3))
            lines.append({"prompt": text + SEPARATOR, "completion": " " + label})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def train_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_training_file(tmp_path_factory.mktemp("reference") / "train.jsonl")


@pytest.fixture(scope="module")
def model(train_file: Path) -> ReferenceClassifier:
    return ReferenceClassifier.from_file(train_file)


@pytest.fixture(scope="module")
def server(model: ReferenceClassifier) -> Iterator[ReferenceServer]:
    with ReferenceServer({"clf": model}) as running:
        yield running


@pytest.fixture
def client(server: ReferenceServer) -> openai.OpenAI:
    server.reset_log()
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def post_raw(server: ReferenceServer, path: str, body: bytes, **headers: str) -> tuple[int, Any]:
    host, port = server.base_url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


# -- Completions -----------------------------------------------------------------------


def test_batched_completions_answer_every_prompt_with_class_logprobs(
    client: openai.OpenAI, model: ReferenceClassifier
) -> None:
    reply = client.completions.create(
        model="clf", prompt=PROMPTS, max_tokens=1, temperature=0, logprobs=5
    )
    assert reply.object == "text_completion"
    assert reply.id.startswith("cmpl-")
    assert reply.model == "clf"
    assert [choice.index for choice in reply.choices] == [0, 1, 2]
    assert [choice.text for choice in reply.choices] == [" cooking", " sailing", " music"]
    expected = model.predict_proba(PROMPTS)
    for prompt, choice, probs in zip(PROMPTS, reply.choices, expected, strict=True):
        assert choice.finish_reason == "length"
        logprobs = choice.logprobs
        assert logprobs is not None
        assert logprobs.tokens == [choice.text]
        assert logprobs.text_offset == [len(prompt)]
        top = logprobs.top_logprobs[0]
        assert sorted(top) == [" cooking", " music", " sailing"]
        assert sum(math.exp(lp) for lp in top.values()) <= 1.0 + 1e-9
        assert max(top, key=top.__getitem__) == choice.text
        assert logprobs.token_logprobs == [top[choice.text]]
        for label, probability in probs.items():
            assert math.isclose(math.exp(top[" " + label]), probability, rel_tol=1e-9)
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 3
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 3


def test_completions_without_logprobs_and_top_n_below_the_class_count(
    client: openai.OpenAI,
) -> None:
    plain = client.completions.create(model="clf", prompt=PROMPTS[1], max_tokens=5)
    (choice,) = plain.choices
    assert (choice.text, choice.index, choice.finish_reason) == (" sailing", 0, "stop")
    assert choice.logprobs is None

    raw = client.completions.with_raw_response.create(
        model="clf", prompt=PROMPTS[:2], max_tokens=1, logprobs=2
    )
    body = json.loads(raw.text)
    assert raw.headers["content-type"] == "application/json"
    assert [len(c["logprobs"]["top_logprobs"][0]) for c in body["choices"]] == [2, 2]
    assert body["choices"][0]["logprobs"]["tokens"] == [" cooking"]


# -- Chat Completions --------------------------------------------------------------------


def test_chat_with_logprobs_has_the_real_shape(
    client: openai.OpenAI, model: ReferenceClassifier
) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "Name the topic."},
        {"role": "user", "content": "the singer played drums at the concert"},
    ]
    reply = client.chat.completions.create(
        model="clf", messages=messages, max_completion_tokens=1, logprobs=True, top_logprobs=3
    )
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    (choice,) = reply.choices
    assert choice.index == 0
    assert choice.finish_reason == "length"
    assert choice.message.role == "assistant"
    assert choice.message.content == "music"
    assert choice.message.refusal is None
    assert choice.logprobs is not None and choice.logprobs.refusal is None
    (token,) = choice.logprobs.content or []
    assert token.token == "music"
    assert token.bytes == list(b"music")
    assert token.top_logprobs[0].token == "music"
    assert {alt.token for alt in token.top_logprobs} == set(TOPICS)
    (probs,) = model.predict_proba(["Name the topic.\nthe singer played drums at the concert"])
    for alt in token.top_logprobs:
        assert alt.bytes == list(alt.token.encode("utf-8"))
        assert math.isclose(math.exp(alt.logprob), probs[alt.token], rel_tol=1e-9)
    assert token.logprob == token.top_logprobs[0].logprob


def test_chat_without_logprobs_ignores_assistant_turns(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="clf",
        messages=[
            {"role": "user", "content": "flour and butter"},
            {"role": "assistant", "content": "sailing sailing sailing boat"},
            {"role": "user", "content": [{"type": "text", "text": "bake it in the oven"}]},
        ],
        max_tokens=10,
    )
    (choice,) = reply.choices
    assert choice.message.content == "cooking"
    assert choice.finish_reason == "stop"
    assert choice.logprobs is None


def test_concurrent_chat_requests(server: ReferenceServer, client: openai.OpenAI) -> None:
    topics = {"garlic": "cooking", "anchor": "sailing", "guitar": "music", "oven": "cooking"}
    texts = list(topics) * 4

    def ask(text: str) -> str | None:
        reply = client.chat.completions.create(
            model="clf", messages=[{"role": "user", "content": text}]
        )
        return reply.choices[0].message.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, texts))
    assert answers == [topics[text] for text in texts]
    assert len(server.requests) == len(texts)
    assert all(record.status == 200 for record in server.requests)


# -- errors --------------------------------------------------------------------------------


def test_unknown_model_is_a_404_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as completion_error:
        client.completions.create(model="ft:babbage-002:acme::nope", prompt="x", max_tokens=1)
    assert completion_error.value.status_code == 404
    assert completion_error.value.code == "model_not_found"
    assert completion_error.value.type == "invalid_request_error"
    assert "ft:babbage-002:acme::nope" in completion_error.value.message

    with pytest.raises(openai.NotFoundError) as chat_error:
        client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "x"}])
    assert chat_error.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("endpoint", "arguments", "param"),
    [
        ("chat", {"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ("chat", {"top_logprobs": 2}, "logprobs"),
        ("chat", {"n": 2}, "n"),
        ("chat", {"max_tokens": 0}, "max_tokens"),
        ("completions", {"echo": True, "logprobs": 1}, "echo"),
        ("completions", {"logprobs": 6}, "logprobs"),
        ("completions", {"temperature": 3}, "temperature"),
        ("completions", {"n": 3}, "n"),
        ("completions", {"prompt": [1, 2, 3]}, "prompt"),
        ("completions", {"prompt": []}, "prompt"),
        ("completions", {"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
def test_invalid_values_are_400s(
    client: openai.OpenAI, endpoint: str, arguments: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        if endpoint == "chat":
            client.chat.completions.create(
                model="clf", messages=[{"role": "user", "content": "x"}], **arguments
            )
        else:
            client.completions.create(**{"model": "clf", "prompt": "x", **arguments})
    assert error.value.status_code == 400
    assert error.value.type == "invalid_request_error"
    assert error.value.param == param


def test_bad_json_and_missing_fields_are_openai_shaped_400s(server: ReferenceServer) -> None:
    for path, body in [
        ("/v1/completions", b"{not json"),
        ("/v1/completions", b"[1, 2]"),
        ("/v1/completions", b'{"model": "clf"}'),
        ("/v1/chat/completions", b'{"model": "clf"}'),
        ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "x"}]}'),
        ("/v1/chat/completions", b'{"model": "clf", "messages": "hello"}'),
    ]:
        status, answer = post_raw(server, path, body, **{"Content-Type": "application/json"})
        assert status == 400, (path, body)
        assert set(answer["error"]) == {"message", "type", "param", "code"}
        assert answer["error"]["type"] == "invalid_request_error"


def test_unknown_path_is_a_404(server: ReferenceServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as error:
        client.post("/embeddings", body={"model": "clf", "input": "x"}, cast_to=object)
    assert error.value.code is None
    assert "/v1/embeddings" in error.value.message
    assert server.requests[-1].status == 404


def test_wrong_api_key_is_a_401(model: ReferenceClassifier) -> None:
    with ReferenceServer({"clf": model}, api_key="sk-right") as guarded:
        wrong = openai.OpenAI(base_url=guarded.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as error:
            wrong.completions.create(model="clf", prompt="x", max_tokens=1)
        assert error.value.status_code == 401
        assert error.value.code == "invalid_api_key"
        assert "sk-wrong" not in error.value.message

        right = openai.OpenAI(base_url=guarded.base_url, api_key="sk-right", max_retries=0)
        assert right.completions.create(model="clf", prompt="x", max_tokens=1).choices
        assert [record.status for record in guarded.requests] == [401, 200]


def test_a_failing_resolver_is_a_500_and_a_key_error_a_404(model: ReferenceClassifier) -> None:
    def resolve(model_id: str) -> ReferenceClassifier:
        if model_id == "broken":
            raise RuntimeError("training file is unreadable")
        if model_id == "missing":
            raise KeyError("no training file for 'missing'")
        return model

    with ReferenceServer(resolve) as custom:
        client = openai.OpenAI(base_url=custom.base_url, api_key="sk-test", max_retries=0)
        assert client.completions.create(model="any id", prompt="tide").choices[0].text == (
            " sailing"
        )
        with pytest.raises(openai.InternalServerError) as broken:
            client.completions.create(model="broken", prompt="x")
        assert broken.value.status_code == 500
        with pytest.raises(openai.NotFoundError) as missing:
            client.completions.create(model="missing", prompt="x")
        assert "no training file" in missing.value.message
        assert client.models.list().data == []


# -- the server itself ------------------------------------------------------------------


def test_request_log_counts_what_the_server_received(
    server: ReferenceServer, client: openai.OpenAI
) -> None:
    client.completions.create(model="clf", prompt=PROMPTS, max_tokens=1, logprobs=3)
    client.chat.completions.create(
        model="clf",
        messages=[{"role": "system", "content": "Topic?"}, {"role": "user", "content": "boat"}],
    )
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="other", prompt="x")
    log = [(r.method, r.path, r.model, r.inputs, r.status) for r in server.requests]
    assert log == [
        ("POST", "/v1/completions", "clf", 3, 200),
        ("POST", "/v1/chat/completions", "clf", 2, 200),
        ("POST", "/v1/completions", "other", 1, 404),
    ]
    server.reset_log()
    assert server.requests == []


def test_models_are_listed_and_retrievable(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["clf"]
    assert client.models.retrieve("clf").id == "clf"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_keep_alive_survives_errors_and_garbage(server: ReferenceServer) -> None:
    host, port = server.base_url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        bodies = [b"{oops", json.dumps({"model": "clf", "prompt": "oven"}).encode()]
        statuses = []
        for body in bodies:
            connection.request("POST", "/v1/completions", body=body)
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
            sock = connection.sock
        assert statuses == [400, 200]
        assert sock is connection.sock  # the same connection served both
    finally:
        connection.close()

    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"\x00\xffnot http at all\r\n\r\n")
        raw.recv(1024)
    status, answer = post_raw(server, "/v1/completions", b'{"model": "clf", "prompt": "tide"}')
    assert (status, answer["choices"][0]["text"]) == (200, " sailing")


def test_the_server_writes_nothing_to_stderr(
    server: ReferenceServer, client: openai.OpenAI, capfd: pytest.CaptureFixture[str]
) -> None:
    client.completions.create(model="clf", prompt="secret prompt text", max_tokens=1)
    post_raw(server, "/v1/completions", b"{bad")
    assert capfd.readouterr().err == ""


def test_lifecycle(model: ReferenceClassifier) -> None:
    server = ReferenceServer({"clf": model})
    with pytest.raises(RuntimeError, match="start"):
        _ = server.base_url
    assert server.start() is server.start()
    url = server.base_url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url)
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
    client.completions.create(model="clf", prompt="x")  # leaves a keep-alive connection open
    started = time.perf_counter()
    server.stop()
    server.stop()
    assert time.perf_counter() - started < 2
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


# -- ftclass serve ---------------------------------------------------------------------


def test_cli_serve_trains_and_serves_until_terminated(train_file: Path) -> None:
    command = [
        sys.executable, "-m", "pytest_ftclass.cli", "serve",
        "--train", str(train_file), "--model-id", "baseline", "--port", "0",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _read_url(process)
        client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
        reply = client.completions.create(
            model="baseline", prompt=PROMPTS, max_tokens=1, logprobs=3
        )
        assert [c.text for c in reply.choices] == [" cooking", " sailing", " music"]
        with pytest.raises(openai.NotFoundError):
            client.completions.create(model="local", prompt="x")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Ctrl-C" in stderr


def _read_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    found: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = re.fullmatch(r"(http://\S+/v1)\s*", line)
            if match:
                found.append(match.group(1))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert found, f"ftclass serve printed no URL (exit code {process.poll()})"
    return found[0]


def test_cli_errors_are_exit_status_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["serve", "--train", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    train = write_training_file(tmp_path / "train.jsonl", per_class=2)
    assert main(["serve", "--train", str(train), "--fraction", "2"]) == 2
    assert "fraction" in capsys.readouterr().err


def test_a_chat_request_costs_the_tokens_of_the_text_it_is_answered_on(
    model: ReferenceClassifier,
) -> None:
    from pytest_ftclass.reference import RateLimits

    messages: list[Any] = [
        {"role": "system", "content": "Give the topic."},  # 3 words
        {"role": "user", "content": "Goal in the final"},  # 4
        {"role": "assistant", "content": "sport"},  # a turn answered: not counted
        {"role": "user", "content": [{"type": "text", "text": "late winner"}]},  # 2
    ]
    limits = RateLimits(tokens_per_minute=60)  # refills one token a second
    with ReferenceServer({"clf": model}, limits=limits) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key="sk-test", max_retries=0)
        answer = client.chat.completions.with_raw_response.create(
            model="clf", messages=messages, max_completion_tokens=1, max_tokens=5
        )
    # 9 words and one answer of max_completion_tokens (preferred to max_tokens, as answered)
    assert answer.headers["x-ratelimit-remaining-tokens"] == str(60 - 10)
