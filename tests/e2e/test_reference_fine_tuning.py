"""Fine-tuning on the reference server, through the official ``openai`` client over HTTP.

The data are synthetic headlines with some ambiguity and 10 % label noise, so the
trained model is good but not perfect: accuracies are numbers that can differ.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import random
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types import FileObject
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from pytest_ftclass.reference import ReferenceServer
from pytest_ftclass.reference.fine_tuning import FineTuningOptions
from pytest_ftclass.reference.training import Hyperparameters, read_examples, train
from tests.helpers import FILLER, SEPARATOR, VOCABULARY

LABELS = sorted(VOCABULARY)
COLUMNS = ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]
FINAL = ("succeeded", "failed", "cancelled")


def headline(label: str, rng: random.Random) -> str:
    other = rng.choice([name for name in LABELS if name != label])
    words = [rng.choice(VOCABULARY[label]) for _ in range(2)] + [rng.choice(VOCABULARY[other])]
    words += [rng.choice(FILLER) for _ in range(3)]
    rng.shuffle(words)
    return " ".join(words)


def prompt_lines(n: int, seed: int, noise: float = 0.1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    lines = []
    for position in range(n):
        label = LABELS[position % len(LABELS)]
        text = headline(label, rng)
        if rng.random() < noise:
            label = rng.choice(LABELS)
        lines.append({"prompt": text + SEPARATOR, "completion": " " + label})
    return lines


def chat_lines(n: int, seed: int) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "system", "content": "Give the topic."},
                {"role": "user", "content": line["prompt"].removesuffix(SEPARATOR)},
                {"role": "assistant", "content": line["completion"].strip()},
            ]
        }
        for line in prompt_lines(n, seed)
    ]


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")


TRAIN = prompt_lines(300, seed=1)
VALID = prompt_lines(60, seed=2)
HELD_OUT = prompt_lines(90, seed=3, noise=0.0)


@pytest.fixture
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer({}) as running:
        yield running


@pytest.fixture
def client(server: ReferenceServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def upload(client: openai.OpenAI, data: bytes, name: str = "train.jsonl") -> str:
    return client.files.create(file=(name, data), purpose="fine-tune").id


def finish(client: openai.OpenAI, job_id: str, timeout: float = 30.0) -> FineTuningJob:
    deadline = time.monotonic() + timeout
    while (job := client.fine_tuning.jobs.retrieve(job_id)).status not in FINAL:
        assert time.monotonic() < deadline, f"job {job_id} still {job.status}"
        time.sleep(0.01)
    return job


def fine_tune(client: openai.OpenAI, **arguments: Any) -> FineTuningJob:
    """Upload TRAIN and VALID, run a job of 3 epochs of batches of 16 (``arguments`` win)."""
    settings: dict[str, Any] = {
        "training_file": upload(client, jsonl(TRAIN)),
        "validation_file": upload(client, jsonl(VALID), "valid.jsonl"),
        "model": "babbage-002",
        "suffix": "topics",
        "hyperparameters": {"n_epochs": 3, "batch_size": 16},
        "seed": 7,
    }
    settings.update(arguments)
    return finish(client, client.fine_tuning.jobs.create(**settings).id)


def result_rows(client: openai.OpenAI, job: FineTuningJob) -> list[dict[str, str]]:
    (file_id,) = job.result_files
    text = base64.b64decode(client.files.content(file_id).content, validate=True).decode()
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == COLUMNS
    return list(reader)


def answers(
    client: openai.OpenAI, model: str, lines: list[dict[str, Any]]
) -> list[dict[str, float]]:
    """The class log-probabilities the model gives each prompt (all three classes)."""
    reply = client.completions.create(
        model=model, prompt=[line["prompt"] for line in lines], max_tokens=1, logprobs=3
    )
    choices = sorted(reply.choices, key=lambda choice: choice.index)
    return [
        {token.strip(): lp for token, lp in (c.logprobs.top_logprobs or [{}])[0].items()}  # type: ignore[union-attr]
        for c in choices
    ]


def labels_of(lines: list[dict[str, Any]]) -> list[str]:
    return [line["completion"].strip() for line in lines]


def best(logprobs: list[dict[str, float]]) -> list[str]:
    return [max(sorted(row), key=row.__getitem__) for row in logprobs]


# -- a job from start to end ----------------------------------------------------------


def test_a_job_goes_through_its_statuses_and_ends_with_a_model(
    server: ReferenceServer, client: openai.OpenAI
) -> None:
    server.fine_tuning.options = FineTuningOptions(
        validating_s=0.1, queued_s=0.1, seconds_per_step=0.002
    )
    lines = TRAIN[:100]
    training_file = upload(client, jsonl(lines))
    created = client.fine_tuning.jobs.create(
        training_file=training_file, model="babbage-002", suffix="topics", seed=3
    )
    assert created.status == "validating_files" and created.fine_tuned_model is None
    assert created.hyperparameters.n_epochs == "auto"  # resolved once the file is read
    seen: list[str] = []
    while (job := client.fine_tuning.jobs.retrieve(created.id)).status not in FINAL:
        if not seen or seen[-1] != job.status:
            seen.append(job.status)
        if job.status == "running":
            assert job.fine_tuned_model is None and job.trained_tokens is None
            assert job.result_files == [] and job.finished_at is None
        time.sleep(0.005)
    assert seen == ["validating_files", "queued", "running"] and job.status == "succeeded"

    assert job.hyperparameters.model_dump() == {
        "n_epochs": 3,
        "batch_size": 1,  # about 0.2 % of 100 examples, at least 1
        "learning_rate_multiplier": 1.0,
    }
    assert job.fine_tuned_model == f"ft:babbage-002:local:topics:{job.fine_tuned_model[-8:]}"  # type: ignore[index]
    assert (job.seed, job.to_dict()["user_provided_suffix"], job.integrations) == (3, "topics", [])
    assert job.finished_at is not None and job.finished_at >= job.created_at
    assert job.estimated_finish is None and job.error is None
    words = sum(len(line["prompt"].split()) + len(line["completion"].split()) for line in lines)
    assert job.trained_tokens == 3 * words
    assert len(result_rows(client, job)) == 3 * 100

    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    messages = [m for m in reversed(messages) if not m.startswith("Step ")][:4]
    assert messages == [
        f"Created fine-tuning job: {job.id}",
        f"Validating training file: {training_file}",
        "Files validated, moving job to queued state",
        "Fine-tuning job started",
    ]


def test_every_answer_has_the_sdk_shapes(client: openai.OpenAI) -> None:
    """The raw JSON validates strictly against the SDK's models, not only leniently."""
    job = fine_tune(client, hyperparameters={"n_epochs": 1, "batch_size": 64})
    raw = client.fine_tuning.jobs.with_raw_response
    FineTuningJob.model_validate(raw.retrieve(job.id).http_response.json())
    listed = raw.list().http_response.json()
    assert [FineTuningJob.model_validate(j).id for j in listed["data"]] == [job.id]
    for event in raw.list_events(job.id, limit=100).http_response.json()["data"]:
        FineTuningJobEvent.model_validate(event)
    checkpoints = client.fine_tuning.jobs.checkpoints.with_raw_response.list(job.id)
    for checkpoint in checkpoints.http_response.json()["data"]:
        FineTuningJobCheckpoint.model_validate(checkpoint)
    result = client.files.with_raw_response.retrieve(job.result_files[0]).http_response.json()
    assert FileObject.model_validate(result).purpose == "fine-tune-results"


