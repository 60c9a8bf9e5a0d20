"""Lint fine-tuning data for a classifier: find what makes a fine-tune fail before paying for it.

>>> import json, pathlib, tempfile
>>> train = pathlib.Path(tempfile.mkdtemp()) / "train.jsonl"
>>> rows = [{"prompt": f"match {i}\\n\\n###\\n\\n", "completion": " sport"} for i in range(3)]
>>> _ = train.write_text("\\n".join(json.dumps(r) for r in rows) + "\\n{oops\\n")
>>> report = lint_files(train)
>>> [(f.check, f.rows) for f in report.findings if f.severity == "error"]
[('invalid-json', (4,))]
>>> report.exit_status
1

Files are read at the level of JSON records, not through :func:`load_cases`, so a
file ``load_cases`` rejects (empty completions, mixed formats, bad lines) is
reported finding by finding, each with the line numbers it concerns, instead of
stopping at the first problem.  Every check is a pure function of parsed
:class:`Record` objects returning at most one :class:`Finding`; severities:

- ``error``: the fine-tune or its evaluation will not work (bad JSON, missing
  or empty completions, two formats in one file, a chat validation file for a
  prompt/completion training file or the reverse, classes whose first tokens
  collide, validation classes never trained on, validation text copied from
  the training file);
- ``warning``: it will work worse than it could (most of these ``ftclass
  prepare`` fixes: missing separator or one found inside prompts, missing
  leading space, inconsistent stop sequence, duplicates, unknown fields,
  examples over the context limit; the data ones it cannot: small or
  imbalanced classes, near-duplicate leakage, upper-case text);
- ``info``: worth knowing (labels of several tokens, a common prompt prefix,
  the stop sequence to evaluate with, an input/label case file beside a
  fine-tuning file, checks skipped).

Separator and stop sequence are inferred by :mod:`pytest_ftclass.cases.endings`.
Tokens are counted with the model's tokenizer (:mod:`pytest_ftclass.cases.tokens`),
or ``cl100k_base`` as an approximation when the model's is unknown or not
available offline; without any encoding the token checks are skipped and a
``tokens-skipped`` finding says so.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_ftclass.cases.endings import (
    SeparatorChoice,
    choose_separator,
    infer_stop,
    separator_inside,
)
from pytest_ftclass.cases.sources import KNOWN_FIELDS, completion_label, request_text
from pytest_ftclass.cases.tokens import context_limit, encoding_for

if TYPE_CHECKING:
    from tiktoken import Encoding

__all__ = [
    "FIXED_BY_PREPARE",
    "Finding",
    "LintReport",
    "Record",
    "classified_text",
    "format_report",
    "input_text",
    "lint_case_files",
    "lint_files",
    "read_records",
]

Severity = Literal["error", "warning", "info"]
Format = Literal["prompt", "chat", "text"]
Role = Literal["train", "valid", "cases"]

SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}
MAX_EXAMPLE_ROWS = 20
MIN_EXAMPLES = 100
MIN_CLASS_EXAMPLES = 100
MAX_IMBALANCE = 10.0
NEAR_DUPLICATE_JACCARD = 0.9
UPPER_CASE_SHARE = 1 / 3

#: Checks whose findings ``ftclass prepare`` removes.
FIXED_BY_PREPARE = frozenset(
    {
        "invalid-json",
        "missing-fields",
        "mixed-formats",
        "unknown-fields",
        "empty-completions",
        "empty-prompts",
        "duplicate-rows",
        "long-examples",
        "no-separator",
        "separator-missing",
        "separator-in-prompt",
        "stop-missing",
        "leading-space",
    }
)


@dataclass(frozen=True)
class Finding:
    """One check's result: what is wrong, how often, and example line numbers."""

    check: str
    severity: Severity
    message: str
    count: int = 0
    rows: tuple[int, ...] = ()
    file: str = ""


