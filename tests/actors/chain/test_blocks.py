"""A party's bell rings at each block of the embedded chain, and not for a reverted call."""

from pathlib import Path

import boa
import pytest
import trio
import trio.testing

from actors.chain import BoaChain, TransactionReverted
from actors.chain.blocks import Wakeup, ring_on_blocks

PROBE = Path(__file__).with_name("Probe.vy")
LONG = 30.0  # a wait that would fail the test by its timeout if the bell never rang


@pytest.fixture
def chain():
    with boa.env.anchor():
        yield BoaChain()


def test_a_transaction_ends_a_wait_for_the_next_block(chain: BoaChain) -> None:
    owner = chain.new_account(10**20)
    probe = chain.deploy(PROBE, [], owner)
    wakeup = Wakeup()
    assert ring_on_blocks(chain, wakeup)

    async def main() -> list[bool]:
        rang = []
        async with trio.open_nursery() as nursery:

            async def waiter() -> None:
                rang.append(await wakeup.wait(LONG))

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            chain.transact(probe, "bump", [1, []], owner)
        return rang

    assert trio.run(main) == [True]


def test_a_time_travel_rings_and_a_revert_does_not(chain: BoaChain) -> None:
    owner = chain.new_account(10**20)
    probe = chain.deploy(PROBE, [], owner)
    wakeup = Wakeup()
    ring_on_blocks(chain, wakeup)

    async def wait_after(act) -> bool:
        async with trio.open_nursery() as nursery:
            rang = []

            async def waiter() -> None:
                rang.append(await wakeup.wait(0.2))

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            act()
        return rang[0]

    def revert() -> None:
        with pytest.raises(TransactionReverted):
            chain.transact(probe, "bump", [0, []], owner)

    assert trio.run(wait_after, lambda: chain.advance_time(10))
    assert not trio.run(wait_after, revert)


def test_a_chain_that_does_not_announce_blocks_is_told_apart() -> None:
    class Node:
        name = "anvil"

    class SlowBoa(BoaChain):
        def latency(self) -> float:
            return 0.01

    assert not ring_on_blocks(Node(), Wakeup())
    with boa.env.anchor():
        assert not ring_on_blocks(SlowBoa(), Wakeup())
