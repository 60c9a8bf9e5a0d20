"""Builds the suite's data from the BBC News corpus before anything is collected.

The article text is never committed: ``data/`` is generated here, the same bytes
on every machine, and ignored by git.  The committed cassettes hold answers keyed
by digests of these prompts, so the suite replays offline.
"""

from __future__ import annotations

from pathlib import Path

from build_data import build_example_data

HERE = Path(__file__).parent
DATA = build_example_data(HERE / "data")

# The fine-tuning demo is a suite of its own (its own pytest.ini and cassettes):
# run it with `pytest example_suite/finetune_demo`.
collect_ignore = ["finetune_demo"]
