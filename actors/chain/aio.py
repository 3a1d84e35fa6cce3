"""Calling the (synchronous) chain clients from trio tasks.

The embedded boa chain is in-process and fast but not thread-safe, so its calls run right in the
trio thread (with a checkpoint, so other tasks get their turn). JSON-RPC calls block on the
network, so they run in worker threads and the event loop keeps serving peer channels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from actors.chain.base import Chain

T = TypeVar("T")


async def on_chain(chain: Chain, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(*args, **kwargs)` (a chain call) without blocking other trio tasks for long.

    A chain object with a `latency` callable (tests: a slow node) waits that long first.
    """
    latency = getattr(chain, "latency", None)
    if latency is not None:
        await trio.sleep(latency())
    if chain.name == "boa":
        await trio.lowlevel.checkpoint()
        return fn(*args, **kwargs)
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
