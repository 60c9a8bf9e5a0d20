"""Fix a fine-tuning data file and split it into training and validation files.

>>> import json, pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "data.jsonl"
>>> rows = [{"prompt": f"match {i}", "completion": "sport" if i % 2 else "tech"}
...         for i in range(20)]
>>> _ = path.write_text("\\n".join(json.dumps(r) for r in rows) + "\\n")
>>> result = prepare_file(path, valid_fraction=0.1)
>>> result.train_path.name, len(result.train), len(result.valid)
('data_prepared_train.jsonl', 18, 2)
>>> result.train[0]["prompt"], result.train[0]["completion"]
('match 2\\n\\n###\\n\\n', ' tech')

What it fixes, each under the name of the lint check it answers
(:data:`pytest_ftclass.cases.lint.FIXED_BY_PREPARE`), with the source lines concerned:

- lines that are not JSON objects, lack their format's fields, have an empty
  completion or an empty prompt, or are in the file's minority format: dropped;
- fields nothing reads: removed (``id``, ``tags`` and ``critical`` stay);
  ``input``/``label`` records (and CSV ``text``/``label`` rows) become
  prompt/completion ones;
- the separator appended to prompts that lack it: ``separator=``, else the
  one most prompts end in if it occurs inside none of them, else
  ``\\n\\n###\\n\\n`` (``\\n\\n####\\n\\n`` and so on while that occurs inside a
  prompt); an ending that occurs inside prompts is cut off first only when it
  is separator markup such as `` ->`` (``separator-in-prompt``), while text
  such as a closing quote stays (:func:`pytest_ftclass.cases.endings.choose_separator`);
- a space put before completions that do not start with one;
- the stop sequence most completions end in appended to those that lack it;
- exact duplicates (after the fixes above) dropped, the first kept;
- examples longer than ``max_tokens`` (default: the model's context limit)
  dropped, counted with the model's tokenizer (``cl100k_base`` when unknown).

The split is stratified and deterministic: within each class, examples are
ordered by the SHA-256 of ``"<seed>:<example as canonical JSON>"`` and the first
``valid_fraction`` of them (rounded half up, at least one for a class of two or
more, never the whole class) go to validation.  Both files keep the input order.
Every fix is idempotent: preparing a prepared file fixes nothing more.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_ftclass.cases.endings import (
    DEFAULT_SEPARATOR,
    SeparatorChoice,
    choose_separator,
    infer_stop,
)
from pytest_ftclass.cases.lint import Record, count_tokens, plural, read_records_and_problems
from pytest_ftclass.cases.sources import KNOWN_FIELDS, completion_label
from pytest_ftclass.cases.tokens import context_limit, encoding_for
from pytest_ftclass.recording.atomic import atomic_write_text

__all__ = ["PrepareResult", "prepare_file", "prepare_records", "split_stratified"]

KEPT_FIELDS = ("id", "tags", "critical")


@dataclass
class PrepareResult:
    """The prepared examples, where they were written and what was changed."""

    train: list[dict[str, Any]]
    valid: list[dict[str, Any]]
    fixes: dict[str, list[int]] = field(default_factory=dict)
    separator: str = ""
    replaced_separator: str = ""
    stop: str = ""
    encoding: str | None = None
    limit: int = 0
    train_path: Path | None = None
    valid_path: Path | None = None

    @property
    def changed(self) -> bool:
        """Whether any fix applied (the split aside)."""
        return any(self.fixes.values())

    def summary(self) -> str:
        """What was done, one line per fix, for people."""
        lines = [f"{check}: {_describe(check, rows)}" for check, rows in self.fixes.items() if rows]
        if not lines:
            lines.append("nothing to fix")
        if self.encoding is None:
            lines.append("long-examples: not checked (no tokenizer available offline)")
        replaced = (
            f" (replacing {self.replaced_separator!r}, which occurs inside prompts)"
            if self.replaced_separator
            else ""
        )
        lines.append(
            f"separator {self.separator!r}{replaced}, stop sequence {self.stop or '(none)'!r}, "
            f"limit {plural(self.limit, 'token')} ({self.encoding or 'not counted'})"
        )
        if self.separator and self.separator != DEFAULT_SEPARATOR:
            lines.append(f"evaluate with --ft-separator={self.separator!r} (not the default)")
        for kind, rows, path in (
            ("train", self.train, self.train_path),
            ("valid", self.valid, self.valid_path),
        ):
            where = f" -> {path}" if path is not None else ""
            lines.append(f"{kind}: {plural(len(rows), 'example')}{where}")
        return "\n".join(lines)


def prepare_file(
    path: str | Path,
    *,
    valid_fraction: float = 0.1,
    seed: int = 0,
    separator: str | None = None,
    max_tokens: int | None = None,
    model: str | None = None,
) -> PrepareResult:
    """Prepare ``path`` and write ``<path without extension>_prepared_{train,valid}.jsonl``.

    Raises ``ValueError`` for a bad ``valid_fraction`` or a file with nothing usable.
    """
    if not 0 <= valid_fraction < 1:
        raise ValueError(f"valid fraction must be in [0, 1), got {valid_fraction}")
    records, findings, bad_lines = read_records_and_problems(path)
    unreadable = [f for f in findings if f.check == "unreadable"]
    if unreadable:
        raise ValueError(f"{path}: {unreadable[0].message}")
    result = prepare_records(
        records,
        valid_fraction=valid_fraction,
        seed=seed,
        separator=separator,
        max_tokens=max_tokens,
        model=model,
    )
    result.fixes = {**bad_lines, **result.fixes}
    if not result.train and not result.valid:
        raise ValueError(f"{path}: no usable examples")
    stem = Path(path).with_suffix("")
    result.train_path = stem.with_name(stem.name + "_prepared_train.jsonl")
    result.valid_path = stem.with_name(stem.name + "_prepared_valid.jsonl")
    atomic_write_text(result.train_path, _jsonl(result.train))
    atomic_write_text(result.valid_path, _jsonl(result.valid))
    return result


def prepare_records(
    records: Sequence[Record],
    *,
    valid_fraction: float = 0.1,
    seed: int = 0,
    separator: str | None = None,
    max_tokens: int | None = None,
    model: str | None = None,
) -> PrepareResult:
    """The fixes and the split over parsed records (no files involved)."""
    fixes: dict[str, list[int]] = defaultdict(list)
    formats = Counter("chat" if r.format == "chat" else "prompt" for r in records)
    main = max(formats, key=lambda f: (formats[f], f == "prompt")) if formats else "prompt"
    kept: list[Record] = []
    for record in records:
        is_chat = record.format == "chat"
        if is_chat != (main == "chat"):
            fixes["mixed-formats"].append(record.line)
        elif not record.completion.strip():
            fixes["empty-completions"].append(record.line)
        else:
            kept.append(record)
    prompts = [r.prompt for r in kept if r.format != "chat"]
    if separator:
        choice = SeparatorChoice(separator, separator, separator)
    else:
        choice = choose_separator(prompts)
    stop = infer_stop([r.completion for r in kept if r.format != "chat"])
    empty = {r.line for r in kept if not _prompt_text(r.prompt, choice).strip()}
    fixes["empty-prompts"] += sorted(empty)
    kept = [r for r in kept if r.line not in empty]
    examples = [(r.line, _fixed(r, choice, stop, fixes)) for r in kept]
    examples = _drop_duplicates(examples, fixes)
    encoding = encoding_for(model, approximate=True)
    limit = max_tokens if max_tokens is not None else context_limit(model)
    if encoding is not None:
        short = []
        for line, example in examples:
            if count_tokens(_as_record(line, example), encoding) > limit:
                fixes["long-examples"].append(line)
            else:
                short.append((line, example))
        examples = short
    labels = [_label(example, stop) for _, example in examples]
    train_idx, valid_idx = split_stratified(
        [e for _, e in examples],
        labels,
        fraction=valid_fraction,
        seed=seed,
        groups=[_input_key(e) for _, e in examples],
    )
    return PrepareResult(
        train=[examples[i][1] for i in train_idx],
        valid=[examples[i][1] for i in valid_idx],
        fixes={check: sorted(rows) for check, rows in fixes.items() if rows},
        separator=choice.separator if main == "prompt" else "",
        replaced_separator=(
            choice.current if main == "prompt" and choice.current != choice.separator else ""
        ),
        stop=stop,
        encoding=encoding.name if encoding is not None else None,
        limit=limit,
    )


def split_stratified(
    examples: Sequence[Any],
    labels: Sequence[str],
    *,
    fraction: float,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> tuple[list[int], list[int]]:
    """Indexes of the training and validation examples, stratified by label.

    Deterministic on every machine: no random generator, only SHA-256.
    Examples sharing a ``groups`` key (the same input under different labels)
    are never split across the two sides: such a validation pick goes back to
    training.

    >>> split_stratified(["a", "b", "c", "d"], ["x", "x", "y", "y"], fraction=0.5)
    ([1, 2], [0, 3])
    """
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    valid: set[int] = set()
    for members in by_label.values():
        n = len(members)
        if n < 2 or fraction <= 0:
            continue
        n_valid = min(n - 1, max(1, math.floor(fraction * n + 0.5)))
        ordered = sorted(members, key=lambda i: _digest(seed, examples[i]))
        valid.update(ordered[:n_valid])
    if groups is not None:
        in_train = {groups[i] for i in range(len(labels)) if i not in valid}
        valid = {i for i in valid if groups[i] not in in_train}
    train = [i for i in range(len(labels)) if i not in valid]
    return train, sorted(valid)


def _prompt_text(prompt: str, choice: SeparatorChoice) -> str:
    """``prompt`` without the data's separator (or the chosen one, when it already ends in it)."""
    for separator in (choice.current, choice.separator):
        if separator and prompt.endswith(separator):
            return prompt[: -len(separator)]
    return prompt


