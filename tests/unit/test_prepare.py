"""``ftclass prepare``: fixes what lint finds, splits deterministically, is idempotent."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import example as case_of
from hypothesis import strategies as st

from pytest_ftclass.cases.lint import FIXED_BY_PREPARE, lint_files
from pytest_ftclass.cases.prepare import prepare_file, split_stratified
from pytest_ftclass.cli import main
from tests.unit.test_dataset_lint import ONE_WITH_PLURAL, SEP, crafted_train


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def fixable(tmp_path: Path) -> Path:
    return crafted_train(unfixable=False).write(tmp_path / "data.jsonl")


def test_prepared_files_lint_clean(fixable: Path) -> None:
    result = prepare_file(fixable)
    assert result.train_path == fixable.with_name("data_prepared_train.jsonl")
    assert result.valid_path == fixable.with_name("data_prepared_valid.jsonl")
    before = lint_files(fixable)
    assert {f.check for f in before.findings} & FIXED_BY_PREPARE
    after = lint_files(result.train_path, result.valid_path)
    assert after.errors == [], after.errors
    assert not [f for f in after.findings if f.check in FIXED_BY_PREPARE], after.findings
    assert {f.check for f in after.findings} <= {"upper-case", "stop-sequence"}


def test_fixes_name_the_source_lines(fixable: Path) -> None:
    writer = crafted_train(unfixable=False)
    result = prepare_file(fixable)
    for check in FIXED_BY_PREPARE - {"no-separator"}:
        assert result.fixes.get(check) == writer.marks.get(check), check
    assert result.separator == SEP and result.stop == "\n"
    examples = result.train + result.valid
    assert all(e["prompt"].endswith(SEP) for e in examples)  # type: ignore[union-attr]
    assert all(e["completion"].startswith(" ") for e in examples)  # type: ignore[union-attr]
    assert all(e["completion"].endswith("\n") for e in examples)  # type: ignore[union-attr]
    assert all(set(e) <= {"prompt", "completion"} for e in examples)


def test_stratified_deterministic_split(fixable: Path) -> None:
    first = prepare_file(fixable, valid_fraction=0.2, seed=3)
    again = prepare_file(fixable, valid_fraction=0.2, seed=3)
    assert first.valid == again.valid and first.train == again.train
    labels = [e["completion"] for e in first.valid]
    # 113 sport and 111 tech examples survive the fixes: 20 % rounded half up.
    assert labels.count(" sport\n") == 23 and labels.count(" tech\n") == 22
    other_seed = prepare_file(fixable, valid_fraction=0.2, seed=4)
    assert other_seed.valid != first.valid
    assert split_stratified(["a", "b", "c"], ["x", "x", "y"], fraction=0.5) == ([1, 2], [0])


def test_same_input_never_on_both_sides() -> None:
    train, valid = split_stratified(
        ["p1", "p1", "p2", "p3"], ["x", "y", "x", "y"], fraction=0.5, groups=["a", "a", "b", "c"]
    )
    assert not ({0, 1} & set(valid) and {0, 1} & set(train))


def test_prepare_is_idempotent(fixable: Path) -> None:
    first = prepare_file(fixable)
    assert first.changed
    second = prepare_file(first.train_path, valid_fraction=0.1)  # type: ignore[arg-type]
    assert not second.changed, second.fixes
    key = lambda e: json.dumps(e, sort_keys=True)  # noqa: E731
    assert sorted(map(key, second.train + second.valid)) == sorted(map(key, first.train))


def test_max_tokens_and_separator_options(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    rows = [{"prompt": f"text {i} " + "x " * (i % 3) * 20, "completion": " a"} for i in range(30)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = prepare_file(path, separator=" ->", max_tokens=30)
    assert all(e["prompt"].endswith(" ->") for e in result.train + result.valid)
    assert len(result.fixes["long-examples"]) == 10


def test_cli_prepare(fixable: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", str(fixable), "--valid-fraction", "0.2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "duplicate-rows" in out and "data_prepared_train.jsonl" in out
    train = read_jsonl(fixable.with_name("data_prepared_train.jsonl"))
    valid = read_jsonl(fixable.with_name("data_prepared_valid.jsonl"))
    assert len(train) + len(valid) == 224
    assert main(["lint", str(fixable.with_name("data_prepared_train.jsonl"))]) == 0
    capsys.readouterr()
    assert main(["prepare", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["prepare", str(fixable), "--valid-fraction", "1.5"]) == 2


def test_prepare_summary_counts_of_one_read_in_the_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "three.jsonl"
    rows = [
        {"prompt": f"Cup final{SEP}", "completion": " sport"},
        {"prompt": f"Derby day{SEP}", "completion": "sport"},
        {"prompt": f"New chip{SEP}", "completion": " tech"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["prepare", str(path)]) == 0
    out = capsys.readouterr().out
    assert "added a leading space to the completion (1 line: 2)" in out, out
    assert "valid: 1 example -> " in out and "train: 2 examples -> " in out, out
    assert not ONE_WITH_PLURAL.search(out), ONE_WITH_PLURAL.findall(out)


# -- the separator: never one that occurs inside a prompt ---------------------------

SEPARATOR_CHECKS = {"no-separator", "separator-missing", "separator-in-prompt"}
REVIEW_WORDS = {
    "positive": ["great", "helped", "relief", "works", "finally", "recommend"],
    "neutral": ["okay", "some", "unsure", "average", "mixed", "maybe"],
    "negative": ["awful", "nausea", "headache", "worse", "stopped", "rash"],
}


def quoted_reviews() -> list[dict[str, str]]:
    """300 drug reviews in 3 classes, each prompt the review in quotes and no separator."""
    rows = []
    for i in range(100):
        for label, words in REVIEW_WORDS.items():
            review = f"{words[i % 6]} {words[(i // 6) % 6]}, day {i} of the {label} course"
            if i % 7 == 0:
                review += ' on the "generic" version'
            rows.append({"prompt": f'"{review}"', "completion": f" {label}"})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def lint_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    main(["lint", *args, "--json"])
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def prepare_twice(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Prepare ``path``, then its training file: the second run must change nothing."""
    assert main(["prepare", str(path)]) == 0
    capsys.readouterr()
    train_path = path.with_name(path.stem + "_prepared_train.jsonl")
    valid_path = path.with_name(path.stem + "_prepared_valid.jsonl")
    prepared = read_jsonl(train_path) + read_jsonl(valid_path)
    lint = lint_json(capsys, str(train_path), "--valid", str(valid_path))
    assert not [f for f in lint["findings"] if f["check"] in SEPARATOR_CHECKS], lint["findings"]
    assert main(["prepare", str(train_path)]) == 0
    assert capsys.readouterr().out.startswith("nothing to fix\n")
    again = train_path.with_name(train_path.stem + "_prepared_train.jsonl")
    key = lambda e: json.dumps(e, sort_keys=True)  # noqa: E731
    twice = read_jsonl(again) + read_jsonl(again.with_name(again.stem[:-5] + "valid.jsonl"))
    assert sorted(map(key, twice)) == sorted(map(key, read_jsonl(train_path)))
    return prepared


