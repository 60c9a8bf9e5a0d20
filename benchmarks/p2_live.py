"""P2: live runs, the whole pytest process, against the ideal and the peers.

Targets (medians of alternating rounds; 1,000 BBC cases, the local reference
model answering after L = 100 ms, every tool at its default settings):

- Chat: pytest-ftclass's whole run at most 0.6 × promptfoo ``-j 20`` and at most
  0.5 × inspect-ai's default; its request span within 1.25 × N · L/C at the
  concurrency C it reached (the peak in flight, seen on the server).  On a
  small machine the span is bound by the CPUs (server and client share them)
  before it is by latency: the same run against the server answering at once
  (L = 0) measures that floor, and the span is also shown against the larger
  of the two.
- Completions: the whole run at most 2 × the ideal ⌈N/B⌉ · L/C at B = 20, C = 4
  (1.25 s), the reference the target was set against; the span is also shown
  against the ideal at the concurrency reached.
- A server limited to R requests per second: no case errors, and the whole run
  within 1.3 × (requests needed) / R.
- Shown, not a target: Chat against latencies spread as a real API's are
  (log-normal, median ``--spread-latency`` 0.3 s, σ ``--spread`` 0.6, no limit
  of the server's own), the span against N · mean latency / 64 (every request
  allowed in flight).  The defaults give both endpoints 10 s of
  requests at their limit (1,000 Chat requests at 100 a second, 50 Completions
  requests of 20 prompts at 5 a second), so start-up weighs the same in both.

pytest-ftclass runs as users install it, without the dev extra's Hypothesis
plugin (see ``peers.run_ftclass``).  The peers run through ``peers.py``
(installed in a throwaway folder, see there; a missing peer is skipped with a
note and its verdict reads "skipped").  The
grid of the earlier targets (``predict()`` over batch size × concurrency against
the cookbook's one blocking request per case: at least 50 × faster, within
1.25 × of the ideal) runs with ``--grid``::

    python benchmarks/p2_live.py              # N=1000 BBC, L=0.1 s, 3 rounds
    python benchmarks/p2_live.py --quick      # N=200, one round
    python benchmarks/p2_live.py --grid       # also the B × C grid and the loop
    python benchmarks/p2_live.py --rate 100 --completions-rate 5
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    CHAT_MODEL,
    COMPLETIONS_MODEL,
    SEPARATOR,
    machine_note,
    median,
    print_table,
    verdict,
)

from pytest_ftclass.asking.pacing import CEILING

SPEEDUP_TARGET = 50.0  # --grid: predict() against the cookbook loop
IDEAL_TARGET = 1.25  # --grid, and the Chat span at the concurrency reached
CHAT_VS_PROMPTFOO = 0.6
CHAT_VS_INSPECT = 0.5
COMPLETIONS_VS_IDEAL = 2.0
REFERENCE_BATCH, REFERENCE_CONCURRENCY = 20, 4  # the ideal the Completions target names
RATE_TARGET = 1.3


def ideal(n: int, batch: int, concurrency: float, latency: float) -> float:
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


# -- the defaults, side by side with the peers ------------------------------------------------


@dataclass
class Measured:
    """Medians of one tool setting over the rounds, and what the server saw."""

    label: str
    wall: float
    span: float
    peak: float
    errors: int


def measured(config: Any) -> Measured | None:
    if not config.runs:
        return None
    return Measured(
        config.runs[0].label,
        median([run.seconds for run in config.runs]),
        median([seen.span for seen in config.seen]),
        median([float(seen.peak) for seen in config.seen]),
        sum(run.errors for run in config.runs),
    )


def side_by_side(
    endpoint: Any, cases: list[Any], suite: Path, server: Any, args: argparse.Namespace, work: Path
) -> dict[str, Measured | None]:
    """pytest-ftclass's defaults, promptfoo ``-j 20`` and inspect-ai's default, alternating."""
    import peers

    tools = ["ftclass", *(t for t in ("promptfoo", "inspect") if t in args.peers)]
    configs = peers.configs_for(
        endpoint, cases, suite, server.base_url, [20], tools, work, args.peers_dir
    )
    wanted = {("pytest-ftclass", None), ("promptfoo", 20), ("inspect-ai", None)}
    configs = [c for c in configs if (c.tool, c.concurrency) in wanted]
    recorder = peers.ShapeRecorder(server)
    runs = peers.bench_endpoint(
        endpoint, cases, server, recorder, configs, args.rounds, args.latency, False
    )
    same, differ = peers.agreement(runs, {case.id: case.label for case in cases})
    print(f"  every tool, every round, the same answer on every case: {same} {differ[:5]}")
    return {c.tool: measured(c) for c in configs}


def ftclass_rounds(
    endpoint: Any, suite: Path, server: Any, rounds: int
) -> tuple[list[Any], list[Any]]:
    """pytest-ftclass at its defaults, ``rounds`` times: each run, and what the server saw."""
    import peers

    model = COMPLETIONS_MODEL if endpoint == "completions" else CHAT_MODEL
    runs, seen = [], []
    for _ in range(rounds):
        server.reset_log()
        runs.append(peers.run_ftclass(suite, server.base_url, model, endpoint))
        seen.append(peers.traffic(server.requests))
    return runs, seen


def medians(runs: list[Any], seen: list[Any]) -> Measured:
    return Measured(
        runs[0].label,
        median([r.seconds for r in runs]),
        median([s.span for s in seen]),
        median([float(s.peak) for s in seen]),
        sum(r.errors for r in runs),
    )


def machine_floor(
    endpoint: Any, suite: Path, classifier: Any, args: argparse.Namespace
) -> Measured | None:
    """pytest-ftclass's defaults against the same server answering at once (L = 0).

    Its request span is what this machine's CPUs allow (the server's classifier
    and HTTP, the client's SDK and recording, on the same cores): no latency or
    concurrency can make the span shorter than that.
    """
    from pytest_ftclass.reference import ReferenceServer

    with ReferenceServer(lambda _m: classifier) as server:
        runs, seen = ftclass_rounds(endpoint, suite, server, args.rounds)
    spans = [f"{s.span:.2f}" for s in seen]
    print(f"  {endpoint} at L = 0: spans {spans} s, walls {[f'{r.seconds:.2f}' for r in runs]} s")
    return medians(runs, seen)


def rate_limited(
    endpoint: Any, suite: Path, classifier: Any, args: argparse.Namespace, rate: float
) -> Measured | None:
    """pytest-ftclass's defaults against a server allowing ``rate`` requests per second."""
    from pytest_ftclass.reference import RateLimits, ReferenceServer

    limits = RateLimits(requests_per_second=rate)
    with ReferenceServer(lambda _m: classifier, latency_s=args.latency, limits=limits) as server:
        runs, seen = ftclass_rounds(endpoint, suite, server, args.rounds)
        refused = limits.refused
    answered = [s.requests - s.errors for s in seen]
    print(
        f"  {endpoint} at {rate:g} requests/s: {[f'{r.seconds:.2f}' for r in runs]} s, "
        f"requests answered {answered}, 429s {refused} in all, "
        f"case errors {[r.errors for r in runs]} {runs[-1].note}".rstrip()
    )
    return medians(runs, seen)