def _fixed(
    record: Record, choice: SeparatorChoice, stop: str, fixes: dict[str, list[int]]
) -> dict[str, Any]:
    """The record as a clean fine-tuning example; the fixes it needed go into ``fixes``."""
    csv_row = record.format == "text" and "input" not in record.fields
    if not csv_row and set(record.fields) - KNOWN_FIELDS:
        fixes["unknown-fields"].append(record.line)
    kept = {k: record.fields[k] for k in KEPT_FIELDS if k in record.fields}
    if record.format == "chat":
        messages = [{"role": m["role"], "content": m["content"]} for m in record.messages]
        return {"messages": messages, **kept}
    prompt, completion = record.prompt, record.completion
    current = choice.current
    if current and current != choice.separator and prompt.endswith(current):
        fixes["separator-in-prompt"].append(record.line)
        prompt = prompt[: -len(current)]
    elif not prompt.endswith(choice.separator):
        fixes["separator-missing"].append(record.line)
    if not prompt.endswith(choice.separator):
        prompt += choice.separator
    if not completion[0].isspace():
        fixes["leading-space"].append(record.line)
        completion = " " + completion
    if stop and not completion.endswith(stop):
        fixes["stop-missing"].append(record.line)
        completion += stop
    return {"prompt": prompt, "completion": completion, **kept}


