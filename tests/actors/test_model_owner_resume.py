"""A model owner killed anywhere in a two-round task restarts from its SQLite state and finishes
the same task: no second task, no model chunk published twice, the round-1 model is the one the
round-0 aggregate made, every data owner is paid for both rounds, and the aggregates are exact."""

from pathlib import Path

import boa
import numpy as np
import pytest
import trio

from actors.chain import BoaChain
from actors.chain.aggregation import recover_round
from actors.chain.market import Market
from actors.roles.data_owner import DataOwner, DataOwnerSettings
from actors.roles.model_owner import ModelOwner, ResumeError, TaskPlan
from actors.roles.store import StateStore
from protocol.constants import MAX_MODEL_CHUNK, PHASE_SUBMIT
from protocol.weighting import decode_weighted
from tests.actors.test_round_e2e import REWARD, FixedUpdate, VectorOwner

P = 20_000  # 80,000 model bytes: two chunks, so a model can be left half published
PLAN = TaskPlan(
    max_dos=3,
    min_dos=3,
    group_size=3,
    threshold=2,
    rounds=2,
    reward_per_do=REWARD,
    share_duration=32,
    submit_duration=32,
    unmask_duration=32,
)

# chain seconds per wall second: the contract's 30 s phase floor passes in ~4 s
RATE = 8


class SavedVectorOwner(VectorOwner):
    """`VectorOwner` whose model a store can keep."""

    def state(self) -> bytes:
        return self.vector.astype("<f8").tobytes()

    def restore(self, state: bytes) -> None:
        self.vector = np.frombuffer(state, "<f8").copy()


def _kill_at(point: tuple[str, dict[str, int]], scope: trio.CancelScope):
    what, fields = point

    def observe(role: str, who: str, event: str, **seen: object) -> None:
        if event == what and all(seen.get(k) == v for k, v in fields.items()):
            scope.cancel()

    return observe


KILL_POINTS = {
    "mid-publication-0": ("model_chunk", {"round": 0, "index": 0}),
    "groups-fixed": ("groups_fixed", {}),
    "submit-0": ("phase", {"round": 0, "phase": PHASE_SUBMIT}),
    # the aggregate applied and saved, the head not yet fitted nor the accuracy measured
    "round-applied-0": ("round_applied", {"round": 0}),
    "round-done-0": ("round_done", {"round": 0}),
    "mid-publication-1": ("model_chunk", {"round": 1, "index": 0}),
    "round-opened-1": ("round_opened", {"round": 1}),
}


@pytest.mark.parametrize("point", KILL_POINTS.values(), ids=KILL_POINTS.keys())
async def test_killed_model_owner_resumes_its_task(tmp_path: Path, point) -> None:
    assert len(SavedVectorOwner(P).model_bytes()) > MAX_MODEL_CHUNK
    with boa.env.anchor(), trio.fail_after(120):
        chain = BoaChain(realtime=True, rate=RATE)
        mo_account = chain.new_account(10**21)
        market = Market.deploy(chain, mo_account)
        rng = np.random.default_rng(11)
        learners = [FixedUpdate(rng.normal(0, 0.01, P), 100 * (i + 1)) for i in range(3)]
        accounts = [chain.new_account(10**20) for _ in learners]
        settings = DataOwnerSettings(poll_interval=0.02, keep_plaintext=True, advance_grace=2)
        dos: list[DataOwner] = []

        async def start_dos(nursery: trio.Nursery, task: int) -> None:
            for i, (account, learner) in enumerate(zip(accounts, learners, strict=True)):
                store = StateStore(tmp_path / f"do{i}.sqlite")
                dos.append(DataOwner(market, account, task, learner, store, settings=settings))
                await nursery.start(dos[-1].run)

        def owner(observe=None) -> ModelOwner:
            store = StateStore(tmp_path / "mo.sqlite")
            return ModelOwner(
                market,
                mo_account,
                SavedVectorOwner(P),
                PLAN,
                poll_interval=0.02,
                observe=observe,
                store=store,
            )

        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()
            first = owner(_kill_at(point, scope))
            with scope:
                await first.start()
                await start_dos(nursery, first.task)
                await first.run()
            assert scope.cancelled_caught, "the kill point was never reached"
            if point[0] == "model_chunk":  # killed with one of the two chunks on chain
                assert market.publication(first.task, point[1]["round"])[0] == 1
            second = owner()
            task = await second.start()
            assert task == first.task
            if not dos:
                await start_dos(nursery, task)
            reports = await second.run()

        calls = [tx.function for tx in chain.transactions(market.address)]
        assert calls.count("create_task") == 1
        # the model is published at the delivery desk: two chunks a round, none twice
        published = [tx.function for tx in chain.transactions(market.desk)]
        assert published.count("publish_model") == 4
        assert [r.round for r in reports] == [0, 1]
        assert all(r.evaluated for r in reports)
        assert reports[1].accuracy_before == reports[0].accuracy_after
        assert all(r.finalized_groups == 1 for r in reports)
        assert all(do.withdrawn_wei == 2 * REWARD for do in dos)
        config = market.config(task)  # what the resumed model owner decodes with
        assert config.sample_cap == PLAN.sample_cap
        means = []
        for r in range(2):
            (aggregate,) = recover_round(market, task, r).aggregates.values()
            np.testing.assert_array_equal(aggregate.ring_sum, sum(do.plaintext[r] for do in dos))
            means.append(
                decode_weighted(aggregate.ring_sum, cap=config.sample_cap, quant=config.quant)
            )
        # the round-1 model (checked against its on-chain hash) is round 0's aggregate applied
        # to the saved model, and the resumed model owner ends with both rounds applied
        round_one = np.frombuffer(market.model_bytes(task, 1), "<f4")
        np.testing.assert_array_equal(round_one, means[0].update.astype("<f4"))
        np.testing.assert_allclose(second.learner.vector, means[0].update + means[1].update)


async def test_state_of_another_market_is_refused(tmp_path: Path) -> None:
    """A state directory holding a task of one market cannot drive a task of another."""
    with boa.env.anchor(), trio.fail_after(30):
        chain = BoaChain(realtime=True, rate=RATE)
        account = chain.new_account(10**21)
        store = StateStore(tmp_path / "mo.sqlite")
        plan = TaskPlan(max_dos=3, min_dos=3, group_size=3, threshold=2, reward_per_do=REWARD)
        first = Market.deploy(chain, account)
        await ModelOwner(first, account, SavedVectorOwner(), plan, store=store).start()
        other = Market.deploy(chain, account)
        second = ModelOwner(other, account, SavedVectorOwner(), plan, store=store)
        with pytest.raises(ResumeError, match="not of"):
            await second.start()
        assert second.task is None and other.task_count() == 0
