"""Helpers shared by the benchmark scripts: synthetic suites, timed pytest runs, tables.

Nothing here touches the network beyond 127.0.0.1: suites are written to
temporary directories and the local reference model is started in-process.

>>> rng = random.Random(0)
>>> text = headline("tech", rng)
>>> len(text.split()), median([3.0, 1.0, 2.0])
(8, 2.0)
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
BENCH_DIR = Path(__file__).resolve().parent
SEPARATOR = "\n\n###\n\n"
COMPLETIONS_MODEL = "ft:babbage-002:acme::bench"
CHAT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::bench"
CLASSES = {
    "sport": "goal match striker league coach stadium penalty referee keeper derby",
    "tech": "software chip laptop network browser server robot app cloud battery",
    "politics": "minister vote election party senate policy campaign law budget mayor",
}
COMMON = ["the", "a", "today", "new", "big", "after", "with", "over", "late", "early"]


def headline(label: str, rng: random.Random, words: int = 8) -> str:
    """A synthetic sentence of ``words`` words, half of them from ``label``'s vocabulary."""
    vocabulary = CLASSES[label].split()
    chosen = [rng.choice(vocabulary) for _ in range(words // 2)]
    chosen += [rng.choice(COMMON) for _ in range(words - len(chosen))]
    rng.shuffle(chosen)
    return " ".join(chosen)


def completion_lines(n: int, seed: int, *, with_ids: bool = True) -> list[dict[str, Any]]:
    """``n`` prompt/completion lines cycling over the classes, with a tag on every 7th."""
    rng = random.Random(seed)
    labels = sorted(CLASSES)
    lines = []
    for i in range(n):
        label = labels[i % len(labels)]
        line: dict[str, Any] = {
            "prompt": f"{headline(label, rng)} #{i}{SEPARATOR}",
            "completion": " " + label,
        }
        if with_ids:
            line["id"] = f"{label}-{i}"
        if i % 7 == 0:
            line["tags"] = ["seventh"]
        lines.append(line)
    return lines


def chat_lines(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` chat lines (system, user, assistant label)."""
    return [
        {
            "id": line["id"],
            "messages": [
                {"role": "system", "content": "Classify the headline."},
                {"role": "user", "content": line["prompt"].removesuffix(SEPARATOR)},
                {"role": "assistant", "content": line["completion"].strip()},
            ],
        }
        for line in completion_lines(n, seed)
    ]


def write_jsonl(path: Path, lines: Sequence[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line) + "\n")
    return path


def write_suite(directory: Path, n: int, *, seed: int = 2) -> Path:
    """A pytest rootdir holding ``bench.cases.jsonl`` with ``n`` Completions cases."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    write_jsonl(directory / "bench.cases.jsonl", completion_lines(n, seed))
    return directory


def write_bare_suite(directory: Path, n: int) -> Path:
    """A rootdir with one test function parametrised ``n`` times and an empty body."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (directory / "test_bare.py").write_text(
        f"import pytest\n\n\n@pytest.mark.parametrize('i', range({n}))\ndef test(i):\n    pass\n",
        encoding="utf-8",
    )
    return directory


def train_reference(directory: Path, per_class: int = 200) -> Any:
    """The local reference classifier trained on a synthetic training file."""
    from pytest_ftclass.reference import ReferenceClassifier

    path = write_jsonl(directory / "train.jsonl", completion_lines(per_class * 3, seed=1))
    return ReferenceClassifier.from_file(path)


#: Whether the timed subprocesses may cache compiled modules, as Python does by
#: default.  With ``PYTHONDONTWRITEBYTECODE=1`` every run compiles the modules it
#: imports (and pytest rewrites plugin modules) again, which weighs on the plugin's
#: imports (openai, scikit-learn) and not on bare pytest's.
BYTECODE_CACHE = True


def bytecode_note() -> str:
    if BYTECODE_CACHE:
        return "subprocesses cache compiled modules (PYTHONDONTWRITEBYTECODE unset)"
    return f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} as given"


@dataclass
class Run:
    """One pytest subprocess: wall time, exit status, peak RSS of the child, output tail.

    ``children_mb`` is the sum of the peak RSS of the processes pytest started
    (none, with the plugin alone): an upper bound on what they held at once.
    """

    seconds: float
    returncode: int
    max_rss_mb: float
    tail: str
    children_mb: float = 0.0

    @property
    def total_mb(self) -> float:
        return self.max_rss_mb + self.children_mb


def run_pytest(
    directory: Path,
    *args: str,
    plugins: Sequence[str] = (),
    timeout: float = 1800,
    python_args: Sequence[str] = (),
    python: str = sys.executable,
) -> Run:
    """Run ``python -m pytest DIR -q -p no:cacheprovider ARGS`` in ``directory``, timed.

    ``plugins`` are extra ``-p`` plugin modules importable from ``benchmarks/``;
    ``python`` the interpreter (another virtualenv's, to time another version).
    The peak RSS is that of the pytest process, in MiB: its ``VmHWM`` read from
    ``/proc`` every 20 ms while it runs (``wait4``'s ``ru_maxrss`` would count the
    pages the child shared with this process when it was forked).
    """
    command = [python, *python_args, "-m", "pytest", str(directory)]
    command += ["-q", "-p", "no:cacheprovider"]
    for plugin in plugins:
        command += ["-p", plugin]
    command += list(args)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
    env.pop("OPENAI_API_KEY", None)
    if BYTECODE_CACHE:
        # Python's default: modules compiled once and cached (some machines set this to 1)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        high_water: dict[int, float] = {}
        watcher = threading.Thread(target=_watch_peak, args=(process.pid, high_water))
        watcher.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        watcher.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        lines = log.read().strip().splitlines()
    peak = high_water.pop(process.pid, 0.0) or usage.ru_maxrss / 1024  # KiB; the fallback off Linux
    return Run(seconds, process.returncode, peak, "\n".join(lines[-3:]), sum(high_water.values()))


def _watch_peak(pid: int, high_water: dict[int, float]) -> None:
    """Keep ``high_water[p]`` at the ``VmHWM`` (MiB) of ``pid`` and of each child it starts.

    Polled every 20 ms until ``pid`` exits; a child that lives less long may be missed.
    """
    while True:
        if not _note_peak(pid, high_water):
            return
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        for child in children:
            _note_peak(int(child), high_water)
        time.sleep(0.02)


def _note_peak(pid: int, high_water: dict[int, float]) -> bool:
    """Record ``pid``'s ``VmHWM``; ``False`` once it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    mib = int(line.split()[1]) / 1024
                    high_water[pid] = max(high_water.get(pid, 0.0), mib)
                    return True
    except OSError:
        pass
    return False


def synthetic_results(n: int, labels: Sequence[str] = CLASSES, seed: int = 3) -> list[Any]:
    """``n`` results from one source and model; every 10th is wrong, every 500th an error."""
    from pytest_ftclass.results import CaseResult

    rng = random.Random(seed)
    labels = sorted(labels)
    results = []
    for i in range(n):
        expected = labels[i % len(labels)]
        predicted = labels[(i + 1) % len(labels)] if i % 10 == 0 else expected
        weights = [rng.random() + (3.0 if label == predicted else 0.0) for label in labels]
        total = sum(weights)
        error = "HTTP 500 server_error: synthetic" if i % 500 == 499 else None
        results.append(
            CaseResult(
                case_id=f"{expected}-{i}",
                nodeid=f"bench.cases.jsonl::{expected}-{i}",
                source="bench.cases.jsonl",
                model="ft:babbage-002:acme::bench",
                endpoint="completions",
                expected=expected,
                predicted=None if error else predicted,
                logprobs={}
                if error
                else {k: math.log(w / total) for k, w in zip(labels, weights, strict=True)},
                labels=labels,
                tags=["seventh"] if i % 7 == 0 else [],
                critical=i % 1000 == 0,
                input_digest=f"sha256:{rng.getrandbits(256):064x}",
                usage=None
                if error
                else {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
                latency_s=0.05 + rng.random() / 100,
                error=error,
                outcome="error"
                if error
                else ("passed" if predicted == expected else "mispredicted"),
            )
        )
    return results


def machine_note() -> str:
    """CPU count and load average: benchmarks on a busy machine read high, ratios less so."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}, Python {sys.version.split()[0]}"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def timed_runs(repeat: int, run: Any) -> list[float]:
    """Call ``run()`` ``repeat`` times and return the seconds each call took."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain-text table whose columns are as wide as their widest cell."""
    cells = [[str(h) for h in header]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n== {title}")
    for i, row in enumerate(cells):
        padded = [
            c.rjust(w) if j else c.ljust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(padded))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
