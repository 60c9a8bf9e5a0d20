"""What the recording code takes from vcrpy beyond its documented API, checked loudly.

``IndexedCassette`` overrides private methods of ``vcr.cassette.Cassette`` and
reads its private attributes; ``CassetteFiles`` and the Batch API rules use
vcrpy's persister, serializer and filters.  pyproject caps vcrpy below its next
major version; if a release inside that range moves any of these, this test
names what moved before a recording quietly goes wrong.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest


def test_the_private_methods_indexed_cassette_overrides_still_exist() -> None:
    from vcr.cassette import Cassette

    from pytest_ftclass.recording.cassette_index import IndexedCassette

    replaced = ["_responses", "_load", "_rerecorded_interactions", "_new_interactions"]
    replaced += ["can_play_response_for", "append"]
    assert all(name in vars(IndexedCassette) for name in replaced)
    gone = [name for name in replaced if not callable(getattr(Cassette, name, None))]
    assert gone == [], f"vcrpy's Cassette no longer has {gone}: IndexedCassette overrides them"
    # vcrpy's saving still decides what to keep through the methods replaced above
    save = inspect.getsource(Cassette._save)
    assert "_rerecorded_interactions" in save
    assert "_new_interactions" in inspect.getsource(Cassette)


def test_the_private_attributes_the_index_reads_are_set_by_vcrpy(tmp_path: Path) -> None:
    import vcr

    recorder = vcr.VCR(serializer="json", match_on=("method", "path", "body"))
    config = recorder.get_merged_config(path=str(tmp_path / "c.json"))
    from pytest_ftclass.recording.cassette_index import load_cassette

    cassette = load_cassette(recorder, tmp_path / "c.json")
    for name in (
        "_before_record_request",
        "_match_on",
        "_loaded_count",
        "_old_interactions",
        "data",
        "play_counts",
        "allow_playback_repeats",
        "record_mode",
        "rewound",
        "drop_unused_requests",
    ):
        assert hasattr(cassette, name), f"vcrpy's Cassette no longer sets {name}"
    assert "match_on" in config and "before_record_request" in config


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("vcr.cassette", "CassetteContextDecorator"),
        ("vcr.record_mode", "RecordMode"),
        ("vcr.util", "read_body"),
        ("vcr.matchers", "requests_match"),
        ("vcr.persisters.filesystem", "CassetteNotFoundError"),
        ("vcr.serialize", "serialize"),
        ("vcr.serializers", "compat"),
        ("vcr.filters", "decode_response"),
        ("vcr.request", "Request"),
    ],
)
def test_the_helpers_the_recording_code_imports_exist(module: str, name: str) -> None:
    import importlib

    assert hasattr(importlib.import_module(module), name), f"{module}.{name} is gone"
    if name == "CassetteContextDecorator":
        from vcr.cassette import CassetteContextDecorator

        assert callable(getattr(CassetteContextDecorator, "from_args", None))
