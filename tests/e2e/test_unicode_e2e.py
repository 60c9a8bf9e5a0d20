"""Chinese, emoji and right-to-left (Arabic, Hebrew) text end to end: case files, prompts,
labels and ids, recorded against the reference model over real HTTP, replayed with the
server gone; the labels come back intact and every cassette is UTF-8 JSON."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_ftclass.cases.sources import load_cases
from tests.helpers import SEPARATOR, read_report, write_jsonl

COMPLETIONS_MODEL = "ft:babbage-002:acme::abc123"
CHAT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::xyz789"

WORDS = {
    "体育": ["足球", "比赛", "进球", "球队", "教练", "冠军"],
    "سياسة": ["انتخابات", "وزير", "حكومة", "برلمان", "تصويت", "رئيس"],
    "טכנולוגיה": ["מחשב", "תוכנה", "רשת", "שרת", "אפליקציה", "מעבד"],
    "🚀 space": ["rocket", "launch", "orbit", "nasa", "astronaut", "satellite"],
}
EMOJI = ["⚽", "🗳️", "💻", "🛰️", "👍🏽", "🇯🇵"]


def sentence(label: str, n: int, width: int = 5) -> str:
    """``width`` words of ``label``'s vocabulary and an emoji, the same for the same ``n``."""
    rng = random.Random(f"{label}-{n}")
    return " ".join(rng.choice(WORDS[label]) for _ in range(width)) + " " + rng.choice(EMOJI)


@pytest.fixture
def unicode_server() -> Iterator[Any]:
    from pytest_ftclass.reference import ReferenceClassifier, ReferenceServer

    training = [
        {"id": f"t{label}{n}", "input": sentence(label, n), "label": label}
        for label in WORDS
        for n in range(12)
    ]
    model = ReferenceClassifier.train(load_cases(training))
    with ReferenceServer(lambda _model: model) as server:
        yield server


def unicode_lines(chat: bool) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    for index, label in enumerate(WORDS):
        for n in range(3):
            text = "\u200f" + sentence(label, n + 20, width=4)  # with a right-to-left mark
            case_id = f"{label}-{n}-{'שלום' if n % 2 else '你好'}"
            if chat:
                lines.append(
                    {
                        "id": case_id,
                        "messages": [
                            {"role": "system", "content": "صنّف النص · 分类 · סווג"},
                            {"role": "user", "content": text},
                            {"role": "assistant", "content": label},
                        ],
                        "tags": ["ユニコード", f"n{index}"],
                    }
                )
            else:
                lines.append({"id": case_id, "prompt": text + SEPARATOR, "completion": " " + label})
    return lines


def write_unicode_jsonl(path: Any, lines: list[dict[str, object]]) -> None:
    path.write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8"
    )


@pytest.mark.parametrize(
    ("model", "chat", "extra"),
    [(COMPLETIONS_MODEL, False, []), (CHAT_MODEL, True, ["--ft-cassette-prompts"])],
    ids=["completions", "chat-keeping-prompts"],
)
def test_unicode_labels_round_trip_through_record_and_replay(
    suite: pytest.Pytester, unicode_server: Any, model: str, chat: bool, extra: list[str]
) -> None:
    lines = unicode_lines(chat)
    write_unicode_jsonl(suite.path / "多语言.cases.jsonl", lines)
    recorded = suite.runpytest(
        f"--ft-model={model}",
        f"--ft-base-url={unicode_server.base_url}",
        "--ft-record-mode=once",
        *extra,
    )
    recorded.assert_outcomes(passed=12)
    first = read_report(suite)
    expected = {str(line["id"]): str(line.get("completion", "")).strip() for line in lines}
    if chat:
        expected = {str(line["id"]): line["messages"][-1]["content"] for line in lines}  # type: ignore[index]
    assert {c["case_id"]: c["expected"] for c in first["cases"]} == expected
    assert {c["case_id"]: c["predicted"] for c in first["cases"]} == expected
    assert set(first["models"][0]["metrics"]["confusion_matrix"]["labels"]) == set(WORDS)

    cassettes = list((suite.path / "cassettes").rglob("*.json"))
    assert cassettes
    for cassette in cassettes:
        data = json.loads(cassette.read_bytes().decode("utf-8"))
        answers = [json.loads(i["response"]["body"]["string"]) for i in data["interactions"]]
        said = {
            (c.get("text") or c.get("message", {}).get("content") or "").strip()
            for answer in answers
            for c in answer["choices"]
        }
        assert said == set(WORDS)
        if chat:  # prompts kept on request: the right-to-left text is in there, intact
            bodies = [json.loads(i["request"]["body"]) for i in data["interactions"]]
            assert any("\u200f" in m["content"] for b in bodies for m in b["messages"])

    unicode_server.stop()
    replayed = suite.runpytest(f"--ft-model={model}", *extra)
    replayed.assert_outcomes(passed=12)
    second = read_report(suite)
    assert {c["case_id"]: c["predicted"] for c in second["cases"]} == expected
    html = (suite.path / "reports" / "ftclass.html").read_text(encoding="utf-8")
    assert all(label in html for label in WORDS)


def test_unicode_case_files_load_intact(tmp_path: Any) -> None:
    path = tmp_path / "多语言.cases.jsonl"
    write_jsonl(path, [])  # the directory exists; now the BOM + CRLF version
    lines = unicode_lines(chat=False)
    content = "\ufeff" + "\r\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    path.write_bytes(content.encode("utf-8"))
    cases = load_cases(path)
    assert [case.label for case in cases] == [str(line["completion"]).strip() for line in lines]
    assert [case.id for case in cases] == [line["id"] for line in lines]
