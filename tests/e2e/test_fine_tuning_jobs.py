"""``--ft-job`` and ``--ft-checkpoints`` against jobs that really ran on the reference server.

Jobs are created through the official client (or ``ftclass finetune``) on a
``ReferenceServer`` on 127.0.0.1; pytest runs in-process (pytester) with
``OPENAI_BASE_URL`` pointing at it, records, then replays with the server
stopped.  Every number the report shows is checked against what it is made of:
the result file as the API serves it, the per-case results in the report.
"""

from __future__ import annotations

import base64
import csv
import io
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from pytest_ftclass.reference import ReferenceServer
from pytest_ftclass.reference.fine_tuning import FineTuningOptions
from tests.e2e.test_reference_fine_tuning import jsonl, prompt_lines
from tests.helpers import files_under, read_report, sigint_handled, write_jsonl

CANARY_KEY = "sk-canary-jobs-0123456789abcdef"
COLUMNS = ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]


@pytest.fixture
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer({}) as running:
        yield running


@pytest.fixture
def client(server: ReferenceServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=CANARY_KEY, max_retries=0)


@pytest.fixture
def api_env(server: ReferenceServer, monkeypatch: pytest.MonkeyPatch) -> ReferenceServer:
    """The SDK's environment pointing at ``server``, as a user's shell would."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    return server


def run_job(client: openai.OpenAI, server: ReferenceServer, **settings: Any) -> Any:
    """Upload a training (and validation) file, run a job to its end; the final job."""
    train = settings.pop("train", prompt_lines(120, seed=1))
    valid = settings.pop("valid", prompt_lines(30, seed=2))
    arguments: dict[str, Any] = {
        "training_file": client.files.create(
            file=("train.jsonl", jsonl(train)), purpose="fine-tune"
        ).id,
        "model": "babbage-002",
        "suffix": "topics",
        "hyperparameters": {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 0.3},
        "seed": 7,
    }
    if valid:
        arguments["validation_file"] = client.files.create(
            file=("valid.jsonl", jsonl(valid)), purpose="fine-tune"
        ).id
    arguments.update(settings)
    job = client.fine_tuning.jobs.create(**arguments)
    server.fine_tuning.wait(job.id)
    return client.fine_tuning.jobs.retrieve(job.id)


def result_csv(client: openai.OpenAI, job: Any) -> str:
    """The job's result file as the API serves it, decoded as the cookbook does."""
    return base64.b64decode(client.files.content(job.result_files[0]).content).decode()


def cases_file(path: Path, n: int = 45, seed: int = 3) -> Path:
    lines = [{"id": f"case-{i}", **line} for i, line in enumerate(prompt_lines(n, seed, noise=0.0))]
    return write_jsonl(path, lines)


