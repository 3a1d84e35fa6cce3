"""The direct data path through the real actors on the embedded chain: data owners commit their
masked updates' digests on-chain and stream the words to the model owner over its channel; the
model owner challenges what it lacks at DELIVERY, and a challenged data owner answers on-chain.
Aggregates stay exact, and exactly the data owners whose update is in an aggregate are paid."""

from pathlib import Path
from typing import ClassVar

import boa
import numpy as np
import pytest
import trio

from actors.chain import BoaChain
from actors.channels import ChannelError
from actors.roles.data_owner import DataOwner, DataOwnerSettings
from actors.roles.direct_link import DirectLink
from actors.roles.direct_owner import DirectOwner
from actors.roles.model_owner import ModelOwner
from actors.roles.round_actions import RoundActions
from actors.roles.store import StateStore
from protocol.constants import DATA_PATH_DIRECT, STATUS_SUBMITTED, Challenge
from protocol.direct import UpdatePart, encode_direct
from protocol.encoding import PackedWords
from tests.actors.test_round_e2e import RATE, REWARD, FixedUpdate, new_task, run_market

P = 500
FEE = REWARD // 4  # the plan's default challenge fee
DIRECT = {"data_path": DATA_PATH_DIRECT}


def check_exact(market, mo, dos, report, excluded=()) -> None:
    """Each group's aggregate is exactly the sum of its members' updates but `excluded`'s."""
    assert report.finalized_groups == 2
    for group in range(market.group_count(mo.task)):
        members = market.group_members(mo.task, group)
        inside = [do for do in dos if do.account in members and do not in excluded]
        expected = sum(do.plaintext[0] for do in inside)
        np.testing.assert_array_equal(report.aggregates[group], expected)


async def test_a_direct_round_is_exact_and_pays_everyone(tmp_path: Path) -> None:
    with boa.env.anchor(), trio.fail_after(90):
        _, market, mo, dos, reports, _ = await run_market(tmp_path, {}, **DIRECT)
        (report,) = reports
        check_exact(market, mo, dos, report)
        assert market.challenged(mo.task, 0) == ()
        assert market.submissions(mo.task, 0) == {}  # no word of any update went on-chain
        for do in dos:
            assert market.is_credited(mo.task, 0, do.account)
            assert do.withdrawn_wei == REWARD and do.desk_wei == 0
        assert mo.refunded_wei == 0 and mo.fees_back_wei == 0


class NoDelivery(DirectLink):
    """A link whose update never reaches the model owner."""

    def offer(self, round, words, report) -> None:
        report.close()


class NoAnswer(RoundActions):
    """A data owner that never answers a challenge."""

    async def answer_challenge(self, state) -> None:
        return


class Silent(DataOwner):
    direct_type = NoDelivery
    actions_type = NoAnswer


class Unreachable(DataOwner):
    """Delivers nothing by channel (its link is down), answers its challenge on-chain."""

    direct_type = NoDelivery


class Garbling(DirectLink):
    """A link that corrupts one word of every update it streams."""

    async def _deliver(self, round, words) -> bool:
        data = bytearray(words.data)
        data[-1] ^= 1
        return await super()._deliver(round, PackedWords(bytes(data)))


class Garbler(DataOwner):
    direct_type = Garbling


class Counting(DirectLink):
    """A link that counts its dials and exchanges (every instance, by data owner)."""

    dials: ClassVar[dict[int, int]] = {}
    exchanges: ClassVar[dict[int, int]] = {}

    async def _dial(self):
        Counting.dials[self.me] = Counting.dials.get(self.me, 0) + 1
        return await super()._dial()

    async def _exchange(self, exchange, limit):
        Counting.exchanges[self.me] = Counting.exchanges.get(self.me, 0) + 1
        return await super()._exchange(exchange, limit)


class Hangup(Counting):
    """After each exchange, the channel it keeps is closed under it (as if the model owner had
    closed it on its read timeout)."""

    async def _exchange(self, exchange, limit):
        try:
            return await super()._exchange(exchange, limit)
        finally:
            if self._channel is not None:
                await trio.aclose_forcefully(self._channel)


class Counted(DataOwner):
    direct_type = Counting


