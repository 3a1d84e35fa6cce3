"""Local training at a lower scheduling priority than the protocol.

A data owner's protocol work (dealing, share deliveries and their acknowledgements, chain
calls) is short and waits on peers and the node; its local training is long and only needs the
CPU. Where the two share a core, a protocol step that becomes runnable while training runs
waits for the training thread's time slice: measured on a data owner with a core of its own,
its trio steps took 1.4-1.5x their CPU time in wall time while it trained, 1.1-1.2x with its
training thread niced. So training runs in threads of its own at `TRAINING_NICE` above the
process's nice value. On Linux a thread's nice value is its own, and raising it needs no
privilege; these threads run nothing but training, so it is never lowered back. Elsewhere
(a thread's priority is not the process's to set there) they run at the process's priority.

The GIL is the other queue: a step that wakes while the training thread holds it waits until
that thread lets go, up to the interpreter's switch interval (5 ms by default). A process that
trains here asks for a shorter one, `SWITCH_INTERVAL`: the training thread spends most of its
time in torch's kernels, which run without the GIL, so letting go sooner costs it little.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import trio

TRAINING_NICE = 10
SWITCH_INTERVAL = 0.0005  # seconds
_MAX_NICE = 19
_WORKERS = 8  # training threads of a process (the demo's ten data owners share them)

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def lower_this_thread() -> bool:
    """Raise the calling thread's nice value by `TRAINING_NICE` (at most 19); whether it could."""
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(now + TRAINING_NICE, _MAX_NICE))
    except OSError:
        return False
    return True


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
            _pool = ThreadPoolExecutor(
                _WORKERS, thread_name_prefix="training", initializer=lower_this_thread
            )
        return _pool


async def run_training(
    fn: Callable[..., T], *args: Any, limiter: trio.CapacityLimiter | None = None
) -> T:
    """`fn(*args)` in a training thread; the calling task waits for it as it would for
    `trio.to_thread.run_sync` (and, like it, the call is not abandoned on cancellation)."""
    pool = _executor()
    return await trio.to_thread.run_sync(lambda: pool.submit(fn, *args).result(), limiter=limiter)
