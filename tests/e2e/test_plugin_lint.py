"""``pytest --ft-lint``: case files are checked before any request is sent."""

from __future__ import annotations

import pytest

from tests.helpers import validation_lines, write_jsonl


def test_lint_errors_stop_the_run_before_any_request(
    suite: pytest.Pytester, reference_server
) -> None:
    lines = validation_lines(per_class=2)
    lines.append(
        {
            "id": "mixed",
            "messages": [
                {"role": "user", "content": "goal"},
                {"role": "assistant", "content": "sport"},
            ],
        }
    )
    write_jsonl(suite.path / "valid.cases.jsonl", lines)
    result = suite.runpytest(
        "--ft-lint", f"--ft-base-url={reference_server.base_url}", "--ft-record-mode=once"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ftclass lint*", "*error*", "*no request was sent*"])
    assert reference_server.requests == []


def test_clean_case_files_pass_lint_and_run(suite: pytest.Pytester, reference_server) -> None:
    write_jsonl(suite.path / "valid.cases.jsonl", validation_lines(per_class=2))
    result = suite.runpytest(
        "--ft-lint", f"--ft-base-url={reference_server.base_url}", "--ft-record-mode=once"
    )
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*ftclass lint*"])