@dataclass(frozen=True)
class Record:
    """One readable JSON (or CSV) record of a data file.

    ``prompt`` is the prompt, the request messages' contents joined by newlines
    (chat) or the text column (CSV); ``completion`` the raw completion, the last
    assistant message or the label column.
    """

    line: int
    format: Format
    prompt: str
    completion: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    messages: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class LintReport:
    """Every finding over the linted files, and how tokens were counted."""

    findings: tuple[Finding, ...]
    files: tuple[str, ...]
    model: str | None = None
    encoding: str | None = None
    context_limit: int = 0

    def by_severity(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def errors(self) -> list[Finding]:
        return self.by_severity("error")

    @property
    def warnings(self) -> list[Finding]:
        return self.by_severity("warning")

    @property
    def exit_status(self) -> int:
        """1 when there is an error, else 0."""
        return 1 if self.errors else 0

    def to_dict(self) -> dict[str, Any]:
        """Builtin types only, for ``json.dumps``."""
        return {
            "files": list(self.files),
            "model": self.model,
            "encoding": self.encoding,
            "context_limit": self.context_limit,
            "counts": {s: len(self.by_severity(s)) for s in ("error", "warning", "info")},
            "findings": [{**asdict(f), "rows": list(f.rows)} for f in self.findings],
        }


# -- entry points ----------------------------------------------------------------------


def lint_files(
    train: str | Path,
    valid: str | Path | None = None,
    model: str | None = None,
    *,
    max_tokens: int | None = None,
) -> LintReport:
    """Lint a training file and, optionally, its validation file.

    ``model`` chooses the tokenizer and context limit (``max_tokens``
    overrides the limit).  Training-only checks (size, balance) run on
    ``train``; leakage and class coverage compare the two files.
    """
    encoding, limit, setup = _token_setup(model, max_tokens)
    train_name = str(train)
    train_records, findings = read_records(train, train_name)
    if not _unreadable(findings):
        findings += lint_records(train_records, train_name, "train", encoding=encoding, limit=limit)
    files = [train_name]
    if valid is not None:
        valid_name = str(valid)
        files.append(valid_name)
        valid_records, valid_findings = read_records(valid, valid_name)
        findings += valid_findings
        if not _unreadable(valid_findings):
            findings += lint_records(
                valid_records, valid_name, "valid", encoding=encoding, limit=limit
            )
        findings += lint_pair(train_records, valid_records, train_name, valid_name)
    return _report(findings + setup, files, model, encoding, limit)


def lint_case_files(paths: list[Path], model: str | None) -> LintReport:
    """Lint evaluation case files (``.jsonl`` or ``.csv``), each on its own.

    What ``pytest --ft-lint`` runs: the format, label and token checks, but not
    the training-size ones (a validation file of 60 cases is fine).
    """
    encoding, limit, setup = _token_setup(model, None)
    findings: list[Finding] = []
    for path in paths:
        name = str(path)
        records, read_findings = read_records(path, name)
        findings += read_findings
        if not _unreadable(read_findings):
            findings += lint_records(records, name, "cases", encoding=encoding, limit=limit)
    return _report(findings + setup, [str(p) for p in paths], model, encoding, limit)


def lint_records(
    records: Sequence[Record],
    file: str,
    role: Role,
    *,
    encoding: Encoding | None = None,
    limit: int = 4096,
) -> list[Finding]:
    """Every single-file check over ``records``; ``role`` picks the training-only ones."""
    choice = choose_separator(_prompts(records))
    separator = choice.current
    stop = infer_stop(_completions(records))
    labelled = [r for r in records if completion_label(r.completion, stop)]
    checks: list[Finding | None] = [
        check_mixed_formats(records),
        check_unknown_fields(records),
        check_empty_completions(records),
        check_empty_prompts(records, separator),
        check_duplicates(records),
        check_conflicting_labels(records, separator, stop),
        check_upper_case(records),
        check_separator(records, choice),
        check_separator_in_prompt(records, choice),
        check_prompt_prefix(records),
        check_completion_prefix(records),
        check_stop(records, stop),
        check_leading_space(records),
    ]
    if encoding is not None:
        checks.append(check_long_examples(records, encoding, limit))
    if role == "train":
        checks.append(check_few_examples(records))
    if role in ("train", "cases"):
        classification = check_classification(labelled, stop)
        checks.append(classification)
        if classification is None:
            if encoding is not None:
                checks.append(check_first_tokens(labelled, stop, encoding))
                checks.append(check_multi_token_labels(labelled, stop, encoding))
            if role == "train":
                checks.append(check_small_classes(labelled, stop))
                checks.append(check_imbalance(labelled, stop))
    return [replace_file(f, file) for f in checks if f is not None]


def lint_pair(
    train: Sequence[Record], valid: Sequence[Record], train_file: str, valid_file: str
) -> list[Finding]:
    """Checks comparing a training file with its validation file, in the same format or not."""
    train_sep = choose_separator(_prompts(train)).current
    valid_sep = choose_separator(_prompts(valid)).current
    train_stop, valid_stop = infer_stop(_completions(train)), infer_stop(_completions(valid))
    mismatch = check_format_mismatch(train, valid)
    findings = [mismatch] if mismatch is not None else []
    findings += [
        replace_file(f, train_file) if f.check == "classes-missing-in-valid" else f
        for f in check_class_coverage(train, valid, train_stop, valid_stop)
    ]
    for finding in check_leakage(train, valid, train_sep, valid_sep):
        findings.append(finding)
    return [f if f.file else replace_file(f, valid_file) for f in findings]


# -- reading ---------------------------------------------------------------------------


def read_records(path: str | Path, name: str | None = None) -> tuple[list[Record], list[Finding]]:
    """The readable records of a ``.jsonl`` (or ``.csv``) file and findings for the rest.

    Never raises for a bad file: an unreadable file, bad UTF-8, a line that is
    not a JSON object or a record without the fields a format needs become
    ``unreadable``, ``invalid-json`` and ``missing-fields`` findings.
    """
    records, findings, _ = read_records_and_problems(path, name)
    return records, findings


def read_records_and_problems(
    path: str | Path, name: str | None = None
) -> tuple[list[Record], list[Finding], dict[str, list[int]]]:
    """:func:`read_records`, and every line of each problem (a finding shows the first 20)."""
    name = name or str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        message = f"cannot read file: {err.strerror or err}"
        return [], [Finding("unreadable", "error", message, 1, (), name)], {}
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        message = f"not valid UTF-8 at line {line}"
        return [], [Finding("unreadable", "error", message, 1, (line,), name)], {}
    if str(path).lower().endswith(".csv"):
        records, problems = _csv_records(text)
    else:
        records, problems = _jsonl_records(text)
    findings = [
        replace_file(f, name)
        for f in (
            _problem_finding("invalid-json", problems["invalid-json"]),
            _problem_finding("missing-fields", problems["missing-fields"]),
        )
        if f is not None
    ]
    lines = {check: [n for n, _ in found] for check, found in problems.items() if found}
    return records, findings, lines


def _jsonl_records(text: str) -> tuple[list[Record], dict[str, list[tuple[int, str]]]]:
    records: list[Record] = []
    problems: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            problems["invalid-json"].append((number, f"{err.msg} at column {err.colno}"))
            continue
        if not isinstance(value, dict):
            problems["invalid-json"].append((number, f"a JSON {type(value).__name__}"))
            continue
        record = _record(value, number)
        if isinstance(record, str):
            problems["missing-fields"].append((number, record))
        else:
            records.append(record)
    return records, problems


def _record(value: dict[str, Any], line: int) -> Record | str:
    """A record, or why the object is not one."""
    if "messages" in value:
        messages = value["messages"]
        if not isinstance(messages, list) or not messages:
            return "'messages' is not a non-empty list"
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                return f"message {i} has no 'role'"
            if not isinstance(message.get("content"), str):
                return f"message {i} has no text 'content'"
        if messages[-1]["role"] != "assistant":
            return "the last message is not the assistant's answer"
        if len(messages) < 2:
            return "no messages before the assistant's answer"
        request = request_text(messages[:-1])
        return Record(line, "chat", request, messages[-1]["content"], value, tuple(messages))
    if "prompt" in value or "completion" in value:
        if not isinstance(value.get("prompt"), str):
            return "'prompt' is missing or not a string"
        if "completion" not in value:
            return "'completion' is missing"
        completion = value["completion"]
        if not isinstance(completion, (str, int, float)) or isinstance(completion, bool):
            return "'completion' is not a string"
        return Record(line, "prompt", value["prompt"], str(completion), value)
    if "input" in value or "label" in value:
        text, label = value.get("input"), value.get("label")
        if not isinstance(text, str):
            return "'input' is missing or not a string"
        if label is None or isinstance(label, (dict, list, bool)):
            return "'label' is missing or not a string"
        return Record(line, "text", text, str(label), value)
    return "no 'prompt'/'completion' or 'messages' fields"


def _csv_records(text: str) -> tuple[list[Record], dict[str, list[tuple[int, str]]]]:
    problems: dict[str, list[tuple[int, str]]] = defaultdict(list)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in ("text", "label") if c not in header]
    if missing:
        problems["missing-fields"].append((1, f"no column {missing[0]!r}"))
        return [], problems
    records = []
    for row in reader:
        if None in row:
            problems["missing-fields"].append((reader.line_num, "more fields than the header"))
            continue
        fields = {k: v for k, v in row.items() if v not in (None, "")}
        records.append(Record(reader.line_num, "text", row["text"], row["label"], fields))
    return records, problems