def predictions(report: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return sorted((c["model"], c["case_id"], c["predicted"]) for c in report["cases"])


# -- the "done when" --------------------------------------------------------------


def test_finetune_then_evaluate_the_job_and_every_checkpoint_then_replay_with_the_server_stopped(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI, api_env: Any
) -> None:
    from scipy.stats import binomtest  # the oracles, imported only here
    from sklearn.metrics import f1_score

    train = write_jsonl(pytester.path / "data" / "train.jsonl", prompt_lines(120, seed=1))
    valid = write_jsonl(pytester.path / "data" / "valid.jsonl", prompt_lines(30, seed=2))
    settings = "--model babbage-002 --suffix topics --n-epochs 3 --batch-size 8"
    settings += " --learning-rate-multiplier 0.3 --seed 7"
    finetune = ftclass(
        "finetune", str(train), "--valid", str(valid), *settings.split(), env=os.environ.copy()
    )
    assert finetune.returncode == 0, finetune.stderr
    lines = dict(line.split(": ", 1) for line in finetune.stdout.splitlines())
    job_id, model = lines["job"], lines["fine-tuned model"]
    job = client.fine_tuning.jobs.retrieve(job_id)
    assert job.status == "succeeded" and job.fine_tuned_model == model
    assert "succeeded: step 45/45" in finetune.stderr  # the progress line's last word
    checkpoints = [
        c.fine_tuned_model_checkpoint for c in client.fine_tuning.jobs.checkpoints.list(job_id).data
    ]
    assert len(checkpoints) == 3
    cases_file(pytester.path / "held_out.cases.jsonl")
    command = [
        "--ft-job",
        job_id,
        "--ft-checkpoints",
        "--ft-record-mode",
        "once",
        "-p",
        "no:cacheprovider",
    ]

    recorded = pytester.runpytest(*command, "--ft-min", "accuracy=0.5")
    assert recorded.ret == 0, recorded.stdout.str()
    first = read_report(pytester)
    asked = [r for r in server.requests if r.path == "/v1/completions"]
    assert {r.model for r in asked} == {model, *checkpoints}

    # the model under test is the job's; every checkpoint answered every case, never gated
    assert first["metadata"]["model_under_test"] == model
    assert first["metadata"]["fine_tuning_job"] == job_id
    roles = {m["model"]: m["role"] for m in first["models"]}
    assert roles == {model: "under_test", **{c: "checkpoint" for c in checkpoints}}
    by_model: dict[str, list[dict[str, Any]]] = {}
    for case in first["cases"]:
        by_model.setdefault(case["model"], []).append(case)
    assert {m: len(cs) for m, cs in by_model.items()} == {m: 45 for m in roles}
    assert first["gate"]["passed"]
    assert not [v for v in first["gate"]["verdicts"] if "ckpt-step" in v["scope"]]

    section = first["fine_tuning"]
    assert section["job"]["id"] == job_id and section["job"]["model"] == "babbage-002"
    assert section["job"]["hyperparameters"] == {
        "n_epochs": 3,
        "batch_size": 8,
        "learning_rate_multiplier": 0.3,
    }
    assert section["job"]["trained_tokens"] == job.trained_tokens > 0
    assert section["job"]["finished_at"] >= section["job"]["created_at"]
    assert [c["model"] for c in section["checkpoints"]] == checkpoints[::-1]  # oldest first
    for checkpoint in section["checkpoints"]:
        own = by_model[checkpoint["model"]]
        right = sum(c["predicted"] == c["expected"] for c in own)
        assert checkpoint["evaluation"]["accuracy"] == right / len(own)
        labels = sorted(own[0]["labels"])
        macro_f1 = f1_score(
            [c["expected"] for c in own], [c["predicted"] for c in own], labels=labels,
            average="macro", zero_division=0,
        )  # fmt: skip
        assert math.isclose(checkpoint["evaluation"]["macro_f1"], macro_f1, rel_tol=1e-9)
        final = {c["case_id"]: c["predicted"] == c["expected"] for c in by_model[model]}
        final_only = sum(final[c["case_id"]] and c["predicted"] != c["expected"] for c in own)
        ckpt_only = sum(not final[c["case_id"]] and c["predicted"] == c["expected"] for c in own)
        vs_final = checkpoint["vs_final"]
        assert (vs_final["final_only"], vs_final["checkpoint_only"]) == (final_only, ckpt_only)
        n = final_only + ckpt_only
        expected_p = binomtest(final_only, n, 0.5).pvalue if n else 1.0
        assert math.isclose(vs_final["p_value"], expected_p, rel_tol=1e-9)
    best = max(
        section["checkpoints"],
        key=lambda c: (c["evaluation"]["macro_f1"], c["evaluation"]["accuracy"], c["step"]),
    )
    assert [c["best"] for c in section["checkpoints"]] == [
        c is best for c in section["checkpoints"]
    ]
    assert section["best_checkpoint"]["step"] == best["step"]
    assert section["checkpoints"][0]["evaluation"]["accuracy"] < section["final_model"]["accuracy"]

    # the curves are the result file's rows, as the API serves them
    served = list(csv.reader(io.StringIO(result_csv(client, job))))
    assert served[0] == section["result_file"]["columns"] == COLUMNS
    assert section["result_file"]["encoding"] == "base64"
    assert len(section["result_file"]["rows"]) == len(served) - 1 == 45
    for row, stored in zip(served[1:], section["result_file"]["rows"], strict=True):
        assert stored == [int(row[0]), *(float(v) if v else None for v in row[1:])]
    for column in COLUMNS[1:]:
        index = COLUMNS.index(column)
        points = [(int(r[0]), float(r[index])) for r in served[1:] if r[index]]
        curve = section["curves"][column]
        assert list(zip(curve["steps"], curve["raw"], strict=True)) == points
        assert len(curve["smoothed"]) == len(points)
    html = (pytester.path / "reports" / "ftclass.html").read_text(encoding="utf-8")
    assert 'data-chart="loss"' in html and 'data-chart="accuracy"' in html
    assert html.count('class="checkpoint-marker"') == 2 * len(checkpoints)
    markdown = (pytester.path / "reports" / "ftclass.md").read_text(encoding="utf-8")
    assert f"## Fine-tuning job {job_id}" in markdown and "**best**" in markdown
    recorded.stdout.fnmatch_lines(
        [
            f"fine-tuning job {job_id}: babbage-002 → {model}, 45 steps",
            "*checkpoint step 15: accuracy*",
        ]
    )

    # nothing written holds the key
    for path in files_under(pytester.path / "cassettes") + files_under(pytester.path / "reports"):
        assert CANARY_KEY not in path.read_text(encoding="utf-8"), path
    job_cassettes = files_under(pytester.path / "cassettes" / "fine-tuning-jobs")
    assert [p.name.split("-")[0] for p in job_cassettes] == ["ftjob"]

    # the same command with the server stopped replays it all: same answers, same section
    server.stop()
    cassettes = {p: p.read_bytes() for p in files_under(pytester.path / "cassettes")}
    for again in (command, ["--ft-job", job_id, "--ft-checkpoints", "-p", "no:cacheprovider"]):
        replayed = pytester.runpytest(*again, "--ft-min", "accuracy=0.5")
        assert replayed.ret == 0, replayed.stdout.str()
        report = read_report(pytester)
        assert predictions(report) == predictions(first)
        assert {k: v for k, v in report["fine_tuning"].items()} == section
    assert {p: p.read_bytes() for p in files_under(pytester.path / "cassettes")} == cassettes


def test_replay_with_no_key_and_no_base_url(
    pytester: pytest.Pytester,
    server: ReferenceServer,
    client: openai.OpenAI,
    api_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = run_job(client, server)
    cases_file(pytester.path / "held_out.cases.jsonl", n=12)
    assert pytester.runpytest("--ft-job", job.id, "--ft-record-mode", "once").ret == 0
    server.stop()
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    result = pytester.runpytest("--ft-job", job.id)
    assert result.ret == 0
    assert read_report(pytester)["fine_tuning"]["job"]["id"] == job.id


# -- result files ----------------------------------------------------------------------


def test_a_base64_result_file_of_309_rows_without_validation_is_drawn_and_stored_whole(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI, api_env: Any
) -> None:
    job = run_job(
        client,
        server,
        train=prompt_lines(103, seed=4),
        valid=None,
        hyperparameters={"n_epochs": 3, "batch_size": 1},
    )
    raw = client.files.content(job.result_files[0]).content
    served = list(csv.reader(io.StringIO(base64.b64decode(raw, validate=True).decode())))
    assert len(served) == 310 and all(row[3:] == ["", ""] for row in served[1:])
    cases_file(pytester.path / "held_out.cases.jsonl", n=9)
    assert pytester.runpytest("--ft-job", job.id, "--ft-record-mode", "once").ret == 0

    section = read_report(pytester)["fine_tuning"]
    rows = section["result_file"]["rows"]
    assert len(rows) == 309 and section["result_file"]["encoding"] == "base64"
    assert rows == [[int(r[0]), float(r[1]), float(r[2]), None, None] for r in served[1:]]
    assert sorted(section["curves"]) == ["train_accuracy", "train_loss"]
    assert section["final_metrics"]["train_loss"] == {"step": 309, "value": float(served[-1][1])}

    html = (pytester.path / "reports" / "ftclass.html").read_text(encoding="utf-8")
    chart = html[html.index('data-chart="loss"') :]
    chart = chart[: chart.index("</svg>")]
    x0, x1 = (float(v) for v in attribute(chart, "data-x-domain").split())
    y0, y1 = (float(v) for v in attribute(chart, "data-y-domain").split())
    left, top, width, height = (float(v) for v in attribute(chart, "data-plot").split())
    raw_line = chart[chart.index('data-metric="train_loss" data-kind="raw"') :]
    points = [p.split(",") for p in attribute(raw_line, "points").split()]
    assert len(points) == 309
    for (px, py), row in zip(points, served[1:], strict=True):
        step = x0 + (float(px) - left) / width * (x1 - x0)
        value = y0 + (top + height - float(py)) / height * (y1 - y0)
        # coordinates are written to 0.01 px: what they give back is that close to the CSV
        assert abs(step - int(row[0])) <= 0.006 * (x1 - x0) / width
        assert abs(value - float(row[1])) <= 0.006 * (y1 - y0) / height
    assert "No values in the result file for: valid_loss, valid_mean_token_accuracy" in html


def attribute(markup: str, name: str) -> str:
    """The value of the first attribute ``name`` in ``markup``."""
    start = markup.index(f' {name}="') + len(name) + 3
    return markup[start : markup.index('"', start)]


def test_checkpoints_listed_over_several_pages_are_all_read_and_replayed(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI, api_env: Any
) -> None:
    job = run_job(
        client,
        server,
        train=prompt_lines(30, seed=5),
        valid=None,
        hyperparameters={"n_epochs": 12, "batch_size": 10},
    )
    listed = client.fine_tuning.jobs.checkpoints.list(job.id)
    assert len(listed.data) == 10 and listed.has_more  # the API's page: more than one
    cases_file(pytester.path / "held_out.cases.jsonl", n=6)
    assert pytester.runpytest("--ft-job", job.id, "--ft-record-mode", "once").ret == 0
    server.stop()
    assert pytester.runpytest("--ft-job", job.id).ret == 0
    section = read_report(pytester)["fine_tuning"]
    assert [c["step"] for c in section["checkpoints"]] == [3 * n for n in range(1, 13)]
    assert not any(c["evaluated"] for c in section["checkpoints"])  # no --ft-checkpoints


# -- jobs that cannot be evaluated ---------------------------------------------------------


def test_a_failed_job_is_a_usage_error_with_its_status_and_message_before_any_case(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI, api_env: Any
) -> None:
    one_class = [{"prompt": f"goal {i}", "completion": " sport"} for i in range(12)]
    job = run_job(client, server, train=one_class, valid=None)
    assert job.status == "failed"
    cases_file(pytester.path / "held_out.cases.jsonl", n=6)
    server.reset_log()
    result = pytester.runpytest("--ft-job", job.id, "--ft-record-mode", "once")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: pytest-ftclass: --ft-job {job.id}: job {job.id} has status 'failed', "
            f"not 'succeeded': {job.error.message}* ({job.error.code}); no case was asked"
        ]
    )
    assert [r.path for r in server.requests] == [f"/v1/fine_tuning/jobs/{job.id}"]
    # the failure is on record: the replay says the same, with no server
    server.stop()
    replayed = pytester.runpytest("--ft-job", job.id)
    assert replayed.ret == pytest.ExitCode.USAGE_ERROR
    replayed.stderr.fnmatch_lines([f"*has status 'failed'*{job.error.code}*"])