def spread_out(suite: Path, classifier: Any, args: argparse.Namespace) -> Measured:
    """pytest-ftclass's Chat defaults against latencies spread as a real API's are."""
    from pytest_ftclass.reference import ReferenceServer

    with ReferenceServer(
        lambda _m: classifier, latency_s=args.spread_latency, latency_spread=args.spread
    ) as server:
        runs, seen = ftclass_rounds("chat", suite, server, args.rounds)
    print(
        f"  chat, median {args.spread_latency:g} s, σ {args.spread:g}: "
        f"walls {[f'{r.seconds:.2f}' for r in runs]} s, spans {[f'{s.span:.2f}' for s in seen]} s,"
        f" peaks {[s.peak for s in seen]}, case errors {[r.errors for r in runs]}"
    )
    return medians(runs, seen)


def verdicts(
    n: int,
    latency: float,
    found: dict[str, dict[str, Measured | None]],
    limited: dict[str, Any],
    floors: dict[str, Measured | None],
    spread: tuple[Measured, float] | None = None,
) -> list[list[Any]]:
    """One row per target: what was measured, the limit, the verdict."""
    rows: list[list[Any]] = []

    def row(target: str, value: float | None, limit: float, note: str = "") -> None:
        if value is None:
            rows.append([target, "-", f"≤ {limit}", "skipped", note])
        else:
            rows.append([target, f"{value:.2f}", f"≤ {limit}", verdict(value <= limit), note])

    chat = found.get("chat", {})
    ours = chat.get("pytest-ftclass")
    if ours:
        for tool, limit in (("promptfoo", CHAT_VS_PROMPTFOO), ("inspect-ai", CHAT_VS_INSPECT)):
            theirs = chat.get(tool)
            row(
                f"Chat whole run ÷ {theirs.label if theirs else tool}",
                ours.wall / theirs.wall if theirs else None,
                limit,
                f"{ours.wall:.2f} s vs {theirs.wall:.2f} s" if theirs else "not run",
            )
        best = ideal(n, 1, ours.peak, latency)
        row(
            "Chat span ÷ N·L/C reached",
            ours.span / best,
            IDEAL_TARGET,
            f"{ours.span:.2f} s vs {best:.2f} s at C={ours.peak:.0f}",
        )
        floor = floors.get("chat")
        if floor is not None:
            bound = max(best, floor.span)
            row(
                "Chat span ÷ max(N·L/C, span at L=0)",
                ours.span / bound,
                IDEAL_TARGET,
                f"{ours.span:.2f} s vs {bound:.2f} s (L=0: {floor.span:.2f} s)",
            )
    ours = found.get("completions", {}).get("pytest-ftclass")
    if ours:
        reference = ideal(n, REFERENCE_BATCH, REFERENCE_CONCURRENCY, latency)
        row(
            f"Completions whole run ÷ ideal at B={REFERENCE_BATCH}, C={REFERENCE_CONCURRENCY}",
            ours.wall / reference,
            COMPLETIONS_VS_IDEAL,
            f"{ours.wall:.2f} s vs {reference:.2f} s",
        )
        reached = ideal(n, REFERENCE_BATCH, ours.peak, latency)
        rows.append(
            [
                "Completions span ÷ ideal at C reached",
                f"{ours.span / reached:.2f}",
                "(shown)",
                "-",
                f"{ours.span:.2f} s vs {reached:.2f} s at C={ours.peak:.0f}",
            ]
        )
    for endpoint, (measure, needed, rate) in limited.items():
        if measure is None:
            continue
        floor = needed / rate
        row(
            f"{endpoint} at {rate:g} req/s: whole run ÷ requests/R",
            measure.wall / floor,
            RATE_TARGET,
            f"{measure.wall:.2f} s vs {floor:.2f} s, span {measure.span:.2f} s",
        )
        rows.append(
            [f"{endpoint} at {rate:g} req/s: case errors", measure.errors, "= 0",
             verdict(measure.errors == 0), ""]
        )  # fmt: skip
    if spread is not None:
        measure, mean_latency = spread
        full = n * mean_latency / CEILING
        rows.append(
            ["Chat, spread latencies: span ÷ N·mean/64", f"{measure.span / full:.2f}", "(shown)",
             "-", f"{measure.span:.2f} s vs {full:.2f} s, peak {measure.peak:.0f}, "
             f"whole run {measure.wall:.2f} s"]
        )  # fmt: skip
    return rows