def _problem_finding(check: str, problems: list[tuple[int, str]]) -> Finding | None:
    if not problems:
        return None
    what = "not a JSON object" if check == "invalid-json" else "lacks the fields of its format"
    line, reason = problems[0]
    message = f"{_lines(len(problems))} {what} (line {line}: {reason})"
    return _finding(check, "error", message, [n for n, _ in problems])


def input_text(record: Record, separator: str = "") -> str:
    """A record's input without the separator: what leakage and conflicts compare."""
    text = record.prompt
    if separator and record.format == "prompt" and text.endswith(separator):
        text = text[: -len(separator)]
    return text


def classified_text(record: Record, separator: str = "") -> str:
    """The text a record asks to classify, whatever its format: what leakage compares.

    A prompt without its separator; for chat, the user messages after the
    request's last assistant message (a system prompt and few-shot turns are
    instructions every example shares), or every non-assistant message when
    there is no such user message; the input of an input/label record.

    >>> chat = Record(1, "chat", "", "sport", messages=(
    ...     {"role": "system", "content": "Classify."}, {"role": "user", "content": "Goal!"},
    ...     {"role": "assistant", "content": "sport"}))
    >>> prompt = Record(2, "prompt", "Goal!\\n\\n###\\n\\n", " sport")
    >>> classified_text(chat), classified_text(prompt, "\\n\\n###\\n\\n")
    ('Goal!', 'Goal!')
    """
    if record.format != "chat":
        return input_text(record, separator)
    request = record.messages[:-1]
    answered = [i for i, m in enumerate(request) if m["role"] == "assistant"]
    after = request[answered[-1] + 1 :] if answered else request
    users = [str(m["content"]) for m in after if m["role"] == "user"]
    return "\n".join(users) if users else record.prompt


