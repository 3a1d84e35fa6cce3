"""A whole round through the real actors on the embedded chain: model owner and data owners as
trio tasks, shares over authenticated loopback channels, a data owner dropping out; the recovered
group aggregates are exact and exactly the submitters are paid."""

import collections
import random
import threading
from pathlib import Path

import boa
import numpy as np
import pytest
import trio

from actors.chain import BoaChain
from actors.chain.aggregation import recover_round
from actors.chain.base import Chain
from actors.chain.market import Market
from actors.roles.data_owner import DataOwner, DataOwnerSettings
from actors.roles.deliveries import Deliveries
from actors.roles.model_owner import ModelOwner, TaskPlan
from actors.roles.round_actions import RoundActions
from actors.roles.store import StateStore
from protocol.chain_data import ChainDataError, ChainDataReason
from protocol.constants import PHASE_SUBMIT
from protocol.round import PostSettle

P = 500
REWARD = 10**16

# chain seconds per wall second: the contract's 30 s phase floor passes in ~4 s
RATE = 8


class FixedUpdate:
    """A data owner's learner that returns one fixed update (no torch needed here)."""

    def __init__(self, update: np.ndarray, samples: int) -> None:
        self.update, self.samples = update, samples

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        assert len(model_bytes) == 4 * self.update.size  # the model is as long as the update
        return self.update, self.samples


class VectorOwner:
    """A model owner's learner whose model is a plain vector of `size` parameters."""

    def __init__(self, size: int = P) -> None:
        self.vector = np.zeros(size)
        self.applied: list[np.ndarray] = []
        self.evaluations = self.references = 0

    def public_size(self) -> int:
        return self.vector.size

    def model_bytes(self) -> bytes:
        return self.vector.astype("<f4").tobytes()

    def reference_update(self) -> np.ndarray:
        self.references += 1
        return np.ones(self.vector.size)

    def apply(self, update: np.ndarray) -> None:
        self.applied.append(update)
        self.vector = self.vector + update

    def fit_head(self) -> None:
        """No private head."""

    def accuracy(self) -> float:
        self.evaluations += 1
        return float(-np.linalg.norm(self.vector - 0.01))


async def new_task(
    chain: Chain, owner_type: type[ModelOwner] = ModelOwner, **plan: int
) -> tuple[Market, ModelOwner, VectorOwner, int]:
    """A market on `chain` and a model owner's task with a group of `plan`'s shape."""
    mo_account = chain.new_account(10**21)
    market = Market.deploy(chain, mo_account)
    owner = VectorOwner()
    mo = owner_type(
        market, mo_account, owner, TaskPlan(reward_per_do=REWARD, **plan), poll_interval=0.02
    )
    return market, mo, owner, await mo.create_task()


async def run_market(
    tmp_path: Path,
    drops: dict[int, tuple[int, str]],
    rounds: int = 1,
    slow: bool = False,
    kinds: dict[int, type[DataOwner]] | None = None,
    **plan: int,
):
    """Six data owners in two groups of three; `plan` adds terms to the task (a bond, ...) or
    overrides its phase durations."""
    chain = BoaChain(realtime=True, rate=RATE)
    if slow:
        # a slow node: every chain call waits 0-30 ms, so actors interleave in new orders
        jitter = random.Random(5)
        chain.latency = lambda: jitter.uniform(0, 0.03)
    durations = {"share_duration": 32, "submit_duration": 32, "unmask_duration": 32}
    market, mo, owner_learner, task = await new_task(
        chain,
        max_dos=6,
        min_dos=6,
        group_size=3,
        threshold=2,
        rounds=rounds,
        **(durations | plan),
    )
    rng = np.random.default_rng(7)
    dos = []
    for i in range(6):
        account = chain.new_account(10**20)
        settings = DataOwnerSettings(
            poll_interval=0.02, keep_plaintext=True, drop_at=drops.get(i), chunk_words=17
        )
        learner = FixedUpdate(rng.normal(0, 0.01, P), samples=100 * (i + 1))
        store = StateStore(tmp_path / f"do{i}.sqlite")
        kind = (kinds or {}).get(i, DataOwner)
        dos.append(kind(market, account, task, learner, store, settings=settings))
    async with trio.open_nursery() as nursery:
        for do in dos:
            await nursery.start(do.run)
        reports = await mo.run()
    return chain, market, mo, dos, reports, owner_learner


