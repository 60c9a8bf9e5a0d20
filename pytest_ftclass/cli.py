"""The ``ftclass`` command: work with fine-tuned classifiers outside pytest.

Subcommands:

``ftclass serve --train FILE [--model-id local] [--host 127.0.0.1] [--port 8000] [--fraction 1.0]``
    Train the local reference model (TF-IDF + logistic regression) on a
    fine-tuning training file and serve it over the OpenAI API until Ctrl-C.
    It prints the base URL on a line of its own (``--port 0`` picks a free
    port), for ``OPENAI_BASE_URL`` or ``openai.OpenAI(base_url=...)``; only
    ``--model-id`` is served, any other model id gets a 404.

``ftclass lint TRAIN [--valid FILE] [--model ID] [--max-tokens N] [--json]``
    Check fine-tuning data before training on it (:mod:`pytest_ftclass.cases.lint`):
    a table of findings (severity, check, count, example lines), or JSON with
    ``--json``.  Exit status 1 when there is an error, else 0.

``ftclass prepare FILE [--valid-fraction F] [--seed N] [--separator S] [--max-tokens N]``
    Fix what can be fixed and split into ``FILE_prepared_train.jsonl`` and
    ``FILE_prepared_valid.jsonl`` (:mod:`pytest_ftclass.cases.prepare`); prints what it did.

>>> main(["serve", "--train", "does-not-exist.jsonl"])
2
>>> main(["lint", "does-not-exist.jsonl", "--json"])  # doctest: +ELLIPSIS
{...
1

``ftclass compare A.json B.json [C.json ...] [--out DIR] [--gate] [--significance 0.05]``
    JSON reports side by side, cases paired by source and id
    (:mod:`pytest_ftclass.judging.compare`): each later report against the
    first (the reference, e.g. production), and all in a leaderboard per source
    with Holm-corrected McNemar p-values.  Writes ``ftclass-compare.json`` and
    ``.html`` into ``--out`` (default: beside the last report) and prints the
    summary.  With ``--gate``, exit status 1 when a later report's model is
    significantly worse than the first's (one-sided McNemar, Holm-corrected over
    the later reports).

``ftclass report RUN.json [--out DIR]``
    Render the HTML and Markdown reports again from a JSON report.

``ftclass finetune TRAIN [--valid V] --model BASE [--suffix S] [--n-epochs N] [--seed N]``
    Lint the files (errors stop it unless ``--no-lint``), upload them, create a
    fine-tuning job and follow it (status and step metrics on stderr); prints
    ``job: ID`` and ``fine-tuned model: ID``.  Exit status 0 when the job
    succeeded, 1 when it failed or was cancelled.  Ctrl-C leaves the job running
    (``--follow ID`` follows it again, ``--cancel ID`` cancels it).  The base URL
    and key are the SDK's: ``--base-url`` or ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``.

Each subcommand is a ``_add_NAME(subparsers)`` function that registers its
arguments and sets ``handler`` to a function taking the parsed namespace and
returning the exit status.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``ftclass`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="ftclass",
        description="Evaluate fine-tuned classifiers served over the OpenAI API.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_serve(subparsers)
    _add_lint(subparsers)
    _add_prepare(subparsers)
    _add_compare(subparsers)
    _add_report(subparsers)
    _add_finetune(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ftclass`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args))
    except BrokenPipeError:  # `ftclass lint ... | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


# -- serve ---------------------------------------------------------------------------


def _add_serve(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="train the local reference model and serve it over the OpenAI API",
        description=(
            "Train a TF-IDF + logistic-regression classifier on a fine-tuning training "
            "file and serve it on the OpenAI Completions and Chat Completions API "
            "until interrupted (Ctrl-C)."
        ),
    )
    serve.add_argument(
        "--train", required=True, metavar="FILE", help="training file (.jsonl or .csv)"
    )
    serve.add_argument(
        "--model-id", default="local", help="the model id to answer to (default: local)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8000, help="port to bind, 0 for any free port (default: 8000)"
    )
    serve.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="share of the training cases to keep, per class, for a weaker baseline (default: 1.0)",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from pytest_ftclass.reference import ReferenceClassifier, ReferenceServer

    started = time.perf_counter()
    try:
        model = ReferenceClassifier.from_file(args.train, fraction=args.fraction)
    except ValueError as err:  # a CaseSourceError (bad file) or a bad --fraction
        print(f"ftclass serve: error: {err}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    try:
        server = ReferenceServer({args.model_id: model}, host=args.host, port=args.port).start()
    except OSError as err:
        where = f"{args.host}:{args.port}"
        print(f"ftclass serve: error: cannot listen on {where}: {err}", file=sys.stderr)
        return 2
    print(
        f"Trained reference model {args.model_id!r} on {model.n_train} cases, "
        f"{len(model.labels)} classes, in {elapsed:.2f} s.",
        flush=True,
    )
    print(server.base_url, flush=True)
    print("Serving the OpenAI API; press Ctrl-C to stop.", file=sys.stderr, flush=True)
    previous = _stop_on_sigterm()
    try:
        server.serve_forever()  # stops the server when it returns or raises
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _stop_on_sigterm() -> Any:
    """Treat SIGTERM like Ctrl-C so ``kill`` stops the server cleanly (main thread only)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        return None


