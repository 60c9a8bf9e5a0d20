"""Every setting of the plugin: a ``--ft-*`` command-line option and the same ``ft_*`` ini key.

Precedence: command line > ini file (``[tool.pytest.ini_options]`` or
``pytest.ini``) > default.  Paths given on the command line are relative to the
directory pytest was started in; paths in an ini file are relative to that file.

>>> SETTINGS["ft_record_mode"].default, SETTINGS["ft_record_mode"].flag
('none', '--ft-record-mode')
>>> Settings().batch_size == SETTINGS["ft_batch_size"].default
True
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pytest_ftclass.asking.clients import DEFAULT_AZURE_API_VERSION
from pytest_ftclass.cases.endings import DEFAULT_SEPARATOR
from pytest_ftclass.judging.cost import Price
from pytest_ftclass.judging.gate import Bound

if TYPE_CHECKING:
    import pytest

RecordMode = Literal["none", "once", "new_episodes", "all"]
RECORD_MODES: tuple[str, ...] = get_args(RecordMode)
EndpointChoice = Literal["auto", "completions", "chat"]
ENDPOINTS: tuple[str, ...] = get_args(EndpointChoice)
Kind = Literal["string", "int", "float", "bool", "path", "linelist", "bounds", "prices"]
#: Kinds given once per value, on the command line as in the ini file.
LISTED_KINDS = ("linelist", "bounds", "prices")


def setting(
    default: Any,
    help: str,
    kind: Kind = "string",
    *,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A field of :class:`Settings` that is also an option: its default, help and kind."""
    return field(default=default, metadata={"help": help, "kind": kind, "choices": choices})


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one pytest run, and the one source of every option.

    Each field made with :func:`setting` is the option ``--ft-<name>`` (dashes)
    and the ini key ``ft_<name>``, with that default and help: the option
    table (:data:`SETTINGS`), ``add_options`` and the README's table come from
    here.
    """

    model: str = setting("local", "model id to evaluate (default: the local reference model)")
    base_url: str | None = setting(
        None, "base URL of an OpenAI-compatible API (default: the SDK's)"
    )
    endpoint: EndpointChoice = setting(
        "auto", "API endpoint: auto (from the model id), completions or chat", choices=ENDPOINTS
    )
    record_mode: RecordMode = setting(
        "none",
        "cassette record mode: none (replay only), once, new_episodes, all",
        choices=RECORD_MODES,
    )
    cassette_dir: Path = setting(
        Path("cassettes"), "directory of the cassettes (default: cassettes/ in the rootdir)", "path"
    )
    report_dir: Path = setting(
        Path("reports"), "directory of the reports (default: reports/ in the rootdir)", "path"
    )
    case_files: tuple[str, ...] = setting(
        ("*.cases.jsonl",),
        "glob patterns of case files collected as tests, e.g. *.cases.jsonl",
        "linelist",
    )
    separator: str = setting(
        DEFAULT_SEPARATOR, "prompt separator appended to prompts (\\n escapes allowed)"
    )
    stop: str = setting("", "completion stop sequence removed from labels (\\n escapes allowed)")
    max_tokens: int | None = setting(
        None,
        "max tokens generated per case, or auto (the default): the longest label's tokens, "
        "+1 with a stop sequence",
        "int",
    )
    constrain: bool = setting(
        False,
        "constrained decoding: a logit_bias of +100 on the labels' tokens, so the model can "
        "only write a class",
        "bool",
    )
    azure_deployment: str | None = setting(
        None,
        "Azure OpenAI deployment to ask (ft_base_url is then the resource endpoint, "
        "the key AZURE_OPENAI_API_KEY or OPENAI_API_KEY)",
    )
    azure_api_version: str = setting(DEFAULT_AZURE_API_VERSION, "api-version sent to Azure OpenAI")
    top_logprobs: int = setting(5, "number of top log-probabilities asked for", "int")
    batch_size: int = setting(20, "prompts per Completions request", "int")
    concurrency: int | None = setting(
        None,
        "requests in flight at once: auto (the default: adapted to the server, from 16) "
        "or a number that pins it",
        "int",
    )
    batch_api: bool = setting(
        False,
        "ask through the Batch API: one batch per case source and model "
        "(for very large suites; cheaper, slower)",
        "bool",
    )
    max_retries: int = setting(2, "retries of a failed request (429, 5xx, connection)", "int")
    timeout: float = setting(60.0, "seconds before a request times out", "float")
    rate_limit_wait: float = setting(
        120.0,
        "seconds a live run may spend waiting out rate limits (429) once the SDK's "
        "retries gave up, before those cases fail",
        "float",
    )
    strict: bool = setting(False, "fail every mispredicted case, not only critical ones", "bool")
    reference_train: Path | None = setting(
        None, "training file of the local reference model (model id 'local')", "path"
    )
    cassette_prompts: bool = setting(
        False, "store prompt text in cassettes (default: only a digest of it)", "bool"
    )
    text_column: str = setting("text", "CSV/DataFrame column holding the input text")
    label_column: str = setting("label", "CSV/DataFrame column holding the label")
    report: bool = setting(True, "write the JSON and HTML reports", "bool")
    report_text: bool = setting(
        False,
        "show each case's input text in the reports (off: reports hold digests only)",
        "bool",
    )
    positive_class: str | None = setting(
        None, "positive class of binary tasks (AUROC, AUPRC, precision/recall/F1)"
    )
    prices: tuple[Price, ...] = setting(
        (),
        "MODEL=INPUT,OUTPUT: dollars per million prompt and completion tokens, for the "
        "reports' cost estimates; MODEL may be a pattern such as ft:gpt-4o-mini-* (repeatable)",
        "prices",
    )
    lint: bool = setting(
        False, "lint the case files (ftclass lint) before any request; errors stop the run", "bool"
    )
    min: tuple[Bound, ...] = setting(
        (),
        "gate: METRIC=BOUND the metric must reach, e.g. accuracy=0.95 or recall[spam]=0.98 "
        "(repeatable)",
        "bounds",
    )
    max: tuple[Bound, ...] = setting(
        (),
        "gate: METRIC=BOUND the metric must not exceed, e.g. log_loss=0.3 (repeatable)",
        "bounds",
    )
    max_errors: int | None = setting(
        None, "gate: API or parse errors allowed (0 when a gate is set)", "int"
    )
    baseline: Path | None = setting(
        None, "gate: JSON report of an earlier run to compare against", "path"
    )
    max_drop: tuple[Bound, ...] = setting(
        (),
        "gate: METRIC=DROP allowed below the baseline, e.g. accuracy=0.01 (repeatable)",
        "bounds",
    )
    save_baseline: Path | None = setting(
        None, "write this run's JSON report to PATH as a baseline", "path"
    )
    significance: float | None = setting(
        None,
        "gate: a drop or a worse comparison fails only when significant at this level",
        "float",
    )
    allow_subset: bool = setting(
        False,
        "gate: judge a run that asked only part of the suite (-k, --lf, node ids, -x)",
        "bool",
    )
    compare: tuple[str, ...] = setting(
        (),
        "also ask every case of --ft-model of this model, to compare them (repeatable: "
        "several fine-tunes at once)",
        "linelist",
    )
    gate_compare: bool = setting(
        False,
        "gate: fail when --ft-model is significantly worse than a --ft-compare model "
        "(McNemar, Holm-corrected); their errors count too",
        "bool",
    )
    job: str | None = setting(
        None,
        "evaluate this fine-tuning job's model (its fine_tuned_model); its result file and "
        "checkpoints go into the reports",
    )
    checkpoints: bool = setting(
        False, "also ask every checkpoint of the --ft-job job the same cases", "bool"
    )
    rootdir: Path = field(default_factory=Path.cwd)

    @property
    def live(self) -> bool:
        """Whether this run may send requests (any record mode but ``none``)."""
        return self.record_mode != "none"


@dataclass(frozen=True)
class Setting:
    """One option: ``--ft-<name>`` on the command line and ``ft_<name>`` in the ini file."""

    name: str
    help: str
    default: Any = None
    kind: Kind = "string"
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def attribute(self) -> str:
        """The :class:`Settings` field it fills."""
        return self.name.removeprefix("ft_")


SETTINGS: dict[str, Setting] = {
    f"ft_{f.name}": Setting(
        f"ft_{f.name}", f.metadata["help"], f.default, f.metadata["kind"], f.metadata["choices"]
    )
    for f in fields(Settings)
    if "help" in f.metadata
}
"""Every option by ini key, in the order of :class:`Settings`."""


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
        if setting.kind in LISTED_KINDS:
            kwargs["action"] = "append"
        group.addoption(setting.flag, **kwargs)
        listed = setting.kind in LISTED_KINDS
        default = None if setting.kind == "path" else setting.default  # unset: under the rootdir
        ini_type: Literal["linelist", "string"] = "linelist" if listed else "string"
        parser.addini(setting.name, setting.help, type=ini_type, default=default)


def resolve_settings(config: pytest.Config) -> Settings:
    """Read every setting from ``config`` (command line > ini > default), checked.

    A path left unset is its default under the rootdir (``cassettes/``, ``reports/``).
    """
    import pytest

    values: dict[str, Any] = {}
    ini_dir = config.inipath.parent if config.inipath else config.rootpath
    invocation_dir = config.invocation_params.dir
    for setting in SETTINGS.values():
        cli_value = config.getoption(setting.name)
        from_cli = cli_value is not None
        value = cli_value if from_cli else config.getini(setting.name)
        try:
            converted = _convert(setting, value, base=invocation_dir if from_cli else ini_dir)
        except ValueError as err:
            where = setting.flag if from_cli else f"ini key {setting.name}"
            raise pytest.UsageError(f"pytest-ftclass: {where}: {err}") from None
        if converted is None and setting.kind == "path" and setting.default is not None:
            converted = config.rootpath / setting.default
        values[setting.attribute] = converted
    problem = settings_problem(values)
    if problem:
        raise pytest.UsageError(f"pytest-ftclass: {problem}")
    return Settings(rootdir=config.rootpath, **values)


def settings_problem(values: dict[str, Any]) -> str | None:
    """What makes these settings unusable together, or ``None``."""
    for key in ("max_tokens", "top_logprobs", "batch_size", "concurrency"):
        if values[key] is not None and values[key] < 1:
            return f"ft_{key} must be at least 1, got {values[key]}"
    for key in ("max_retries", "max_errors"):
        if values[key] is not None and values[key] < 0:
            return f"ft_{key} must not be negative"
    significance = values["significance"]
    if significance is not None and not 0 < significance < 1:
        return f"ft_significance must be between 0 and 1, got {significance}"
    if values["baseline"] is not None:
        problem = baseline_problem(values["baseline"])
        if problem:
            return f"--ft-baseline {problem}"
    for key in ("min", "max", "max_drop"):
        problem = unknown_metrics(values[key])
        if problem:
            return f"--ft-{key.replace('_', '-')}: {problem}"
    if values["max_drop"] and values["baseline"] is None:
        return "--ft-max-drop needs --ft-baseline"
    if values["gate_compare"] and not values["compare"]:
        return "--ft-gate-compare needs --ft-compare=MODEL"
    if values["model"] in values["compare"]:
        return f"--ft-compare {values['model']} is the model under test (--ft-model)"
    if values["checkpoints"] and not values["job"]:
        return "--ft-checkpoints needs --ft-job=JOB_ID"
    if values["job"] and values["azure_deployment"]:
        return (
            "--ft-job does not work with --ft-azure-deployment (a job's checkpoints have no "
            "deployment): set --ft-model to the deployed fine-tune instead"
        )
    return None


def baseline_problem(path: Path) -> str | None:
    """What is wrong with a baseline report file, or ``None`` when it can be used."""
    if not path.is_file():
        return f"{path}: no such file" if not path.exists() else f"{path}: not a file"
    try:
        load_baseline(path)
    except (OSError, ValueError) as err:
        return str(err)
    return None


def load_baseline(path: Path) -> dict[str, Any]:
    """The baseline report at ``path``, parsed once per process while the file is unchanged.

    Checked when the run starts and judged with when it ends: a baseline of
    100,000 cases is read once, not twice.
    """
    stat = path.stat()
    return _baseline_at(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1)
def _baseline_at(path: str, _mtime_ns: int, _size: int) -> dict[str, Any]:
    from pytest_ftclass.report.json_report import load_report

    return load_report(path)


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
    from pytest_ftclass.judging.gate import is_known_metric, known_metric_names

    unknown = [bound.metric for bound in bounds if not is_known_metric(bound.metric)]
    if not unknown:
        return None
    return (
        f"unknown metric {', '.join(repr(name) for name in unknown)} "
        f"(known: {', '.join(known_metric_names())})"
    )


def _convert(setting: Setting, value: Any, base: Path) -> Any:
    """An option's text as its :class:`Settings` value; ``ValueError`` says what is wrong."""
    if setting.kind == "bool":
        return bool(value)
    if setting.kind in LISTED_KINDS:
        if isinstance(value, str):
            value = [value]
        items = tuple(p for v in value or () for p in str(v).split() if p)
        if setting.kind == "bounds":
            return tuple(Bound.parse(item) for item in items)
        if setting.kind == "prices":
            return tuple(Price.parse(item) for item in items)
        return tuple(dict.fromkeys(items)) if setting.name == "ft_compare" else items
    if value is None or value == "":
        return None if setting.kind == "path" else setting.default
    if setting.name in ("ft_max_tokens", "ft_concurrency") and str(value).strip().lower() == "auto":
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