def _drop_duplicates(
    examples: list[tuple[int, dict[str, Any]]], fixes: dict[str, list[int]]
) -> list[tuple[int, dict[str, Any]]]:
    seen: set[str] = set()
    unique = []
    for line, example in examples:
        body = {k: v for k, v in example.items() if k in ("prompt", "completion", "messages")}
        key = _canonical(body)
        if key in seen:
            fixes["duplicate-rows"].append(line)
        else:
            seen.add(key)
            unique.append((line, example))
    return unique


def _input_key(example: dict[str, Any]) -> str:
    if "messages" in example:
        return _canonical(example["messages"][:-1])
    return _canonical(example["prompt"])


def _as_record(line: int, example: dict[str, Any]) -> Record:
    if "messages" in example:
        messages = tuple(example["messages"])
        return Record(line, "chat", "", messages[-1]["content"], example, messages)
    return Record(line, "prompt", example["prompt"], example["completion"], example)


def _label(example: dict[str, Any], stop: str) -> str:
    if "messages" in example:
        return str(example["messages"][-1]["content"]).strip()
    return completion_label(example["completion"], stop)


def _digest(seed: int, example: Any) -> str:
    return hashlib.sha256(f"{seed}:{_canonical(example)}".encode()).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _jsonl(examples: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)


def _describe(check: str, rows: Sequence[int]) -> str:
    what = {
        "invalid-json": "dropped lines that are not JSON objects",
        "missing-fields": "dropped lines without their format's fields",
        "mixed-formats": "dropped lines in the minority format",
        "empty-completions": "dropped lines with an empty completion",
        "empty-prompts": "dropped lines with an empty prompt",
        "unknown-fields": "removed unknown fields",
        "separator-missing": "appended the separator",
        "separator-in-prompt": "replaced the separator, which occurs inside prompts",
        "leading-space": "added a leading space to the completion",
        "stop-missing": "appended the stop sequence",
        "duplicate-rows": "dropped duplicates",
        "long-examples": "dropped examples over the token limit",
    }.get(check, check)
    shown = ", ".join(map(str, rows[:10])) + (", …" if len(rows) > 10 else "")
    return f"{what} ({plural(len(rows), 'line')}: {shown})"