# -- the grid: predict() over B × C, and the cookbook loop ----------------------------------


def grid(
    cases: list[Any], server: Any, n: int, latency: float, quick: bool, sample: int
) -> list[list[Any]]:
    """predict() at each batch size and concurrency, against the loop extrapolated to n."""
    url = server.base_url
    loop = cookbook_loop(cases[:sample], url)
    loop_n = loop * n / sample
    print(f"cookbook loop: {sample} cases in {loop:.2f} s → {loop_n:.1f} s for {n} (extrapolated)")
    time_predict(cases[:20], "completions", COMPLETIONS_MODEL, url, 20, 1)  # warm-up
    rows = []
    for b in [1, 20] if quick else [1, 10, 20, 50]:
        for c in [4, 16] if quick else [4, 8, 16, 32]:
            best = ideal(n, b, c, latency)
            direct = time_predict(cases, "completions", COMPLETIONS_MODEL, url, b, c)
            rows.append(
                [f"predict B={b} C={c}", direct, best, direct / best, loop_n / direct,
                 verdict(loop_n / direct >= SPEEDUP_TARGET and direct / best <= IDEAL_TARGET)]
            )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    import peers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per answer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="N=200, one round")
    parser.add_argument("--suite", choices=["bbc", "synthetic"], default="bbc")
    parser.add_argument(
        "--peers", nargs="*", default=["promptfoo", "inspect"], choices=["promptfoo", "inspect"]
    )
    parser.add_argument("--peers-dir", type=Path, default=peers.PEERS_DIR)
    parser.add_argument("--rate", type=float, default=100.0, help="Chat: requests per second")
    parser.add_argument(
        "--completions-rate", type=float, default=5.0, help="Completions: requests per second"
    )
    parser.add_argument(
        "--spread-latency", type=float, default=0.3, help="spread run: median seconds per answer"
    )
    parser.add_argument(
        "--spread", type=float, default=0.6, help="spread run: log-normal σ of the latencies"
    )
    parser.add_argument("--grid", action="store_true", help="also predict() over B × C")
    parser.add_argument("--loop-sample", type=int, default=100, help="--grid: cases in the loop")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds = 200, 1
    print(machine_note(), "| uptime:", peers._uptime())
    root = Path(tempfile.mkdtemp(prefix="ftclass-p2-"))
    try:
        return run(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, args: argparse.Namespace) -> int:
    import peers

    from pytest_ftclass.cases.sources import load_cases
    from pytest_ftclass.reference import ReferenceServer

    n, latency = args.n, args.latency
    make = peers.bbc_suite if args.suite == "bbc" else peers.synthetic_suite
    completions_path, chat_path, classifier = make(root / "data", n)
    paths = {"completions": completions_path, "chat": chat_path}
    suites = {}
    found: dict[str, dict[str, Measured | None]] = {}
    with ReferenceServer(lambda _model: classifier, latency_s=latency) as server:
        for endpoint, path in paths.items():
            cases = load_cases(path)
            suites[endpoint] = (cases, peers.write_suite_for(cases, root / f"suite-{endpoint}"))
            found[endpoint] = side_by_side(
                endpoint, cases, suites[endpoint][1], server, args, root / f"work-{endpoint}"
            )
        grid_rows = grid(suites["completions"][0], server, n, latency, args.quick,
                         min(n, args.loop_sample)) if args.grid else []  # fmt: skip
    print("\nthe machine's floor: the same server answering at once (pytest-ftclass defaults):")
    floors = {e: machine_floor(e, suites[e][1], classifier, args) for e in ("chat", "completions")}
    print("\nrate-limited server (pytest-ftclass defaults):")
    limited = {}
    for endpoint, rate in (("chat", args.rate), ("completions", args.completions_rate)):
        cases, suite = suites[endpoint]
        needed = len(cases) if endpoint == "chat" else math.ceil(len(cases) / REFERENCE_BATCH)
        limited[endpoint] = (rate_limited(endpoint, suite, classifier, args, rate), needed, rate)
    print("\nlatencies spread as a real API's (pytest-ftclass defaults):")
    spread = spread_out(suites["chat"][1], classifier, args)
    mean_latency = args.spread_latency * math.exp(args.spread**2 / 2)
    if grid_rows:
        print_table(
            f"P2 grid: predict(), N={n}, L={latency} s",
            ["run", "s", "ideal s", "÷ ideal", "loop ÷ run", "verdict"],
            grid_rows,
        )
    print(f"\n{machine_note()} | uptime: {peers._uptime()}")
    print_table(
        f"P2 verdicts: N={n} {args.suite} cases, L={latency} s, medians of {args.rounds} rounds",
        ["target", "measured", "limit", "verdict", "from"],
        verdicts(n, latency, found, limited, floors, (spread, mean_latency)),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