def count_tokens(record: Record, encoding: Encoding) -> int:
    """Tokens of a whole example (chat: contents plus a few per message for the framing)."""
    if record.format == "chat":
        return sum(len(encoding.encode_ordinary(m["content"])) + 4 for m in record.messages) + 2
    return len(encoding.encode_ordinary(record.prompt + record.completion))


def label_token_text(record: Record, label: str) -> str:
    """The text a model emits for ``label``: with a leading space in the prompt format."""
    return " " + label if record.format == "prompt" else label


# -- single-file checks ----------------------------------------------------------------


def check_mixed_formats(records: Sequence[Record]) -> Finding | None:
    """Chat and prompt/completion lines in one file: fine-tuning takes one format."""
    formats = Counter(r.format for r in records)
    main = _main_format(records)
    if len(formats) < 2 or main is None:
        return None
    rows = [r.line for r in records if r.format != main]
    return _finding(
        "mixed-formats",
        "error",
        f"{_lines(len(rows))} not in the file's {_format_name(main)} format "
        f"({', '.join(f'{n} {_format_name(f)}' for f, n in sorted(formats.items()))})",
        rows,
    )


def check_unknown_fields(records: Sequence[Record]) -> Finding | None:
    """Fields fine-tuning and ``load_cases`` ignore (csv columns are not checked)."""
    unknown: dict[int, set[str]] = {}
    for record in records:
        if record.format == "text" and "input" not in record.fields:
            continue
        extra = set(record.fields) - KNOWN_FIELDS
        if extra:
            unknown[record.line] = extra
    if not unknown:
        return None
    names = sorted(set().union(*unknown.values()))
    return _finding(
        "unknown-fields",
        "warning",
        f"{_lines(len(unknown))} with fields nothing reads: {', '.join(map(repr, names))}",
        list(unknown),
    )


def check_empty_completions(records: Sequence[Record]) -> Finding | None:
    rows = [r.line for r in records if not r.completion.strip()]
    if not rows:
        return None
    return _finding("empty-completions", "error", f"{_lines(len(rows))} with no label", rows)


def check_empty_prompts(records: Sequence[Record], separator: str) -> Finding | None:
    rows = [r.line for r in records if not input_text(r, separator).strip()]
    if not rows:
        return None
    return _finding("empty-prompts", "warning", f"{_lines(len(rows))} with no input text", rows)


def check_duplicates(records: Sequence[Record]) -> Finding | None:
    """Exact repeats of an earlier example (same input and same completion)."""
    seen: dict[str, int] = {}
    rows = []
    for record in records:
        key = _example_key(record)
        if key in seen:
            rows.append(record.line)
        else:
            seen[key] = record.line
    if not rows:
        return None
    return _finding(
        "duplicate-rows", "warning", f"{_lines(len(rows))} repeating an earlier example", rows
    )


def check_conflicting_labels(
    records: Sequence[Record], separator: str, stop: str
) -> Finding | None:
    """The same input with a different label than its first occurrence."""
    first: dict[str, str] = {}
    rows = []
    for record in records:
        text = input_text(record, separator)
        label = completion_label(record.completion, stop)
        if not text.strip() or not label:
            continue
        if text in first and first[text] != label:
            rows.append(record.line)
        first.setdefault(text, label)
    if not rows:
        return None
    message = f"{_lines(len(rows))} with an input seen earlier under another label"
    return _finding("conflicting-labels", "warning", message, rows)


def check_long_examples(
    records: Sequence[Record], encoding: Encoding, limit: int
) -> Finding | None:
    rows = [r.line for r in records if count_tokens(r, encoding) > limit]
    if not rows:
        return None
    message = f"{_lines(len(rows))} longer than {plural(limit, 'token')} ({encoding.name})"
    return _finding("long-examples", "warning", message, rows)


def check_upper_case(records: Sequence[Record]) -> Finding | None:
    """Much upper-case text (over a third of the examples mostly so): it tokenises worse."""
    rows = []
    for record in records:
        text = record.prompt + record.completion
        upper = sum(map(str.isupper, text))
        cased = upper + sum(map(str.islower, text))
        if cased and upper > cased / 2:
            rows.append(record.line)
    if not records or len(rows) <= UPPER_CASE_SHARE * len(records):
        return None
    message = f"{_lines(len(rows))} ({len(rows) / len(records):.0%}) mostly in upper case"
    return _finding("upper-case", "warning", message, rows)