# -- the result file, events and checkpoints ---------------------------------------------


def test_the_result_file_has_one_row_per_step_matching_the_metrics_events(
    client: openai.OpenAI,
) -> None:
    job = fine_tune(client)
    rows = result_rows(client, job)
    steps_per_epoch = math.ceil(300 / 16)
    assert len(rows) == 3 * steps_per_epoch
    assert [int(row["step"]) for row in rows] == list(range(1, len(rows) + 1))
    assert float(rows[0]["train_loss"]) == round(math.log(3), 6)  # untrained: uniform
    with_valid = [int(row["step"]) for row in rows if row["valid_loss"]]
    epoch_ends = [steps_per_epoch * epoch for epoch in (1, 2, 3)]
    assert with_valid == sorted({*range(10, len(rows) + 1, 10), *epoch_ends})
    assert all(bool(row["valid_loss"]) == bool(row["valid_mean_token_accuracy"]) for row in rows)

    def mean_loss(epoch: int) -> float:
        chosen = rows[(epoch - 1) * steps_per_epoch : epoch * steps_per_epoch]
        return sum(float(row["train_loss"]) for row in chosen) / len(chosen)

    assert mean_loss(3) < mean_loss(1) * 0.8  # it learns

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=50))  # pages of 50
    metrics = [e.data for e in reversed(events) if e.type == "metrics"]
    assert len(metrics) == len(rows)
    for row, data in zip(rows, metrics, strict=True):
        assert isinstance(data, dict)
        assert data["total_steps"] == len(rows)
        assert (data["step"], data["train_loss"], data["train_mean_token_accuracy"]) == (
            int(row["step"]),
            float(row["train_loss"]),
            float(row["train_accuracy"]),
        )
        assert data.get("valid_loss") == (float(row["valid_loss"]) if row["valid_loss"] else None)


