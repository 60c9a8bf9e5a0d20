"""Record the fine-tuning demo again: fine-tune on a fresh local server, record the evaluation.

    python example_suite/finetune_demo/record.py

No key and no network: the job runs on the local reference server.

1. builds the data (``data/``, as ``conftest.py`` does);
2. starts a fresh :class:`~pytest_ftclass.reference.ReferenceServer` on 127.0.0.1;
3. runs ``ftclass finetune data/bbc_topic.train.jsonl --valid data/bbc_topic.cases.jsonl
   --model babbage-002 --suffix bbc --seed 7`` against it (``OPENAI_BASE_URL``);
4. writes the job's id into ``pytest.ini`` (``ft_job``): the server's ids depend only on
   the requests, so the same files give the same id and the line normally stays as it is;
5. deletes ``cassettes/`` and runs ``pytest --ft-record-mode=once`` here, which records
   the job, its result file and checkpoints, and every model's answers;
6. stops the server and prints how long each step took.

Commit ``cassettes/`` and ``pytest.ini``; ``pytest example_suite/finetune_demo`` then
replays it all offline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FINETUNE = [
    "finetune",
    "data/bbc_topic.train.jsonl",
    "--valid",
    "data/bbc_topic.cases.jsonl",
    "--model",
    "babbage-002",
    "--suffix",
    "bbc",
    "--seed",
    "7",
]
#: Any key does for the local server; it is redacted from what is recorded all the same.
KEY = "sk-ftclass-demo-key"


def main() -> int:
    from pytest_ftclass.reference import ReferenceServer

    sys.path.insert(0, str(HERE.parent))
    from build_data import build_example_data

    started = time.perf_counter()
    build_example_data(HERE / "data")
    with ReferenceServer({}) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY}
        tuned = time.perf_counter()
        finetune = subprocess.run(
            [sys.executable, "-m", "pytest_ftclass.cli", *FINETUNE],
            cwd=HERE,
            env=env,
            capture_output=True,
            text=True,
        )
        sys.stderr.write(finetune.stderr)
        if finetune.returncode != 0:
            print(f"record.py: ftclass finetune failed ({finetune.returncode})", file=sys.stderr)
            return 1
        job_id = re.search(r"^job: (\S+)$", finetune.stdout, re.MULTILINE)
        assert job_id is not None, finetune.stdout
        tuned = time.perf_counter() - tuned
        _set_job(job_id[1])
        shutil.rmtree(HERE / "cassettes", ignore_errors=True)
        recording = time.perf_counter()
        recorded = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "--ft-record-mode=once"],
            cwd=HERE,
            env=env,
        )  # fmt: skip
        recording = time.perf_counter() - recording
    print(
        f"record.py: job {job_id[1]}; fine-tuning {tuned:.1f} s, recording {recording:.1f} s, "
        f"{time.perf_counter() - started:.1f} s in all"
    )
    return recorded.returncode


def _set_job(job_id: str) -> None:
    """Write ``job_id`` as ``ft_job`` in pytest.ini, saying so when it changes."""
    ini = HERE / "pytest.ini"
    text = ini.read_text(encoding="utf-8")
    current = re.search(r"^ft_job = (\S+)$", text, re.MULTILINE)
    assert current is not None, "pytest.ini has no ft_job line"
    if current[1] != job_id:
        print(f"record.py: ft_job was {current[1]}, now {job_id} (pytest.ini)")
        ini.write_text(text.replace(current[0], f"ft_job = {job_id}"), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
