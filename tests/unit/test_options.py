"""Settings: one source for every option, and the README's table lists them all."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_ftclass.options import SETTINGS, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_option_is_in_the_readmes_table_with_its_ini_key() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Settings") : text.index("## Benchmarks")]
    rows = [line for line in table.splitlines() if line.startswith("| `--ft-")]
    listed = {flag for row in rows for flag in re.findall(r"`(--ft-[a-z-]+)`", row)}
    keys = {key for row in rows for key in re.findall(r"`(ft_[a-z_]+)`", row)}
    assert {s.flag for s in SETTINGS.values()} <= listed
    assert set(SETTINGS) <= keys


def test_the_option_table_is_made_from_the_settings_fields() -> None:
    defaults = Settings()
    for key, setting in SETTINGS.items():
        assert key == f"ft_{setting.attribute}" and setting.flag == "--" + key.replace("_", "-")
        assert getattr(defaults, setting.attribute) == setting.default, key
    assert Settings().live is False and Settings(record_mode="once").live is True


def test_a_baseline_is_parsed_once_while_its_file_is_unchanged(tmp_path: Path) -> None:
    import os

    from pytest_ftclass.options import load_baseline
    from pytest_ftclass.report import build_report, write_json_report

    path = write_json_report(build_report([], {}), tmp_path / "baseline.json")
    first = load_baseline(path)
    assert load_baseline(path) is first  # the check at start and the gate at the end share it
    write_json_report(build_report([], {"again": True}), path)
    os.utime(path, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    assert load_baseline(path) is not first and load_baseline(path)["metadata"] == {"again": True}
