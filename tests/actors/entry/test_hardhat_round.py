"""Hardhat's node, the second node implementation: `omnilytics deploy` to it, a whole round of
the real actors (model owner and four data owners, shares over loopback channels) on the market
it deployed, every data owner paid and withdrawn, and `omnilytics tasks` reading the task back
from chain data alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trio

from actors.chain.hardhat import HardhatNode, hardhat_binary
from actors.chain.market import Market
from actors.chain.rpc_backend import RpcChain
from actors.roles.data_owner import DataOwner, DataOwnerSettings
from actors.roles.model_owner import ModelOwner, TaskPlan
from actors.roles.store import StateStore
from tests.actors.entry.conftest import import_dev_account, run
from tests.actors.test_round_e2e import REWARD, FixedUpdate, P, VectorOwner

pytestmark = pytest.mark.skipif(hardhat_binary() is None, reason="hardhat: run `just setup`")


async def one_round(market: Market, state: Path) -> tuple[int, list[DataOwner]]:
    chain = market.chain
    owner = ModelOwner(
        market,
        chain.new_account(10**21),
        VectorOwner(),
        TaskPlan(
            max_dos=4,
            min_dos=4,
            group_size=2,
            threshold=2,
            reward_per_do=REWARD,
            share_duration=60,
            submit_duration=60,
            unmask_duration=60,
        ),
        poll_interval=0.05,
    )
    task = await owner.create_task()
    rng = np.random.default_rng(3)
    dos = [
        DataOwner(
            market,
            chain.new_account(10**20),
            task,
            FixedUpdate(rng.normal(0, 0.01, P), 100),
            StateStore(state / f"do{i}.sqlite"),
            settings=DataOwnerSettings(poll_interval=0.05),
        )
        for i in range(4)
    ]
    with trio.fail_after(240):
        async with trio.open_nursery() as nursery:
            for do in dos:
                await nursery.start(do.run)
            nursery.start_soon(owner.run)
    return task, dos


def test_deploy_and_a_whole_round_on_hardhats_node(
    home: Path, password_file: Path, tmp_path: Path
) -> None:
    with HardhatNode() as node:
        import_dev_account(password_file, tmp_path)  # hardhat funds the same dev account
        Path("omnilytics.toml").write_text(
            f'[networks.hardhat]\nurl = "{node.url}"\nchain_id = 31337\ndefault_account = "dev"\n'
        )
        deployed = run("deploy", "--network", "hardhat", "--password-file", str(password_file))
        assert deployed.exit_code == 0, deployed.output
        market = Market(RpcChain(node.url, dev=True), deployed.stdout.strip())

        task, dos = trio.run(one_round, market, tmp_path)

        assert all(do.withdrawn_wei == REWARD for do in dos)
        assert market.escrow_remaining(task) == 0
        listed = json.loads(run("tasks", "--network", "hardhat", "--all", "--json").stdout)
        assert [(t["task"], t["phase"], t["open"]) for t in listed] == [(task, "ENDED", False)]
        assert json.loads(run("tasks", "--network", "hardhat", "--json").stdout) == []
