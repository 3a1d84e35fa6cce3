"""Waiting for news in a worker thread (`actors.chain.watch`): a poll comes back only when it
differs from the baseline, the chain's clock reached the due time, or the timeout passed; a
stop ends the wait before the next poll; the polls back off while nothing changes."""

from __future__ import annotations

import threading
import time

import pytest
import trio

from actors.chain.market import PhaseInfo
from actors.chain.watch import Watch, watch

SHARE = PhaseInfo(phase=2, round=0, deadline=1_000)
SETTLE = PhaseInfo(phase=3, round=0, deadline=1_010)


class ScriptedPolls:
    """Answers polls from a script (the last answer repeats), noting when each came."""

    def __init__(self, answers: list[tuple[PhaseInfo, int, list[int]]]) -> None:
        self.answers = answers
        self.at: list[float] = []

    def __call__(self) -> tuple[PhaseInfo, int, list[int]]:
        self.at.append(time.monotonic())
        return self.answers[min(len(self.at), len(self.answers)) - 1]


def plan(**overrides) -> Watch:
    fields = {
        "baseline": (SHARE, [0]),
        "chain_due": None,
        "interval": 0.01,
        "ceiling": 0.04,
        "timeout": 5.0,
        **overrides,
    }
    return Watch(**fields)


def test_a_poll_like_the_last_one_is_not_news_a_changed_phase_or_view_is() -> None:
    polls = ScriptedPolls([(SHARE, 900, [0]), (SHARE, 901, [0]), (SETTLE, 902, [0])])
    assert watch(polls, plan(), threading.Event()) == (SETTLE, 902, [0])
    assert len(polls.at) == 3

    polls = ScriptedPolls([(SHARE, 900, [0]), (SHARE, 901, [1])])
    assert watch(polls, plan(), threading.Event()) == (SHARE, 901, [1])


def test_without_a_baseline_the_first_poll_is_news() -> None:
    polls = ScriptedPolls([(SHARE, 900, [0])])
    assert watch(polls, plan(baseline=None), threading.Event()) == (SHARE, 900, [0])
    assert len(polls.at) == 1


def test_the_chain_clock_reaching_the_due_time_is_news() -> None:
    polls = ScriptedPolls([(SHARE, 998, [0]), (SHARE, 999, [0]), (SHARE, 1_005, [0])])
    assert watch(polls, plan(chain_due=1_005), threading.Event()) == (SHARE, 1_005, [0])
    assert len(polls.at) == 3


def test_the_timeout_hands_back_the_latest_poll_after_at_least_one() -> None:
    polls = ScriptedPolls([(SHARE, 900, [0])])
    started = time.monotonic()
    assert watch(polls, plan(timeout=0.1), threading.Event()) == (SHARE, 900, [0])
    assert time.monotonic() - started >= 0.1
    assert len(polls.at) >= 2

    polls = ScriptedPolls([(SHARE, 900, [0])])
    assert watch(polls, plan(timeout=0.0), threading.Event()) == (SHARE, 900, [0])
    assert len(polls.at) == 1  # the first poll still waits one interval, as every poll did


def test_polls_back_off_to_the_ceiling_while_nothing_changes() -> None:
    polls = ScriptedPolls([(SHARE, 900, [0])])
    started = time.monotonic()
    watch(polls, plan(interval=0.01, ceiling=0.04, timeout=0.3), threading.Event())
    gaps = [b - a for a, b in zip([started, *polls.at], polls.at, strict=False)]
    assert gaps[0] >= 0.01 and gaps[1] >= 0.02 and gaps[2] >= 0.04
    assert len(polls.at) <= 10  # ~0.3 s at 0.04 s at most after the ramp, not 30 polls


def test_a_stop_ends_the_wait_before_the_next_poll() -> None:
    polls = ScriptedPolls([(SHARE, 900, [0])])
    stop = threading.Event()
    stop.set()
    assert watch(polls, plan(), stop) is None
    assert polls.at == []


def test_errors_of_a_poll_reach_the_caller() -> None:
    def failing() -> None:
        raise ConnectionError("node gone")

    with pytest.raises(ConnectionError, match="node gone"):
        watch(failing, plan(), threading.Event())


@pytest.mark.parametrize(
    "fields",
    [{"interval": 0.0}, {"interval": 0.5, "ceiling": 0.1}, {"timeout": -1.0}],
)
def test_a_watch_refuses_intervals_and_timeouts_that_make_no_sense(fields: dict) -> None:
    with pytest.raises(ValueError):
        plan(**fields)


async def test_a_trio_waiter_abandons_the_thread_and_stops_it() -> None:
    polls = ScriptedPolls([(SHARE, 900, [0])])
    stop = threading.Event()
    with trio.move_on_after(0.05):
        await trio.to_thread.run_sync(watch, polls, plan(), stop, abandon_on_cancel=True)
    stop.set()
    seen = len(polls.at)
    await trio.sleep(0.1)
    assert len(polls.at) <= seen + 1  # at most the poll in flight, none after it