def check_separator(records: Sequence[Record], choice: SeparatorChoice) -> Finding | None:
    """A separator ends every prompt, so the model knows where the input stops."""
    prompts = [r for r in records if r.format == "prompt"]
    if len(prompts) < 2:
        return None
    separator = choice.current
    if not separator:
        if choice.ending:
            inside = sum(separator_inside(r.prompt, choice.ending) for r in prompts)
            message = (
                f"prompts end in {choice.ending!r}, but it also occurs inside "
                f"{plural(inside, 'prompt')}: it is text, not a separator; append one such as "
                f"{choice.separator!r}"
            )
        else:
            message = f"prompts end in no common separator; append one such as {choice.separator!r}"
        return _finding("no-separator", "warning", message, [r.line for r in prompts])
    rows = [r.line for r in prompts if not r.prompt.endswith(separator)]
    if not rows:
        return None
    message = f"{_lines(len(rows))} without the separator {separator!r} the others end in"
    return _finding("separator-missing", "warning", message, rows)


def check_separator_in_prompt(records: Sequence[Record], choice: SeparatorChoice) -> Finding | None:
    """The data's separator also inside prompts: it does not mark where the input ends."""
    separator = choice.current
    if not separator or separator == choice.separator:
        return None
    rows = [
        r.line for r in records if r.format == "prompt" and separator_inside(r.prompt, separator)
    ]
    if not rows:
        return None
    message = (
        f"{_lines(len(rows))} with the separator {separator!r} inside the prompt; "
        f"ftclass prepare replaces it with {choice.separator!r}"
    )
    return _finding("separator-in-prompt", "warning", message, rows)


def check_prompt_prefix(records: Sequence[Record]) -> Finding | None:
    """Every prompt starts the same way: tokens the model reads for nothing."""
    prompts = [r.prompt for r in records if r.format == "prompt"]
    prefix = _word_prefix(prompts)
    if not prefix:
        return None
    message = f"every prompt starts with {prefix!r}; it can go (from evaluation prompts too)"
    return _finding("prompt-prefix", "info", message, [], count=len(prompts))


def check_completion_prefix(records: Sequence[Record]) -> Finding | None:
    """Every completion starts the same way: the first generated token says nothing."""
    completions = [r.completion.lstrip() for r in records if r.format == "prompt"]
    prefix = _word_prefix(completions)
    if not prefix:
        return None
    message = (
        f"every completion starts with {prefix!r}: the first token tells no class apart; "
        "drop the prefix"
    )
    return _finding("completion-prefix", "warning", message, [], count=len(completions))


def check_stop(records: Sequence[Record], stop: str) -> Finding | None:
    """The stop sequence, reported so evaluation uses it; rows that lack it."""
    completions = [r for r in records if r.format == "prompt" and r.completion.strip()]
    if not stop or not completions:
        return None
    rows = [r.line for r in completions if not r.completion.endswith(stop)]
    if rows:
        message = f"{_lines(len(rows))} without the stop sequence {stop!r} the others end in"
        return _finding("stop-missing", "warning", message, rows)
    message = f"completions end in the stop sequence {stop!r}: evaluate with --ft-stop={stop!r}"
    return _finding("stop-sequence", "info", message, [], count=len(completions))


def check_leading_space(records: Sequence[Record]) -> Finding | None:
    """Completions start with whitespace, as the tokenizer's word tokens do."""
    rows = [
        r.line
        for r in records
        if r.format == "prompt" and r.completion.strip() and not r.completion[0].isspace()
    ]
    if not rows:
        return None
    message = f"{_lines(len(rows))} with a completion that does not start with a space"
    return _finding("leading-space", "warning", message, rows)


def check_few_examples(records: Sequence[Record]) -> Finding | None:
    if len(records) >= MIN_EXAMPLES:
        return None
    message = f"{plural(len(records), 'example')}; a fine-tune wants at least {MIN_EXAMPLES}"
    return _finding("few-examples", "warning", message, [], count=len(records))


def check_classification(records: Sequence[Record], stop: str) -> Finding | None:
    """Few distinct labels relative to the rows; the class checks assume it."""
    labels = Counter(completion_label(r.completion, stop) for r in records)
    if len(records) < 2 or len(labels) * 2 <= len(records):
        return None
    message = (
        f"{plural(len(labels), 'distinct label')} over {plural(len(records), 'example')}: "
        "this does not look like classification; class checks skipped"
    )
    return _finding("not-classification", "warning", message, [], count=len(labels))


