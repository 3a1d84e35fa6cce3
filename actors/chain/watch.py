"""Waiting for a task to move, in a worker thread: polls that bring no news never wake trio.

A data owner spends most of a round waiting: for the next phase, a view to change (its group's
result, a complaint against it), a deadline, or a retry it owes a peer. Each poll used to be a
trip through the event loop (a timer, a hand-off to a worker thread and back, the round's
bookkeeping): about 0.3 ms of the loop's time a poll, some 36 polls a round, a sixth of a data
owner's protocol time. A `Watch` runs the polls in one worker thread instead, at the same
intervals, and hands a poll back only when it differs from the last one the data owner
processed, or the chain's clock reached `chain_due`, or `timeout` passed (a retry is due, and
a heartbeat besides). Local work that wants the chain read at once (an update ready, a late
share delivery) sets `stop`: the watch ends before its next poll and returns nothing.

Only for chain clients that may be called from a worker thread (JSON-RPC); the embedded boa
chain is polled in the trio thread as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Polled = tuple[Any, int, list[Any]]  # (phase info, the chain's clock, the views' values)


@dataclass(frozen=True, slots=True)
class Watch:
    """What a wait looks for: news against `baseline` (the last processed poll's phase info and
    views, None: any poll is news), the chain time `chain_due` (None: none), polls every
    `interval` seconds at first, doubling up to `ceiling` while nothing changes, for at most
    `timeout` seconds of wall time (at least one poll)."""

    baseline: tuple[Any, list[Any]] | None
    chain_due: int | None
    interval: float
    ceiling: float
    timeout: float

    def __post_init__(self) -> None:
        if not 0 < self.interval <= self.ceiling:
            raise ValueError(f"poll intervals need 0 < {self.interval} <= {self.ceiling}")
        if self.timeout < 0:
            raise ValueError(f"a watch's timeout is not negative, got {self.timeout}")

    def is_news(self, polled: Polled) -> bool:
        info, now, values = polled
        if self.baseline is None or (info, values) != self.baseline:
            return True
        return self.chain_due is not None and now >= self.chain_due


def watch(poll: Callable[[], Polled], plan: Watch, stop: threading.Event) -> Polled | None:
    """Poll (blocking; run it in a worker thread) until a poll is news, `plan.timeout` passed
    (that poll is returned), or `stop` is set (None). The first poll comes after one interval,
    as a data owner's polls always did; a poll's errors propagate."""
    ends = time.monotonic() + plan.timeout
    interval = wait = plan.interval
    while not stop.wait(wait):
        polled = poll()
        if plan.is_news(polled) or time.monotonic() >= ends:
            return polled
        interval = min(2 * interval, plan.ceiling)
        wait = max(0.0, min(interval, ends - time.monotonic()))
    return None
