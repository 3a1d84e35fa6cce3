"""Waking a party that waits on the embedded chain when the chain makes a block.

Between two blocks nothing on a chain changes but its clock. Every block of the embedded chain
is made in this process, by a party's transaction or a test's time travel, and the chain tells
its listeners (`BoaChain.on_block`). So a party that waits for news on it (the next phase, a
count reaching its target) sleeps until the next block, or at most its poll interval, which
still serves what the clock alone brings: a deadline. Polling at fixed intervals found a phase
change late by half an interval on average: at 50 ms to 0.4 s apart, the data owners saw a
round open and UNMASK begin some 90 ms after the model owner's transaction, twice a round, on
the round's critical path.

A node's blocks are not announced in this process: there a `Wakeup` rings only for what the
party's own process tells it (the model owner: an update delivered), and its waits time out at
the poll interval as before.
"""

from __future__ import annotations

import trio

from actors.chain.base import Chain


class Wakeup:
    """A waiting trio task's bell: anyone in its trio thread may ring it."""

    def __init__(self) -> None:
        self._next = trio.Event()

    def ring(self) -> None:
        self._next.set()
        self._next = trio.Event()

    async def wait(self, timeout: float) -> bool:
        """Sleep until the bell rings, for at most `timeout` seconds; whether it rang."""
        with trio.move_on_after(timeout):
            await self._next.wait()
            return True
        return False


def ring_on_blocks(chain: Chain, wakeup: Wakeup) -> bool:
    """Ring `wakeup` at every block `chain` makes, if it announces them (the embedded chain; not
    a node, nor a test's chain with a simulated latency); whether it does."""
    on_block = getattr(chain, "on_block", None)
    if on_block is None or getattr(chain, "latency", None) is not None:
        return False
    on_block(wakeup.ring)
    return True