def test_a_running_job_is_a_usage_error_and_is_not_recorded(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI, api_env: Any
) -> None:
    server.fine_tuning.options = FineTuningOptions(seconds_per_step=0.5)
    train = client.files.create(
        file=("t.jsonl", jsonl(prompt_lines(60, seed=1))), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(training_file=train.id, model="babbage-002")
    cases_file(pytester.path / "held_out.cases.jsonl", n=6)
    result = pytester.runpytest("--ft-job", job.id, "--ft-record-mode", "once")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--ft-job ftjob-*has status '*', not 'succeeded': it is still "
            "running; evaluate it once it has succeeded*"
        ]
    )
    assert not files_under(pytester.path / "cassettes")
    client.fine_tuning.jobs.cancel(job.id)


def test_a_job_not_in_the_cassettes_says_how_to_record_it(pytester: pytest.Pytester) -> None:
    cases_file(pytester.path / "held_out.cases.jsonl", n=3)
    result = pytester.runpytest("--ft-job", "ftjob-nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--ft-job ftjob-nowhere: cassette */fine-tuning-jobs/ftjob-nowhere-*.json does not "
            "exist (record mode 'none'); record it by running pytest with --ft-record-mode=once*"
        ]
    )


def test_option_combinations_that_cannot_work_are_usage_errors(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--ft-checkpoints")
    result.stderr.fnmatch_lines(["*--ft-checkpoints needs --ft-job=JOB_ID*"])
    result = pytester.runpytest("--ft-job", "ftjob-x", "--ft-azure-deployment", "d")
    result.stderr.fnmatch_lines(["*--ft-job does not work with --ft-azure-deployment*"])


def test_ft_model_naming_another_model_than_the_job_is_a_usage_error(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI, api_env: Any
) -> None:
    job = run_job(client, server, valid=None)
    result = pytester.runpytest(
        "--ft-job", job.id, "--ft-model", "ft:babbage-002:o::x", "--ft-record-mode", "once"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--ft-model ft:babbage-002:o::x and --ft-job {job.id} (model "
            f"{job.fine_tuned_model}) name two models under test*"
        ]
    )


# -- pytest-xdist ------------------------------------------------------------------------


def test_under_xdist_the_job_is_read_once_and_the_results_are_those_of_one_process(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI, api_env: Any
) -> None:
    pytest.importorskip("xdist")
    job = run_job(client, server)
    cases_file(pytester.path / "held_out.cases.jsonl", n=30)
    command = ["--ft-job", job.id, "--ft-checkpoints", "-p", "no:cacheprovider"]
    single = pytester.runpytest(*command, "--ft-record-mode", "once", "-p", "no:xdist")
    assert single.ret == 0
    expected = read_report(pytester)
    server.reset_log()
    parallel = pytester.runpytest(*command, "--ft-record-mode", "once", "-n", "2")
    assert parallel.ret == 0, parallel.stdout.str()
    assert [r.path for r in server.requests] == []  # all of it was on record
    report = read_report(pytester)
    assert predictions(report) == predictions(expected)
    assert report["fine_tuning"] == expected["fine_tuning"]
    server.stop()
    replayed = pytester.runpytest(*command, "-n", "2")
    assert replayed.ret == 0
    assert predictions(read_report(pytester)) == predictions(expected)


# -- ftclass finetune ---------------------------------------------------------------------


def ftclass(
    *arguments: str, env: dict[str, str], **options: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_ftclass.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        **options,
    )


def test_finetune_lint_errors_stop_it_before_anything_is_uploaded(
    tmp_path: Path, server: ReferenceServer, api_env: Any
) -> None:
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"prompt": "a goal", "completion": " sport"}\nnot json\n', encoding="utf-8")
    done = ftclass("finetune", str(bad), "--model", "babbage-002", env=os.environ.copy())
    assert done.returncode == 1
    assert "lint error(s): nothing was uploaded (fix them, or pass --no-lint)" in done.stderr
    assert server.requests == []


