"""A whole round on the blob data path (EIP-4844) through the real actors on anvil: data owners
post their masked updates as blobs in type-3 transactions, one drops out before submitting, the
model owner reads the blobs back from the node, checks them against the versioned hashes the
contract recorded, and recovers exact group aggregates; exactly the submitters are paid. A blob
source that returns other blobs spoils recovery with a named reason, as an invalid submission."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import trio

from actors.chain.aggregation import recover_round
from actors.chain.anvil import AnvilNode
from actors.chain.blob_sources import NodeBlobSource
from actors.chain.market import Market
from actors.chain.rpc_backend import RpcChain
from actors.roles.data_owner import DataOwner, DataOwnerSettings
from actors.roles.model_owner import ModelOwner, TaskPlan
from actors.roles.store import StateStore
from protocol.blobs import BYTES_PER_BLOB
from protocol.constants import DATA_PATH_BLOB
from protocol.recovery import RecoveryReason
from tests.actors.test_round_e2e import FixedUpdate, VectorOwner

# ~30 s: the blob path is covered in the default suite by the contracts (unitary), the
# blob answer on anvil (test_direct_blobs) and the paths bench; this whole round runs with
# just test-slow
pytestmark = [pytest.mark.anvil, pytest.mark.slow]

# 33,000 parameters + the sample-count lane in 32-bit lanes: 4,126 words, two blobs per update
P = 33_000
REWARD = 10**16
DROPPED = 0


class TamperedSource:
    """A blob source that serves the node's blobs with one byte changed (a lying provider)."""

    def __init__(self, inner: NodeBlobSource) -> None:
        self.inner = inner

    def blobs(self, tx_hash: str, block: int, hashes: Sequence[bytes]) -> list[bytes | None]:
        blobs = self.inner.blobs(tx_hash, block, hashes)
        first = bytearray(blobs[0])
        first[BYTES_PER_BLOB - 1] ^= 1
        return [bytes(first), *blobs[1:]]


async def test_blob_round_recovers_exact_aggregates_and_pays_submitters(tmp_path: Path) -> None:
    with AnvilNode() as node, trio.fail_after(240):
        chain = RpcChain(node.url, dev=True)
        mo_account = chain.new_account(10**21)
        market = Market.deploy(chain, mo_account)
        plan = TaskPlan(
            max_dos=6,
            min_dos=6,
            group_size=3,
            threshold=2,
            reward_per_do=REWARD,
            share_duration=30,
            submit_duration=30,
            unmask_duration=30,
            data_path=DATA_PATH_BLOB,
        )
        mo = ModelOwner(market, mo_account, VectorOwner(P), plan, poll_interval=0.05)
        task = await mo.create_task()
        rng = np.random.default_rng(11)
        dos = []
        for i in range(6):
            settings = DataOwnerSettings(
                poll_interval=0.05,
                keep_plaintext=True,
                drop_at=(0, "submit") if i == DROPPED else None,
            )
            learner = FixedUpdate(rng.normal(0, 0.01, P), samples=100 * (i + 1))
            store = StateStore(tmp_path / f"do{i}.sqlite")
            account = chain.new_account(10**20)
            dos.append(DataOwner(market, account, task, learner, store, settings=settings))
        async with trio.open_nursery() as nursery:
            for do in dos:
                await nursery.start(do.run)
            (report,) = await mo.run()

        assert report.finalized_groups == 2
        submitters = [do for i, do in enumerate(dos) if i != DROPPED]
        for group in range(market.group_count(task)):
            members = market.group_members(task, group)
            expected = sum(do.plaintext[0] for do in submitters if do.account in members)
            np.testing.assert_array_equal(report.aggregates[group], expected)
        for i, do in enumerate(dos):
            assert market.is_credited(task, 0, do.account) is (i != DROPPED)
            if i != DROPPED:
                assert do.withdrawn_wei == REWARD
        assert mo.refunded_wei == REWARD  # the dropped data owner's slot

        # every update went as blobs: one type-3 transaction of two blobs per submitter
        txs = chain.transactions(market.address)
        assert "submit" not in {tx.function for tx in txs}
        blob_txs = [tx for tx in txs if tx.function == "submit_blobs"]
        assert len(blob_txs) == len(submitters)
        blob_events = market.chain.events(market.address, "UpdateBlobs", filters={"task": task})
        assert all(len(e.args["blob_hashes"]) == 2 for e in blob_events)

        # the same chain data through a lying blob source: no aggregate, a named reason
        lied = recover_round(
            Market(chain, market.address, blob_source=TamperedSource(NodeBlobSource(chain))),
            task,
            0,
        )
        assert not lied.aggregates
        assert sorted(lied.errors) == [0, 1]
        assert all(e.startswith(RecoveryReason.BLOB_MISMATCH) for e in lied.errors.values())
