"""A short swarm on a real node: the model owner and each data owner in their own OS process on
anvil; one data owner is SIGKILLed after committing its shares, and the model owner once a data
owner has submitted; each is restarted from its state directory. The aggregates recovered from
chain data are exact, every data owner is paid, and the task is the one task created."""

import time
from pathlib import Path

import pytest

from actors.chain.anvil import AnvilNode
from actors.chain.rpc_backend import RpcChain
from actors.entry.scenario import Scenario
from actors.entry.swarm import Swarm
from protocol.constants import STATUS_COMMITTED

# ~1 minute; the default suite runs a swarm of processes on anvil in
# tests/integration/test_swarm_spec_anvil.py: `just test-slow` runs this one
pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def test_swarm_of_processes_survives_killed_owners(tmp_path: Path) -> None:
    scenario = Scenario(
        dos=4, rounds=1, group_size=2, threshold=2, do_samples=200, test_limit=1_000
    )
    with AnvilNode() as node:
        swarm = Swarm(scenario, RpcChain(node.url, dev=True), tmp_path)
        try:
            swarm.start(timeout=120)
            victim = swarm.account_of(0)
            deadline = time.monotonic() + 120
            while swarm.market.status(swarm.task, 0, victim) < STATUS_COMMITTED:
                assert time.monotonic() < deadline, "data owner 0 never committed"
                time.sleep(0.1)
            swarm.kill_data_owner(0)
            swarm.start_data_owner(0)
            while swarm.market.round_submitted(swarm.task, 0) < 1:
                assert time.monotonic() < deadline, "no data owner submitted"
                time.sleep(0.1)
            swarm.kill_model_owner()
            swarm.start_model_owner()
            swarm.wait(timeout=300)
            report = swarm.report()
            calls = [tx.function for tx in swarm.chain.transactions(swarm.market.address)]
        finally:
            swarm.stop()
    assert report.aggregate_exact is True
    assert all(paid == scenario.plan().reward_per_do for paid in report.withdrawn_wei.values())
    assert len(report.withdrawn_wei) == 4
    assert report.accuracy_after[0] > report.accuracy_before[0]
    assert calls.count("commit_shares") == 4  # the restarted data owner did not commit again
    assert calls.count("create_task") == 1  # the restarted model owner resumed its task
    assert "resumed" in (tmp_path / "mo" / "actor.log").read_text()
