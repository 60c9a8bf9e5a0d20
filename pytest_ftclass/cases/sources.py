"""Labelled validation cases and the sources they are read from.

A :class:`Case` is one labelled example.  Its ``input`` is either a prompt string
(the legacy prompt/completion format) or a tuple of chat messages (everything
before the last assistant message); its ``label`` is the class the model should
answer.

Sources, all returning ``list[Case]``:

>>> import json, pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "valid.jsonl"
>>> line = {"prompt": "Goal!\\n\\n###\\n\\n", "completion": " sport"}
>>> _ = path.write_text(json.dumps(line) + "\\n")
>>> [(c.label, c.format) for c in load_cases(path)]
[('sport', 'prompt')]
>>> load_cases([{"input": "Shares fell", "label": "business", "id": "b1"}])[0].id
'b1'

- JSONL, prompt/completion: ``{"prompt": ..., "completion": " label"}``; the label
  is the completion without its leading space and stop sequence;
- JSONL, chat: ``{"messages": [..., {"role": "assistant", "content": "label"}]}``;
- CSV: one row a case, text and label columns configurable (``text``/``label``);
- a pandas DataFrame with the same columns, or a list of dicts or Cases.

Optional fields on every format: ``id``, ``tags`` (a list, or a string split on
``,`` / ``;``), ``critical`` (bool).  A case without an ``id`` gets a stable one
derived from its content, so inserting a line renames nothing.

Every problem (bad JSON, missing label, duplicate id, unreadable file) raises
:class:`CaseSourceError` naming the file, the line and what is wrong.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import numbers
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

Message = Mapping[str, Any]

KNOWN_FIELDS = {"id", "tags", "critical", "prompt", "completion", "messages", "input", "label"}


class CaseSourceError(ValueError):
    """A case source that cannot be read: names the source, the line and the problem."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, eq=True, repr=False)
class Case:
    """One labelled validation example.

    Its ``repr`` (what a failing test shows of ``ft_case``) names the case, not
    its text, which is often private; the plugin sets ``Case.repr_text`` with
    ``--ft-report-text``:

    >>> Case("spam-3", "WIN A PRIZE", "spam", source="valid.cases.jsonl", line=3)
    Case(id='spam-3', label='spam', source='valid.cases.jsonl:3', input_digest='a483d50ad70d17bd')
    """

    id: str
    input: str | tuple[Message, ...]
    label: str
    tags: tuple[str, ...] = ()
    critical: bool = False
    source: str = ""
    line: int | None = field(default=None, compare=False)
    #: Whether ``repr`` shows the input too (the plugin's ``--ft-report-text``).
    repr_text: ClassVar[bool] = False

    def __repr__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        text = f", input={self.input!r}" if Case.repr_text else ""
        return (
            f"Case(id={self.id!r}, label={self.label!r}, source={where!r}, "
            f"input_digest={self.input_digest!r}{text})"
        )

    @property
    def format(self) -> Literal["prompt", "chat"]:
        return "prompt" if isinstance(self.input, str) else "chat"

    @property
    def text(self) -> str:
        """The input as plain text: the prompt, or the non-assistant message contents joined."""
        return self.input if isinstance(self.input, str) else request_text(self.input)

    @property
    def input_digest(self) -> str:
        return content_digest(self.input)


def request_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """What a chat request asks to classify: its non-assistant message contents, one a line.

    The local reference model trains and answers on this text.

    >>> request_text([{"role": "system", "content": "Topic?"}, {"role": "user", "content": "Goal!"},
    ...               {"role": "assistant", "content": "sport"}])
    'Topic?\\nGoal!'
    """
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("role") != "assistant")


def content_digest(value: Any) -> str:
    """A short stable digest of a JSON-able value (prompt text or messages)."""
    canonical = _CANONICAL_JSON.encode(value)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# One encoder for every digest: building one per call cost more than the encoding.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fallback_id(input_value: Any, label: str) -> str:
    """The id of a case that declares none: derived from its content, not its position."""
    return "case-" + content_digest([input_value, label])[:10]


