"""P1: replaying N cases from cassettes against bare pytest running N trivial tests.

Targets: replaying 10,000 cases takes at most 1.1 × the time bare pytest takes
for ``@pytest.mark.parametrize("i", range(10000)) def test(i): pass``, and the
pytest process peaks at most 1.2 × bare pytest's memory (``VmHWM``; no helper
process is started).

The script writes an N-case Completions suite to a temporary directory, records
it once against the local reference model (``ReferenceServer``), stops the
server, then times pytest subprocesses, ``--repeat`` rounds of:

- ``bare pytest``: the parametrised no-op test;
- ``replay``: the suite replayed (``--ft-record-mode=none``), reports written;
- ``replay, no report``: the same with ``-o ft_report=false``, so the
  difference is the time spent writing the JSON, HTML and Markdown reports.

The runs of one round follow each other, so a busy spell of the machine
slows all of them.  The figures are the wall times a user waits.  The subprocesses cache compiled
modules as Python does by default, even where the environment sets
``PYTHONDONTWRITEBYTECODE`` (``--no-bytecode-cache`` keeps it).
``--plain-vcrpy K`` adds K replays through vcrpy's own ``Cassette``
(``-p plain_vcrpy``), whose lookups scan every interaction.  ``--against
PYTHON`` adds, in the same rounds, a replay by the pytest-ftclass installed in
another virtualenv: an earlier commit, for a before/after figure::

    git worktree add /tmp/before <commit> && python3 -m venv /tmp/before/.venv
    /tmp/before/.venv/bin/pip install -e "/tmp/before[dev]"
    python benchmarks/p1_replay.py --repeat 5 --against /tmp/before/.venv/bin/python

Usage::

    python benchmarks/p1_replay.py            # 10,000 cases, 3 rounds
    python benchmarks/p1_replay.py --quick    # 1,000 cases
    python benchmarks/p1_replay.py -n 5000 --repeat 5 --plain-vcrpy 1

The recording uses ``--ft-record-mode=new_episodes`` on a fresh directory
(equivalent to ``once`` for a cassette that does not exist).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import _common
from _common import (
    COMPLETIONS_MODEL,
    Run,
    bytecode_note,
    machine_note,
    median,
    print_table,
    run_pytest,
    train_reference,
    verdict,
    write_bare_suite,
    write_suite,
)

TARGET_RATIO = 1.1
TARGET_MEMORY = 1.2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="number of cases (default 10000)")
    parser.add_argument("--quick", action="store_true", help="1,000 cases")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of timed runs")
    parser.add_argument(
        "--plain-vcrpy", type=int, default=0, help="replays through vcrpy's own Cassette"
    )
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE as the environment sets it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--against", help="another virtualenv's python: its replay, timed too")
    args = parser.parse_args(argv)
    n = 1_000 if args.quick else args.n
    _common.BYTECODE_CACHE = not args.no_bytecode_cache
    root = Path(tempfile.mkdtemp(prefix="ftclass-p1-"))
    try:
        return run(root, n, args.repeat, args.plain_vcrpy, args.batch_size, args.against)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def run(
    root: Path, n: int, repeat: int, plain_repeat: int, batch_size: int, against: str | None
) -> int:
    from pytest_ftclass.reference import ReferenceServer

    suite = write_suite(root / "suite", n)
    bare = write_bare_suite(root / "bare", n)
    model = f"--ft-model={COMPLETIONS_MODEL}"
    batch = f"--ft-batch-size={batch_size}"
    classifier = train_reference(root)
    with ReferenceServer(lambda _model: classifier) as server:
        # recorded by the other version when there is one: a newer version reads older cassettes
        recorded = run_pytest(
            suite,
            model,
            batch,
            f"--ft-base-url={server.base_url}",
            "--ft-record-mode=new_episodes",
            python=against or sys.executable,
        )
    print(f"recorded {n} cases in {recorded.seconds:.1f} s (exit {recorded.returncode})")
    _check(recorded, n)

    variants: dict[str, tuple[Path, list[str], list[str], str]] = {
        "bare pytest": (bare, [], [], sys.executable),
        "replay": (suite, [model, batch], [], sys.executable),
        "replay, no report": (suite, [model, batch, "-o", "ft_report=false"], [], sys.executable),
    }
    if against:
        variants["replay, --against"] = (suite, [model, batch], [], against)
    print(machine_note())
    print(bytecode_note())
    times: dict[str, list[float]] = {name: [] for name in variants}
    memory: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(repeat):
        for name, (directory, extra, plugins, python) in variants.items():
            one = run_pytest(directory, *extra, plugins=plugins, python=python)
            _check(one, n)
            times[name].append(one.seconds)
            memory[name].append(one.total_mb)
        print(f"  round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    if plain_repeat > 0:
        times["replay, plain vcrpy"] = []
        for _ in range(plain_repeat):
            one = run_pytest(suite, model, batch, plugins=["plain_vcrpy"])
            _check(one, n)
            times["replay, plain vcrpy"].append(one.seconds)
    medians = {name: median(values) for name, values in times.items()}
    rows = [
        [name, len(values), medians[name], min(values), max(values),
         median(memory[name]) if memory.get(name) else ""]
        for name, values in times.items()
    ]  # fmt: skip
    print_table(
        f"P1 replay of {n} cases (wall time of the pytest subprocess, s; its peak RSS, MiB)",
        ["run", "reps", "median", "min", "max", "peak MiB"],
        rows,
    )

    base = medians["bare pytest"]
    ratio = medians["replay"] / base
    summary = [
        [
            "replay / bare pytest",
            medians["replay"],
            base,
            ratio,
            f"≤ {TARGET_RATIO}",
            verdict(ratio <= TARGET_RATIO),
        ],
        [
            "peak memory, replay / bare pytest (MiB)",
            median(memory["replay"]),
            median(memory["bare pytest"]),
            median(memory["replay"]) / median(memory["bare pytest"]),
            f"≤ {TARGET_MEMORY}",
            verdict(median(memory["replay"]) <= TARGET_MEMORY * median(memory["bare pytest"])),
        ],
        [
            "report writing (with − without)",
            medians["replay"] - medians["replay, no report"],
            "",
            "",
            "",
            "",
        ],
    ]
    if "replay, --against" in medians:
        other = medians["replay, --against"]
        summary.append(
            ["replay / --against's", medians["replay"], other, medians["replay"] / other, "", ""]
        )
        summary.append(["--against's / bare pytest", other, base, other / base, "", ""])
    if "replay, plain vcrpy" in medians:
        plain = medians["replay, plain vcrpy"]
        summary.append(
            ["plain vcrpy / indexed", plain, medians["replay"], plain / medians["replay"], "", ""]
        )
    print_table(
        "P1 ratios", ["figure", "time s", "against s", "ratio", "target", "verdict"], summary
    )
    return 0


def _check(run: Run, n: int) -> None:
    if run.returncode != 0 or f"{n} passed" not in run.tail:
        print(f"  unexpected outcome (exit {run.returncode}):\n{run.tail}")


if __name__ == "__main__":
    raise SystemExit(main())
