"""The persisted state store: durable across reopen, atomic batches, closed is closed."""

from pathlib import Path

import pytest

from actors.roles.store import StateStore


def test_values_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "do.sqlite"
    with StateStore(path) as store:
        store.put("round", "1/0", b"snapshot-a")
        store.put("round", "1/0", b"snapshot-b")
        store.put("keys", "channel", b"\x01" * 32)
    with StateStore(path) as store:
        assert store.get("round", "1/0") == b"snapshot-b"
        assert store.get("keys", "channel") == b"\x01" * 32
        assert store.get("round", "missing") is None
        assert list(store.items("round")) == [("1/0", b"snapshot-b")]


def test_batch_is_all_or_nothing(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.sqlite") as store:
        store.put("ns", "a", b"old")
        with pytest.raises(TypeError):
            store.put_many("ns", {"a": b"new", "b": None})  # type: ignore[dict-item]
        assert store.get("ns", "a") == b"old"
        assert store.get("ns", "b") is None


def test_closed_store_refuses_and_close_is_idempotent(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    store.close()
    store.close()
    with pytest.raises(ValueError, match="closed"):
        store.get("ns", "a")