def load_cases(
    source: str | os.PathLike[str] | Sequence[Any] | Any,
    *,
    name: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    stop: str = "",
) -> list[Case]:
    """Read cases from a path (``.jsonl``/``.csv``), a DataFrame, or a list.

    ``name`` is how the source is called in errors and reports (defaults to the
    path as given); ``stop`` is the completion stop sequence removed from labels.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        display = name or str(source)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return _check_unique(
                read_csv_cases(path, display, text_column=text_column, label_column=label_column),
                display,
            )
        if suffix in (".jsonl", ".json", ".ndjson") or path.name.endswith(".jsonl"):
            return _check_unique(read_jsonl_cases(path, display, stop=stop), display)
        raise CaseSourceError(
            display, None, f"unknown case file type {suffix!r} (use .jsonl or .csv)"
        )
    if _is_dataframe(source):
        display = name or "<DataFrame>"
        frame: Any = source
        rows = frame.to_dict(orient="records")
        return _check_unique(
            [
                _case_from_row(row, display, i + 1, text_column, label_column, stop)
                for i, row in enumerate(rows)
            ],
            display,
        )
    if isinstance(source, Iterable):
        display = name or "<list>"
        cases = []
        for i, item in enumerate(source):
            if isinstance(item, Case):
                cases.append(item)
            elif isinstance(item, Mapping):
                cases.append(_case_from_row(item, display, i + 1, text_column, label_column, stop))
            else:
                raise CaseSourceError(
                    display, i + 1, f"expected a dict or Case, got {type(item).__name__}"
                )
        return _check_unique(cases, display)
    raise CaseSourceError(
        str(name or source), None, f"cannot read cases from {type(source).__name__}"
    )


def read_jsonl_cases(path: Path, display: str, *, stop: str = "") -> list[Case]:
    """Cases from a fine-tuning JSONL file (prompt/completion or chat lines)."""
    raw = _read_bytes(path, display)
    text = _decode(raw, display)
    cases = []
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CaseSourceError(
                display, number, f"not valid JSON ({err.msg} at column {err.colno})"
            ) from None
        except ValueError as err:  # e.g. an integer of more than 4300 digits
            raise CaseSourceError(display, number, f"not valid JSON ({err})") from None
        except RecursionError:
            raise CaseSourceError(display, number, "not valid JSON (nested too deeply)") from None
        if not isinstance(record, dict):
            raise CaseSourceError(
                display, number, f"expected a JSON object, got {type(record).__name__}"
            )
        cases.append(_case_from_record(record, display, number, stop))
    return cases


def read_csv_cases(
    path: Path, display: str, *, text_column: str = "text", label_column: str = "label"
) -> list[Case]:
    """Cases from a CSV file with a header row; line numbers count the header as line 1."""
    text = _decode(_read_bytes(path, display), display)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        for column in (text_column, label_column):
            if column not in header:
                raise CaseSourceError(
                    display,
                    1,
                    f"missing column {column!r} (header has: {', '.join(header) or 'nothing'})",
                )
        cases = []
        for row in reader:
            line = reader.line_num
            if None in row:
                raise CaseSourceError(display, line, "more fields than the header names")
            cases.append(_case_from_row(row, display, line, text_column, label_column, ""))
    except csv.Error as err:  # e.g. a field over csv.field_size_limit()
        # the failing line is the one after the last line read in full
        raise CaseSourceError(display, reader.line_num + 1, f"not valid CSV ({err})") from None
    return cases


def _read_bytes(path: Path, display: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise CaseSourceError(display, None, f"cannot read file: {err.strerror or err}") from None


def _decode(raw: bytes, display: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise CaseSourceError(display, line, f"not valid UTF-8 (byte {err.start})") from None


def _case_from_record(record: dict[str, Any], display: str, line: int, stop: str) -> Case:
    input_value: str | tuple[Message, ...]
    if "messages" in record:
        input_value, label = _split_chat(record["messages"], display, line)
    elif "prompt" in record or "completion" in record:
        prompt = record.get("prompt")
        completion = record.get("completion")
        if not isinstance(prompt, str):
            raise CaseSourceError(display, line, "'prompt' must be a string")
        if completion is None:
            raise CaseSourceError(display, line, "missing label: no 'completion'")
        if not _is_label_value(completion):
            raise CaseSourceError(display, line, "'completion' must be a string")
        input_value, label = prompt, completion_label(str(completion), stop)
    elif "input" in record or "label" in record:
        return _case_from_row(record, display, line, "input", "label", stop)
    else:
        raise CaseSourceError(
            display, line, "expected 'prompt'/'completion' or 'messages' (chat) fields"
        )
    if not label:
        raise CaseSourceError(display, line, "missing label: the completion is empty")
    return _make_case(record, input_value, label, display, line)


def _split_chat(messages: Any, display: str, line: int) -> tuple[tuple[Message, ...], str]:
    if not isinstance(messages, list) or not messages:
        raise CaseSourceError(display, line, "'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise CaseSourceError(display, line, f"message {i} has no 'role'")
        if not isinstance(message.get("content"), str):
            raise CaseSourceError(display, line, f"message {i} has no text 'content'")
    last = messages[-1]
    if last["role"] != "assistant":
        raise CaseSourceError(
            display, line, "missing label: the last message must be the assistant's answer"
        )
    label = last["content"].strip()
    if not label:
        raise CaseSourceError(display, line, "missing label: the assistant message is empty")
    request = tuple({"role": m["role"], "content": m["content"]} for m in messages[:-1])
    if not request:
        raise CaseSourceError(display, line, "no messages before the assistant's answer")
    return request, label


def completion_label(completion: str, stop: str = "") -> str:
    """The class a completion names: without its leading space and stop sequence.

    >>> completion_label(" hockey")
    'hockey'
    >>> completion_label(" spam END", stop=" END")
    'spam'
    """
    if stop and completion.endswith(stop):
        completion = completion[: -len(stop)]
    return completion.strip()


def _case_from_row(
    row: Mapping[str, Any],
    display: str,
    line: int,
    text_column: str,
    label_column: str,
    stop: str,
) -> Case:
    if "messages" in row or "prompt" in row or "completion" in row:
        return _case_from_record(dict(row), display, line, stop)
    text = row.get(text_column)
    if text is None and text_column == "text":
        text = row.get("input")
    if not isinstance(text, str) or _is_missing(text):
        raise CaseSourceError(display, line, f"missing text: column {text_column!r} is empty")
    label_value = row.get(label_column)
    if _is_missing(label_value):
        raise CaseSourceError(display, line, f"missing label: column {label_column!r} is empty")
    if not _is_label_value(label_value):
        raise CaseSourceError(display, line, f"label {label_column!r} must be a string or a number")
    if isinstance(label_value, float) and label_value.is_integer():
        label_value = int(label_value)
    label = str(label_value).strip()
    if not label:
        raise CaseSourceError(display, line, f"missing label: column {label_column!r} is empty")
    return _make_case(row, text, label, display, line)


def _make_case(
    record: Mapping[str, Any], input_value: Any, label: str, display: str, line: int
) -> Case:
    tags = _parse_tags(record.get("tags"), display, line)
    raw_id = record.get("id")
    _check_text(
        [input_value, label, raw_id if isinstance(raw_id, str) else "", tags], display, line
    )
    if _is_missing(raw_id):
        case_id = fallback_id(input_value, label)
    elif isinstance(raw_id, (str, numbers.Integral)) and not isinstance(raw_id, bool):
        case_id = str(raw_id).strip()
        if not case_id:
            raise CaseSourceError(display, line, "'id' is empty")
    else:
        raise CaseSourceError(display, line, "'id' must be a string or an integer")
    return Case(
        id=case_id,
        input=input_value,
        label=sys.intern(label),  # a few classes shared by many cases: each held once
        tags=tuple(sys.intern(tag) for tag in tags),
        critical=_parse_bool(record.get("critical"), display, line),
        source=display,
        line=line,
    )


def _parse_tags(value: Any, display: str, line: int) -> tuple[str, ...]:
    if _is_missing(value):
        return ()
    if isinstance(value, str):
        parts = value.replace(";", ",").split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        parts = list(value)
    else:
        raise CaseSourceError(display, line, "'tags' must be a list of strings or a string")
    return tuple(p.strip() for p in parts if p.strip())


def _parse_bool(value: Any, display: str, line: int) -> bool:
    if _is_missing(value):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in (
        "true",
        "yes",
        "1",
        "false",
        "no",
        "0",
        "",
    ):
        return value.strip().lower() in ("true", "yes", "1")
    raise CaseSourceError(display, line, f"'critical' must be true or false, got {value!r}")


def _is_label_value(value: Any) -> bool:
    """A string, or a finite number (``4`` names the class ``"4"``); never a bool or a list."""
    if isinstance(value, str):
        return True
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(value)


def _check_text(value: Any, display: str, line: int) -> None:
    """Refuse text that cannot be sent as UTF-8 (lone surrogates, from ``"\\ud800"`` in JSON)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise CaseSourceError(
                display, line, f"not valid Unicode text (lone surrogate {value[err.start]!r})"
            ) from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_text(key, display, line)
            _check_text(item, display, line)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_text(item, display, line)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN from pandas
        return True
    return isinstance(value, str) and not value.strip()


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_dict")


def _check_unique(cases: list[Case], display: str) -> list[Case]:
    seen: dict[str, Case] = {}
    for case in cases:
        first = seen.get(case.id)
        if first is not None:
            where = f"line {first.line}" if first.line is not None else "an earlier case"
            raise CaseSourceError(
                display, case.line, f"duplicate id {case.id!r} (first on {where})"
            )
        seen[case.id] = case
    return cases
