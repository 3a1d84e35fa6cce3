"""Persisted actor state: one SQLite file per actor in its state directory.

A data owner writes its round machine's snapshot (keys, received shares, progress) after every
step, and the chain blocks it has processed, so a killed process resumes where it stopped without
dealing fresh secrets or posting a second submission. Writes are atomic (one SQLite transaction);
values are bytes the caller encoded (msgspec), never pickle.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
)
"""


class StateStore:
    """A small namespaced key/value store on SQLite (WAL mode, synchronous commits)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError(f"state store {self.path} is closed")
        return self._db

    def put(self, namespace: str, key: str, value: bytes) -> None:
        """Store `value` (replacing any older one) durably."""
        self._conn.execute(
            "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            (namespace, key, bytes(value)),
        )

    def put_many(self, namespace: str, items: dict[str, bytes]) -> None:
        """Store several values in one transaction: all or none."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                [(namespace, key, bytes(value)) for key, value in items.items()],
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def get(self, namespace: str, key: str) -> bytes | None:
        row = self._conn.execute(
            "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def items(self, namespace: str) -> Iterator[tuple[str, bytes]]:
        """Every (key, value) of a namespace, by key."""
        rows = self._conn.execute(
            "SELECT key, value FROM kv WHERE namespace = ? ORDER BY key", (namespace,)
        ).fetchall()
        for key, value in rows:
            yield key, bytes(value)

    def delete(self, namespace: str, key: str) -> None:
        self._conn.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
