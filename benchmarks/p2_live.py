"""P2: asking a live endpoint with latency: batching and concurrency against one request per case.

Targets, for N = 1,000 cases and a model answering after L = 100 ms:

- at least 50 × faster than the cookbook's loop (one blocking
  ``client.completions.create(prompt=..., max_tokens=1, logprobs=5)`` per case);
- within 1.25 × of the ideal ⌈N/B⌉ · L / C for batch size B and concurrency C.

The local reference model is started in this process with ``latency_s=L``.
The loop is timed on a sample (``--loop-sample``) and extrapolated to N
(labelled so).  The grid B × C is timed through ``pytest_ftclass.asking.predict.predict``
directly and through the plugin: a pytest subprocess recording into a fresh
cassette directory, whose wall time includes starting Python, imports and
writing the reports, and whose *asking* time is read from the server's request
log (first request taken up to last answer ready), the part the ideal and the
loop's time describe (the loop's figure counts no start-up either): the
plugin's verdicts are on its asking time, its wall time is shown beside it.
Chat Completions (one request per case, ideal N · L / C) is timed the same
way::

    python benchmarks/p2_live.py              # N=1000, L=0.1 s
    python benchmarks/p2_live.py --quick      # N=200, a smaller grid
    python benchmarks/p2_live.py --no-plugin  # predict() only
    python benchmarks/p2_live.py --batches 10 20 --concurrencies 4 8
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    CHAT_MODEL,
    COMPLETIONS_MODEL,
    SEPARATOR,
    chat_lines,
    completion_lines,
    machine_note,
    median,
    print_table,
    run_pytest,
    train_reference,
    verdict,
    write_jsonl,
)

SPEEDUP_TARGET = 50.0
IDEAL_TARGET = 1.25


def ideal(n: int, batch: int, concurrency: int, latency: float) -> float:
    """⌈n / batch⌉ requests, ``concurrency`` at a time, each taking ``latency``."""
    return math.ceil(n / batch) * latency / concurrency


def cookbook_loop(
    cases: list[Any],
    base_url: str,
    *,
    model: str = COMPLETIONS_MODEL,
    endpoint: str = "completions",
    max_tokens: int = 1,
    answers: dict[str, str] | None = None,
) -> float:
    """Seconds for one blocking request per case, as the cookbook does.

    Completions: the case's prompt (ending in the separator once), ``max_tokens``,
    ``temperature=0``, ``logprobs=5``; Chat: its messages, ``max_completion_tokens``,
    ``temperature=0``, ``logprobs=True``, ``top_logprobs=5``.  ``answers`` (when given)
    receives each case id's answer, stripped.
    """
    import openai

    from pytest_ftclass.asking.endpoints import with_separator, without_separator

    client = openai.OpenAI(base_url=base_url, api_key="sk-local", max_retries=0)
    started = time.perf_counter()
    for case in cases:
        if endpoint == "chat":
            if isinstance(case.input, str):
                messages = [{"role": "user", "content": without_separator(case.input, SEPARATOR)}]
            else:
                messages = [dict(m) for m in case.input]
            reply = client.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                max_completion_tokens=max_tokens,
                temperature=0,
                logprobs=True,
                top_logprobs=5,
            )
            text = reply.choices[0].message.content or ""
        else:
            completion = client.completions.create(
                model=model,
                prompt=with_separator(case.text, SEPARATOR),
                max_tokens=max_tokens,
                temperature=0,
                logprobs=5,
            )
            text = completion.choices[0].text
        if answers is not None:
            answers[case.id] = text.strip()
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def time_predict(
    cases: list[Any], endpoint: str, model: str, base_url: str, b: int, c: int
) -> float:
    from pytest_ftclass.asking.predict import ClientOptions, RequestOptions, predict

    started = time.perf_counter()
    predictions = predict(
        cases,
        model=model,
        endpoint=endpoint,
        labels=sorted({case.label for case in cases}),
        client=ClientOptions(api_key="sk-local", base_url=base_url, max_retries=0),
        options=RequestOptions(batch_size=b, concurrency=c),
    )
    elapsed = time.perf_counter() - started
    failed = sum(1 for p in predictions.values() if p.error)
    if failed or len(predictions) != len(cases):
        print(f"  predict: {failed} failed, {len(predictions)} of {len(cases)} answered")
    return elapsed


def time_plugin(suite: Path, model: str, server: Any, b: int, c: int) -> tuple[float, float]:
    """(wall seconds of the pytest run, seconds from its first request to its last answer)."""
    cassettes = Path(tempfile.mkdtemp(prefix="cassettes-", dir=suite))
    server.reset_log()
    run = run_pytest(
        suite,
        f"--ft-model={model}",
        f"--ft-base-url={server.base_url}",
        "--ft-record-mode=new_episodes",
        f"--ft-cassette-dir={cassettes}",
        f"--ft-batch-size={b}",
        f"--ft-concurrency={c}",
    )
    shutil.rmtree(cassettes, ignore_errors=True)
    if run.returncode != 0:
        print(f"  plugin run exit {run.returncode}: {run.tail}")
    log = server.requests
    asking = max(r.answered_at for r in log) - min(r.received_at for r in log) if log else 0.0
    return run.seconds, asking


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per answer")
    parser.add_argument("--quick", action="store_true", help="N=200, batch {1,20}, C {4,16}")
    parser.add_argument("--loop-sample", type=int, default=100, help="cases timed in the loop")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions per grid cell")
    parser.add_argument("--no-plugin", action="store_true", help="skip the pytest subprocesses")
    parser.add_argument("--batches", type=int, nargs="+", help="batch sizes of the grid")
    parser.add_argument("--concurrencies", type=int, nargs="+", help="concurrencies of the grid")
    args = parser.parse_args(argv)
    n = 200 if args.quick else args.n
    batches = args.batches or ([1, 20] if args.quick else [1, 10, 20, 50])
    concurrencies = args.concurrencies or ([4, 16] if args.quick else [4, 8, 16])
    sample = min(n, 20 if args.quick else args.loop_sample)
    latency = args.latency
    root = Path(tempfile.mkdtemp(prefix="ftclass-p2-"))
    try:
        return run(
            root, n, latency, batches, concurrencies, sample, args.repeat, not args.no_plugin
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(
    root: Path,
    n: int,
    latency: float,
    batches: list[int],
    concurrencies: list[int],
    sample: int,
    repeat: int,
    plugin: bool,
) -> int:
    from pytest_ftclass.cases.sources import load_cases
    from pytest_ftclass.reference import ReferenceServer

    print(machine_note())
    completion_path = write_jsonl(root / "suite" / "bench.cases.jsonl", completion_lines(n, 2))
    chat_path = write_jsonl(root / "chat" / "chat.cases.jsonl", chat_lines(n, 2))
    for directory in (completion_path.parent, chat_path.parent):
        (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    cases = load_cases(completion_path)
    chats = load_cases(chat_path)
    classifier = train_reference(root)
    with ReferenceServer(lambda _model: classifier, latency_s=latency) as server:
        url = server.base_url
        loop = cookbook_loop(cases[:sample], url)
        loop_n = loop * n / sample
        print(
            f"cookbook loop: {sample} cases in {loop:.2f} s → {loop_n:.1f} s for {n} (extrapolated)"
        )
        # first use: imports, the tokenizer's tables, the TLS context; not part of any cell
        time_predict(cases[: batches[0]], "completions", COMPLETIONS_MODEL, url, batches[0], 1)
        time_predict(chats[:1], "chat", CHAT_MODEL, url, 1, 1)
        rows = []
        best: tuple[float, int, int] | None = None
        for b in batches:
            for c in concurrencies:
                best_case = ideal(n, b, c, latency)
                direct = median(
                    [
                        time_predict(cases, "completions", COMPLETIONS_MODEL, url, b, c)
                        for _ in range(repeat)
                    ]
                )
                row: list[Any] = [b, c, best_case, direct, direct / best_case, loop_n / direct]
                if plugin:
                    runs = [
                        time_plugin(completion_path.parent, COMPLETIONS_MODEL, server, b, c)
                        for _ in range(repeat)
                    ]
                    wall = median([one[0] for one in runs])
                    asking = median([one[1] for one in runs])
                    row += [wall, asking, asking / best_case, loop_n / asking]
                rows.append(row)
                print(f"  B={b} C={c}: predict {direct:.2f} s (ideal {best_case:.2f})")
                if best is None or direct < best[0]:
                    best = (direct, b, c)
        header = ["B", "C", "ideal s", "predict s", "÷ ideal", "loop ÷"]
        if plugin:
            header += ["plugin s", "asking s", "÷ ideal", "loop ÷ asking"]
        print_table(f"P2 Completions, N={n}, L={latency} s (median of {repeat})", header, rows)

        chat_rows = []
        for c in concurrencies:
            best_case = ideal(n, 1, c, latency)
            direct = median(
                [time_predict(chats, "chat", CHAT_MODEL, url, 1, c) for _ in range(repeat)]
            )
            row = [c, best_case, direct, direct / best_case, loop_n / direct]
            if plugin:
                wall, asking = time_plugin(chat_path.parent, CHAT_MODEL, server, 1, c)
                row += [wall, asking, asking / best_case]
            chat_rows.append(row)
            print(f"  chat C={c}: predict {direct:.2f} s (ideal {best_case:.2f})")
        header = ["C", "ideal s", "predict s", "÷ ideal", "loop ÷"]
        if plugin:
            header += ["plugin s", "asking s", "÷ ideal"]
        print_table(f"P2 Chat Completions, N={n}, one request per case", header, chat_rows)

    summary = []
    for row in rows:
        b, c, _, direct, over, speedup = row[:6]
        if (b, c) in ((20, 4), (20, 8), (50, 16)) or (b, c) == best[1:]:
            summary.append(
                [
                    f"predict B={b} C={c}",
                    direct,
                    speedup,
                    f"≥ {SPEEDUP_TARGET}",
                    verdict(speedup >= SPEEDUP_TARGET),
                    over,
                    f"≤ {IDEAL_TARGET}",
                    verdict(over <= IDEAL_TARGET),
                ]
            )
            if plugin:
                _, asking, asking_over, asking_speedup = row[6:10]
                summary.append(
                    [
                        f"plugin  B={b} C={c}",
                        asking,
                        asking_speedup,
                        f"≥ {SPEEDUP_TARGET}",
                        verdict(asking_speedup >= SPEEDUP_TARGET),
                        asking_over,
                        f"≤ {IDEAL_TARGET}",
                        verdict(asking_over <= IDEAL_TARGET),
                    ]
                )
    print(machine_note())
    print_table(
        "P2 verdicts (loop extrapolated from the sample; plugin: its asking time)",
        ["run", "s", "loop ÷ run", "target", "verdict", "÷ ideal", "target", "verdict"],
        summary,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
