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
