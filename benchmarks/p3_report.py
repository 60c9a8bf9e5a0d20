"""P3: building and writing the JSON and HTML reports for N cases.

Target: JSON + HTML report for 10,000 cases in at most 2 s.

Synthetic ``CaseResult``\\ s (3 classes, log-probabilities, tags, ~10 % wrong,
a few errors) go through ``build_report``, ``write_json_report`` and
``write_html_report``; each part is timed, ``--repeat`` times, in this process
(the first, cold, repetition imports jinja2 and scikit-learn and is shown
apart)::

    python benchmarks/p3_report.py            # 10,000 cases
    python benchmarks/p3_report.py --quick    # 1,000 cases
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import machine_note, median, print_table, synthetic_results, verdict

TARGET_S = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 cases")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    n = 1_000 if args.quick else args.n
    from pytest_ftclass.report import build_report, write_html_report, write_json_report

    print(machine_note())
    results = synthetic_results(n)
    metadata = {"models": ["ft:babbage-002:acme::bench"], "record_mode": "none"}
    directory = Path(tempfile.mkdtemp(prefix="ftclass-p3-"))
    parts: dict[str, list[float]] = {
        "build_report": [],
        "write_json_report": [],
        "write_html_report": [],
        "total": [],
    }
    sizes: dict[str, int] = {}
    try:
        for _ in range(args.repeat + 1):  # the first one is cold (imports)
            t0 = time.perf_counter()
            report = build_report(results, metadata)
            t1 = time.perf_counter()
            json_path = write_json_report(report, directory / "ftclass.json")
            t2 = time.perf_counter()
            html_path = write_html_report(report, directory / "ftclass.html")
            t3 = time.perf_counter()
            for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                parts[name].append(seconds)
        sizes = {"json": json_path.stat().st_size, "html": html_path.stat().st_size}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    rows = [
        [name, times[0], median(times[1:]), min(times[1:]), max(times[1:])]
        for name, times in parts.items()
    ]
    print_table(
        f"P3 report for {n} cases (s; median of {args.repeat} warm repetitions)",
        ["part", "cold", "median", "min", "max"],
        rows,
    )
    total = median(parts["total"][1:])
    print_table(
        "P3 verdict",
        ["figure", "value", "target", "verdict"],
        [
            ["warm total s", total, f"≤ {TARGET_S}", verdict(total <= TARGET_S)],
            [
                "cold total s",
                parts["total"][0],
                f"≤ {TARGET_S}",
                verdict(parts["total"][0] <= TARGET_S),
            ],
            ["JSON MB", sizes["json"] / 1e6, "", ""],
            ["HTML MB", sizes["html"] / 1e6, "", ""],
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