def test_finetune_of_a_job_that_fails_exits_1_with_the_jobs_error(
    tmp_path: Path, server: ReferenceServer, api_env: Any
) -> None:
    one_class = write_jsonl(
        tmp_path / "train.jsonl",
        [{"prompt": f"goal {i}", "completion": " sport"} for i in range(12)],
    )
    done = ftclass(
        "finetune", str(one_class), "--model", "babbage-002", "--no-lint", env=os.environ.copy()
    )
    assert done.returncode == 1, done.stderr
    job_id = done.stdout.split("job: ", 1)[1].split()[0]
    (job,) = server.fine_tuning.list_jobs({})["data"]
    assert job["id"] == job_id and job["status"] == "failed"
    assert f"ftclass finetune: job {job_id} failed: {job['error']['message']}" in done.stderr
    assert "fine-tuned model" not in done.stdout


def test_finetune_without_a_key_or_a_model_says_what_is_missing(
    tmp_path: Path, server: ReferenceServer
) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", prompt_lines(12, seed=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    done = ftclass("finetune", str(train), "--model", "babbage-002", env=env)
    assert done.returncode == 2 and "OPENAI_API_KEY is not set" in done.stderr
    done = ftclass("finetune", str(train), env={**env, "OPENAI_API_KEY": "sk-x"})
    assert done.returncode == 2 and "--model BASE is needed" in done.stderr


