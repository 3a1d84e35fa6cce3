"""Background offers, one per round: what a data owner keeps sending until the other side takes
it or the round no longer needs it (its shares to peers; a direct task's update to the model
owner).

`Offers.run` holds the offers' tasks (start it in the actor's nursery); `start(round, ...)`
replaces that round's offer, `withdraw(round)` cancels it. An offer reports to its round's
driver on a channel it closes when done; a driver that is gone is nobody to tell, not an error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio


class Offers:
    """The live offers of one transport, by round."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._scopes: dict[int, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the offers' tasks until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    def start(
        self,
        round: int,
        offer: Callable[..., Awaitable[None]],
        report: trio.MemorySendChannel[Any],
        *args: Any,
    ) -> None:
        """Run `offer(round, report, *args)` until it returns or `withdraw(round)`; `report` is
        closed after it."""
        self.withdraw(round)
        if self._nursery is None:
            raise RuntimeError(f"{self.name}: the offers are not running")
        scope = trio.CancelScope()
        self._scopes[round] = scope
        self._nursery.start_soon(self._run_one, round, scope, offer, report, args)

    def withdraw(self, round: int) -> None:
        scope = self._scopes.pop(round, None)
        if scope is not None:
            scope.cancel()

    async def _run_one(
        self,
        round: int,
        scope: trio.CancelScope,
        offer: Callable[..., Awaitable[None]],
        report: trio.MemorySendChannel[Any],
        args: tuple[Any, ...],
    ) -> None:
        try:
            with scope, report:
                await offer(round, report, *args)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the round's driver is gone: nobody to tell
        finally:
            if self._scopes.get(round) is scope:
                del self._scopes[round]
