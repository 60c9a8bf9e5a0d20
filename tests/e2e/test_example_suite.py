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


DEMO = ROOT / "example_suite" / "finetune_demo"


def test_the_fine_tuning_demo_replays_offline_with_its_job_and_checkpoints(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    cassettes = DEMO / "cassettes"
    committed = {p: p.read_bytes() for p in cassettes.rglob("*") if p.is_file()}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "example_suite/finetune_demo", "-p", "no:cacheprovider",
         "-q", f"--ft-report-dir={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    assert {p: p.read_bytes() for p in cassettes.rglob("*") if p.is_file()} == committed
    report = json.loads((tmp_path / "ftclass.json").read_text(encoding="utf-8"))
    ini = (DEMO / "pytest.ini").read_text(encoding="utf-8")
    job_id = next(line.split(" = ")[1] for line in ini.splitlines() if line.startswith("ft_job"))
    section = report["fine_tuning"]
    assert section["job"]["id"] == job_id and section["job"]["status"] == "succeeded"
    assert report["metadata"]["model_under_test"] == section["job"]["fine_tuned_model"]
    assert report["metadata"]["record_mode"] == "none" and not report["metadata"]["partial"]
    roles = Counter(m["role"] for m in report["models"])
    assert roles == {"under_test": 1, "comparison": 1, "checkpoint": len(section["checkpoints"])}
    assert len(section["checkpoints"]) >= 2 and all(c["evaluated"] for c in section["checkpoints"])
    assert sum(c["best"] for c in section["checkpoints"]) == 1
    assert len(section["result_file"]["rows"]) == section["final_metrics"]["train_loss"]["step"]
    assert not [c for c in report["cases"] if c["error"]]
    assert Counter(c["model"] for c in report["cases"]) == {
        m["model"]: 211 for m in report["models"]
    }
    assert report["gate"]["passed"]
    comparison = json.loads((tmp_path / "ftclass-compare.json").read_text(encoding="utf-8"))
    assert [pair["model_b"] for pair in comparison["pairs"]] == ["local@0.1"]
    html = (tmp_path / "ftclass.html").read_text(encoding="utf-8")
    assert 'id="fine-tuning"' in html and html.count('class="checkpoint-marker"') == 2 * len(
        section["checkpoints"]
    )
