"""Ctrl-C and SIGKILL while recording: cassettes stay valid or absent; a rerun completes them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_ftclass.recording.names import cassette_path
from tests.faults import FaultProxy
from tests.helpers import read_report, sigint_handled, validation_lines, write_jsonl

MODEL = "ft:babbage-002:acme::abc123"
CASES = 48  # 2 windows: 16 cases (batch 2 × concurrency 2 × 4 rounds), then 32


@pytest.fixture
def slow_proxy(reference_server) -> Iterator[FaultProxy]:
    with FaultProxy(reference_server.base_url, slow_s=0.3) as proxy:
        proxy.add("slow")  # every request waits 0.3 s
        yield proxy


def start_run(directory: Path, proxy: FaultProxy) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    with sigint_handled():
        return _popen(directory, proxy, env)


def _popen(directory: Path, proxy: FaultProxy, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            f"--ft-model={MODEL}",
            f"--ft-base-url={proxy.base_url}",
            "--ft-record-mode=once",
            "--ft-batch-size=2",
            "--ft-concurrency=2",
        ],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def cassette_files(directory: Path) -> list[Path]:
    return sorted((directory / "cassettes").rglob("*.json"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_interrupted_recording_leaves_valid_cassettes_and_a_rerun_completes_them(
    pytester: pytest.Pytester, slow_proxy: FaultProxy, sig: signal.Signals
) -> None:
    write_jsonl(pytester.path / "valid.cases.jsonl", validation_lines(per_class=CASES // 3))
    cassette = cassette_path(
        pytester.path / "cassettes", "valid.cases.jsonl", "ft:babbage-002:acme::abc123"
    )
    run = start_run(pytester.path, slow_proxy)
    wait_for(cassette)  # the first window is recorded
    time.sleep(0.5)  # its items run (the second window takes 2.4 s to ask for)
    run.send_signal(sig)
    output, _ = run.communicate(timeout=60)

    recorded = json.loads(cassette.read_text(encoding="utf-8"))["interactions"]
    assert 0 < len(recorded) < CASES // 2, output  # partial, and valid JSON
    assert cassette.with_name(cassette.name + ".incomplete").exists()
    if sig == signal.SIGINT:
        assert run.returncode == pytest.ExitCode.INTERRUPTED
        assert "PARTIAL" in output
        report = read_report(pytester)
        assert report["metadata"]["partial"] is True
        assert 0 < len(report["cases"]) < CASES

    slow_proxy.clear()
    rerun = start_run(pytester.path, slow_proxy)
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output
    assert f"{CASES} passed" in output
    assert len(json.loads(cassette.read_text())["interactions"]) == CASES // 2
    assert not cassette.with_name(cassette.name + ".incomplete").exists()
    for path in cassette_files(pytester.path):
        json.loads(path.read_text(encoding="utf-8"))  # every cassette parses
