"""Every setting of the plugin: a ``--ft-*`` command-line option and the same ``ft_*`` ini key.

Precedence: command line > ini file (``[tool.pytest.ini_options]`` or
``pytest.ini``) > default.  Paths given on the command line are relative to the
directory pytest was started in; paths in an ini file are relative to that file.

>>> SETTINGS["ft_record_mode"].default
'none'
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .gate import Bound
from .predict import DEFAULT_AZURE_API_VERSION

if TYPE_CHECKING:
    import pytest

RECORD_MODES = ("none", "once", "new_episodes", "all")
ENDPOINTS = ("auto", "completions", "chat")
DEFAULT_SEPARATOR = "\n\n###\n\n"


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    default: Any = None
    kind: Literal["string", "int", "float", "bool", "path", "linelist"] = "string"
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "ft_model", "model id to evaluate (default: the local reference model 'local')", "local"
        ),
        Setting("ft_base_url", "base URL of an OpenAI-compatible API (default: the SDK's)"),
        Setting(
            "ft_endpoint",
            "API endpoint: auto (from the model id), completions or chat",
            "auto",
            choices=ENDPOINTS,
        ),
        Setting(
            "ft_record_mode",
            "cassette record mode: none (replay only), once, new_episodes, all",
            "none",
            choices=RECORD_MODES,
        ),
        Setting(
            "ft_cassette_dir",
            "directory of the cassettes (default: cassettes/ in the rootdir)",
            kind="path",
        ),
        Setting(
            "ft_report_dir",
            "directory the JSON and HTML reports are written to",
            "reports",
            kind="path",
        ),
        Setting(
            "ft_case_files",
            "glob patterns of case files collected as tests, e.g. *.cases.jsonl",
            ("*.cases.jsonl",),
            kind="linelist",
        ),
        Setting(
            "ft_separator",
            "prompt separator appended to prompts (\\n escapes allowed)",
            DEFAULT_SEPARATOR,
        ),
        Setting(
            "ft_stop", "completion stop sequence removed from labels (\\n escapes allowed)", ""
        ),
        Setting(
            "ft_max_tokens",
            "max tokens generated per case, or auto (the default): the longest label's tokens, "
            "+1 with a stop sequence",
            kind="int",
        ),
        Setting(
            "ft_constrain",
            "constrained decoding: a logit_bias of +100 on the labels' tokens, so the model can "
            "only write a class",
            False,
            kind="bool",
        ),
        Setting(
            "ft_azure_deployment",
            "Azure OpenAI deployment to ask (ft_base_url is then the resource endpoint, "
            "the key AZURE_OPENAI_API_KEY or OPENAI_API_KEY)",
        ),
        Setting(
            "ft_azure_api_version",
            "api-version sent to Azure OpenAI",
            DEFAULT_AZURE_API_VERSION,
        ),
        Setting("ft_top_logprobs", "number of top log-probabilities asked for", 5, kind="int"),
        Setting("ft_batch_size", "prompts per Completions request", 20, kind="int"),
        Setting("ft_concurrency", "requests in flight at once", 4, kind="int"),
        Setting(
            "ft_batch_api",
            "ask through the Batch API: one batch per case source and model "
            "(for very large suites; cheaper, slower)",
            False,
            kind="bool",
        ),
        Setting(
            "ft_max_retries", "retries of a failed request (429, 5xx, connection)", 2, kind="int"
        ),
        Setting("ft_timeout", "seconds before a request times out", 60.0, kind="float"),
        Setting(
            "ft_rate_limit_wait",
            "seconds a live run may spend waiting out rate limits (429) once the SDK's "
            "retries gave up, before those cases fail",
            120.0,
            kind="float",
        ),
        Setting(
            "ft_strict", "fail every mispredicted case, not only critical ones", False, kind="bool"
        ),
        Setting(
            "ft_reference_train",
            "training file of the local reference model (model id 'local')",
            kind="path",
        ),
        Setting(
            "ft_cassette_prompts",
            "store prompt text in cassettes (default: only a digest of it)",
            False,
            kind="bool",
        ),
        Setting("ft_text_column", "CSV/DataFrame column holding the input text", "text"),
        Setting("ft_label_column", "CSV/DataFrame column holding the label", "label"),
        Setting("ft_report", "write the JSON and HTML reports", True, kind="bool"),
        Setting(
            "ft_report_text",
            "show each case's input text in the reports (off: reports hold digests only)",
            False,
            kind="bool",
        ),
        Setting(
            "ft_positive_class",
            "positive class of binary tasks (AUROC, AUPRC, precision/recall/F1)",
        ),
        Setting(
            "ft_lint",
            "lint the case files (ftclass lint) before any request; errors stop the run",
            False,
            kind="bool",
        ),
        Setting(
            "ft_min",
            "gate: METRIC=BOUND the metric must reach, e.g. accuracy=0.95 or recall[spam]=0.98 "
            "(repeatable)",
            (),
            kind="linelist",
        ),
        Setting(
            "ft_max",
            "gate: METRIC=BOUND the metric must not exceed, e.g. log_loss=0.3 (repeatable)",
            (),
            kind="linelist",
        ),
        Setting(
            "ft_max_errors", "gate: API or parse errors allowed (0 when a gate is set)", kind="int"
        ),
        Setting(
            "ft_baseline", "gate: JSON report of an earlier run to compare against", kind="path"
        ),
        Setting(
            "ft_max_drop",
            "gate: METRIC=DROP allowed below the baseline, e.g. accuracy=0.01 (repeatable)",
            (),
            kind="linelist",
        ),
        Setting(
            "ft_save_baseline", "write this run's JSON report to PATH as a baseline", kind="path"
        ),
        Setting(
            "ft_significance",
            "gate: a drop or a worse comparison fails only when significant at this level",
            kind="float",
        ),
        Setting(
            "ft_allow_subset",
            "gate: judge a run that asked only part of the suite (-k, --lf, node ids, -x)",
            False,
            kind="bool",
        ),
        Setting("ft_compare", "also ask every case of --ft-model of this second model"),
        Setting(
            "ft_gate_compare",
            "gate: fail when the --ft-compare model is significantly worse",
            False,
            kind="bool",
        ),
    )
}


def add_options(parser: pytest.Parser) -> None:
    """Register every setting as ``--ft-*`` in the ``ftclass`` group and as an ini key."""
    group = parser.getgroup("ftclass", "fine-tuned classifier evaluation (pytest-ftclass)")
    for setting in SETTINGS.values():
        if setting.kind == "bool":
            group.addoption(
                setting.flag,
                dest=setting.name,
                action="store_true",
                default=None,
                help=setting.help,
            )
            parser.addini(setting.name, setting.help, type="bool", default=setting.default)
            continue
        kwargs: dict[str, Any] = {"dest": setting.name, "default": None, "help": setting.help}
        if setting.choices:
            kwargs["choices"] = setting.choices
        if setting.kind == "linelist":
            kwargs["action"] = "append"
        group.addoption(setting.flag, **kwargs)
        ini_type = "linelist" if setting.kind == "linelist" else "string"
        parser.addini(setting.name, setting.help, type=ini_type, default=setting.default)


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one pytest run."""

    model: str = "local"
    base_url: str | None = None
    endpoint: str = "auto"
    record_mode: str = "none"
    cassette_dir: Path = Path("cassettes")
    report_dir: Path = Path("reports")
    case_files: tuple[str, ...] = ("*.cases.jsonl",)
    separator: str = DEFAULT_SEPARATOR
    stop: str = ""
    max_tokens: int | None = None  # None: auto, sized from the longest label
    top_logprobs: int = 5
    batch_size: int = 20
    concurrency: int = 4
    batch_api: bool = False
    constrain: bool = False
    azure_deployment: str | None = None
    azure_api_version: str = DEFAULT_AZURE_API_VERSION
    max_retries: int = 2
    timeout: float = 60.0
    rate_limit_wait: float = 120.0
    strict: bool = False
    reference_train: Path | None = None
    cassette_prompts: bool = False
    text_column: str = "text"
    label_column: str = "label"
    report: bool = True
    report_text: bool = False
    positive_class: str | None = None
    lint: bool = False
    min: tuple[Bound, ...] = ()
    max: tuple[Bound, ...] = ()
    max_errors: int | None = None
    baseline: Path | None = None
    max_drop: tuple[Bound, ...] = ()
    save_baseline: Path | None = None
    significance: float | None = None
    allow_subset: bool = False
    compare: str | None = None
    gate_compare: bool = False
    rootdir: Path = field(default_factory=Path.cwd)


