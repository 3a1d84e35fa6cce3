"""Data owner details: a delivery that arrives while the data owner still opens its round waits
for the round's driver (it never meets a machine that has not seen `RoundOpened`); only the
drivers feed round machines, never a peer handler; a refused transaction is named, not fatal; a
step is written to the store before its actions run (one that sends nothing, with the next);
an endpoint too long for the market is refused by name before anything is sent."""

from pathlib import Path

import boa
import numpy as np
import pytest
import trio

from actors.chain import BoaChain
from actors.chain.market import Market
from actors.roles.data_owner import DataOwner
from actors.roles.deliveries import Offered
from actors.roles.model_owner import ModelOwner, TaskPlan
from actors.roles.store import StateStore
from protocol.constants import MAX_ENDPOINT
from protocol.errors import ConfigError
from protocol.round import PostCommitment, RoundMachine, SendShares, SharePhaseOpened, State
from protocol.terms import HostileTerms
from tests.actors.test_round_e2e import FixedUpdate, VectorOwner, run_market


async def _task_for_two() -> tuple[BoaChain, Market, int, str]:
    """A task for two data owners in one group, in REGISTER."""
    chain = BoaChain()
    mo_account = chain.new_account(10**21)
    market = Market.deploy(chain, mo_account)
    plan = TaskPlan(max_dos=2, min_dos=2, group_size=2, threshold=2)
    task = await ModelOwner(market, mo_account, VectorOwner(), plan).create_task()
    return chain, market, task, mo_account


async def _round_zero_open() -> tuple[BoaChain, Market, int, str, list[str]]:
    """A task of two registered data owners whose round 0 just entered SHARE."""
    chain, market, task, mo_account = await _task_for_two()
    accounts = [chain.new_account(10**20) for _ in range(2)]
    for i, account in enumerate(accounts):
        market.register(task, bytes([i + 1]) * 32, "127.0.0.1:1", account)
    market.close_registration(task, mo_account)
    return chain, market, task, mo_account, accounts


