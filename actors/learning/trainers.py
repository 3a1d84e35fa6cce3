"""Training processes: where the data owners of one process (the demo's ten) train.

Threads of one process share its GIL: training threads with each other and with the protocol
(the chain client, the embedded EVM, the channels), and torch's small steps on a 32-sample
batch hand it back and forth at every operation. `TrainingProcesses` trains in worker processes
instead, each with one torch thread, at the training threads' lower priority
(`background.TRAINING_NICE`), keeping the memory a training step frees for the next
(`heap.keep_freed_memory`).

Every worker holds every hosted learner, sent once when it starts, and trains whichever data
owner asks next, so the workers stay as busy as a pool of threads would. A call sends the
round's public model (its bytes, as fetched) and the round, and gets back the update and the
sample count: a few hundred kB each way for the MNIST spec. A learner's training is a function
of its data, seed, round and torch's thread count, so an update is the same bit for bit in a
worker as in a thread (`tests/actors/learning/test_trainers.py`).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from actors.learning.background import TRAINING_NICE
from actors.learning.heap import keep_freed_memory
from actors.learning.train import use_threads

_hosted: dict[int, Any] = {}  # in a worker: the learners, by index


def _host(learners: dict[int, Any], threads: int) -> None:
    use_threads(threads)
    keep_freed_memory()
    if sys.platform.startswith("linux"):
        os.nice(TRAINING_NICE)
    _hosted.update(learners)


def _ready() -> None:
    """A first call: the worker has started and holds the learners."""


def _train(index: int, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
    return _hosted[index].train(model_bytes, round)


class TrainingProcesses:
    """`workers` processes that train the given learners (`learner(i)` stands for the i-th)."""

    def __init__(self, learners: Sequence[Any], *, workers: int = 2, threads: int = 1) -> None:
        self._local = list(learners)
        context = multiprocessing.get_context("forkserver")
        self._pool = concurrent.futures.ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_host,
            initargs=(dict(enumerate(self._local)), threads),
        )
        # start the workers now (imports, the learners' data), not inside the first round: the
        # pool starts one for each call it cannot hand to an idle one
        for ready in [self._pool.submit(_ready) for _ in range(workers)]:
            ready.result()

    def learner(self, index: int) -> HostedLearner:
        return HostedLearner(self, index)

    def train(self, index: int, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        """Learner `index`'s update for this round's model, trained in the next free worker
        (blocks the calling thread)."""
        return self._pool.submit(_train, index, model_bytes, round).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> TrainingProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HostedLearner:
    """A data owner's learner that trains in a `TrainingProcesses` worker; anything else it is
    asked (its data, its spec) the local copy answers."""

    def __init__(self, processes: TrainingProcesses, index: int) -> None:
        self._processes, self._index = processes, index
        self._local = processes._local[index]

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        return self._processes.train(self._index, model_bytes, round)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._local, name)
