"""A data owner makes a round's machine visible to its peer handler only once it is opened:
a delivery that arrives while the data owner is still reading the chain must wait, not hit a
machine that has not seen `RoundOpened` (which would end it in ERROR)."""

from pathlib import Path

import boa
import numpy as np
import trio

from actors.chain import BoaChain
from actors.data_owner import DataOwner
from actors.market import Market
from actors.model_owner import ModelOwner, TaskPlan
from actors.store import StateStore
from protocol.round import State
from tests.actors.test_round_e2e import FixedUpdate, VectorOwner


async def test_round_is_invisible_to_peers_until_opened(tmp_path: Path) -> None:
    with boa.env.anchor(), trio.fail_after(30):
        chain = BoaChain(realtime=True)
        mo_account = chain.new_account(10**21)
        market = Market.deploy(chain, mo_account)
        plan = TaskPlan(max_dos=2, min_dos=2, group_size=2, threshold=2)
        mo = ModelOwner(market, mo_account, VectorOwner(), plan)
        task = await mo.create_task()
        accounts = [chain.new_account(10**20) for _ in range(2)]
        for i, account in enumerate(accounts):
            market.register(task, bytes([i + 1]) * 32, "127.0.0.1:1", account)
        market.advance(task, mo_account)

        owner = DataOwner(
            market,
            accounts[0],
            task,
            FixedUpdate(np.zeros(500), 1),
            StateStore(tmp_path / "do.sqlite"),
        )
        owner.config = market.config(task)
        seen_while_reading: list[bool] = []
        read_model_hash = market.round_model_hash

        def watching(task_id: int, number: int) -> bytes:
            seen_while_reading.append(number in owner.rounds)
            return read_model_hash(task_id, number)

        market.round_model_hash = watching  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            await owner._open_round(0, nursery)
            nursery.cancel_scope.cancel()
        assert seen_while_reading == [False]
        assert owner.rounds[0].machine.state is State.REGISTERED
        assert owner.rounds[0].machine.opened