def _start_finetune(train: Path, server: ReferenceServer) -> subprocess.Popen[str]:
    """``ftclass finetune TRAIN`` against ``server``, its output piped."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_ftclass.cli",
            "finetune",
            str(train),
            "--model",
            "babbage-002",
            "--base-url",
            server.base_url,
            "--no-lint",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def test_ctrl_c_leaves_the_job_running_and_says_how_to_follow_or_cancel_it(
    tmp_path: Path, server: ReferenceServer, api_env: Any
) -> None:
    import signal

    server.fine_tuning.options = FineTuningOptions(seconds_per_step=0.2)
    train = write_jsonl(tmp_path / "train.jsonl", prompt_lines(60, seed=1))
    with sigint_handled():  # the Ctrl-C below reaches it even if this process ignores SIGINT
        process = _start_finetune(train, server)
    assert process.stdout is not None
    job_id = process.stdout.readline().removeprefix("job: ").strip()
    deadline = time.monotonic() + 30
    while server.fine_tuning.retrieve(job_id)["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert f"interrupted; job {job_id} keeps running" in err
    assert f"follow it: ftclass finetune --follow {job_id}" in err
    assert f"cancel it: ftclass finetune --cancel {job_id}" in err
    assert server.fine_tuning.retrieve(job_id)["status"] == "running"

    cancelled = ftclass("finetune", "--cancel", job_id, env=os.environ.copy())
    assert cancelled.returncode == 0 and f"job {job_id}: cancelled" in cancelled.stdout
    followed = ftclass("finetune", "--follow", job_id, env=os.environ.copy())
    assert followed.returncode == 1 and f"job {job_id} cancelled" in followed.stderr


def test_the_progress_line_shows_the_step_metrics_of_the_events(
    tmp_path: Path, server: ReferenceServer, api_env: Any
) -> None:
    server.fine_tuning.options = FineTuningOptions(seconds_per_step=0.02)
    train = write_jsonl(tmp_path / "train.jsonl", prompt_lines(40, seed=1))
    valid = write_jsonl(tmp_path / "valid.jsonl", prompt_lines(10, seed=2))
    done = ftclass(
        "finetune",
        str(train),
        "--valid",
        str(valid),
        "--model",
        "babbage-002",
        "--n-epochs",
        "2",
        "--batch-size",
        "4",
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.split("job: ", 1)[1].split()[0]
    events = server.fine_tuning.events(job_id, {"limit": "1"})["data"]
    last = events[0]
    assert last["message"] == "The job has successfully completed"
    final_line = [
        line for line in done.stderr.splitlines() if line.startswith(f"{job_id} succeeded")
    ]
    metric = {name: final_metric(server, job_id, name) for name in METRIC_EVENTS}
    assert final_line == [
        f"{job_id} succeeded: step 20/20 train_loss {metric['train_loss']:.4g}"
        f" train_accuracy {metric['train_mean_token_accuracy']:.4g}"
        f" valid_loss {metric['valid_loss']:.4g}"
        f" valid_accuracy {metric['valid_mean_token_accuracy']:.4g}"
    ]
    assert "Checkpoint created at step 10" in done.stderr


METRIC_EVENTS = (
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
)


def final_metric(server: ReferenceServer, job_id: str, name: str) -> float:
    """The value of ``name`` in the job's last ``metrics`` event that has it."""
    events = server.fine_tuning.events(job_id, {"limit": "100"})["data"]
    return next(e["data"][name] for e in events if e["type"] == "metrics" and name in e["data"])