class HungUp(DataOwner):
    direct_type = Hangup


class Vandal(DirectLink):
    """Before each honest delivery: a frame that is not a message, a stream of the wrong size,
    one out of order, and one longer than the task's updates; each drops its channel."""

    async def _deliver(self, round, words) -> bool:
        task, count = self.task, len(words)

        def part(index: int, words: int, size: int) -> bytes:
            data = bytes(size)
            return encode_direct(
                UpdatePart(task=task, round=round, index=index, words=words, data=data)
            )

        bad = [
            b"\xc1 not msgpack",
            part(0, 3, 96),  # not the task's word count
            part(4, count, 64),  # out of order
            part(0, count, 48),  # not whole words
            part(0, count, 32 * (count + 1)),  # more words than announced
        ]
        for frame in bad:
            try:
                async with await self._dial() as channel:
                    await channel.send(frame)
                    with trio.fail_after(5):
                        await channel.receive()  # the model owner hangs up
            except ChannelError:
                pass
            else:
                raise AssertionError("the model owner answered a bad frame")
        return await super()._deliver(round, words)


class Vandalising(DataOwner):
    direct_type = Vandal


@pytest.mark.parametrize(
    ("kind", "answered"),
    [(Silent, False), (Unreachable, True), (Garbler, True)],
    ids=["silent-excluded", "undelivered-answers", "mismatch-answers"],
)
async def test_a_challenge_decides_what_the_model_owner_lacks(
    tmp_path: Path, kind: type[DataOwner], answered: bool
) -> None:
    """The model owner challenges the data owner whose words it lacks or that mismatch its
    digest. One that answers on-chain is in the exact aggregate, is paid, and earns the fee;
    one that stays silent is excluded, its group still aggregates exactly without it, it is not
    paid, and the fee goes back to the model owner."""
    with boa.env.anchor(), trio.fail_after(120):
        _, market, mo, dos, reports, _ = await run_market(tmp_path, {}, kinds={0: kind}, **DIRECT)
        (report,) = reports
        odd, task = dos[0], mo.task
        assert market.challenged(task, 0) == (odd.account,)
        expected = Challenge.ANSWERED if answered else Challenge.MISSED
        assert market.challenge_state(task, 0, odd.account) == expected
        check_exact(market, mo, dos, report, excluded=() if answered else (odd,))
        assert market.is_credited(task, 0, odd.account) is answered
        assert odd.withdrawn_wei == (REWARD if answered else 0)
        assert odd.desk_wei == (FEE if answered else 0)
        assert mo.fees_back_wei == (0 if answered else FEE)
        assert mo.refunded_wei == (0 if answered else REWARD)
        for do in dos[1:]:
            assert do.withdrawn_wei == REWARD and do.desk_wei == 0


class ChallengeEveryone(DirectOwner):
    """A model owner that claims every delivery failed, valid or not."""

    async def _challenge_missing(self, round: int) -> None:
        self.inbox.forget(round)
        await super()._challenge_missing(round)


class GreedyOwner(ModelOwner):
    direct_type = ChallengeEveryone


async def test_a_model_owner_that_denies_valid_deliveries_gains_nothing(tmp_path: Path) -> None:
    """Every data owner answers on-chain: the aggregates are the same exact sums, everyone is
    paid, and the model owner paid a fee for each challenge."""
    with boa.env.anchor(), trio.fail_after(120):
        chain = BoaChain(realtime=True, rate=RATE)
        market, mo, _, task = await new_task(
            chain, GreedyOwner, max_dos=3, min_dos=3, group_size=3, threshold=2, **DIRECT
        )
        rng = np.random.default_rng(5)
        settings = DataOwnerSettings(poll_interval=0.02, keep_plaintext=True)
        dos = [
            DataOwner(
                market,
                chain.new_account(10**20),
                task,
                FixedUpdate(rng.normal(0, 0.01, P), 100),
                StateStore(tmp_path / f"do{i}.sqlite"),
                settings=settings,
            )
            for i in range(3)
        ]
        balance = chain.balance(mo.account)
        async with trio.open_nursery() as nursery:
            for do in dos:
                await nursery.start(do.run)
            (report,) = await mo.run()
        np.testing.assert_array_equal(report.aggregates[0], sum(do.plaintext[0] for do in dos))
        assert len(market.challenged(task, 0)) == 3
        for do in dos:
            assert do.withdrawn_wei == REWARD and do.desk_wei == FEE
        assert mo.fees_back_wei == 0
        assert balance - chain.balance(mo.account) >= 3 * FEE  # (and gas)


