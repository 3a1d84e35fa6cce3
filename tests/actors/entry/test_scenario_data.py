"""A scenario's files: without a data directory, each split is written once, whole, into a cache
folder named by what decides the split, and every later run of that split reads it there; the
central ceiling of such a split is trained once per spec that is run and kept beside it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import actors.entry.scenario
from actors.entry.scenario import Scenario, central_accuracy, default_data_dir, split_data
from protocol.constants import DATA_PATH_DIRECT

SMALL = Scenario(dos=2, group_size=2, threshold=2, do_samples=100, test_limit=20)


@pytest.fixture(autouse=True)
def _cache_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actors.entry.scenario, "default_cache_path", lambda: tmp_path / "x.npz")


def test_a_split_is_written_once_and_read_again(tmp_path: Path, monkeypatch) -> None:
    layout = split_data(SMALL).layout
    root = default_data_dir(SMALL)
    assert root.parent == tmp_path / "runs" and (root / "complete").exists()
    assert layout.data_owners == (root / "do-0", root / "do-1")
    assert len(list((root / "do-1").glob("*/*.png"))) == 100
    assert [p.name for p in root.parent.iterdir()] == [root.name]  # no half-written folder left

    def refuse(*args, **kwargs):
        raise AssertionError("a split in the cache was written again")

    monkeypatch.setattr(actors.entry.scenario, "write_example", refuse)
    assert split_data(SMALL).layout == layout


@pytest.mark.parametrize(
    "change", [{"seed": 1}, {"do_samples": 120}, {"alpha": 0.5}, {"test_limit": 30}, {"dos": 3}]
)
def test_another_split_has_another_folder(change: dict) -> None:
    assert default_data_dir(dataclasses.replace(SMALL, **change)) != default_data_dir(SMALL)


def test_a_given_data_directory_is_used_and_kept(tmp_path: Path) -> None:
    given = dataclasses.replace(SMALL, data_dir=str(tmp_path / "mine"))
    layout = split_data(given).layout
    assert layout.owner == tmp_path / "mine" / "owner"
    assert (tmp_path / "mine" / "complete").exists() and not (tmp_path / "runs").exists()


def test_the_ceiling_of_a_cached_split_is_computed_once(tmp_path: Path, monkeypatch) -> None:
    data = split_data(SMALL)
    first = central_accuracy(SMALL, data)
    (kept,) = default_data_dir(SMALL).glob("central-*.json")

    def refuse(*args, **kwargs):
        raise AssertionError("a kept ceiling was trained again")

    with monkeypatch.context() as patch:
        patch.setattr(actors.entry.scenario.recipe, "train_central", refuse)
        assert central_accuracy(SMALL, data) == first
        # the market terms it does not depend on do not make another one
        direct = dataclasses.replace(SMALL, data_path=DATA_PATH_DIRECT, rule="median")
        assert central_accuracy(direct, split_data(direct)) == first
        # another spec that is run (two rounds: twice the passes) is another ceiling
        other = dataclasses.replace(SMALL, rounds=2)
        with pytest.raises(AssertionError, match="trained again"):
            central_accuracy(other, split_data(other))
    assert kept.exists()


def test_the_ceiling_of_a_given_data_directory_is_not_kept(tmp_path: Path) -> None:
    given = dataclasses.replace(SMALL, data_dir=str(tmp_path / "mine"))
    central_accuracy(given, split_data(given))
    assert not list(tmp_path.rglob("central-*.json"))
