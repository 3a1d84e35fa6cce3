"""Data owners on a real node wait for news in a worker thread (`actors.chain.watch`): a round
with slow local training completes with exact aggregates and every data owner paid, the update
wakes its data owner at once, and the polls that brought nothing new never reached a data
owner's round bookkeeping in the trio thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import trio

from actors.chain.anvil import AnvilNode
from actors.chain.market import Market
from actors.chain.rpc_backend import RpcChain
from actors.roles.data_owner import DataOwner, DataOwnerSettings
from actors.roles.store import StateStore
from tests.actors.test_round_e2e import REWARD, FixedUpdate, P, new_task

pytestmark = pytest.mark.anvil

TRAINING_SECONDS = 2.0


class SlowUpdate(FixedUpdate):
    """A fixed update that trains for a while after every data owner committed its shares, so
    the data owners wait in SUBMIT with nothing new on-chain, however long sharing took."""

    def __init__(self, update: np.ndarray, samples: int, shared: Callable[[], bool]) -> None:
        super().__init__(update, samples=samples)
        self.shared = shared

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        while not self.shared():
            time.sleep(0.05)
        time.sleep(TRAINING_SECONDS)
        return super().train(model_bytes, round)


class CountingMarket(Market):
    """One data owner's market: counts its polls (from any thread)."""

    polls = 0

    def poll(self, *args, **kwargs):
        self.polls += 1
        return super().poll(*args, **kwargs)


class CountingDataOwner(DataOwner):
    """Counts the looks at the chain its trio thread processed."""

    steps = 0

    async def _follow_step(self, nursery, news=None):
        self.steps += 1
        return await super()._follow_step(nursery, news)


async def test_polls_without_news_stay_in_the_watch_thread(tmp_path: Path) -> None:
    with AnvilNode() as node, trio.fail_after(120):
        chain = RpcChain(node.url, dev=True)
        market, mo, _, task = await new_task(
            chain,
            max_dos=4,
            min_dos=4,
            group_size=2,
            threshold=2,
            share_duration=30,
            submit_duration=30,
            unmask_duration=30,
        )
        # the trainers' own view of the chain, off the data owners' clients
        reader = Market(RpcChain(node.url, dev=True), market.address)

        def shared() -> bool:
            return reader.round_committed(task, 0) == 4

        rng = np.random.default_rng(3)
        dos = []
        for i in range(4):
            account = chain.new_account(10**20)
            dos.append(
                CountingDataOwner(
                    CountingMarket(chain, market.address),
                    account,
                    task,
                    SlowUpdate(rng.normal(0, 0.01, P), 100, shared),
                    StateStore(tmp_path / f"do{i}.sqlite"),
                    settings=DataOwnerSettings(poll_interval=0.05, keep_plaintext=True),
                )
            )
        async with trio.open_nursery() as nursery:
            for do in dos:
                await nursery.start(do.run)
            (report,) = await mo.run()

        assert report.finalized_groups == 2
        for group, aggregate in report.aggregates.items():
            members = market.group_members(task, group)
            expected = sum(do.plaintext[0] for do in dos if do.account in members)
            np.testing.assert_array_equal(aggregate, expected)
        assert all(do.withdrawn_wei == REWARD for do in dos)
        for do in dos:
            # once SUBMIT opened, the data owner polled at 50, 100, 200, 400, 400 ms ... with
            # nothing new on-chain while the update trained: those polls stayed in the watch
            # thread (2 s after the last commitment leaves 4-6 of them, whatever the load)
            assert do.market.polls - do.steps >= 3, (do.market.polls, do.steps)