async def test_bad_streams_are_dropped_and_the_model_owner_goes_on(tmp_path: Path) -> None:
    """Undecodable frames, a stream of the wrong size, one out of order and one longer than
    announced each drop their channel; the model owner keeps serving, takes the honest
    delivery that follows, and challenges nobody."""
    with boa.env.anchor(), trio.fail_after(120):
        _, market, mo, dos, reports, _ = await run_market(
            tmp_path, {}, kinds={0: Vandalising}, **DIRECT
        )
        (report,) = reports
        check_exact(market, mo, dos, report)
        assert market.challenged(mo.task, 0) == ()


async def test_a_restarted_data_owner_resumes_its_delivery(tmp_path: Path) -> None:
    """Killed after committing its update and before delivering it, a data owner restarts from
    its store: it commits nothing twice, delivers the same words, and is in the aggregate."""
    with boa.env.anchor(), trio.fail_after(90):
        chain = BoaChain(realtime=True, rate=RATE)
        market, mo, _, task = await new_task(
            chain, max_dos=3, min_dos=3, group_size=3, threshold=3, **DIRECT
        )
        rng = np.random.default_rng(9)
        accounts = [chain.new_account(10**20) for _ in range(3)]
        learners = [FixedUpdate(rng.normal(0, 0.01, P), 100) for _ in accounts]
        plain = DataOwnerSettings(poll_interval=0.02, keep_plaintext=True)
        dropping = DataOwnerSettings(
            poll_interval=0.02, keep_plaintext=True, drop_at=(0, "delivery")
        )

        def actor(i: int, settings: DataOwnerSettings) -> DataOwner:
            store = StateStore(tmp_path / f"do{i}.sqlite")
            return DataOwner(market, accounts[i], task, learners[i], store, settings=settings)

        first = actor(0, dropping)
        lives: list[DataOwner] = []

        async def victim() -> None:
            await first.run()  # returns once it dropped out
            assert market.status(task, 0, accounts[0]) == STATUS_SUBMITTED
            second = actor(0, plain)
            lives.append(second)
            await second.run()

        others = [actor(i, plain) for i in (1, 2)]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(victim)
            for other in others:
                await nursery.start(other.run)
            (report,) = await mo.run()
        (second,) = lives
        expected = first.plaintext[0] + others[0].plaintext[0] + others[1].plaintext[0]
        np.testing.assert_array_equal(report.aggregates[0], expected)
        assert market.challenged(task, 0) == ()
        commits = [t for t in chain.transactions(market.desk) if t.function == "commit_update"]
        assert len(commits) == 3
        assert second.withdrawn_wei == REWARD


@pytest.mark.parametrize(("kind", "dials_per_exchange"), [(Counted, 0), (HungUp, 1)])
async def test_one_channel_carries_every_exchange_with_the_model_owner(
    tmp_path: Path, kind: type[DataOwner], dials_per_exchange: int
) -> None:
    """Over two rounds a data owner fetches two models and delivers two updates on the one
    channel it dialled first; one that finds its channel broken dials again, once, and loses
    nothing."""
    Counting.dials, Counting.exchanges = {}, {}
    with boa.env.anchor(), trio.fail_after(120):
        _, market, mo, dos, reports, _ = await run_market(
            tmp_path, {}, rounds=2, kinds=dict.fromkeys(range(6), kind), **DIRECT
        )
        for report in reports:
            assert report.finalized_groups == 2
        assert market.challenged(mo.task, 0) == market.challenged(mo.task, 1) == ()
    assert set(Counting.exchanges) == {do.me for do in dos}
    for me, exchanges in Counting.exchanges.items():
        assert exchanges == 4  # two models, two updates
        assert Counting.dials[me] == 1 + dials_per_exchange * (exchanges - 1)