def check_first_tokens(records: Sequence[Record], stop: str, encoding: Encoding) -> Finding | None:
    """Classes starting with the same token cannot be told apart with max_tokens=1."""
    by_token: dict[bytes, dict[str, int]] = defaultdict(dict)
    for record in records:
        label = completion_label(record.completion, stop)
        tokens = encoding.encode_ordinary(label_token_text(record, label))
        if tokens:
            by_token[encoding.decode_single_token_bytes(tokens[0])].setdefault(label, record.line)
    groups = {token: labels for token, labels in by_token.items() if len(labels) > 1}
    if not groups:
        return None
    rows = sorted(line for labels in groups.values() for line in labels.values())
    described = "; ".join(
        f"{', '.join(map(repr, labels))} start with {_token_repr(token)}"
        for token, labels in sorted(groups.items(), key=lambda g: min(g[1].values()))
    )
    message = f"classes share a first token ({described}): max_tokens=1 and log-probs break"
    return _finding("first-token-collision", "error", message, rows)


def check_multi_token_labels(
    records: Sequence[Record], stop: str, encoding: Encoding
) -> Finding | None:
    first: dict[str, tuple[int, int]] = {}
    for record in records:
        label = completion_label(record.completion, stop)
        if label not in first:
            n = len(encoding.encode_ordinary(label_token_text(record, label)))
            first[label] = (record.line, n)
    long = {label: v for label, v in first.items() if v[1] > 1}
    if not long:
        return None
    names = ", ".join(f"{label!r} ({n})" for label, (_, n) in list(long.items())[:8])
    message = (
        f"{plural(len(long), 'label')} of several tokens: {names}; "
        "classes are told by the first token"
    )
    return _finding("multi-token-labels", "info", message, [v[0] for v in long.values()])


def check_small_classes(records: Sequence[Record], stop: str) -> Finding | None:
    sizes, first = _class_sizes(records, stop)
    small = [label for label, n in sizes.items() if n < MIN_CLASS_EXAMPLES]
    if not small:
        return None
    shown = ", ".join(f"{label!r} ({sizes[label]})" for label in small[:8])
    message = (
        f"{plural(len(small), 'class')} with fewer than {MIN_CLASS_EXAMPLES} examples: {shown}"
    )
    return _finding("small-classes", "warning", message, [first[label] for label in small])


def check_imbalance(records: Sequence[Record], stop: str) -> Finding | None:
    sizes, first = _class_sizes(records, stop)
    if len(sizes) < 2:
        return None
    largest = max(sizes, key=lambda label: sizes[label])
    small = [label for label, n in sizes.items() if n * MAX_IMBALANCE < sizes[largest]]
    if not small:
        return None
    smallest = min(small, key=lambda label: sizes[label])
    message = (
        f"largest class {largest!r} has {plural(sizes[largest], 'example')}, {smallest!r} "
        f"{sizes[smallest]} ({sizes[largest] / sizes[smallest]:.0f}x); "
        f"{plural(len(small), 'class')} under 1/{MAX_IMBALANCE:.0f} of the largest"
    )
    return _finding("class-imbalance", "warning", message, [first[label] for label in small])


# -- train/validation checks -----------------------------------------------------------


def check_format_mismatch(train: Sequence[Record], valid: Sequence[Record]) -> Finding | None:
    """A validation file in another format than its training file (rows: validation lines).

    Chat against prompt/completion is an error: a fine-tuning job rejects a
    validation file in another format than its training file, and a model
    fine-tuned on one format is not evaluated with the other.  An
    input/label file on either side is a case file for pytest-ftclass, which
    no fine-tuning job takes: worth knowing only.
    """
    train_format, valid_format = _main_format(train), _main_format(valid)
    if train_format is None or valid_format is None or train_format == valid_format:
        return None
    rows = [r.line for r in valid if r.format != train_format]
    formats = (
        f"the validation file is {_format_name(valid_format)}, "
        f"the training file {_format_name(train_format)}"
    )
    if "text" in (train_format, valid_format):
        message = (
            f"{formats}: pytest-ftclass evaluates with an input/label file, "
            "but a fine-tuning job does not take one"
        )
        return _finding("format-mismatch", "info", message, rows)
    message = (
        f"{formats}: a fine-tuning job validates only with a file in its training file's "
        "format (prompt/completion for babbage-002 and davinci-002, chat for gpt-4o-mini "
        "and the other chat models); convert one of the two"
    )
    return _finding("format-mismatch", "error", message, rows)


def check_class_coverage(
    train: Sequence[Record], valid: Sequence[Record], train_stop: str, valid_stop: str
) -> list[Finding]:
    """Classes in one file and not the other (``file`` left empty: ``lint_pair`` sets it)."""
    train_sizes, train_first = _class_sizes(train, train_stop)
    valid_sizes, valid_first = _class_sizes(valid, valid_stop)
    findings = []
    untested = [label for label in train_sizes if label not in valid_sizes]
    if untested and valid_sizes:
        message = (
            f"{plural(len(untested), 'training class')} never in validation: {_names(untested)}"
        )
        findings.append(
            _finding(
                "classes-missing-in-valid",
                "warning",
                message,
                [train_first[label] for label in untested],
            )
        )
    unseen = [label for label in valid_sizes if label not in train_sizes]
    if unseen and train_sizes:
        message = f"{plural(len(unseen), 'validation class')} never trained on: {_names(unseen)}"
        findings.append(
            _finding(
                "classes-missing-in-train",
                "error",
                message,
                [valid_first[label] for label in unseen],
            )
        )
    return findings


