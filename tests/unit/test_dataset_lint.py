"""``ftclass lint``: every check fires once on a crafted file, with the right lines.

The crafted training file holds one instance of each problem a training file
can have at once; problems that exclude those (too few examples, data that is
not classification, no separator at all, common prefixes) get a second small
file.  Line numbers are recorded while the files are written, not hard-coded.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from pytest_ftclass.cases.lint import Finding, LintReport, lint_case_files, lint_files
from pytest_ftclass.cases.tokens import encoding_for
from pytest_ftclass.cli import main

SEP = "\n\n###\n\n"
ROOT = Path(__file__).resolve().parents[2]


class Writer:
    """Collects JSONL lines and remembers the line numbers of named ones."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.marks: dict[str, list[int]] = {}

    def add(self, value: Any, mark: str | None = None) -> int:
        self.lines.append(value if isinstance(value, str) else json.dumps(value))
        number = len(self.lines)
        if mark:
            self.marks.setdefault(mark, []).append(number)
        return number

    def write(self, path: Path) -> Path:
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        return path


def crafted_train(*, unfixable: bool = True) -> Writer:
    """A training file with one instance of each problem (``unfixable``: also class ones)."""
    w = Writer()
    for i in range(110):
        w.add(
            {"prompt": f"Match report {i}: the team scored late{SEP}", "completion": " sport\n"},
            "sport",
        )
        w.add(
            {"prompt": f"NEW CHIP {i} RELEASED BY THE FIRM TODAY{SEP}", "completion": " tech\n"},
            "tech",
        )
    if unfixable:
        for i in range(4):
            w.add(
                {"prompt": f"Running shoes review {i}{SEP}", "completion": " sportswear\n"},
                "sportswear",
            )
        w.add(
            {"prompt": f"Match report 1: the team scored late{SEP}", "completion": " tech\n"},
            "conflicting-labels",
        )
        w.add(
            {"prompt": f"Half one{SEP}half two{SEP}", "completion": " sport\n"},
            "separator-in-prompt",
        )
    w.add("{not json", "invalid-json")
    w.add({"prompt": f"Orphan prompt{SEP}"}, "missing-fields")
    w.add(
        {
            "messages": [
                {"role": "user", "content": "Chat about the derby"},
                {"role": "assistant", "content": "sport"},
            ]
        },
        "mixed-formats",
    )
    w.add(
        {"prompt": f"Transfer news{SEP}", "completion": " sport\n", "weight": 1}, "unknown-fields"
    )
    w.add({"prompt": f"Unlabelled item{SEP}", "completion": " "}, "empty-completions")
    w.add({"prompt": SEP, "completion": " sport\n"}, "empty-prompts")
    w.add(w.lines[0], "duplicate-rows")
    w.add({"prompt": "word " * 5000 + SEP, "completion": " sport\n"}, "long-examples")
    w.add({"prompt": "Cup final preview", "completion": " sport\n"}, "separator-missing")
    w.add({"prompt": f"League table update{SEP}", "completion": " sport"}, "stop-missing")
    w.add({"prompt": f"Phone launch event{SEP}", "completion": "tech\n"}, "leading-space")
    return w


def crafted_valid(train: Writer) -> Writer:
    w = Writer()
    for i in range(10):
        w.add({"prompt": f"Valid match {i} was a thrilling draw{SEP}", "completion": " sport\n"})
        w.add({"prompt": f"Valid gadget {i} review{SEP}", "completion": " tech\n"})
    w.add(
        {"prompt": f"Election called early{SEP}", "completion": " politics\n"},
        "classes-missing-in-train",
    )
    w.add(
        {"prompt": f"Match report 5: the team scored late{SEP}", "completion": " sport\n"},
        "leakage-identical",
    )
    w.add(
        {"prompt": f"match report 7 - the team  scored LATE!!{SEP}", "completion": " sport\n"},
        "leakage-near-duplicate",
    )
    return w


def by_check(report: LintReport) -> dict[tuple[str, str], Finding]:
    keys = [(Path(f.file).name, f.check) for f in report.findings]
    assert len(keys) == len(set(keys)), f"a check fired twice: {keys}"
    return {(Path(f.file).name, f.check): f for f in report.findings}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Writer, Writer, LintReport]:
    folder = tmp_path_factory.mktemp("crafted")
    train, valid = crafted_train(), None
    valid = crafted_valid(train)
    report = lint_files(train.write(folder / "train.jsonl"), valid.write(folder / "valid.jsonl"))
    return train, valid, report