async def test_an_endpoint_too_long_for_the_market_is_refused_before_sending() -> None:
    """The market's ABI decoder would revert a longer endpoint with no reason; its bound is in
    UTF-8 bytes, so 65 two-byte characters (130 bytes) are refused too."""
    with boa.env.anchor(), trio.fail_after(30):
        chain, market, task, _ = await _task_for_two()
        account = chain.new_account(10**20)
        sent = len(market.receipts)
        for endpoint in ("h" * (MAX_ENDPOINT + 1), "é" * (MAX_ENDPOINT // 2 + 1)):
            with pytest.raises(ConfigError, match=r"endpoint is \d+ bytes"):
                market.register(task, bytes([1]) * 32, endpoint, account)
        assert len(market.receipts) == sent
        assert not market.is_registered(task, account)
        market.register(task, bytes([1]) * 32, "h" * MAX_ENDPOINT, account)
        assert market.endpoint(task, account) == "h" * MAX_ENDPOINT


async def test_hostile_terms_are_refused_before_the_bond_is_staked(tmp_path: Path) -> None:
    """A bond above what the task could ever pay this data owner (rounds x reward): the data
    owner refuses by name before it sends anything (the contract allows such a task)."""
    with boa.env.anchor(), trio.fail_after(30):
        chain = BoaChain()
        mo_account = chain.new_account(10**21)
        market = Market.deploy(chain, mo_account)
        plan = TaskPlan(
            max_dos=2, min_dos=2, group_size=2, threshold=2, reward_per_do=10, bond=21, rounds=2
        )
        task = await ModelOwner(market, mo_account, VectorOwner(), plan).create_task()
        account = chain.new_account(10**20)
        owner = DataOwner(
            market, account, task, FixedUpdate(np.zeros(500), 1), StateStore(tmp_path / "do.db")
        )
        sent = len(market.receipts)
        with pytest.raises(HostileTerms, match="bond: 21 > 2 rounds of reward"):
            await owner.run()
        assert len(market.receipts) == sent
        assert not market.is_registered(task, account)


async def _owner_with_round_open(tmp_path: Path, **kwargs):
    """A data owner (not started) of a task whose round 0 just entered SHARE."""
    chain, market, task, mo_account, accounts = await _round_zero_open()
    owner = DataOwner(
        market,
        accounts[0],
        task,
        FixedUpdate(np.zeros(500), 1),
        StateStore(tmp_path / "do.sqlite"),
        **kwargs,
    )
    owner.config = market.config(task)
    return chain, market, task, mo_account, owner


async def test_a_delivery_waits_for_its_round_to_open(tmp_path: Path) -> None:
    """A peer's delivery for the next round, while the data owner still reads the chain to open
    it, is routed only once the round's driver runs with an opened machine; one for a round
    that never opens is refused after the wait."""
    with boa.env.anchor(), trio.fail_after(30):
        _, _, _, _, owner = await _owner_with_round_open(tmp_path)
        routed: list[tuple[object, bool]] = []

        async def deliver() -> None:
            inbox = await owner._route(0, 5.0)
            routed.append((inbox, owner.rounds[0].machine.opened is not None))

        async with trio.open_nursery() as nursery:
            await nursery.start(owner.deliveries.run)
            nursery.start_soon(deliver)
            await trio.sleep(0.1)
            assert routed == []  # still waiting: round 0 is not open
            await owner._open_round(0, nursery)
            await trio.sleep(0.05)
            assert routed == [(owner.rounds[0].inbox, True)]
            assert await owner._route(5, 0.05) is None  # not the next round: refused
            nursery.cancel_scope.cancel()


async def test_only_the_drivers_feed_the_round_machines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole round (every delivery, answer and chain fact): every event reaches a machine
    from its round driver's task; a peer handler that called into a machine fails this."""
    feeders: set[str] = set()
    send = RoundMachine.send

    def watched(machine: RoundMachine, event):
        feeders.add(trio.lowlevel.current_task().name)
        return send(machine, event)

    monkeypatch.setattr(RoundMachine, "send", watched)
    with boa.env.anchor(), trio.fail_after(90):
        _, _, _, _, reports, _ = await run_market(tmp_path, {})
    assert reports[0].finalized_groups == 2
    assert feeders == {"actors.roles.round_driver.RoundDriver.run"}


async def test_a_refused_transaction_is_logged_not_fatal(tmp_path: Path) -> None:
    """The market refuses a commitment after SHARE closed: the data owner names the reason and
    carries on (its machine learns from the chain that it missed the round)."""
    with boa.env.anchor(), trio.fail_after(30):
        chain, market, task, mo_account, accounts = await _round_zero_open()
        chain.advance_time(market.config(task).share_duration)
        market.advance(task, mo_account)  # SHARE closed without any commitment
        seen: list[tuple[str, dict]] = []
        owner = DataOwner(
            market,
            accounts[0],
            task,
            FixedUpdate(np.zeros(500), 1),
            StateStore(tmp_path / "do.sqlite"),
            observe=lambda role, who, what, **fields: seen.append((what, fields)),
        )
        owner.config = market.config(task)
        async with trio.open_nursery() as nursery:
            await nursery.start(owner.deliveries.run)
            await owner._open_round(0, nursery)
            commitment = PostCommitment(b"\x01" * 32, b"\x02" * 32, bytes(256))
            await owner.rounds[0].actions.perform([commitment])
            nursery.cancel_scope.cancel()
        assert ("refused", {"round": 0, "reason": "rounds: wrong phase"}) in seen


async def test_a_step_is_stored_before_its_actions_run_one_that_sends_nothing_with_the_next(
    tmp_path: Path,
) -> None:
    with boa.env.anchor(), trio.fail_after(30):
        _, market, task, _, accounts = await _round_zero_open()
        store = StateStore(tmp_path / "do.sqlite")
        owner = DataOwner(market, accounts[0], task, FixedUpdate(np.zeros(500), 1), store)
        owner.config = market.config(task)
        performed: list[tuple[str, list, bytes | None]] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(owner.deliveries.run)
            await owner._open_round(0, nursery)
            driver = owner.rounds[0]

            async def perform(actions, *, resumed=False) -> None:
                performed.append(("chain", list(actions), store.get("round", "0/machine")))

            def offer(round, actions, report) -> None:
                performed.append(("peers", list(actions), store.get("round", "0/machine")))

            driver.actions.perform = perform  # type: ignore[method-assign]
            owner.deliveries.offer = offer  # type: ignore[method-assign]
            # the round opened: nothing reached the world, nothing was written
            assert store.get("round", "0/machine") is None
            await driver._feed(SharePhaseOpened())
            # the commitment waits until every peer had a first try at our shares
            assert [kind for kind, *_ in performed] == ["peers"]
            await driver._handle(Offered(0))
            nursery.cancel_scope.cancel()
        (peers, deliveries, first), (chain, posts, second) = performed
        assert peers == "peers" and all(isinstance(a, SendShares) for a in deliveries)
        assert chain == "chain" and any(isinstance(a, PostCommitment) for a in posts)
        # written before the deliveries went out, with the opening
        assert first is not None and first == second
        restored = RoundMachine.restore(first, owner.randbytes)
        assert restored.state is State.SHARED and restored.opened is not None
