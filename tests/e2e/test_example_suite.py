"""The README's first command: the example suite runs offline from its cassettes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_example_suite_replays_offline_and_writes_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    cassettes = ROOT / "example_suite" / "cassettes"
    committed = {p: p.read_bytes() for p in cassettes.rglob("*") if p.is_file()}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "example_suite",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--ft-report-dir={tmp_path}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    # the committed cassettes (under the older names) replay as they are: nothing written
    assert {p: p.read_bytes() for p in cassettes.rglob("*") if p.is_file()} == committed
    report = json.loads((tmp_path / "ftclass.json").read_text(encoding="utf-8"))
    assert (tmp_path / "ftclass.html").is_file()
    assert report["metadata"]["record_mode"] == "none"
    cases = report["cases"]
    assert not [c for c in cases if c["error"]]
    by_task = Counter((c["source"], c["model"]) for c in cases)
    assert by_task["data/bbc_topic.cases.jsonl", "local"] >= 200
    assert by_task["data/bbc_topic_chat.cases.jsonl", "local"] == 60
    assert by_task["data/bbc_topic_chat.cases.jsonl", "local@0.1"] == 60
    assert {c["endpoint"] for c in cases} == {"completions", "chat"}
    binary = [c for c in cases if c["source"] == "data/bbc_sport.valid.csv"]
    assert {c["expected"] for c in binary} == {"sport", "other"}
    assert report["gate"]["configured"] and report["gate"]["passed"]
    comparison = json.loads((tmp_path / "ftclass-compare.json").read_text(encoding="utf-8"))
    (pair,) = comparison["pairs"]
    assert (pair["model_a"], pair["model_b"]) == ("local", "local@0.1")
    assert {s["source"] for s in pair["sources"]} == {
        "data/bbc_topic.cases.jsonl",
        "data/bbc_topic_chat.cases.jsonl",
    }
    # every task's accuracy is what its own cases say
    for task in report["tasks"]:
        own = [c for c in cases if f"{c['source']} @ {c['model']}" == task["task"]]
        right = sum(c["expected"] == c["predicted"] for c in own)
        assert task["metrics"]["accuracy"] == right / len(own)