def test_every_problem_is_flagged_once_with_its_lines(crafted: Any) -> None:
    train, valid, report = crafted
    found = by_check(report)
    first = {label: train.marks[label][0] for label in ("sport", "tech", "sportswear")}
    expected_rows: dict[tuple[str, str], list[int]] = {
        ("train.jsonl", check): rows
        for check, rows in train.marks.items()
        if check not in ("sport", "tech", "sportswear")
    }
    expected_rows.update(
        {
            ("train.jsonl", "upper-case"): train.marks["tech"],
            ("train.jsonl", "first-token-collision"): [first["sport"], first["sportswear"]],
            ("train.jsonl", "multi-token-labels"): [first["sportswear"]],
            ("train.jsonl", "small-classes"): [first["sportswear"]],
            ("train.jsonl", "class-imbalance"): [first["sportswear"]],
            ("train.jsonl", "classes-missing-in-valid"): [first["sportswear"]],
            **{("valid.jsonl", check): rows for check, rows in valid.marks.items()},
            ("valid.jsonl", "stop-sequence"): [],
        }
    )
    assert set(found) == set(expected_rows)
    # the one finding without rows counts the completions that end in the stop sequence
    records = [json.loads(line) for line in valid.lines if line.startswith("{")]
    stopped = sum(
        str(r.get("completion", "")).endswith("\n") for r in records if isinstance(r, dict)
    )
    assert stopped > 0
    for key, rows in expected_rows.items():
        assert found[key].count == (len(rows) if rows else stopped), key
        assert list(found[key].rows) == rows[:20], key


def test_severities_and_exit_status(crafted: Any) -> None:
    _, _, report = crafted
    severity = {f.check: f.severity for f in report.findings}
    for check in (
        "invalid-json",
        "missing-fields",
        "mixed-formats",
        "empty-completions",
        "first-token-collision",
        "classes-missing-in-train",
        "leakage-identical",
    ):
        assert severity[check] == "error", check
    assert severity["multi-token-labels"] == "info"
    assert severity["leakage-near-duplicate"] == "warning"
    assert report.exit_status == 1
    order = [f.severity for f in report.findings]
    assert order == sorted(order, key=["error", "warning", "info"].index)


def test_findings_that_exclude_the_crafted_ones(tmp_path: Path) -> None:
    w = Writer()
    for i in range(20):
        w.add({"prompt": f"Text: item body {i}", "completion": f" Category: x{i % 15}"})
    report = lint_files(w.write(tmp_path / "small.jsonl"))
    found = by_check(report)
    assert set(found) == {
        ("small.jsonl", check)
        for check in (
            "few-examples",
            "not-classification",
            "no-separator",
            "prompt-prefix",
            "completion-prefix",
        )
    }
    assert found["small.jsonl", "few-examples"].count == 20
    assert "'Text: item body '" in found["small.jsonl", "prompt-prefix"].message
    assert "'Category: '" in found["small.jsonl", "completion-prefix"].message
    assert report.exit_status == 0


def test_unreadable_files_are_findings_not_tracebacks(tmp_path: Path) -> None:
    report = lint_files(tmp_path / "missing.jsonl")
    assert [(f.check, f.severity) for f in report.findings] == [("unreadable", "error")]
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"prompt": "ok", "completion": " a"}\n{"prompt": "caf\xe9"}\n')
    (finding,) = lint_files(bad).errors
    assert (finding.check, finding.rows) == ("unreadable", (2,))
    assert str(bad) in finding.file


def test_chat_file(tmp_path: Path) -> None:
    w = Writer()
    for i in range(220):
        label = ["sport", "tech"][i % 2]
        w.add(
            {
                "messages": [
                    {"role": "system", "content": "Classify."},
                    {"role": "user", "content": f"Story {i} about {label}"},
                    {"role": "assistant", "content": label},
                ]
            }
        )
    w.add({"messages": [{"role": "user", "content": "No answer"}]}, "missing-fields")
    w.add(w.lines[3], "duplicate-rows")
    report = lint_files(w.write(tmp_path / "chat.jsonl"), model="gpt-4o-mini")
    found = by_check(report)
    assert {check for _, check in found} == {"missing-fields", "duplicate-rows"}
    assert list(found["chat.jsonl", "missing-fields"].rows) == w.marks["missing-fields"]
    assert report.context_limit == 128000