def check_leakage(
    train: Sequence[Record], valid: Sequence[Record], train_sep: str, valid_sep: str
) -> list[Finding]:
    """Validation inputs that are in the training file, verbatim or nearly, in any format.

    Inputs are compared by :func:`classified_text`, so a chat validation file
    leaks a prompt/completion training file's prompt when a user message is
    that prompt without its separator.  Verbatim: the same text but for
    surrounding whitespace.  Near: the same text after normalising (case,
    punctuation, spacing), or a Jaccard similarity of word 3-gram sets of at
    least 0.9, found with a prefix filter (candidates share one of their
    rarest 3-grams) and a size filter, so 2,000 x 200 examples take a
    fraction of a second.  Rows are validation lines.
    """
    train_text: dict[str, int] = {}
    for record in train:
        train_text.setdefault(classified_text(record, train_sep).strip(), record.line)
    identical, pairs = [], []
    for record in valid:
        text = classified_text(record, valid_sep).strip()
        if text and text in train_text:
            identical.append(record.line)
            pairs.append((record.line, train_text[text]))
    findings = []
    if identical:
        message = f"{_lines(len(identical))} with a training input verbatim ({_pairs(pairs)})"
        findings.append(_finding("leakage-identical", "error", message, identical))
    exact = set(identical)
    near = _near_duplicates(
        [(r.line, classified_text(r, train_sep)) for r in train],
        [(r.line, classified_text(r, valid_sep)) for r in valid if r.line not in exact],
    )
    if near:
        message = (
            f"{_lines(len(near))} nearly identical to a training input "
            f"(Jaccard >= {NEAR_DUPLICATE_JACCARD}; {_pairs(near)})"
        )
        findings.append(
            _finding("leakage-near-duplicate", "warning", message, [v for v, _ in near])
        )
    return findings


def _near_duplicates(
    train: Sequence[tuple[int, str]], valid: Sequence[tuple[int, str]]
) -> list[tuple[int, int]]:
    """(valid line, train line) pairs with Jaccard(3-gram sets) >= the threshold."""
    train_sets = [(line, _shingles(text)) for line, text in train]
    valid_sets = [(line, _shingles(text)) for line, text in valid]
    frequency = Counter(g for _, s in train_sets for g in s)
    frequency.update(g for _, s in valid_sets for g in s)

    def prefix(shingles: frozenset[str]) -> list[str]:
        ordered = sorted(shingles, key=lambda g: (frequency[g], g))
        keep = len(ordered) - int(NEAR_DUPLICATE_JACCARD * len(ordered) + 1e-9) + 1
        return ordered[:keep]

    index: dict[str, list[int]] = defaultdict(list)
    for i, (_, shingles) in enumerate(train_sets):
        for gram in prefix(shingles):
            index[gram].append(i)
    pairs = []
    for line, shingles in valid_sets:
        if not shingles:
            continue
        candidates = sorted({i for gram in prefix(shingles) for i in index.get(gram, ())})
        low, high = NEAR_DUPLICATE_JACCARD * len(shingles), len(shingles) / NEAR_DUPLICATE_JACCARD
        for i in candidates:
            other = train_sets[i][1]
            if not low <= len(other) <= high:
                continue
            union = len(shingles | other)
            if union and len(shingles & other) >= NEAR_DUPLICATE_JACCARD * union:
                pairs.append((line, train_sets[i][0]))
                break
    return pairs


_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W_]+")


def _shingles(text: str) -> frozenset[str]:
    """Word 3-grams of the normalised text (case, punctuation and spacing ignored).

    Each CJK character counts as a word, so text without spaces works too.

    >>> sorted(_shingles("The cat, the HAT!"))
    ['cat the hat', 'the cat the']
    >>> len(_shingles("今天体育新闻"))
    4
    """
    words = _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
    if len(words) < 3:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + 3]) for i in range(len(words) - 2))


# -- output ----------------------------------------------------------------------------