def test_without_a_validation_file_the_valid_cells_are_empty(client: openai.OpenAI) -> None:
    job = fine_tune(client, validation_file=None, hyperparameters={"n_epochs": 2})
    rows = result_rows(client, job)
    assert len(rows) == 2 * 300  # batch size auto: 1
    assert all(row["valid_loss"] == row["valid_mean_token_accuracy"] == "" for row in rows)
    (newest, *_) = client.fine_tuning.jobs.checkpoints.list(job.id)
    assert newest.metrics.valid_loss is None and newest.metrics.full_valid_loss is None


def test_a_checkpoint_per_epoch_answers_with_its_own_weights(client: openai.OpenAI) -> None:
    from sklearn.metrics import accuracy_score, log_loss

    job = fine_tune(client)
    rows = {int(row["step"]): row for row in result_rows(client, job)}
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    per_epoch = math.ceil(300 / 16)
    assert [c.step_number for c in checkpoints] == [3 * per_epoch, 2 * per_epoch, per_epoch]
    truth = labels_of(VALID)
    for checkpoint in checkpoints:
        assert checkpoint.id.startswith("ftckpt_") and checkpoint.fine_tuning_job_id == job.id
        name = f"{job.fine_tuned_model}:ckpt-step-{checkpoint.step_number}"
        assert checkpoint.fine_tuned_model_checkpoint == name
        metrics, row = checkpoint.metrics, rows[checkpoint.step_number]
        assert (metrics.step, metrics.train_loss, metrics.valid_loss) == (
            checkpoint.step_number,
            float(row["train_loss"]),
            float(row["valid_loss"]),
        )
        # the metrics on the whole validation file are what the checkpoint answers over HTTP
        logprobs = answers(client, name, VALID)
        assert metrics.full_valid_mean_token_accuracy == round(
            accuracy_score(truth, best(logprobs)), 6
        )
        probabilities = [[math.exp(row[label]) for label in LABELS] for row in logprobs]
        assert metrics.full_valid_loss == pytest.approx(
            log_loss(truth, probabilities, labels=LABELS), abs=2e-6
        )

    newest = checkpoints[0].fine_tuned_model_checkpoint
    assert answers(client, job.fine_tuned_model or "", VALID) == answers(client, newest, VALID)
    first_page = client.fine_tuning.jobs.checkpoints.list(job.id, limit=2)
    assert first_page.has_more and [c.id for c in first_page.data] == [
        c.id for c in checkpoints[:2]
    ]