# -- hostile servers ------------------------------------------------------------------------


def test_a_server_echoing_the_key_into_the_jobs_answers_leaves_it_nowhere(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.faults import FaultProxy

    job = run_job(client, server)
    cases_file(pytester.path / "held_out.cases.jsonl", n=6)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    with FaultProxy(server.base_url) as proxy:
        proxy.add("echo_credentials")  # every answer: the key in a header and a "debug" field
        monkeypatch.setenv("OPENAI_BASE_URL", proxy.base_url)
        result = pytester.runpytest(
            "--ft-job", job.id, "--ft-checkpoints", "--ft-record-mode", "once"
        )
        assert result.ret == 0, result.stdout.str()
        assert any("/fine_tuning/jobs/" in entry.path for entry in proxy.log)
    written = files_under(pytester.path / "cassettes") + files_under(pytester.path / "reports")
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert CANARY_KEY not in text and CANARY_KEY.removeprefix("sk-") not in text, path
    assert read_report(pytester)["fine_tuning"]["job"]["id"] == job.id


def test_a_server_error_on_the_job_is_a_usage_error_saying_so(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.faults import FaultProxy

    job = run_job(client, server, valid=None)
    cases_file(pytester.path / "held_out.cases.jsonl", n=3)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    with FaultProxy(server.base_url) as proxy:
        proxy.add("server_error")
        monkeypatch.setenv("OPENAI_BASE_URL", proxy.base_url)
        result = pytester.runpytest(
            "--ft-job", job.id, "--ft-record-mode", "once", "--ft-max-retries", "1"
        )
        assert proxy.faults() == ["server_error", "server_error"]  # one retry, then no more
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    message = f"--ft-job {job.id}: HTTP 500 server_error: The server had an error."
    result.stderr.fnmatch_lines([f"ERROR: pytest-ftclass: {message}"])
    assert not files_under(pytester.path / "cassettes")


def test_a_result_file_served_as_plain_csv_is_read_too(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI, api_env: Any
) -> None:
    import dataclasses

    job = run_job(client, server)
    plain = result_csv(client, job).encode()
    (file_id,) = job.result_files
    store = server.files._files  # the server now serves the CSV as it is, not base64-encoded
    store[file_id] = dataclasses.replace(store[file_id], data=plain)
    assert client.files.content(file_id).content == plain
    cases_file(pytester.path / "held_out.cases.jsonl", n=3)
    assert pytester.runpytest("--ft-job", job.id, "--ft-record-mode", "once").ret == 0
    server.stop()
    assert pytester.runpytest("--ft-job", job.id).ret == 0
    result_file = read_report(pytester)["fine_tuning"]["result_file"]
    assert result_file["encoding"] == "plain" and len(result_file["rows"]) == 45


def test_a_job_read_that_fails_half_way_records_nothing(
    pytester: pytest.Pytester, server: ReferenceServer, client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.faults import FaultProxy

    job = run_job(client, server, valid=None)
    cases_file(pytester.path / "held_out.cases.jsonl", n=3)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    command = ["--ft-job", job.id, "--ft-record-mode", "once", "--ft-max-retries", "0"]
    with FaultProxy(server.base_url) as proxy:
        proxy.add("pass", times=2)  # the job and its result file
        proxy.add("server_error")  # then the checkpoints
        monkeypatch.setenv("OPENAI_BASE_URL", proxy.base_url)
        failed = pytester.runpytest(*command)
        assert [entry.path.split("?")[0].rsplit("/", 1)[1] for entry in proxy.log] == [
            job.id, "content", "checkpoints"]  # fmt: skip
    assert failed.ret == pytest.ExitCode.USAGE_ERROR
    assert not files_under(pytester.path / "cassettes")  # whole or not at all
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    assert pytester.runpytest(*command).ret == 0
    assert read_report(pytester)["fine_tuning"]["checkpoints"]