def _load_build_data() -> Callable[[Path], dict[str, Path]]:
    spec = importlib.util.spec_from_file_location(
        "ftclass_example_build_data", ROOT / "example_suite" / "build_data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.build_example_data  # type: ignore[no-any-return]


def test_example_suite_lints_clean(tmp_path: Path) -> None:
    files = _load_build_data()(tmp_path)
    report = lint_files(files["topic_train"], files["topic_cases"], "babbage-002")
    assert report.errors == [], report.errors
    cases = lint_case_files([files["topic_cases"], files["topic_chat"], files["sport_valid"]], None)
    assert cases.errors == [], cases.errors


def _distinct_first_token_labels(n: int) -> list[str]:
    encoding = encoding_for("babbage-002")
    assert encoding is not None
    words = [
        "apple",
        "river",
        "stone",
        "cloud",
        "forest",
        "tiger",
        "violin",
        "garden",
        "rocket",
        "planet",
        "window",
        "castle",
        "dragon",
        "silver",
        "copper",
        "marble",
        "candle",
        "bridge",
        "island",
        "desert",
        "winter",
        "summer",
        "autumn",
        "spring",
        "orange",
        "purple",
        "yellow",
        "basket",
        "hammer",
        "pencil",
        "rabbit",
        "turtle",
        "falcon",
        "salmon",
        "lemon",
        "cherry",
        "banana",
        "mango",
        "walnut",
        "pepper",
        "ginger",
        "coffee",
        "butter",
        "cheese",
        "bread",
        "honey",
        "sugar",
        "salt",
        "pepperoni",
        "engine",
        "wheel",
        "mirror",
        "ladder",
        "blanket",
        "pillow",
        "jacket",
        "helmet",
        "glove",
        "boot",
        "shirt",
        "tunnel",
        "valley",
        "canyon",
        "harbor",
        "meadow",
        "prairie",
        "glacier",
        "volcano",
        "lagoon",
        "reef",
        "comet",
        "galaxy",
        "nebula",
        "quasar",
        "poetry",
        "drama",
        "comedy",
        "opera",
        "ballet",
        "jazz",
        "blues",
        "reggae",
        "techno",
        "sculpture",
        "pottery",
        "fashion",
        "finance",
        "banking",
        "insurance",
        "medicine",
        "surgery",
        "nursing",
        "dentistry",
        "farming",
        "fishing",
        "mining",
        "weather",
        "climate",
        "energy",
        "transport",
        "aviation",
        "shipping",
        "railway",
        "tourism",
        "hotel",
        "restaurant",
    ]
    labels: list[str] = []
    seen: set[int] = set()
    for word in words:
        first = encoding.encode_ordinary(" " + word)[0]
        if first not in seen:
            seen.add(first)
            labels.append(word)
    assert len(labels) >= n
    return labels[:n]


def test_87_classes(tmp_path: Path) -> None:
    labels = _distinct_first_token_labels(87)
    w = Writer()
    for i in range(5):
        for label in labels:
            w.add({"prompt": f"Document {i} on {label}{SEP}", "completion": f" {label}"})
    found = by_check(lint_files(w.write(tmp_path / "many.jsonl")))
    assert ("many.jsonl", "first-token-collision") not in found
    assert ("many.jsonl", "not-classification") not in found
    assert found["many.jsonl", "small-classes"].count == 87
    assert not [key for key, f in found.items() if f.severity == "error"]


def chinese_rows(labels: Iterable[str], n: int, start: int = 0) -> Writer:
    w = Writer()
    for i in range(start, start + n):
        for label in labels:
            w.add(
                {"prompt": f"第{i}条新闻：关于{label}的最新报道。{SEP}", "completion": f" {label}"},
                label,
            )
    return w


def test_chinese_labels_and_text(tmp_path: Path) -> None:
    train = chinese_rows(["体育", "科技", "财经"], 40)
    valid = chinese_rows(["体育", "科技", "财经"], 3, start=100)
    valid.add({"prompt": f"第7条新闻 关于体育的最新报道！{SEP}", "completion": " 体育"}, "near")
    report = lint_files(train.write(tmp_path / "zh.jsonl"), valid.write(tmp_path / "zh_v.jsonl"))
    found = by_check(report)
    assert report.errors == []
    assert ("zh.jsonl", "first-token-collision") not in found
    assert found["zh.jsonl", "multi-token-labels"].count == 3
    assert found["zh.jsonl", "small-classes"].count == 3
    assert list(found["zh_v.jsonl", "leakage-near-duplicate"].rows) == valid.marks["near"]


def test_chinese_first_token_collision(tmp_path: Path) -> None:
    # " 体育" and " 旅游" both start with the token " " in cl100k_base.
    w = chinese_rows(["体育", "科技", "旅游"], 30)
    found = by_check(lint_files(w.write(tmp_path / "zh.jsonl"), model="davinci-002"))
    collision = found["zh.jsonl", "first-token-collision"]
    assert list(collision.rows) == [w.marks["体育"][0], w.marks["旅游"][0]]
    assert "'体育', '旅游'" in collision.message


def test_cli_lint_exit_status_and_json(
    crafted: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, valid = crafted_train(), None
    valid = crafted_valid(train)
    train_path, valid_path = train.write(tmp_path / "t.jsonl"), valid.write(tmp_path / "v.jsonl")
    assert main(["lint", str(train_path), "--valid", str(valid_path)]) == 1
    out = capsys.readouterr().out
    assert "first-token-collision" in out and "severity" in out.splitlines()[0]
    assert main(["lint", str(train_path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["error"] >= 1
    assert {"check", "severity", "count", "rows", "file", "message"} <= set(data["findings"][0])

    clean = Writer()
    for i in range(120):
        clean.add({"prompt": f"Story {i}{SEP}", "completion": [" sport", " tech"][i % 2]})
    path = clean.write(tmp_path / "clean.jsonl")
    assert main(["lint", str(path), "--json", "--model", "babbage-002"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["error"] == 0 and data["context_limit"] == 16384
    assert main(["lint", str(tmp_path / "nope.jsonl")]) == 1
    assert "unreadable" in capsys.readouterr().out


# A count of one followed by a plural noun ("1 classes", "1 training classes").
ONE_WITH_PLURAL = re.compile(
    r"(?<![\d.,])1 (?:[a-z]+ )?(?:classes|examples|lines|labels|prompts|errors|warnings|tokens)\b"
)


def test_counts_of_one_read_in_the_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = Writer()
    for i in range(150):
        train.add({"prompt": f"Story {i} about the match{SEP}", "completion": " sport"})
    for i in range(20):
        train.add({"prompt": f"Story {i} about the chip{SEP}", "completion": " tech"})
    train.add({"prompt": f"Story about the derby{SEP}", "completion": "sport"})
    valid = Writer()
    valid.add({"prompt": f"Held-out story on the cup{SEP}", "completion": " sport"})
    valid.add({"prompt": f"Held-out story on the vote{SEP}", "completion": " politics"})
    train_path, valid_path = train.write(tmp_path / "t.jsonl"), valid.write(tmp_path / "v.jsonl")
    assert main(["lint", str(train_path), "--valid", str(valid_path)]) == 1
    out = capsys.readouterr().out
    for wording in (
        "1 class with fewer than 100 examples: 'tech' (20)",
        "1 training class never in validation: 'tech'",
        "1 validation class never trained on: 'politics'",
        "1 line with a completion that does not start with a space",
        ": 1 error, ",
    ):
        assert wording in out, wording
    assert not ONE_WITH_PLURAL.search(out), ONE_WITH_PLURAL.findall(out)

    single = Writer()
    single.add({"prompt": f"Only story{SEP}", "completion": " sport"})
    assert main(["lint", str(single.write(tmp_path / "single.jsonl"))]) == 0
    out = capsys.readouterr().out
    assert "1 example; a fine-tune wants at least 100" in out
    assert not ONE_WITH_PLURAL.search(out), ONE_WITH_PLURAL.findall(out)

    colons = Writer()
    for i in range(10):
        colons.add({"prompt": f"Story {i}:", "completion": [" sport", " tech"][i % 2]})
    colons.add({"prompt": "Note: one more story:", "completion": " sport"})
    main(["lint", str(colons.write(tmp_path / "colons.jsonl"))])
    out = capsys.readouterr().out
    assert "prompts end in ':', but it also occurs inside 1 prompt: it is text" in out
    assert not ONE_WITH_PLURAL.search(out), ONE_WITH_PLURAL.findall(out)


# -- a validation file in another format than the training file ----------------------

SENTIMENTS = ["positive", "neutral", "negative"]


def review_text(i: int) -> str:
    sentiment = SENTIMENTS[i % 3]
    return f"Review {i}: the drug left me feeling {sentiment} after week {i // 3}"


def valid_line(text: str, label: str, fmt: str) -> dict[str, Any]:
    """One validation example in ``fmt``; the text the model classifies is ``text``."""
    if fmt == "prompt":
        return {"prompt": text + SEP, "completion": " " + label}
    if fmt == "input/label":
        return {"input": text, "label": label}
    shots = []
    if fmt == "chat with few shots":
        shots = [
            {"role": "user", "content": "Review 0: worked wonders"},
            {"role": "assistant", "content": "positive"},
        ]
    system = {"role": "system", "content": "Classify the drug review's sentiment."}
    answer = {"role": "assistant", "content": label}
    return {"messages": [system, *shots, {"role": "user", "content": text}, answer]}


@pytest.mark.parametrize(
    ("fmt", "mismatch"),
    [
        ("prompt", None),
        ("chat", "error"),
        ("chat with few shots", "error"),
        ("input/label", "info"),
    ],
)
def test_leakage_and_format_mismatch_across_formats(
    fmt: str, mismatch: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = Writer()
    for i in range(300):
        train.add({"prompt": review_text(i) + SEP, "completion": " " + SENTIMENTS[i % 3]})
    valid = Writer()
    for i in range(300, 330):
        valid.add(valid_line(review_text(i), SENTIMENTS[i % 3], fmt))
    valid.add(valid_line(review_text(7), SENTIMENTS[7 % 3], fmt), "verbatim")
    near = review_text(11).upper().replace(":", " -") + "!"
    valid.add(valid_line(near, SENTIMENTS[11 % 3], fmt), "near")
    train_path, valid_path = train.write(tmp_path / "t.jsonl"), valid.write(tmp_path / "v.jsonl")

    status = main(["lint", str(train_path), "--valid", str(valid_path), "--json"])
    found = {f["check"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    assert found["leakage-identical"]["rows"] == valid.marks["verbatim"]
    assert "training line 8" in found["leakage-identical"]["message"]
    assert found["leakage-near-duplicate"]["rows"] == valid.marks["near"]
    assert status == 1  # the verbatim leak is an error in every format
    if mismatch is None:
        assert "format-mismatch" not in found
    else:
        finding = found["format-mismatch"]
        assert (finding["severity"], finding["count"]) == (mismatch, 32)
        assert finding["file"] == str(valid_path)
        assert "prompt/completion" in finding["message"]
    if mismatch == "error":
        assert "babbage-002" in found["format-mismatch"]["message"]


def test_chat_training_file_against_prompt_validation_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = Writer()
    for i in range(300):
        train.add(valid_line(review_text(i), SENTIMENTS[i % 3], "chat"))
    valid = Writer()
    for i in range(300, 320):
        valid.add(valid_line(review_text(i), SENTIMENTS[i % 3], "prompt"))
    valid.add(valid_line(review_text(4), SENTIMENTS[4 % 3], "prompt"), "verbatim")
    train_path, valid_path = train.write(tmp_path / "t.jsonl"), valid.write(tmp_path / "v.jsonl")
    assert main(["lint", str(train_path), "--valid", str(valid_path)]) == 1
    out = capsys.readouterr().out
    assert "error: format-mismatch: v.jsonl: the validation file is prompt/completion, " in out
    assert "the training file chat" in out
    assert "1 line with a training input verbatim (line 21 ~ training line 5)" in out


def test_a_missing_validation_file_is_named_in_its_finding(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"prompt": "a ->", "completion": " x"}) + "\n", encoding="utf-8")
    report = lint_files(train, tmp_path / "valid.jsonl")
    [unreadable] = [f for f in report.findings if f.check == "unreadable"]
    assert unreadable.file.endswith("valid.jsonl")
