"""Case sources: every format, every optional field, every error names file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_ftclass.cases.sources import Case, CaseSourceError, completion_label, load_cases


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_prompt_completion_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "v.jsonl",
        json.dumps({"prompt": "Goal!\n\n###\n\n", "completion": " sport", "tags": ["a", "b"]})
        + "\n\n"
        + json.dumps({"id": 7, "prompt": "Chip", "completion": " tech END", "critical": True})
        + "\n",
    )
    first, second = load_cases(path, stop=" END")
    assert (first.label, first.input, first.tags, first.line) == (
        "sport",
        "Goal!\n\n###\n\n",
        ("a", "b"),
        1,
    )
    assert first.id.startswith("case-") and first.format == "prompt"
    assert (second.id, second.label, second.critical, second.line) == ("7", "tech", True, 3)


def test_chat_lines(tmp_path: Path) -> None:
    messages = [
        {"role": "system", "content": "Classify."},
        {"role": "user", "content": "Shares fell"},
        {"role": "assistant", "content": "business"},
    ]
    path = write(tmp_path / "chat.jsonl", json.dumps({"id": "b1", "messages": messages}) + "\n")
    (case,) = load_cases(path)
    assert case.format == "chat" and case.label == "business"
    assert [m["role"] for m in case.input] == ["system", "user"]
    assert case.text == "Classify.\nShares fell"


def test_csv_with_configurable_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "v.csv",
        'body,klass,id,tags\n"multi\nline text",spam,m1,x;y\nhello,ham,,\n',
    )
    cases = load_cases(path, text_column="body", label_column="klass")
    assert (cases[0].id, cases[0].label, cases[0].tags) == ("m1", "spam", ("x", "y"))
    assert cases[0].input == "multi\nline text"
    assert cases[1].line == 4 and cases[1].id.startswith("case-")


def test_dataframe_and_list_sources() -> None:
    import pandas as pd

    frame = pd.DataFrame({"text": ["a", "b"], "label": [4, 2], "critical": [True, False]})
    cases = load_cases(frame, name="frame")
    assert [c.label for c in cases] == ["4", "2"]  # numeric labels, as in email triage
    assert cases[0].critical and not cases[1].critical
    assert cases[0].source == "frame"
    listed = load_cases([Case(id="x", input="hi", label="l"), {"input": "yo", "label": "m"}])
    assert [c.label for c in listed] == ["l", "m"]


def test_fallback_id_depends_on_content_not_position(tmp_path: Path) -> None:
    lines = [{"prompt": f"text {i}", "completion": " a"} for i in range(3)]
    one = load_cases(write(tmp_path / "1.jsonl", "".join(json.dumps(x) + "\n" for x in lines)))
    shifted = [{"prompt": "new", "completion": " b"}, *lines]
    two = load_cases(write(tmp_path / "2.jsonl", "".join(json.dumps(x) + "\n" for x in shifted)))
    assert [c.id for c in one] == [c.id for c in two[1:]]


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"prompt": "a", "completion": " x"}\r\n'
        b'{"prompt": "b", "completion": " y"}\r\n'
    )
    assert [c.label for c in load_cases(path)] == ["x", "y"]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('{"prompt": "a", "completion": " x"}\nnot json\n', 2, "not valid JSON"),
        ("[1, 2]\n", 1, "expected a JSON object"),
        ('{"prompt": "a"}\n', 1, "missing label"),
        ('{"prompt": "a", "completion": "  "}\n', 1, "missing label"),
        ('{"prompt": 3, "completion": " x"}\n', 1, "'prompt' must be a string"),
        ('{"text": "a"}\n', 1, "expected 'prompt'/'completion' or 'messages'"),
        ('{"messages": []}\n', 1, "'messages' must be a non-empty list"),
        (
            '{"messages": [{"role": "user", "content": "a"}]}\n',
            1,
            "last message must be the assistant",
        ),
        ('{"messages": [{"role": "assistant", "content": "a"}]}\n', 1, "no messages before"),
        ('{"messages": [{"content": "a"}]}\n', 1, "has no 'role'"),
        ('{"prompt": "a", "completion": " x", "tags": 5}\n', 1, "'tags' must be"),
        ('{"prompt": "a", "completion": " x", "critical": "maybe"}\n', 1, "'critical' must be"),
        ('{"prompt": "a", "completion": " x", "id": [1]}\n', 1, "'id' must be a string"),
        (
            '{"id": "d", "prompt": "a", "completion": " x"}\n'
            '{"id": "d", "prompt": "b", "completion": " x"}\n',
            2,
            "duplicate id 'd'",
        ),
    ],
)
def test_jsonl_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = write(tmp_path / "bad.jsonl", text)
    with pytest.raises(CaseSourceError) as excinfo:
        load_cases(path, name="bad.jsonl")
    assert excinfo.value.line == line
    assert str(excinfo.value).startswith(f"bad.jsonl:{line}: ")
    assert problem in str(excinfo.value)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("words,label\na,b\n", 1, "missing column 'text'"),
        ("text,label\na,\n", 2, "missing label"),
        ("text,label\n,b\n", 2, "missing text"),
        ("text,label\na,b,c\n", 2, "more fields than the header"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    with pytest.raises(CaseSourceError) as excinfo:
        load_cases(write(tmp_path / "bad.csv", text), name="bad.csv")
    assert (excinfo.value.line, problem in str(excinfo.value)) == (line, True), str(excinfo.value)


def test_unreadable_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(CaseSourceError, match=r"nope\.jsonl: cannot read file"):
        load_cases(tmp_path / "nope.jsonl", name="nope.jsonl")
    with pytest.raises(CaseSourceError, match="unknown case file type"):
        load_cases(write(tmp_path / "a.txt", "x"))
    bad = tmp_path / "latin.jsonl"
    bad.write_bytes(
        b'{"prompt": "a", "completion": " x"}\n{"prompt": "caf\xe9", "completion": " x"}\n'
    )
    with pytest.raises(CaseSourceError, match=r"latin\.jsonl:2: not valid UTF-8"):
        load_cases(bad)


def test_completion_label() -> None:
    assert completion_label(" 4") == "4"
    assert completion_label(" spam\n", stop="\n") == "spam"
    assert completion_label(" spam###", stop="###") == "spam"
