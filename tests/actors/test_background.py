"""Local training runs in threads of lower priority than the protocol's."""

from __future__ import annotations

import os
import sys
import threading

import pytest
import trio

from actors.learning.background import (
    SWITCH_INTERVAL,
    TRAINING_NICE,
    lower_this_thread,
    run_training,
)


def _nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
async def test_training_runs_in_a_thread_niced_below_the_event_loop() -> None:
    loop_nice = _nice_of_this_thread()
    seen = await run_training(lambda: (threading.current_thread(), _nice_of_this_thread()))
    thread, nice = seen
    assert thread is not threading.current_thread()
    assert thread.name.startswith("training")
    assert nice == min(loop_nice + TRAINING_NICE, 19)
    assert _nice_of_this_thread() == loop_nice  # the protocol's thread keeps its priority


async def test_run_training_returns_the_result_and_raises_the_error() -> None:
    assert await run_training(sum, [1, 2, 3]) == 6
    with pytest.raises(ZeroDivisionError):
        await run_training(lambda: 1 / 0)


async def test_a_limiter_bounds_how_many_train_at_once() -> None:
    limiter = trio.CapacityLimiter(1)
    running, peak = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threading.Event().wait(0.02)
        with lock:
            running -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(lambda: run_training(work, limiter=limiter))
    assert peak == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_lowering_a_thread_caps_at_19() -> None:
    result: list[int] = []

    def body() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 15)
        assert lower_this_thread()
        result.append(_nice_of_this_thread())

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert result == [19]


async def test_a_training_process_shortens_the_switch_interval() -> None:
    await run_training(int)
    assert sys.getswitchinterval() <= SWITCH_INTERVAL
