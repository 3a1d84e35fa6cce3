"""`omnilytics status` against a live market on anvil: mid-round (data owners registered, groups
drawn, two of four updates submitted and two held back in training) it shows the phase, the
deadline, each group with its members and who committed or submitted; after the round it shows
the task over, every group finalized and what each data owner was paid."""

from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import trio

from actors.chain.anvil import AnvilNode
from actors.chain.market import Market
from actors.chain.rpc_backend import RpcChain
from actors.entry.status import PHASE_NAMES
from actors.roles.data_owner import DataOwner, DataOwnerSettings
from actors.roles.store import StateStore
from protocol.constants import PHASE_SUBMIT, STATUS_SUBMITTED
from tests.actors.test_round_e2e import REWARD, FixedUpdate, P, new_task

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]
SUBMIT_SECONDS = 120


class HeldUpdate(FixedUpdate):
    """A fixed update whose training ends only when the test releases it."""

    def __init__(self, update: np.ndarray, samples: int) -> None:
        super().__init__(update, samples)
        self.release = threading.Event()

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        self.release.wait()
        return super().train(model_bytes, round)


async def omnilytics_status(url: str, market: str) -> str:
    """Run `omnilytics status` as a user would; its output with whitespace collapsed."""
    done = await trio.run_process(
        [sys.executable, "-m", "actors.entry.cli", "status", "--rpc-url", url, "--market", market],
        capture_stdout=True,
        capture_stderr=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "250"},
    )
    return " ".join(done.stdout.decode().split())


async def until(check, reader: Market) -> None:
    while not await trio.to_thread.run_sync(check, reader):
        await trio.sleep(0.1)


async def test_status_shows_a_round_in_progress_and_its_payments(tmp_path: Path) -> None:
    with AnvilNode() as node, trio.fail_after(240):
        chain = RpcChain(node.url, dev=True)
        market, mo, _, task = await new_task(
            chain,
            max_dos=4,
            min_dos=4,
            group_size=2,
            threshold=2,
            share_duration=60,
            submit_duration=SUBMIT_SECONDS,
            unmask_duration=60,
        )
        reader = Market(RpcChain(node.url, dev=True), market.address)
        rng = np.random.default_rng(11)
        learners = [HeldUpdate(rng.normal(0, 0.01, P), 100) for _ in range(4)]
        dos = [
            DataOwner(
                market,
                chain.new_account(10**20),
                task,
                learner,
                StateStore(tmp_path / f"do{i}.sqlite"),
                settings=DataOwnerSettings(poll_interval=0.05),
            )
            for i, learner in enumerate(learners)
        ]
        early, late = dos[:2], dos[2:]
        async with trio.open_nursery() as nursery:
            for do in dos:
                await nursery.start(do.run)
            nursery.start_soon(mo.run)
            # trainers block in threads, which no cancellation reaches: release them, whatever
            try:
                # every share committed, SUBMIT open; two updates go on-chain, two stay held
                await until(
                    lambda m: (
                        m.phase(task).phase == PHASE_SUBMIT and m.round_committed(task, 0) == 4
                    ),
                    reader,
                )
                for learner in learners[:2]:
                    learner.release.set()
                await until(
                    lambda m: all(
                        m.status(task, 0, do.account) == STATUS_SUBMITTED for do in early
                    ),
                    reader,
                )
                shown = await omnilytics_status(node.url, market.address)
            finally:
                for learner in learners:
                    learner.release.set()

        assert f"task {task} · SUBMIT · round 1/1 · 4/4 data owners · deadline in" in shown
        left = int(re.search(r"deadline in (\d+) s", shown)[1])
        assert 0 < left <= SUBMIT_SECONDS
        for group in range(2):
            first, second = market.group_members(task, group)
            assert f"{group} (pending, 0 unmasks) │ {first} │" in shown
            assert f"│ │ {second} │" in shown  # the next row of the same group
        for do in early:
            assert f"{do.account} │ submitted │ 0.0000" in shown
        for do in late:
            assert f"{do.account} │ committed │ 0.0000" in shown

        assert all(do.withdrawn_wei == REWARD for do in dos)
        shown = await omnilytics_status(node.url, market.address)
        phase = PHASE_NAMES[market.phase(task).phase]
        assert f"task {task} · {phase} · round 1/1 · 4/4 data owners · over" in shown
        assert f"escrow left {0:.4f}" in shown
        for group in range(2):
            assert f"{group} (finalized) │" in shown
        for do in dos:
            assert f"{do.account} │ unmasked │ {REWARD / 1e18:.4f}" in shown
