from __future__ import annotations

import gc

import pytest

from pytest_ftclass.collector import collector_paused


def test_collector_is_switched_back_on_when_the_import_fails() -> None:
    with pytest.raises(ModuleNotFoundError), collector_paused():
        assert not gc.isenabled()
        import ftclass_no_such_module  # noqa: F401
    assert gc.isenabled()


def test_collector_the_user_switched_off_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
