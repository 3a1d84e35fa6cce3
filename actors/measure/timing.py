"""Where a data owner's time goes: its protocol work beside its local training.

A data owner's protocol time is the step time of its trio tasks (round machine: quantization,
masking, Shamir, Merkle trees; Noise channels; state store) plus the time of its chain calls
(transactions and reads, run in worker threads); its training time is its learner's `train`.
Each is summed in wall time and in CPU time of the thread doing it. While it waits for the next
phase a data owner polls the phase and the chain's clock: that is waiting, not work, and is
summed apart (`phase_polls`); views a round needs on every poll ride along in the same request.

`bench.chain_time` uses these for its client-overhead figures, and `omnilytics do --timings`
writes them to the data owner's `result.json` (one data owner per process, as on a machine of
its own). Only `bench` and the actors' entry points import this module.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import trio

from actors.chain.base import Chain
from actors.roles.data_owner import Learner

# what a data owner polls while it waits for the next phase (with the chain's clock)
_PHASE_VIEW = "task_phase_of"
PROTOCOL_KEYS = ("steps", "transactions", "reads")


class TimedChain:
    """One data owner's view of a shared chain: the wall time of its calls is summed, the
    phase polls (waiting for the next phase, every `poll_interval`) apart from other reads."""

    def __init__(self, chain: Chain, spent: dict[str, float]) -> None:
        self._chain = chain
        self._spent = spent
        self.name = chain.name

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._chain, name)
        if not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return attr(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                cpu = time.thread_time() - cpu
                if name == "attach":  # once per process, not per round: start-up
                    self._spent["startup"] += spent
                    self._spent["cpu startup"] += cpu
                elif _is_phase_poll(name, args, kwargs):
                    self._spent["phase_polls"] += spent
                    self._spent["cpu phase_polls"] += cpu
                else:
                    self._spent["transactions" if name == "transact" else "reads"] += spent
                    self._spent["cpu chain"] += cpu
                    if name == "transact":
                        self._spent[f"transact {args[1]}"] += spent
                    else:
                        label = f"read {name} {_read_label(name, args)}".strip()
                        self._spent[label] += spent

        return timed


def _is_phase_poll(name: str, args: tuple, kwargs: dict) -> bool:
    if name == "call_many":
        # a poll's batch may carry views a round waits on: they ride along, no request of theirs
        return kwargs.get("clock", False) and args[1][0][0] == _PHASE_VIEW
    return name == "timestamp" or (name == "call" and args[1:2] == (_PHASE_VIEW,))


def _read_label(name: str, args: tuple) -> str:
    if name == "call_many" and len(args) > 1:
        return "+".join(sorted({call[0] for call in args[1]}))
    return args[1] if name in ("call", "events") and len(args) > 1 else ""


class TimedLearner:
    """A learner whose `train` wall time is recorded (the denominator of the overhead)."""

    def __init__(self, learner: Learner, spent: dict[str, float]) -> None:
        self._learner = learner
        self._spent = spent

    def train(self, model_bytes: bytes, round: int) -> Any:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return self._learner.train(model_bytes, round)
        finally:
            self._spent["training"] += time.perf_counter() - started
            self._spent["cpu training"] += time.thread_time() - cpu


class StepClock(trio.abc.Instrument):
    """Sums the time each data owner's trio tasks run in the event loop thread."""

    def __init__(self) -> None:
        self.roots: dict[trio.lowlevel.Task, dict[str, float]] = {}
        self._owner: dict[trio.lowlevel.Task, dict[str, float] | None] = {}
        self._started: float | None = None  # None: the instrument came in mid-step
        self._cpu = 0.0

    def _find(self, task: trio.lowlevel.Task) -> dict[str, float] | None:
        if task not in self._owner:
            owner, walk = None, task
            while walk is not None:
                if walk in self.roots:
                    owner = self.roots[walk]
                    break
                nursery = walk.parent_nursery
                walk = nursery.parent_task if nursery is not None else None
            self._owner[task] = owner
        return self._owner[task]

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started, self._cpu = time.perf_counter(), time.thread_time()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        spent = self._find(task)
        if spent is not None and self._started is not None:
            spent["steps"] += time.perf_counter() - self._started
            spent["cpu steps"] += time.thread_time() - self._cpu


def new_times() -> defaultdict[str, float]:
    return defaultdict(float)


def summarize(times: dict[str, float]) -> dict[str, float]:
    """A data owner's times with its protocol total and the fractions of its training time:
    `fraction` (wall), `fraction_with_phase_polls`, `cpu_fraction` (CPU time of the threads)."""
    protocol = sum(times.get(k, 0.0) for k in PROTOCOL_KEYS)
    polling = protocol + times.get("phase_polls", 0.0)
    cpu = times.get("cpu steps", 0.0) + times.get("cpu chain", 0.0)
    return {
        **times,
        "protocol": protocol,
        "fraction": protocol / times["training"],
        "fraction_with_phase_polls": polling / times["training"],
        "cpu_fraction": cpu / times["cpu training"],
    }
