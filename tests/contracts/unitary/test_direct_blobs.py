"""The direct path's answers on anvil (docs/interfaces.md §3c, §11): `answer_blobs` needs a node
(titanoboa runs calls without blob hashes), and `Market.answered_updates` reads answers back
from the desk's `UpdateChunk` and `UpdateBlobs` events. A group of three with real masked
updates: one data owner answers its challenge with event chunks, one with blobs, the third is
not challenged (the model owner holds its words); the group's aggregate recovered from the
answers, the third's words and the chain's unmask reveals is the sum of the plain updates.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

from actors.chain import TransactionReverted
from actors.chain.anvil import AnvilNode
from actors.chain.market import Market, TaskConfig
from actors.chain.rpc_backend import RpcChain
from protocol.blobs import blob_update_digest
from protocol.chain_data import BlobChunk, Submission
from protocol.commitments import direct_digest, published_model_digest
from protocol.constants import (
    DATA_PATH_DIRECT,
    GROUP_FINALIZED,
    KIND_SELF_SEED,
    PHASE_DELIVERY,
    PHASE_UNMASK,
    STATUS_SUBMITTED,
    Challenge,
)
from protocol.dealing import deal_round
from protocol.encoding import pack_lanes
from protocol.masks import MaskKeyPair, mask_update
from protocol.recovery import recover_group_aggregate

pytestmark = pytest.mark.anvil

MODEL = b"test_direct_blobs: the public model"
# 32-bit lanes: 5,000 words, two blobs (the second one partly filled), one event chunk
D = 40_000
FEE = 10**14


@pytest.fixture(scope="module")
def market() -> Iterator[Market]:
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        yield Market.deploy(chain, chain.new_account(10**22))


def test_answers_by_events_and_blobs_read_back_into_the_aggregate(market: Market) -> None:
    chain = market.chain
    owner = chain.new_account(10**21)
    config = TaskConfig(
        model_hash=published_model_digest(MODEL),
        d=D,
        lane_bits=32,
        scale_bits=16,
        clip_norm_micro=1_000_000,
        rounds=1,
        max_dos=3,
        min_dos=3,
        group_size=3,
        threshold=2,
        reward_per_do=10**15,
        data_path=DATA_PATH_DIRECT,
    )
    task, _ = market.create_task(config, owner)
    market.set_delivery_terms(task, MaskKeyPair.generate(os.urandom).public, "mo:1", FEE, owner)
    dos = [chain.new_account(10**20) for _ in range(3)]
    for do in dos:
        market.register(task, MaskKeyPair.generate(os.urandom).public, "127.0.0.1:9", do)
    market.close_registration(task, owner)
    members = list(market.group_members(task, 0))
    ints = [int(m, 16) for m in members]
    dealings = {do: deal_round(task, 0, int(do, 16), ints, 2, os.urandom) for do in members}
    for do, dealing in dealings.items():
        market.commit_shares(task, 0, dealing.keys.public, dealing.tree.root, dealing.points, do)
    market.advance(task, owner)
    for do in members:
        market.settle(task, 0, 0, do)
    market.advance(task, owner)

    rng = np.random.default_rng(7)
    plain = {do: rng.integers(0, 2**32, D, dtype=np.uint64).astype(np.uint32) for do in members}
    words = {}
    for do in members:
        peers = {int(p, 16): dealings[p].keys.public for p in members if p != do}
        masked = mask_update(
            plain[do],
            self_seed=dealings[do].self_seed,
            my_keys=dealings[do].keys,
            my_addr=int(do, 16),
            peers=peers,
            task=task,
            round=0,
            lane_bits=32,
        )
        words[do] = list(pack_lanes(masked, 32))
    by_events, by_blobs, unchallenged = members
    digests = {
        by_events: direct_digest(words[by_events]),
        by_blobs: blob_update_digest(words[by_blobs]),
        unchallenged: direct_digest(words[unchallenged]),
    }
    for do in members:
        market.commit_update(task, 0, digests[do], len(words[do]), do)
    market.advance(task, owner)
    assert market.phase(task).phase == PHASE_DELIVERY

    with pytest.raises(TransactionReverted) as refused:
        market.answer_blob_update(task, 0, words[by_blobs], by_blobs)
    assert refused.value.reason == "delivery: no open challenge"
    for do in (by_events, by_blobs):
        market.challenge(task, 0, do, owner)
    market.answer_update(task, 0, words[by_events], by_events)
    receipts = market.answer_blob_update(task, 0, words[by_blobs], by_blobs)
    assert [r.blob_gas_used for r in receipts] == [2 * 2**17]  # two blobs, one transaction
    for do in (by_events, by_blobs):
        assert market.challenge_state(task, 0, do) == Challenge.ANSWERED
        assert market.desk_credits(do) == FEE
        assert market.status(task, 0, do) == STATUS_SUBMITTED

    answered = market.answered_updates(task, 0)
    assert set(answered) == {int(by_events, 16), int(by_blobs, 16)}
    events = answered[int(by_events, 16)]
    assert events.chunks == (tuple(words[by_events]),)
    assert events.digest == digests[by_events]
    (blobs,) = answered[int(by_blobs, 16)].chunks
    assert isinstance(blobs, BlobChunk) and len(blobs.hashes) == 2
    assert all(blob is not None for blob in blobs.blobs)
    assert answered[int(by_blobs, 16)].digest == digests[by_blobs]

    market.close_delivery(task, 0, owner)
    market.advance(task, owner)
    assert market.phase(task).phase == PHASE_UNMASK
    for holder in members[:2]:
        h = members.index(holder)
        reveals = [
            (
                dealer,
                KIND_SELF_SEED,
                dealings[dealer].seed.shares[h],
                dealings[dealer].seed.blinds[h],
                dealings[dealer].tree.proof(h, KIND_SELF_SEED),
                dealings[dealer].points,
            )
            for dealer in members
        ]
        market.unmask(task, 0, reveals, holder)
    assert market.group_result(task, 0, 0) == GROUP_FINALIZED

    # the model owner's view: the answers from chain data, the unchallenged update as delivered
    submissions = {
        **answered,
        int(unchallenged, 16): Submission(
            chunks=(tuple(words[unchallenged]),), digest=digests[unchallenged]
        ),
    }
    aggregate = recover_group_aggregate(
        members=ints,
        threshold=2,
        statuses={int(do, 16): market.status(task, 0, do) for do in members},
        mask_public_keys={int(do, 16): dealings[do].keys.public for do in members},
        points={int(do, 16): dealings[do].points for do in members},
        submissions=submissions,
        reveals=market.revealed_shares(task, 0),
        task=task,
        round=0,
        quant=market.config(task).quant,
        d=D,
    )
    expected = sum(plain[do].astype(np.uint64) for do in members) % 2**32
    assert sorted(aggregate.submitters) == sorted(ints)
    assert np.array_equal(aggregate.ring_sum.astype(np.uint64), expected)
