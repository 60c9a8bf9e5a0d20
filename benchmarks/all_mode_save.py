"""What ``all`` record mode costs when it saves: vcrpy's pairwise comparison against the index.

In ``all`` mode every request is recorded again, and vcrpy decides what to
save by comparing each loaded interaction with each recorded one
(``Cassette._rerecorded_interactions``), parsing both JSON bodies each time:
``O(n²)`` for a cassette of ``n`` interactions.  ``IndexedCassette`` looks the
recorded ones up by key.  For each size, a cassette of ``n`` Completions
interactions (20 prompts each) is opened in ``all`` mode through the plugin's
``Recorder`` settings, each request is recorded again, and the decision is
timed for both classes (vcrpy's only up to ``--plain-max``)::

    python benchmarks/all_mode_save.py
    python benchmarks/all_mode_save.py --sizes 500 1000 20000 --plain-max 1000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import COMPLETIONS_MODEL, machine_note, print_table


def write_cassette(path: Path, n: int) -> None:
    """A cassette of ``n`` distinct Completions interactions, as the Recorder writes them."""
    from pytest_ftclass.recording.digests import text_digest

    interactions = []
    for i in range(n):
        prompts = [text_digest(f"case {i}-{j}") for j in range(20)]
        body = {"model": COMPLETIONS_MODEL, "prompt": prompts, "max_tokens": 2, "logprobs": 5}
        request = {
            "method": "POST",
            "uri": "http://127.0.0.1:9/v1/completions",
            "body": json.dumps(body, sort_keys=True, separators=(",", ":")),
            "headers": {"Content-Type": ["application/json"]},
        }
        answer = {"id": f"cmpl-{i}", "choices": [{"index": j, "text": " tech"} for j in range(20)]}
        response = {
            "status": {"code": 200, "message": "OK"},
            "headers": {},
            "body": {"string": json.dumps(answer)},
        }
        interactions.append({"request": request, "response": response})
    path.write_text(json.dumps({"interactions": interactions, "version": 1}), encoding="utf-8")


def time_decision(path: Path, cassette_class: Any) -> float:
    from vcr.request import Request

    from pytest_ftclass.recording.cassette_index import load_cassette
    from pytest_ftclass.recording.recorder import Recorder

    cassette = load_cassette(Recorder(path.parent, "all")._build_vcr(), path, cassette_class)
    stored = json.loads(path.read_text(encoding="utf-8"))["interactions"]
    for interaction in stored:
        request = Request._from_dict(interaction["request"])
        cassette.append(request, interaction["response"])
    started = time.perf_counter()
    saved = cassette._rerecorded_interactions()
    seconds = time.perf_counter() - started
    assert len(saved) == len(stored), (len(saved), len(stored))  # every one replaced once
    return seconds


def main(argv: list[str] | None = None) -> int:
    from vcr.cassette import Cassette

    from pytest_ftclass.recording.cassette_index import IndexedCassette

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[125, 250, 500, 10000])
    parser.add_argument("--plain-max", type=int, default=500)
    args = parser.parse_args(argv)
    print(machine_note())
    rows = []
    with tempfile.TemporaryDirectory(prefix="ftclass-all-") as directory:
        for n in args.sizes:
            path = Path(directory) / f"c{n}.json"
            write_cassette(path, n)
            indexed = time_decision(path, IndexedCassette)
            plain = time_decision(path, Cassette) if n <= args.plain_max else None
            ratio = "" if plain is None else f"{plain / indexed:.0f} ×"
            rows.append([n, n * 20, "—" if plain is None else plain, indexed, ratio])
            print(
                f"  {n}: vcrpy {plain if plain is None else round(plain, 3)} s, "
                f"indexed {indexed:.3f} s"
            )
    print_table(
        "all-mode save decision (s)",
        ["interactions", "cases", "vcrpy Cassette", "IndexedCassette", "vcrpy / indexed"],
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