def submitted(do: DataOwner) -> bool:
    return do.settings.drop_at not in ((0, "submit"), (0, "chunk3"))


@pytest.mark.parametrize(
    ("drops", "slow"),
    [
        ({}, False),
        ({0: (0, "submit")}, False),
        ({1: (0, "chunk3")}, False),
        ({2: (0, "unmask")}, False),
        ({3: (0, "submit")}, True),
    ],
    ids=["all", "drop-before-submit", "drop-mid-submit", "drop-before-unmask", "slow-node"],
)
async def test_round_recovers_exact_aggregates_and_pays_submitters(
    tmp_path: Path, drops: dict[int, tuple[int, str]], slow: bool
) -> None:
    with boa.env.anchor(), trio.fail_after(90):
        _, market, mo, dos, reports, owner = await run_market(tmp_path, drops, slow=slow)
        (report,) = reports
        task = mo.task
        assert report.finalized_groups == 2
        for group in range(market.group_count(task)):
            members = market.group_members(task, group)
            # a data owner that vanished after submitting is still in its group's aggregate
            submitters = [do for do in dos if do.account in members and submitted(do)]
            expected = sum(do.plaintext[0] for do in submitters)
            np.testing.assert_array_equal(report.aggregates[group], expected)
        for do in dos:
            assert market.is_credited(task, 0, do.account) is submitted(do)
            # dropped data owners never came back to withdraw; the others withdrew their pay
            if do.settings.drop_at is None:
                assert do.withdrawn_wei == REWARD
                assert market.credits(do.account) == 0
        assert owner.applied and np.all(np.isfinite(owner.applied[0]))
        unpaid = sum(1 for do in dos if not market.is_credited(task, 0, do.account))
        assert mo.refunded_wei == unpaid * REWARD


async def test_the_sample_cap_comes_from_the_chain(tmp_path: Path) -> None:
    """The task's weight cap is in its on-chain config: data owners with 100 to 600 samples count
    min(n, 250) each, as the model owner decodes them, and each group's sum is exact. No data
    owner has a cap setting of its own to disagree with."""
    assert "sample_cap" not in DataOwnerSettings.__dataclass_fields__
    with boa.env.anchor(), trio.fail_after(90):
        _, market, mo, dos, reports, _ = await run_market(tmp_path, {}, sample_cap=250)
        (report,) = reports
        assert market.config(mo.task).sample_cap == 250
        assert report.samples == sum(min(do.learner.samples, 250) for do in dos)
        for group in range(market.group_count(mo.task)):
            members = market.group_members(mo.task, group)
            counted = sum(min(do.learner.samples, 250) for do in dos if do.account in members)
            assert int(report.aggregates[group][-1]) == counted  # the count lane
            expected = sum(do.plaintext[0] for do in dos if do.account in members)
            np.testing.assert_array_equal(report.aggregates[group], expected)


