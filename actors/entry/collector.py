"""The garbage collector in an actor's process: full collections rare, and never over setup.

CPython's cyclic collector scans every tracked object in a full (generation 2) collection, with
the GIL held. An actor's process holds about a million of them after setup (the contracts'
compiler output, the embedded EVM, the learners and their data), and a full collection came
every few seconds. Measured in the demo's process on the embedded chain, 3 rounds: 15 full
collections, 0.2-0.76 s each, 4.5 s in all, every one stopping the protocol and, at their next
Python step, the training threads. With the two settings below, none during setup and one
after the run; the demo's 3 rounds took 27.2 and 24.3 s against 30.9 and 31.1 s back to back
(1 round: the same 16-17 s).

- `rare_full_collections`, around a run from its start: a full collection waits for 1,000
  collections of the middle generation instead of 10 (young objects are collected as before:
  only cycles that survived two collections wait longer).
- `freeze_setup`, once the run's setup is done: what is alive then (compiled contracts, data,
  models) moves to the permanent generation, which no collection scans. Memory it holds is still
  freed by reference counting as usual; only cycles among those objects wait, until the run
  ends and `rare_full_collections` hands them back to the collector.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

FULL_AFTER = 1_000  # middle-generation collections between two full collections (CPython: 10)


@contextlib.contextmanager
def rare_full_collections() -> Iterator[None]:
    """Full collections rare inside; after, the thresholds as they were, and nothing frozen
    unless something was before (an enclosing run's setup: it stays frozen until that ends)."""
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    young, middle, full = before
    gc.set_threshold(young, middle, max(full, FULL_AFTER))
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if not frozen:
            gc.unfreeze()


def freeze_setup() -> None:
    """Keep every object alive now out of later collections (`gc.freeze`), until the
    enclosing `rare_full_collections` ends."""
    gc.freeze()
