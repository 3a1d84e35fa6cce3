"""The collector settings of an actor's run: raised inside, restored and unfrozen after.

The suite's session runs inside these settings (tests/conftest.py), so each test starts from
nothing frozen and freezes again at its end, as the session had it."""

import gc

import pytest

from actors.entry.collector import FULL_AFTER, freeze_setup, rare_full_collections


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.freeze()


def test_full_collections_rare_inside_and_as_before_after(unfrozen) -> None:
    before = gc.get_threshold()
    with rare_full_collections():
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2]
        assert full == max(before[2], FULL_AFTER)
        freeze_setup()
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_restored_when_the_run_fails(unfrozen) -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), rare_full_collections():
        freeze_setup()
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_run_inside_a_run_leaves_the_outer_setup_frozen(unfrozen) -> None:
    before = gc.get_threshold()
    with rare_full_collections():
        freeze_setup()
        outer = gc.get_freeze_count()
        with rare_full_collections():
            freeze_setup()
        assert gc.get_freeze_count() >= outer
        assert gc.get_threshold()[2] == max(before[2], FULL_AFTER)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