def format_report(report: LintReport, *, max_rows: int = 5) -> str:
    """The report as a terminal table (severity, check, count, example rows) and a summary.

    Rows are printed as ``file:line``; messages follow the table.
    """
    lines = []
    if report.findings:
        table = [("severity", "check", "count", "rows")]
        for f in report.findings:
            shown = ",".join(map(str, f.rows[:max_rows]))
            more = "…" if f.rows and f.count > min(len(f.rows), max_rows) else ""
            where = f"{Path(f.file).name}:{shown}{more}" if shown else Path(f.file).name
            table.append((f.severity, f.check, str(f.count), where))
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        for row in table:
            cells = [
                cell.rjust(w) if i == 2 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        lines.append("")
        for f in report.findings:
            lines.append(f"{f.severity}: {f.check}: {Path(f.file).name}: {f.message}")
        lines.append("")
    tokens = (
        f"tokens: {report.encoding}, limit {report.context_limit}"
        if report.encoding
        else "tokens: not counted"
    )
    counts = ", ".join(_count(len(report.by_severity(s)), s) for s in ("error", "warning", "info"))
    verdict = "no problems found" if not report.findings else counts
    lines.append(f"{', '.join(report.files)}: {verdict} ({tokens})")
    return "\n".join(lines)


# -- helpers ---------------------------------------------------------------------------


def _token_setup(
    model: str | None, max_tokens: int | None
) -> tuple[Encoding | None, int, list[Finding]]:
    encoding = encoding_for(model, approximate=True)
    limit = max_tokens if max_tokens is not None else context_limit(model)
    if encoding is None:
        message = "no tokenizer available offline: token checks skipped (pip install tiktoken)"
        return None, limit, [Finding("tokens-skipped", "info", message)]
    return encoding, limit, []


def _report(
    findings: list[Finding],
    files: list[str],
    model: str | None,
    encoding: Encoding | None,
    limit: int,
) -> LintReport:
    ordered = sorted(
        enumerate(findings),
        key=lambda item: (SEVERITY_ORDER[item[1].severity], item[0]),
    )
    return LintReport(
        findings=tuple(f for _, f in ordered),
        files=tuple(files),
        model=model,
        encoding=encoding.name if encoding is not None else None,
        context_limit=limit,
    )


def _finding(
    check: str, severity: Severity, message: str, rows: Iterable[int], count: int | None = None
) -> Finding:
    rows = sorted(rows)
    return Finding(
        check,
        severity,
        message,
        len(rows) if count is None else count,
        tuple(rows[:MAX_EXAMPLE_ROWS]),
    )


def replace_file(finding: Finding, file: str) -> Finding:
    return Finding(
        finding.check, finding.severity, finding.message, finding.count, finding.rows, file
    )


def _class_sizes(records: Sequence[Record], stop: str) -> tuple[Counter[str], dict[str, int]]:
    sizes: Counter[str] = Counter()
    first: dict[str, int] = {}
    for record in records:
        label = completion_label(record.completion, stop)
        if label:
            sizes[label] += 1
            first.setdefault(label, record.line)
    return sizes, first


def _example_key(record: Record) -> str:
    if record.format == "chat":
        body: Any = [dict(m) for m in record.messages]
    else:
        body = [record.prompt, record.completion]
    return json.dumps([record.format, body], sort_keys=True, ensure_ascii=False)


def _prompts(records: Sequence[Record]) -> list[str]:
    return [r.prompt for r in records if r.format == "prompt"]


def _completions(records: Sequence[Record]) -> list[str]:
    return [r.completion for r in records if r.format == "prompt" and r.completion.strip()]


def _word_prefix(texts: Sequence[str]) -> str:
    """The common prefix of ``texts``, cut after its last non-alphanumeric character."""
    if len(texts) < 2:
        return ""
    shortest, longest = min(texts), max(texts)
    n = 0
    while n < len(shortest) and shortest[n] == longest[n]:
        n += 1
    prefix = shortest[:n]
    while prefix and prefix[-1].isalnum():
        prefix = prefix[:-1]
    return prefix if prefix.strip() else ""


def _unreadable(findings: Sequence[Finding]) -> bool:
    return any(f.check == "unreadable" for f in findings)


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, the noun in the plural unless ``count`` is 1.

    >>> plural(1, "class"), plural(3, "training class"), plural(0, "line"), plural(2, "prefix")
    ('1 class', '3 training classes', '0 lines', '2 prefixes')
    """
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}{'es' if noun.endswith(('s', 'x', 'z', 'ch', 'sh')) else 's'}"


def _count(n: int, severity: str) -> str:
    return f"{n} info" if severity == "info" else plural(n, severity)


def _lines(n: int) -> str:
    return plural(n, "line")


def _names(labels: Sequence[str]) -> str:
    shown = ", ".join(map(repr, labels[:8]))
    return shown + (", …" if len(labels) > 8 else "")


def _pairs(pairs: Sequence[tuple[int, int]]) -> str:
    shown = ", ".join(f"line {v} ~ training line {t}" for v, t in pairs[:3])
    return shown + (", …" if len(pairs) > 3 else "")


def _token_repr(token: bytes) -> str:
    try:
        return repr(token.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(token)


def _main_format(records: Sequence[Record]) -> Format | None:
    """The format most records are in (prompt/completion on a tie), or None for no records."""
    formats = Counter(r.format for r in records)
    if not formats:
        return None
    return max(formats, key=lambda f: (formats[f], f == "prompt"))


def _format_name(fmt: str) -> str:
    return {"prompt": "prompt/completion", "chat": "chat", "text": "input/label"}[fmt]