# -- lint ----------------------------------------------------------------------------


def _add_lint(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lint = subparsers.add_parser(
        "lint",
        help="check fine-tuning data for classification before training on it",
        description=(
            "Check a fine-tuning training file (and its validation file) for what makes "
            "classification fine-tunes fail. Exit status 1 when there is an error."
        ),
    )
    lint.add_argument("train", metavar="TRAIN", help="training file (.jsonl)")
    lint.add_argument("--valid", metavar="VALID", help="validation file (.jsonl)")
    lint.add_argument(
        "--model", help="model id: its tokenizer and context limit (default: cl100k_base, 4096)"
    )
    lint.add_argument(
        "--max-tokens", type=int, metavar="N", help="token limit per example (default: the model's)"
    )
    lint.add_argument("--json", action="store_true", help="print the report as JSON")
    lint.set_defaults(handler=_lint)


def _lint(args: argparse.Namespace) -> int:
    import json

    from pytest_ftclass.cases.lint import format_report, lint_files

    report = lint_files(args.train, args.valid, args.model, max_tokens=args.max_tokens)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_report(report))
    return report.exit_status


# -- prepare -------------------------------------------------------------------------


def _add_prepare(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prepare = subparsers.add_parser(
        "prepare",
        help="fix a fine-tuning file and split it into training and validation files",
        description=(
            "Fix what lint finds and can be fixed (separator, leading space, stop sequence, "
            "duplicates, long examples, unreadable lines) and write a stratified, "
            "deterministic split to FILE_prepared_train.jsonl and FILE_prepared_valid.jsonl."
        ),
    )
    prepare.add_argument("file", metavar="FILE", help="fine-tuning file (.jsonl or .csv)")
    prepare.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="share of each class for validation (default: 0.1)",
    )
    prepare.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    prepare.add_argument(
        "--separator",
        help="prompt separator, \\n escapes allowed (default: the one most prompts end in "
        "if it occurs inside none of them, else \\n\\n###\\n\\n)",
    )
    prepare.add_argument(
        "--max-tokens", type=int, metavar="N", help="drop longer examples (default: the model's)"
    )
    prepare.add_argument("--model", help="model id: its tokenizer and context limit")
    prepare.set_defaults(handler=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    from pytest_ftclass.cases.prepare import prepare_file
    from pytest_ftclass.options import unescape

    separator = unescape(args.separator) if args.separator is not None else None
    try:
        result = prepare_file(
            args.file,
            valid_fraction=args.valid_fraction,
            seed=args.seed,
            separator=separator,
            max_tokens=args.max_tokens,
            model=args.model,
        )
    except ValueError as err:
        print(f"ftclass prepare: error: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


# -- compare -------------------------------------------------------------------------


def _add_compare(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    compare = subparsers.add_parser(
        "compare",
        help="compare JSON reports (fine-tunes on the same cases)",
        description="Pair the cases of JSON reports by source and id and compare the runs: "
        "each later one against the first, and all of them in a leaderboard.",
    )
    compare.add_argument("reference", help="JSON report of the reference model (e.g. production)")
    compare.add_argument(
        "others", nargs="+", help="JSON reports of the models compared with it (candidates)"
    )
    compare.add_argument(
        "--out", help="directory for ftclass-compare.json/.html (default: the last report's)"
    )
    compare.add_argument(
        "--gate",
        action="store_true",
        help="exit 1 when a candidate is significantly worse than the reference",
    )
    compare.add_argument("--significance", type=float, default=0.05, help="level of the test")
    compare.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pytest_ftclass.report import load_report
    from pytest_ftclass.report.comparison import compare_reports, summary_lines, write_comparison

    paths = [args.reference, *args.others]
    try:
        reports = [load_report(path) for path in paths]
    except (OSError, ValueError) as err:
        print(f"ftclass compare: {err}", file=sys.stderr)
        return 2
    comparison = compare_reports(reports, alpha=args.significance)
    out = Path(args.out) if args.out else Path(paths[-1]).parent
    for line in summary_lines(comparison):
        print(line)
    for path in write_comparison(comparison, out):
        print(f"written: {path}")
    if args.gate:
        worse = _significantly_worse(comparison, args.significance)
        if worse:
            print(f"significantly worse than the reference: {'; '.join(worse)}", file=sys.stderr)
            return 1
    return 0


def _significantly_worse(comparison: dict[str, Any], alpha: float) -> list[str]:
    """``MODEL on SOURCE`` for each candidate worse than the reference (Holm per source)."""
    from pytest_ftclass.judging.leaderboard import holm
    from pytest_ftclass.judging.significance import PairedComparison

    by_source: dict[str, list[tuple[str, PairedComparison]]] = {}
    for pair in comparison["pairs"]:
        for source in pair["sources"]:
            counts = PairedComparison.from_dict(source["paired"])
            by_source.setdefault(source["source"], []).append((pair["model_b"], counts))
    worse = []
    for source, rivals in by_source.items():
        adjusted = holm([counts.p_b_worse for _, counts in rivals])
        for (model, counts), p in zip(rivals, adjusted, strict=True):
            if counts.a_only > counts.b_only and p < alpha:
                worse.append(f"{model} on {source} (p={p:.3g})")
    return worse


# -- report --------------------------------------------------------------------------


def _add_report(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = subparsers.add_parser(
        "report",
        help="render the HTML and Markdown reports from a JSON report",
        description="Render RUN.html and RUN.md from RUN.json (beside it, or into --out).",
    )
    report.add_argument("json_report", help="a JSON report written by pytest-ftclass")
    report.add_argument("--out", help="directory to write into (default: beside the JSON)")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from pytest_ftclass.report import render_from_json

    try:
        written = render_from_json(args.json_report, args.out)
    except (OSError, ValueError) as err:
        print(f"ftclass report: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(f"written: {path}")
    return 0


# -- finetune ------------------------------------------------------------------------


def _add_finetune(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    finetune = subparsers.add_parser(
        "finetune",
        help="lint, upload and fine-tune, then follow the job to its end",
        description=(
            "Lint the training (and validation) file, upload them, create a fine-tuning job "
            "and follow it. Prints the job id and the fine-tuned model id; exit status 0 when "
            "the job succeeded, 1 otherwise. Ctrl-C leaves the job running."
        ),
    )
    finetune.add_argument("train", nargs="?", metavar="TRAIN", help="training file (.jsonl)")
    finetune.add_argument("--valid", metavar="V", help="validation file (.jsonl)")
    finetune.add_argument("--model", metavar="BASE", help="base model, e.g. babbage-002")
    finetune.add_argument("--suffix", metavar="S", help="suffix of the fine-tuned model's name")
    finetune.add_argument("--n-epochs", type=int, metavar="N", help="epochs (default: the API's)")
    finetune.add_argument("--batch-size", type=int, metavar="N", help="batch size")
    finetune.add_argument(
        "--learning-rate-multiplier", type=float, metavar="X", help="learning rate multiplier"
    )
    finetune.add_argument("--seed", type=int, metavar="N", help="seed, for a reproducible job")
    finetune.add_argument("--no-lint", action="store_true", help="do not lint the files first")
    finetune.add_argument(
        "--base-url", metavar="URL", help="OpenAI-compatible base URL (default: OPENAI_BASE_URL)"
    )
    finetune.add_argument("--follow", metavar="JOB_ID", help="follow an existing job instead")
    finetune.add_argument("--cancel", metavar="JOB_ID", help="cancel a running job instead")
    finetune.set_defaults(handler=_finetune)


def _finetune(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from pytest_ftclass.asking.fine_tune import FineTuneRequest, follow_job, start_job

    name = "ftclass finetune"
    existing = args.follow or args.cancel
    if bool(existing) == bool(args.train) or (args.follow and args.cancel):
        print(
            f"{name}: give TRAIN and --model, or --follow JOB_ID, or --cancel JOB_ID",
            file=sys.stderr,
        )
        return 2
    if args.train and not args.model:
        print(f"{name}: --model BASE is needed (e.g. --model babbage-002)", file=sys.stderr)
        return 2
    if not os.environ.get("OPENAI_API_KEY"):
        print(
            f"{name}: OPENAI_API_KEY is not set (the local reference server takes any key, "
            "e.g. OPENAI_API_KEY=sk-local)",
            file=sys.stderr,
        )
        return 2
    if args.train and not args.no_lint and _lint_stops(args, name):
        return 1
    import openai

    from pytest_ftclass.asking.errors import describe_api_error

    client = openai.OpenAI(base_url=args.base_url) if args.base_url else openai.OpenAI()
    job_id = existing
    try:
        if args.cancel:
            cancelled = client.fine_tuning.jobs.cancel(args.cancel)
            print(f"job {cancelled.id}: {cancelled.status}")
            return 0
        if args.train:
            request = FineTuneRequest(
                Path(args.train),
                model=args.model,
                valid=Path(args.valid) if args.valid else None,
                suffix=args.suffix,
                n_epochs=args.n_epochs,
                batch_size=args.batch_size,
                learning_rate_multiplier=args.learning_rate_multiplier,
                seed=args.seed,
            )
            job_id = str(start_job(client, request)["id"])
            print(f"job: {job_id}", flush=True)
        assert job_id is not None
        job = follow_job(client, job_id, on_progress=_ProgressPrinter())
    except KeyboardInterrupt:
        _say_still_running(name, job_id)
        return 130
    except OSError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
    except openai.OpenAIError as err:
        print(f"{name}: {describe_api_error(err)}", file=sys.stderr)
        return 1
    if job.get("status") != "succeeded":
        error = job.get("error") or {}
        why = f": {error.get('message')}" if error.get("message") else ""
        code = f" ({error['code']})" if error.get("code") else ""
        print(f"{name}: job {job_id} {job.get('status')}{why}{code}", file=sys.stderr)
        return 1
    print(f"fine-tuned model: {job.get('fine_tuned_model')}")
    return 0


def _lint_stops(args: argparse.Namespace, name: str) -> bool:
    """Lint the files; print the findings; whether an error stops the fine-tune."""
    from pytest_ftclass.cases.lint import format_report, lint_files

    report = lint_files(args.train, args.valid, args.model)
    if report.errors or report.findings:
        print(format_report(report), file=sys.stderr)
    if report.errors:
        print(
            f"{name}: {len(report.errors)} lint error(s): nothing was uploaded "
            "(fix them, or pass --no-lint)",
            file=sys.stderr,
        )
        return True
    return False


def _say_still_running(name: str, job_id: str | None) -> None:
    if job_id is None:
        print(f"\n{name}: interrupted before the job was created", file=sys.stderr)
        return
    print(
        f"\n{name}: interrupted; job {job_id} keeps running.\n"
        f"  follow it: ftclass finetune --follow {job_id}\n"
        f"  cancel it: ftclass finetune --cancel {job_id}",
        file=sys.stderr,
    )


class _ProgressPrinter:
    """The job's progress on stderr: one line rewritten on a terminal, else a line now and then."""

    EVERY_S = 5.0

    def __init__(self) -> None:
        self.terminal = sys.stderr.isatty()
        self.status = ""
        self.printed_at = 0.0

    def __call__(self, progress: Any) -> None:
        from pytest_ftclass.recording.job_traffic import FINAL_JOB_STATUSES

        line = progress.line()
        if self.terminal:
            for message in progress.messages:
                sys.stderr.write(f"\r\033[K{message}\n")
            sys.stderr.write(f"\r\033[K{line}")
            if progress.status in FINAL_JOB_STATUSES:
                sys.stderr.write("\n")
            sys.stderr.flush()
            return
        for message in progress.messages:
            print(message, file=sys.stderr)
        now = time.monotonic()
        if progress.status != self.status or now - self.printed_at >= self.EVERY_S:
            print(line, file=sys.stderr, flush=True)
            self.status, self.printed_at = progress.status, now


if __name__ == "__main__":
    sys.exit(main())