def test_quoted_reviews_get_a_separator_after_the_quote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = quoted_reviews()
    path = write_jsonl(tmp_path / "reviews.jsonl", rows)
    found = {f["check"]: f for f in lint_json(capsys, str(path))["findings"]}
    assert "separator-in-prompt" not in found
    assert found["no-separator"]["count"] == 300
    assert "prompts end in '\"'" in found["no-separator"]["message"]

    prepared = prepare_twice(path, capsys)
    assert len(prepared) == 300
    for example in prepared:
        prompt = example["prompt"]
        assert prompt.endswith('"' + SEP) and prompt.find(SEP) == len(prompt) - len(SEP)
    assert {e["prompt"][: -len(SEP)] for e in prepared} == {r["prompt"] for r in rows}


def test_separator_markup_inside_prompts_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows, inside = [], []
    for i in range(60):
        text = f"Story {i}: from good -> bad" if i % 10 == 3 else f"Story {i} on the match"
        rows.append({"prompt": text + " ->", "completion": [" sport", " tech"][i % 2]})
        if "->" in text:
            inside.append(i + 1)
    path = write_jsonl(tmp_path / "arrows.jsonl", rows)
    found = {f["check"]: f for f in lint_json(capsys, str(path))["findings"]}
    assert found["separator-in-prompt"]["rows"] == inside
    assert "' ->'" in found["separator-in-prompt"]["message"]

    prepared = prepare_twice(path, capsys)
    expected = {r["prompt"].removesuffix(" ->") + SEP for r in rows}
    assert {e["prompt"] for e in prepared} == expected