def resolve_settings(config: pytest.Config) -> Settings:
    """Read every setting from ``config`` (command line > ini > default), checked."""
    import pytest

    values: dict[str, Any] = {}
    ini_dir = config.inipath.parent if config.inipath else config.rootpath
    invocation_dir = config.invocation_params.dir
    for setting in SETTINGS.values():
        cli_value = config.getoption(setting.name)
        from_cli = cli_value is not None
        value = cli_value if from_cli else config.getini(setting.name)
        key = setting.name.removeprefix("ft_")
        try:
            values[key] = _convert(setting, value, base=invocation_dir if from_cli else ini_dir)
        except ValueError as err:
            where = setting.flag if from_cli else f"ini key {setting.name}"
            raise pytest.UsageError(f"pytest-ftclass: {where}: {err}") from None
    if values["cassette_dir"] is None:
        values["cassette_dir"] = config.rootpath / "cassettes"
    for key in ("max_tokens", "top_logprobs", "batch_size", "concurrency"):
        if values[key] is not None and values[key] < 1:
            raise pytest.UsageError(
                f"pytest-ftclass: ft_{key} must be at least 1, got {values[key]}"
            )
    if values["max_retries"] < 0:
        raise pytest.UsageError("pytest-ftclass: ft_max_retries must not be negative")
    for key in ("min", "max", "max_drop"):
        try:
            values[key] = tuple(Bound.parse(text) for text in values[key])
        except ValueError as err:
            raise pytest.UsageError(
                f"pytest-ftclass: --ft-{key.replace('_', '-')}: {err}"
            ) from None
    if values["max_errors"] is not None and values["max_errors"] < 0:
        raise pytest.UsageError("pytest-ftclass: ft_max_errors must not be negative")
    significance = values["significance"]
    if significance is not None and not 0 < significance < 1:
        raise pytest.UsageError(
            f"pytest-ftclass: ft_significance must be between 0 and 1, got {significance}"
        )
    if values["baseline"] is not None:
        problem = baseline_problem(values["baseline"])
        if problem:
            raise pytest.UsageError(f"pytest-ftclass: --ft-baseline {problem}")
    for key in ("min", "max", "max_drop"):
        problem = unknown_metrics(values[key])
        if problem:
            raise pytest.UsageError(f"pytest-ftclass: --ft-{key.replace('_', '-')}: {problem}")
    if values["max_drop"] and values["baseline"] is None:
        raise pytest.UsageError("pytest-ftclass: --ft-max-drop needs --ft-baseline")
    if values["gate_compare"] and not values["compare"]:
        raise pytest.UsageError("pytest-ftclass: --ft-gate-compare needs --ft-compare=MODEL")
    return Settings(rootdir=config.rootpath, **values)


