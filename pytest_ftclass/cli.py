"""The ``ftclass`` command: work with fine-tuned classifiers outside pytest.

Subcommands:

``ftclass serve --train FILE [--model-id local] [--host 127.0.0.1] [--port 8000] [--fraction 1.0]``
    Train the local reference model (TF-IDF + logistic regression) on a
    fine-tuning training file and serve it over the OpenAI API until Ctrl-C.
    It prints the base URL on a line of its own (``--port 0`` picks a free
    port), for ``OPENAI_BASE_URL`` or ``openai.OpenAI(base_url=...)``; only
    ``--model-id`` is served, any other model id gets a 404.

>>> main(["serve", "--train", "does-not-exist.jsonl"])
2

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ftclass`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return int(handler(args))


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
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
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


if __name__ == "__main__":
    sys.exit(main())