def test_the_final_model_is_the_trained_model_recomputed(client: openai.OpenAI) -> None:
    from sklearn.metrics import accuracy_score

    job = fine_tune(client)
    served = answers(client, job.fine_tuned_model or "", HELD_OUT)

    examples, validation = read_examples(jsonl(TRAIN)), read_examples(jsonl(VALID))
    settings = Hyperparameters(n_epochs=3, batch_size=16, learning_rate_multiplier=1.0)
    *_, last = train(examples, validation, settings, seed=7)
    local = last.model.predict_log_proba([line["prompt"] for line in HELD_OUT])  # type: ignore[union-attr]
    assert best(served) == best(local)
    for remote_row, local_row in zip(served, local, strict=True):
        assert remote_row == pytest.approx(local_row, abs=1e-12)
    accuracy = accuracy_score(labels_of(HELD_OUT), best(served))
    assert 0.75 < accuracy < 1.0  # learnt, and the data are not trivial

    chat = client.chat.completions.create(
        model=job.fine_tuned_model or "",
        messages=[{"role": "user", "content": "the striker and the coach at the stadium"}],
        logprobs=True,
        top_logprobs=3,
    )
    assert chat.choices[0].message.content == "sport"


def test_same_files_settings_and_seed_give_the_same_job_on_a_fresh_server() -> None:
    def run() -> tuple[str, str | None, list[str], str, list[str]]:
        with ReferenceServer({}) as fresh:
            api = openai.OpenAI(base_url=fresh.base_url, api_key="sk-test", max_retries=0)
            job = fine_tune(api)
            checkpoints = [
                c.fine_tuned_model_checkpoint for c in api.fine_tuning.jobs.checkpoints.list(job.id)
            ]
            content = api.files.content(job.result_files[0]).text
            return (
                job.id,
                job.fine_tuned_model,
                checkpoints,
                content,
                best(answers(api, job.fine_tuned_model or "", HELD_OUT)),
            )

    assert run() == run()


def test_the_seed_decides_the_order_of_the_batches(client: openai.OpenAI) -> None:
    first, again, other = (fine_tune(client, seed=seed) for seed in (11, 11, 12))
    assert first.id != again.id  # the same request twice is two jobs
    assert result_rows(client, first) == result_rows(client, again)
    assert result_rows(client, first) != result_rows(client, other)
    unseeded = fine_tune(client, seed=None)
    assert 0 <= unseeded.seed < 2**31


def test_a_chat_training_file_trains_a_chat_model(client: openai.OpenAI) -> None:
    training_file = upload(client, jsonl(chat_lines(300, seed=1)))
    job = finish(
        client,
        client.fine_tuning.jobs.create(
            training_file=training_file,
            model="gpt-4o-mini-2024-07-18",
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
        ).id,
    )
    assert job.status == "succeeded", job.error
    assert job.method is not None and job.method.supervised is not None
    assert job.method.supervised.hyperparameters is not None
    assert job.method.supervised.hyperparameters.n_epochs == 2
    assert (job.fine_tuned_model or "").startswith("ft:gpt-4o-mini-2024-07-18:local::")
    reply = client.chat.completions.create(
        model=job.fine_tuned_model or "",
        messages=[
            {"role": "system", "content": "Give the topic."},
            {"role": "user", "content": "minister vote senate campaign"},
        ],
    )
    assert reply.choices[0].message.content == "politics"


# -- stopping and failing -------------------------------------------------------------------