def baseline_problem(path: Path) -> str | None:
    """What is wrong with a baseline report file, or ``None`` when it can be used."""
    from .report.json_report import load_report

    if not path.is_file():
        return f"{path}: no such file" if not path.exists() else f"{path}: not a file"
    try:
        load_report(path)
    except (OSError, ValueError) as err:
        return str(err)
    return None


def writable_problem(directory: Path) -> str | None:
    """Why files could not be written in ``directory`` (made when needed), or ``None``.

    Nothing is created: the directory, or the nearest of its parents that
    exists, must be a writable directory.

    >>> import tempfile
    >>> writable_problem(Path(tempfile.mkdtemp()) / "reports") is None
    True
    >>> writable_problem(Path(__file__) / "reports")  # doctest: +ELLIPSIS
    'cannot be made: .../options.py is not a directory'
    """
    existing = directory
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    made = "" if existing == directory else "cannot be made: "
    if not existing.is_dir():
        return f"{made}{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{made}{existing} is not writable"
    return None


def unknown_metrics(bounds: tuple[Bound, ...]) -> str | None:
    """A message naming the gate metrics no report can have, or ``None``."""
    from .gate import is_known_metric, known_metric_names

    unknown = [bound.metric for bound in bounds if not is_known_metric(bound.metric)]
    if not unknown:
        return None
    return (
        f"unknown metric {', '.join(repr(name) for name in unknown)} "
        f"(known: {', '.join(known_metric_names())})"
    )


def _convert(setting: Setting, value: Any, base: Path) -> Any:
    if setting.kind == "bool":
        return bool(value)
    if setting.kind == "linelist":
        if isinstance(value, str):
            value = [value]
        return tuple(p for v in value or () for p in str(v).split() if p)
    if value is None or value == "":
        return setting.default if setting.kind != "path" else None
    if setting.name == "ft_max_tokens" and str(value).strip().lower() == "auto":
        return None
    if setting.kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a whole number, got {value!r}") from None
    if setting.kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
    if setting.kind == "path":
        return (base / os.path.expanduser(str(value))).resolve()
    if setting.choices and value not in setting.choices:
        raise ValueError(f"expected one of {', '.join(setting.choices)}, got {value!r}")
    if setting.name in ("ft_separator", "ft_stop"):
        return unescape(str(value))
    return str(value)


def unescape(text: str) -> str:
    r"""Turn the escapes ``\n``, ``\r``, ``\t`` and ``\\`` into the characters they name.

    >>> unescape(r"\n\n###\n\n") == "\n\n###\n\n"
    True
    """
    out = []
    i = 0
    table = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in table:
            out.append(table[text[i + 1]])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)
