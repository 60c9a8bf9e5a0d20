"""``ftclass prepare``: fixes what lint finds, splits deterministically, is idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_ftclass.cli import main
from pytest_ftclass.lint import FIXED_BY_PREPARE, lint_files
from pytest_ftclass.prepare import prepare_file, split_stratified
from tests.test_dataset_lint import ONE_WITH_PLURAL, SEP, crafted_train


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
