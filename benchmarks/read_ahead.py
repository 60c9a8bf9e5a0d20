"""Read-ahead or not: the whole pytest run, live, with and without it, in alternating rounds.

The plugin can ask a group's remaining cases in the background while the items
whose answers are in run (``ft_read_ahead``, on by default), or fetch window by
window, each item waiting for its window.  It is kept only if it saves at
least 15 % of the whole run at 100 ms latency.  Both arms record into a fresh
cassette directory from the local reference model with ``latency_s``::

    python benchmarks/read_ahead.py                 # N=1000, L=0.1 s, 5 rounds, both endpoints
    python benchmarks/read_ahead.py -n 300 --rounds 3
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import (
    CHAT_MODEL,
    COMPLETIONS_MODEL,
    chat_lines,
    completion_lines,
    machine_note,
    median,
    print_table,
    run_pytest,
    train_reference,
    write_jsonl,
)

SAVING_TARGET = 0.15


def whole_run(suite: Path, model: str, base_url: str, read_ahead: bool) -> float:
    cassettes = Path(tempfile.mkdtemp(prefix="cassettes-", dir=suite))
    run = run_pytest(
        suite,
        f"--ft-model={model}",
        f"--ft-base-url={base_url}",
        "--ft-record-mode=all",
        f"--ft-cassette-dir={cassettes}",
        "-o",
        f"ft_read_ahead={'true' if read_ahead else 'false'}",
    )
    shutil.rmtree(cassettes, ignore_errors=True)
    if run.returncode != 0:
        print(f"  exit {run.returncode}: {run.tail}")
    return run.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    from pytest_ftclass.reference import ReferenceServer

    root = Path(tempfile.mkdtemp(prefix="ftclass-read-ahead-"))
    print(machine_note())
    suites = {
        "completions": (write_jsonl(root / "c" / "c.cases.jsonl", completion_lines(args.n, 2)),
                        COMPLETIONS_MODEL),
        "chat": (write_jsonl(root / "h" / "h.cases.jsonl", chat_lines(args.n, 2)), CHAT_MODEL),
    }  # fmt: skip
    for path, _ in suites.values():
        (path.parent / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    classifier = train_reference(root)
    rows = []
    try:
        with ReferenceServer(lambda _model: classifier, latency_s=args.latency) as server:
            for endpoint, (path, model) in suites.items():
                times: dict[bool, list[float]] = {True: [], False: []}
                for round_ in range(args.rounds):
                    for read_ahead in (round_ % 2 == 0, round_ % 2 == 1):  # alternate who starts
                        times[read_ahead].append(
                            whole_run(path.parent, model, server.base_url, read_ahead)
                        )
                on, off = median(times[True]), median(times[False])
                saving = 1 - on / off
                rows.append([endpoint, args.n, on, off, f"{saving:.0%}", saving >= SAVING_TARGET])
                print(f"  {endpoint}: on {times[True]} off {times[False]}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(machine_note())
    print_table(
        f"read-ahead, whole pytest run, L={args.latency} s, median of {args.rounds} each",
        ["endpoint", "N", "on s", "off s", "saving", f"≥ {SAVING_TARGET:.0%}"],
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