def test_a_cancelled_job_stops_and_makes_no_model(
    server: ReferenceServer, client: openai.OpenAI
) -> None:
    server.fine_tuning.options = FineTuningOptions(seconds_per_step=0.02)
    job = client.fine_tuning.jobs.create(
        training_file=upload(client, jsonl(TRAIN)), model="babbage-002", seed=1
    )
    while (seen := client.fine_tuning.jobs.retrieve(job.id)).status != "running":
        time.sleep(0.01)
    while client.fine_tuning.jobs.list_events(job.id, limit=1).data[0].type != "metrics":
        time.sleep(0.01)
    assert seen.estimated_finish is None or seen.estimated_finish >= seen.created_at
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    time.sleep(0.2)  # ten steps' time
    assert list(client.fine_tuning.jobs.list_events(job.id, limit=100)) == events
    assert events[0].message == "The job was cancelled."
    steps = [e for e in events if e.type == "metrics"]
    assert 0 < len(steps) < 900
    after = client.fine_tuning.jobs.retrieve(job.id)
    assert (after.status, after.fine_tuned_model, after.result_files) == ("cancelled", None, [])
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(job.id)
    assert not [m.id for m in client.models.list() if m.id.startswith("ft:")]


def test_stopping_the_server_fails_an_unfinished_job() -> None:
    with ReferenceServer({}) as other:
        api = openai.OpenAI(base_url=other.base_url, api_key="sk-test", max_retries=0)
        other.fine_tuning.options = FineTuningOptions(seconds_per_step=1.0)
        job = api.fine_tuning.jobs.create(training_file=upload(api, jsonl(TRAIN)), model="m")
    assert other.fine_tuning.wait(job.id, timeout=0) == "failed"
    assert "stopped" in other.fine_tuning.retrieve(job.id)["error"]["message"]


def invalid_json_at_line_3() -> bytes:
    return jsonl(TRAIN[:2]) + b"{not json\n" + jsonl(TRAIN[2:20])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (invalid_json_at_line_3(), "Line 3 is not valid JSON"),
        (jsonl([*TRAIN[:4], {"prompt": "x"}, *TRAIN[4:20]]), "Line 5 has no 'completion'"),
        (jsonl([*TRAIN[:4], {"prompt": "x", "completion": "  "}, *TRAIN[4:20]]), "Line 5"),
        (jsonl(TRAIN[:6]) + jsonl(chat_lines(10, seed=4)), "Line 7 is in the chat format"),
        (
            jsonl([*chat_lines(11, seed=4), {"messages": [{"role": "user", "content": "x"}]}]),
            "Line 12: the last message must be the assistant's",
        ),
        (jsonl(TRAIN[:9]), "has 9 example(s), but must have at least 10"),
        (jsonl([dict(line, completion=" sport") for line in TRAIN[:20]]), "one class"),
        (b"\xff\xfe\n" + jsonl(TRAIN[:20]), "Line 1 is not UTF-8"),
    ],
)
def test_a_bad_training_file_fails_the_job_saying_why(
    client: openai.OpenAI, data: bytes, problem: str
) -> None:
    job = finish(
        client,
        client.fine_tuning.jobs.create(training_file=upload(client, data), model="babbage-002").id,
    )
    assert job.status == "failed" and job.error is not None
    assert (job.error.code, job.error.param) == ("invalid_training_file", "training_file")
    assert problem in job.error.message
    assert job.fine_tuned_model is None and job.result_files == []
    newest = client.fine_tuning.jobs.list_events(job.id, limit=1).data[0]
    assert newest.level == "error" and problem in newest.message


def test_a_bad_validation_file_fails_the_job_naming_it(client: openai.OpenAI) -> None:
    job = fine_tune(client, validation_file=upload(client, jsonl(VALID[:3]) + b"[1, 2]\n"))
    assert job.status == "failed" and job.error is not None
    assert (job.error.code, job.error.param) == ("invalid_validation_file", "validation_file")
    assert "Line 4 must be a JSON object" in job.error.message