async def test_unreadable_chain_data_fails_each_group_not_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events a faulty node returns out of schema leave every finalized group of the round
    without an aggregate, with the named reason; the reader itself keeps going."""
    with boa.env.anchor(), trio.fail_after(90):
        _, market, mo, _, _, _ = await run_market(tmp_path, {})

        def faulty(task: int, round: int) -> None:
            raise ChainDataError(ChainDataReason.CHUNK_ORDER, "chunk 1 before chunk 0")

        monkeypatch.setattr(market, "submissions", faulty)
        result = recover_round(market, mo.task, 0)
    assert result.aggregates == {} and result.failed == []
    assert sorted(result.errors) == [0, 1]
    assert all("chunk_order" in error for error in result.errors.values())


class WithholdingDeliveries(Deliveries):
    """Deliveries that never reach the first other member of the group (the machine lists a
    round's deliveries in member order)."""

    async def _offer_until_acked(self, round, report, actions) -> None:
        await super()._offer_until_acked(round, report, actions[1:])


class Withholder(DataOwner):
    """A dealer whose shares never reach the first other member of its group by channel."""

    deliveries_type = WithholdingDeliveries


class FalseAccusation(RoundActions):
    async def _perform_one(self, action, batch, resumed) -> None:
        if isinstance(action, PostSettle):
            others = [int(m, 16) for m in self.members if m != self.ctx.account]
            action = PostSettle(tuple(others[:1]))
        await super()._perform_one(action, batch, resumed)


class FalseAccuser(DataOwner):
    """A holder that complains about the first other member of its group, whatever it got."""

    actions_type = FalseAccusation


@pytest.mark.parametrize("who", [Withholder, FalseAccuser])
async def test_complaints_are_answered_on_chain_and_the_round_completes(
    tmp_path: Path, who: type[DataOwner]
) -> None:
    """A holder without shares (or one that lies) complains in SETTLE, with a deposit; the
    honest dealer answers with the shares on-chain, is paid the deposit and, its shares now
    public, sits the round out (the market would refuse its update); nobody is excluded, every
    aggregate is exact over the others, every other data owner is paid."""
    with boa.env.anchor(), trio.fail_after(90):
        _, market, mo, dos, reports, _ = await run_market(tmp_path, {}, kinds={0: who})
        (report,) = reports
        task = mo.task
        complaints = market.complaints(task, 0)
        assert len(complaints) == 1, "the setup must produce one complaint"
        answered = {(a["dealer"], a["holder"]) for a in market.answers(task, 0)}
        assert answered == set(complaints)
        (exposed,) = {dealer for dealer, _ in answered}
        assert market.exposed(task, 0, exposed)
        assert report.finalized_groups == 2
        for group in range(market.group_count(task)):
            members = market.group_members(task, group)
            expected = sum(
                do.plaintext[0] for do in dos if do.account in members and do.account != exposed
            )
            np.testing.assert_array_equal(report.aggregates[group], expected)
        for do in dos:
            if do.account == exposed:
                assert not market.is_credited(task, 0, do.account)
                assert do.withdrawn_wei == 0 and do.court_wei == REWARD  # the deposit
            else:
                assert market.is_credited(task, 0, do.account)
                assert do.withdrawn_wei == REWARD and do.court_wei == 0


class Unanswering(RoundActions):
    async def open_complaints(self, polled) -> list[str]:
        return []


class SilentWithholder(Withholder):
    """A withholding dealer that never answers the complaint it earns."""

    actions_type = Unanswering


async def test_a_dealer_that_leaves_a_complaint_unanswered_is_excluded(tmp_path: Path) -> None:
    """SETTLE closes with the complaint open: the dealer's commitment is taken back; its group's
    other members read the standing commitments again (statuses only, the rest as SETTLE read
    it), mask without it, and their aggregate is exact without it."""
    with boa.env.anchor(), trio.fail_after(90):
        _, market, mo, dos, reports, _ = await run_market(tmp_path, {}, kinds={0: SilentWithholder})
        (report,) = reports
        task, dealer = mo.task, dos[0]
        assert [c[0] for c in market.complaints(task, 0)] == [dealer.account]
        assert market.answers(task, 0) == []
        assert market.status(task, 0, dealer.account) == 0  # its commitment was taken back
        assert not market.is_credited(task, 0, dealer.account)
        assert report.finalized_groups == 2
        for group in range(market.group_count(task)):
            members = market.group_members(task, group)
            submitters = [do for do in dos[1:] if do.account in members]
            expected = sum(do.plaintext[0] for do in submitters)
            np.testing.assert_array_equal(report.aggregates[group], expected)
        for do in dos[1:]:
            assert market.is_credited(task, 0, do.account)


class CountingDeliveries(Deliveries):
    """Counts the channels it dials, by round."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dials: collections.Counter[int] = collections.Counter()

    async def _exchange(self, action, fresh):
        if fresh:
            self.dials[action.delivery.round] += 1
        return await super()._exchange(action, fresh)


class OneDeliveryServing(CountingDeliveries):
    async def serve(self, peer, channel) -> None:
        with trio.CancelScope() as scope:
            send = channel.send

            async def send_then_close(payload: bytes) -> None:
                await send(payload)
                scope.cancel()

            channel.send = send_then_close
            await super().serve(peer, channel)


class CountingDialer(DataOwner):
    """A data owner that counts the channels it dials, by round."""

    deliveries_type = CountingDeliveries


class OneDeliveryServer(CountingDialer):
    """A peer that closes each connection once it has acknowledged one delivery (as one that
    restarted between rounds would have)."""

    deliveries_type = OneDeliveryServing


async def test_channels_carry_the_next_rounds_deliveries_and_closed_ones_are_redialled(
    tmp_path: Path,
) -> None:
    """Round 1's deliveries go over the channels round 0 opened; only channels to the peer that
    closed its connections are dialled again, and both rounds aggregate exactly. The model owner
    evaluates its model once per change (round 1 starts where round 0 ended) and trains no
    reference update for a rule that reads none (the mean)."""
    kinds = {i: CountingDialer for i in range(6)} | {0: OneDeliveryServer}
    with boa.env.anchor(), trio.fail_after(120):
        _, market, mo, dos, reports, owner = await run_market(tmp_path, {}, rounds=2, kinds=kinds)
        task = mo.task
        assert [r.finalized_groups for r in reports] == [2, 2]
        assert reports[1].accuracy_before == reports[0].accuracy_after
        assert (owner.evaluations, owner.references) == (3, 0)
        for number, report in enumerate(reports):
            for group in range(market.group_count(task)):
                members = market.group_members(task, group)
                expected = sum(do.plaintext[number] for do in dos if do.account in members)
                np.testing.assert_array_equal(report.aggregates[group], expected)
        closer = market.group_of(task, dos[0].account)
        for do in dos:
            dials = do.deliveries.dials
            assert dials[0] == 2  # one channel to each of its two peers
            in_group = market.group_of(task, do.account) == closer and do is not dos[0]
            assert dials[1] == (1 if in_group else 0)
            assert do.deliveries._channels == {}  # closed when the task ended


@pytest.mark.parametrize("kill_after", ["committed", "settled", "chunk", "submitted", "unmasked"])
async def test_killed_data_owner_resumes_from_its_store(tmp_path: Path, kill_after: str) -> None:
    """A data owner killed mid-round restarts from its SQLite state: the same secrets, no second
    commitment or chunk, and its update is in the exact aggregate."""
    with boa.env.anchor(), trio.fail_after(60):
        chain = BoaChain(realtime=True, rate=RATE)
        market, mo, _, task = await new_task(chain, max_dos=3, min_dos=3, group_size=3, threshold=3)
        rng = np.random.default_rng(3)
        accounts = [chain.new_account(10**20) for _ in range(3)]
        settings = DataOwnerSettings(poll_interval=0.02, keep_plaintext=True, chunk_words=50)
        learners = [FixedUpdate(rng.normal(0, 0.01, P), 100) for _ in accounts]
        victim_store = tmp_path / "victim.sqlite"
        killed = trio.Event()
        victim_scope = trio.CancelScope()

        def observe(role: str, who: str, what: str, **fields: object) -> None:
            if who == accounts[0] and what == kill_after and not killed.is_set():
                killed.set()
                victim_scope.cancel()

        def actor(i: int, store: Path, observer=None) -> DataOwner:
            return DataOwner(
                market,
                accounts[i],
                task,
                learners[i],
                StateStore(store),
                settings=settings,
                observe=observer,
            )

        async def victim_life(nursery: trio.Nursery) -> None:
            first = actor(0, victim_store, observe)
            with victim_scope:
                await first.run()
            assert killed.is_set()
            second = actor(0, victim_store)
            nursery.start_soon(second.run)
            victim.append((first, second))

        victim: list[tuple[DataOwner, DataOwner]] = []
        others = [actor(i, tmp_path / f"do{i}.sqlite") for i in (1, 2)]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(victim_life, nursery)
            for other in others:
                await nursery.start(other.run)
            (report,) = await mo.run()
        first, second = victim[0]
        assert report.finalized_groups == 1
        expected = first.plaintext[0] + others[0].plaintext[0] + others[1].plaintext[0]
        if 0 in second.plaintext:  # killed before its update was fed: it trained again
            expected = second.plaintext[0] + others[0].plaintext[0] + others[1].plaintext[0]
        np.testing.assert_array_equal(report.aggregates[0], expected)
        commits = [
            tx for tx in chain.transactions(market.address) if tx.function == "commit_shares"
        ]
        assert len(commits) == 3
        assert second.withdrawn_wei == REWARD


class LateUpdate(FixedUpdate):
    """A data owner whose training outlasts the submit phase: it finishes only once `gate` is
    set (by the test, when the others have unmasked)."""

    def __init__(self, update: np.ndarray, samples: int, gate: threading.Event) -> None:
        super().__init__(update, samples)
        self.gate = gate

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        assert self.gate.wait(timeout=50)
        return super().train(model_bytes, round)


async def test_late_data_owner_is_refused_and_keeps_running(tmp_path: Path) -> None:
    """Its chunks arrive after the deadline: the market refuses them by name, the data owner
    logs it, stays up until the task ends, and the round completes without it."""
    with boa.env.anchor(), trio.fail_after(60):
        chain = BoaChain(realtime=True, rate=RATE)
        market, mo, _, task = await new_task(
            chain,
            max_dos=3,
            min_dos=3,
            group_size=3,
            threshold=2,
            share_duration=60,
            submit_duration=30,
        )
        rng = np.random.default_rng(11)
        seen: list[tuple[str, str]] = []
        gate = threading.Event()

        def observe(role: str, who: str, what: str, **fields: object) -> None:
            seen.append((who, what))
            if what == "unmasked":
                gate.set()

        dos = []
        for i in range(3):
            account = chain.new_account(10**20)
            update = rng.normal(0, 0.01, P)
            learner = LateUpdate(update, 100, gate) if i == 0 else FixedUpdate(update, 100)
            dos.append(
                DataOwner(
                    market,
                    account,
                    task,
                    learner,
                    StateStore(tmp_path / f"do{i}.sqlite"),
                    settings=DataOwnerSettings(poll_interval=0.02),
                    observe=observe,
                )
            )
        async with trio.open_nursery() as nursery:
            for do in dos:
                await nursery.start(do.run)
            (report,) = await mo.run()
        assert report.finalized_groups == 1 and report.submitters == 2
        assert not market.is_credited(task, 0, dos[0].account)
        assert dos[0].withdrawn_wei == 0 and dos[1].withdrawn_wei == REWARD
        # its machine learnt at UNMASK that it missed the round; it never crashed
        assert (dos[0].account, "failed") in seen


async def test_data_owners_finish_and_get_paid_when_the_model_owner_vanishes(
    tmp_path: Path,
) -> None:
    """The model owner stops driving once SUBMIT opens: the data owners advance the phases
    themselves after the deadlines, unmask, get credited and withdraw; the aggregate is still
    exact and recoverable by anyone."""
    with boa.env.anchor(), trio.fail_after(90):
        chain = BoaChain(realtime=True, rate=RATE)
        market, mo, _, task = await new_task(
            chain,
            max_dos=4,
            min_dos=4,
            group_size=4,
            threshold=3,
            submit_duration=30,
            unmask_duration=30,
        )
        owner_scope = trio.CancelScope()

        def watch_owner(role: str, who: str, what: str, **fields: object) -> None:
            if what == "phase" and fields["phase"] == PHASE_SUBMIT:
                owner_scope.cancel()

        mo._observe = watch_owner
        rng = np.random.default_rng(5)
        settings = DataOwnerSettings(poll_interval=0.02, keep_plaintext=True, advance_grace=1)
        dos = [
            DataOwner(
                market,
                chain.new_account(10**20),
                task,
                FixedUpdate(rng.normal(0, 0.01, P), 100),
                StateStore(tmp_path / f"do{i}.sqlite"),
                settings=settings,
            )
            for i in range(4)
        ]
        async with trio.open_nursery() as nursery:
            for do in dos:
                await nursery.start(do.run)
            with owner_scope:
                await mo.run()
        assert owner_scope.cancelled_caught
        assert all(do.withdrawn_wei == REWARD for do in dos)
        (aggregate,) = recover_round(market, task, 0).aggregates.values()
        np.testing.assert_array_equal(aggregate.ring_sum, sum(do.plaintext[0] for do in dos))


async def test_data_owners_collect_their_bond_with_their_pay(tmp_path: Path) -> None:
    """With a bond, every data owner that took part gets it back after the task, beside its
    reward: one read of both, the release, a second read of the credits, one withdrawal."""
    bond = 10**15
    with boa.env.anchor(), trio.fail_after(90):
        _, market, mo, dos, reports, _ = await run_market(tmp_path, {}, bond=bond)
        (report,) = reports
        assert report.finalized_groups == 2
        for do in dos:
            assert do.withdrawn_wei == REWARD + bond
            assert market.bond_of(mo.task, do.account) == 0
            assert market.credits(do.account) == 0
