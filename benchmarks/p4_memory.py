"""P4: peak memory of a large replay (targets: 100,000 cases within 1 GB, and within
1.2 × the peak of bare pytest running as many trivial tests).

For each size, writes a suite, records it once against the local reference
model with large batches (``--ft-batch-size``, default 200), then replays it
(``--ft-record-mode=none``, same batch size) in a pytest subprocess.  The peak
RSS of both pytest processes is their ``VmHWM``, polled from ``/proc``, plus that
of any process they start (none today): the verdict is on the sum, an upper
bound of what the run held at once.  For comparison, bare pytest runs as many
trivial parametrised tests.  When 100,000 is not among the
sizes, the peak there is extrapolated linearly from the two largest, and
labelled so::

    python benchmarks/p4_memory.py --sizes 100000       # the real thing (about 6 minutes)
    python benchmarks/p4_memory.py                      # 20,000 and 50,000, extrapolated
    python benchmarks/p4_memory.py --quick              # 2,000 and 5,000
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
    print_table,
    run_pytest,
    train_reference,
    verdict,
    write_bare_suite,
    write_suite,
)

TARGET_N = 100_000
TARGET_MB = 1024.0
TARGET_OVER_BARE = 1.2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 50_000])
    parser.add_argument("--quick", action="store_true", help="sizes 2,000 and 5,000")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--no-bare", action="store_true", help="skip the bare pytest runs")
    args = parser.parse_args(argv)
    sizes = [2_000, 5_000] if args.quick else sorted(args.sizes)
    root = Path(tempfile.mkdtemp(prefix="ftclass-p4-"))
    try:
        return run(root, sizes, args.batch_size, not args.no_bare)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, sizes: list[int], batch_size: int, bare: bool) -> int:
    from pytest_ftclass.reference import ReferenceServer

    print(machine_note())
    classifier = train_reference(root)
    model = f"--ft-model={COMPLETIONS_MODEL}"
    batch = f"--ft-batch-size={batch_size}"
    rows = []
    peaks: dict[str, list[tuple[int, float]]] = {"replay": [], "record": [], "bare pytest": []}
    for n in sizes:
        suite = write_suite(root / f"suite-{n}", n)
        with ReferenceServer(lambda _model: classifier) as server:
            recorded = run_pytest(
                suite,
                model,
                batch,
                f"--ft-base-url={server.base_url}",
                "--ft-record-mode=new_episodes",
            )
        cassette_mb = sum(p.stat().st_size for p in (suite / "cassettes").rglob("*.json")) / 2**20
        rows.append([n, "record", recorded.seconds, *_mib(recorded), recorded.returncode])
        peaks["record"].append((n, recorded.total_mb))
        print(f"  {n}: recorded in {recorded.seconds:.1f} s, cassette {cassette_mb:.1f} MiB")
        replay = run_pytest(suite, model, batch)
        rows.append([n, "replay", replay.seconds, *_mib(replay), replay.returncode])
        peaks["replay"].append((n, replay.total_mb))
        print(f"  {n}: replay {replay.seconds:.1f} s, peak {replay.total_mb:.0f} MiB in all")
        if bare:
            plain = run_pytest(write_bare_suite(root / f"bare-{n}", n))
            rows.append([n, "bare pytest", plain.seconds, *_mib(plain), plain.returncode])
            peaks["bare pytest"].append((n, plain.total_mb))
            shutil.rmtree(root / f"bare-{n}", ignore_errors=True)
        shutil.rmtree(suite, ignore_errors=True)
    print_table(
        "P4 peak RSS (MiB): the pytest process, the processes it started, both",
        ["cases", "run", "s", "pytest", "helper", "in all", "exit"],
        rows,
    )

    summary = []
    for name, points in peaks.items():
        if not points:
            continue
        measured = dict(points)
        if TARGET_N in measured:
            value, how = measured[TARGET_N], "measured"
        elif len(points) >= 2:
            (n1, m1), (n2, m2) = points[-2], points[-1]
            slope = (m2 - m1) / (n2 - n1)
            value, how = m2 + slope * (TARGET_N - n2), f"extrapolated from {n1} and {n2}"
            summary.append([name, f"{slope * 1000:.1f} MiB per 1,000 cases", "", "", ""])
        else:
            continue
        summary.append(
            [
                name,
                f"peak at {TARGET_N}: {value:.0f} MiB",
                how,
                "" if name == "bare pytest" else f"≤ {TARGET_MB:.0f}",
                "" if name == "bare pytest" else verdict(value <= TARGET_MB),
            ]
        )
    replays, bares = dict(peaks["replay"]), dict(peaks["bare pytest"])
    for n in sorted(set(replays) & set(bares)):
        over = replays[n] / bares[n]
        summary.append(
            [f"replay / bare pytest at {n}", f"{over:.2f}", "measured",
             f"≤ {TARGET_OVER_BARE}", verdict(over <= TARGET_OVER_BARE)]
        )  # fmt: skip
    print_table("P4 verdict", ["run", "figure", "how", "target", "verdict"], summary)
    return 0


def _mib(run: Run) -> list[float]:
    return [run.max_rss_mb, run.children_mb, run.total_mb]


if __name__ == "__main__":
    raise SystemExit(main())