@pytest.mark.parametrize(
    ("arguments", "param"),
    [
        ({"training_file": None}, "training_file"),
        ({"training_file": "file-unknown"}, "training_file"),
        ({"validation_file": "file-unknown"}, "validation_file"),
        ({"model": ""}, "model"),
        ({"suffix": "a:b"}, "suffix"),
        ({"suffix": "x" * 65}, "suffix"),
        ({"seed": -1}, "seed"),
        ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
        ({"hyperparameters": {"batch_size": "big"}}, "hyperparameters.batch_size"),
        (
            {"hyperparameters": {"learning_rate_multiplier": 0}},
            "hyperparameters.learning_rate_multiplier",
        ),
        ({"hyperparameters": {"epochs": 2}}, "hyperparameters.epochs"),
        ({"method": {"type": "dpo"}}, "method.type"),
        (
            {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}},
            "hyperparameters",
        ),
        ({"integrations": [{"type": "wandb", "wandb": {"project": "p"}}]}, "integrations"),
    ],
)
def test_bad_job_requests_are_400s_naming_the_parameter(
    client: openai.OpenAI, arguments: dict[str, Any], param: str
) -> None:
    settings: dict[str, Any] = {
        "training_file": upload(client, jsonl(TRAIN[:20])),
        "model": "babbage-002",
        "hyperparameters": {"n_epochs": 1},
    }
    settings.update(arguments)
    settings = {key: value for key, value in settings.items() if value is not None}
    with pytest.raises(openai.BadRequestError) as error:  # sent as is, past the SDK's typing
        client.post("/fine_tuning/jobs", body=settings, cast_to=FineTuningJob)
    assert error.value.param == param
    assert client.fine_tuning.jobs.list().data == []


def test_a_batch_file_cannot_train_and_an_unknown_job_is_a_404(client: openai.OpenAI) -> None:
    batch_file = client.files.create(file=("in.jsonl", jsonl(TRAIN[:20])), purpose="batch")
    with pytest.raises(openai.BadRequestError) as error:
        client.fine_tuning.jobs.create(training_file=batch_file.id, model="babbage-002")
    assert "purpose" in error.value.message
    for call in (
        client.fine_tuning.jobs.retrieve,
        client.fine_tuning.jobs.cancel,
        client.fine_tuning.jobs.list_events,
        client.fine_tuning.jobs.checkpoints.list,
    ):
        with pytest.raises(openai.NotFoundError):
            call("ftjob-unknown")


# -- lists and models -----------------------------------------------------------------------


def test_jobs_are_listed_newest_first_in_pages(client: openai.OpenAI) -> None:
    training_file = upload(client, jsonl(TRAIN[:30]))
    created = [
        client.fine_tuning.jobs.create(
            training_file=training_file, model="babbage-002", suffix=f"n{n}"
        ).id
        for n in range(3)
    ]
    for job_id in created:
        finish(client, job_id)
    first = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in first.data] == created[::-1][:2] and first.has_more
    second = client.fine_tuning.jobs.list(limit=2, after=first.data[-1].id)
    assert [j.id for j in second.data] == created[:1] and not second.has_more
    assert [j.id for j in client.fine_tuning.jobs.list(limit=1)] == created[::-1]  # auto-paging
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.list(after="ftjob-unknown")


def test_models_list_the_fine_tuned_models_once_they_exist(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == []
    job = fine_tune(client, hyperparameters={"n_epochs": 2, "batch_size": 32})
    checkpoints = [
        c.fine_tuned_model_checkpoint for c in client.fine_tuning.jobs.checkpoints.list(job.id)
    ]
    listed = [m.id for m in client.models.list()]
    assert listed == [*checkpoints[::-1], job.fine_tuned_model]
    model = client.models.retrieve(job.fine_tuned_model or "")
    assert (model.id, model.owned_by) == (job.fine_tuned_model, "org-local")
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model=f"{job.fine_tuned_model}:ckpt-step-1", prompt="x")


def test_one_example_a_step_trains_every_step(client: openai.OpenAI) -> None:
    # how fast: benchmarks/p6_training.py (300 examples, 900 steps, target 3 s)
    job = fine_tune(client, hyperparameters={"n_epochs": 3, "batch_size": 1})
    assert job.status == "succeeded"
    assert [int(row["step"]) for row in result_rows(client, job)] == list(range(1, 901))