def test_default_separator_inside_a_prompt_gets_more_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"prompt": f"Story {i}{SEP}", "completion": [" sport", " tech"][i % 2]} for i in range(40)
    ]
    rows.append({"prompt": f"Half one{SEP}half two{SEP}", "completion": " sport"})
    path = write_jsonl(tmp_path / "half.jsonl", rows)
    found = {f["check"]: f for f in lint_json(capsys, str(path))["findings"]}
    assert found["separator-in-prompt"]["rows"] == [41]

    assert main(["prepare", str(path)]) == 0
    assert "--ft-separator='\\n\\n####\\n\\n'" in capsys.readouterr().out
    prepared = prepare_twice(path, capsys)
    longer = "\n\n####\n\n"
    assert {e["prompt"] for e in prepared} == {r["prompt"].removesuffix(SEP) + longer for r in rows}


SEPARATOR_LIKE = st.sampled_from(['"', "#", "\n", " ", "-", ">", ":", ".", "é", SEP, " ->"])
punctuation = st.lists(SEPARATOR_LIKE, max_size=6).map("".join)
# Text around a word, or punctuation alone (the degenerate prompts).
random_prompts = st.one_of(
    st.tuples(punctuation, st.sampled_from(["cup", "chip", "vote"]), punctuation).map("".join),
    punctuation,
)


def run_prepare(path: Path) -> tuple[int, str]:
    """Exit status and output (stdout, then stderr) of ``ftclass prepare path``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["prepare", str(path)])
    return status, out.getvalue() + err.getvalue()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompts=st.lists(random_prompts, min_size=1, max_size=16))
@case_of(prompts=["cup", '"cup', "chip"])  # found by hypothesis: the letter p is no separator
@case_of(prompts=['"\n\n###\n\n', "\n\n###\n\n\n\n###\n\n"])  # hypothesis: twice at the end
def test_prepare_never_picks_a_separator_found_inside_a_prompt(prompts: list[str]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ftclass-separator-"))
    rows = [{"prompt": p, "completion": [" x", " y"][i % 2]} for i, p in enumerate(prompts)]
    status, out = run_prepare(write_jsonl(folder / "random.jsonl", rows))
    if status != 0:  # every prompt was empty or only a separator
        assert "no usable examples" in out, out
        return
    (shown,) = re.findall(r"^separator ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", out, re.M)
    separator = ast.literal_eval(shown)
    train_path = folder / "random_prepared_train.jsonl"
    train = read_jsonl(train_path)
    for example in train + read_jsonl(folder / "random_prepared_valid.jsonl"):
        prompt = example["prompt"]
        assert isinstance(prompt, str) and prompt.endswith(separator)
        assert prompt.find(separator) == len(prompt) - len(separator), (prompt, separator)
    # Again on its output: nothing changes, unless the training file has too little
    # text to find the separator in again (one prompt, or punctuation only).
    bodies = {str(e["prompt"])[: -len(separator)].strip() for e in train}
    if all(re.search("[a-z]", p) for p in prompts) and len(bodies - {""}) >= 2:
        status, out = run_prepare(train_path)
        assert status == 0 and out.startswith("nothing to fix\n"), out


def test_every_unreadable_line_is_counted_as_dropped(tmp_path: Path) -> None:
    lines = [json.dumps({"prompt": f"match {i}{SEP}", "completion": " sport"}) for i in range(30)]
    lines += ["{broken"] * 25  # more bad lines than a finding shows
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = prepare_file(path, valid_fraction=0)
    assert result.fixes["invalid-json"] == list(range(31, 56))
