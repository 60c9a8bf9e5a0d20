"""P1: replaying N cases from cassettes against bare pytest running N trivial tests.

Target: replaying 10,000 cases takes at most 1.3 × the time bare pytest takes
for ``@pytest.mark.parametrize("i", range(10000)) def test(i): pass``.

The script writes an N-case Completions suite to a temporary directory, records
it once against the local reference model (``ReferenceServer``), stops the
server, then times in subprocesses, ``--repeat`` times each:

- ``bare``: the parametrised no-op test;
- ``replay``: the suite replayed (``--ft-record-mode=none``) as the plugin does it today;
- ``replay+index``: the same with cassettes opened as ``IndexedCassette``
  (``-p indexed_cassettes``, what the proposed ``recording.py`` change does);
- ``replay+index, no report``: the same with ``-o ft_report=false``, so the
  difference is the time spent writing the reports.

Usage::

    python benchmarks/p1_replay.py            # 10,000 cases, 3 repetitions
    python benchmarks/p1_replay.py --quick    # 1,000 cases
    python benchmarks/p1_replay.py -n 5000 --repeat 5 --plain-repeat 1

The recording uses ``--ft-record-mode=new_episodes`` on a fresh directory
(equivalent to ``once`` for a cassette that does not exist), because with
``once`` only the first prediction window of a group gets recorded: every later
window finds the cassette written by the first one and refuses to record.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import (
    COMPLETIONS_MODEL,
    Run,
    machine_note,
    median,
    print_table,
    run_pytest,
    train_reference,
    verdict,
    write_bare_suite,
    write_suite,
)

TARGET_RATIO = 1.3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="number of cases (default 10000)")
    parser.add_argument("--quick", action="store_true", help="1,000 cases")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each timed run")
    parser.add_argument(
        "--plain-repeat", type=int, default=None, help="repetitions of the unindexed replay"
    )
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    n = 1_000 if args.quick else args.n
    plain_repeat = args.repeat if args.plain_repeat is None else args.plain_repeat
    root = Path(tempfile.mkdtemp(prefix="ftclass-p1-"))
    try:
        return run(root, n, args.repeat, plain_repeat, args.batch_size)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def run(root: Path, n: int, repeat: int, plain_repeat: int, batch_size: int) -> int:
    from pytest_ftclass.reference import ReferenceServer

    suite = write_suite(root / "suite", n)
    bare = write_bare_suite(root / "bare", n)
    model = f"--ft-model={COMPLETIONS_MODEL}"
    batch = f"--ft-batch-size={batch_size}"
    classifier = train_reference(root)
    with ReferenceServer(lambda _model: classifier) as server:
        recorded = run_pytest(
            suite, model, batch, f"--ft-base-url={server.base_url}", "--ft-record-mode=new_episodes"
        )
    print(f"recorded {n} cases in {recorded.seconds:.1f} s (exit {recorded.returncode})")
    _check(recorded, n)

    variants: list[tuple[str, Path, list[str], list[str], int]] = [
        ("bare pytest", bare, [], [], repeat),
        ("replay+index", suite, [model, batch], ["indexed_cassettes"], repeat),
        (
            "replay+index, no report",
            suite,
            [model, batch, "-o", "ft_report=false"],
            ["indexed_cassettes"],
            repeat,
        ),
        ("replay (today)", suite, [model, batch], [], plain_repeat),
    ]
    print(machine_note())
    medians: dict[str, float] = {}
    rows = []
    for name, directory, extra, plugins, times in variants:
        if times <= 0:
            continue
        runs = [run_pytest(directory, *extra, plugins=plugins) for _ in range(times)]
        for one in runs:
            _check(one, n)
        medians[name] = median([r.seconds for r in runs])
        rows.append(
            [name, times, medians[name], min(r.seconds for r in runs), max(r.seconds for r in runs)]
        )
        print(f"  {name}: " + ", ".join(f"{r.seconds:.2f}" for r in runs) + " s")
    print_table(
        f"P1 replay of {n} cases (wall time of the pytest subprocess, s)",
        ["run", "reps", "median", "min", "max"],
        rows,
    )

    base = medians["bare pytest"]
    summary = []
    for name in ("replay (today)", "replay+index"):
        if name in medians:
            ratio = medians[name] / base
            summary.append(
                [
                    name,
                    medians[name],
                    base,
                    ratio,
                    f"≤ {TARGET_RATIO}",
                    verdict(ratio <= TARGET_RATIO),
                ]
            )
    if "replay (today)" in medians:
        speedup = medians["replay (today)"] / medians["replay+index"]
        summary.append(
            ["index speed-up", medians["replay (today)"], medians["replay+index"], speedup, "", ""]
        )
    report_time = medians["replay+index"] - medians["replay+index, no report"]
    summary.append(["report writing (with − without)", report_time, "", "", "", ""])
    print_table(
        "P1 ratios", ["figure", "time s", "against s", "ratio", "target", "verdict"], summary
    )
    return 0


def _check(run: Run, n: int) -> None:
    if run.returncode != 0 or f"{n} passed" not in run.tail:
        print(f"  unexpected outcome (exit {run.returncode}):\n{run.tail}")


if __name__ == "__main__":
    raise SystemExit(main())
