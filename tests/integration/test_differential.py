"""Python and the contract agree byte for byte: pack, mask, commit and reveal in Python, run the
round through the real contract on titanoboa, and recover every group's aggregate from the
emitted events alone; it must equal the plain ring sum of the survivors' quantized updates."""

import os
from collections.abc import Iterator

import boa
import numpy as np
import pytest

from actors.chain import BoaChain
from actors.chain.market import Market, TaskConfig
from protocol.commitments import published_model_digest
from protocol.constants import (
    GROUP_FINALIZED,
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    PHASE_ENDED,
    PHASE_ROUND_DONE,
    PHASE_SETTLE,
    PHASE_SUBMIT,
    PHASE_UNMASK,
)
from protocol.dealing import deal_round
from protocol.encoding import QuantConfig, pack_lanes, quantize
from protocol.masks import mask_update
from protocol.recovery import recover_group_aggregate

D = 3_000
REWARD = 10**15


@pytest.fixture
def chain() -> Iterator[BoaChain]:
    with boa.env.anchor():
        yield BoaChain()


@pytest.mark.parametrize("lane_bits", [16, 32])
def test_round_through_contract_recovers_exact_aggregates(chain: BoaChain, lane_bits: int) -> None:
    rng = np.random.default_rng(lane_bits)
    quant = QuantConfig(lane_bits=lane_bits, scale_bits=lane_bits // 2 - 4, clip_norm=1.0)
    mo = chain.new_account(10**21)
    market = Market.deploy(chain, mo)
    model = os.urandom(70_000)  # two model chunks
    dos = [chain.new_account(10**20) for _ in range(7)]
    digest = published_model_digest(model)
    config = TaskConfig(
        model_hash=digest,
        d=D,
        lane_bits=lane_bits,
        scale_bits=quant.scale_bits,
        clip_norm_micro=1_000_000,
        rounds=1,
        max_dos=len(dos),
        min_dos=3,
        group_size=3,
        threshold=2,
        reward_per_do=REWARD,
    )
    task, _ = market.create_task(config, mo)
    assert market.publish_model(task, 0, model, mo) == digest
    for i, do in enumerate(dos):
        market.register(task, bytes([i + 1]) * 32, f"127.0.0.1:{9000 + i}", do)
    market.close_registration(task, mo)
    assert market.model_bytes(task, 0) == model

    groups = [market.group_members(task, g) for g in range(market.group_count(task))]
    assert sorted(a for g in groups for a in g) == sorted(dos)
    assert [len(g) for g in groups] == [3, 4] or [len(g) for g in groups] == [4, 3]

    # SHARE: every DO deals both secrets to its group and commits; one DO never commits
    never_commits = groups[0][0]
    keys, seeds, dealt, shares, points = {}, {}, {}, {}, {}
    for members in groups:
        addrs = [int(a, 16) for a in members]
        for dealer in members:
            if dealer == never_commits:
                continue
            dealing = deal_round(task, 0, int(dealer, 16), addrs, 2, os.urandom)
            keys[dealer], seeds[dealer] = dealing.keys, dealing.self_seed
            shares[dealer] = (dealing.seed, dealing.key)
            dealt[dealer] = dealing.tree
            points[dealer] = dealing.points
            market.commit_shares(
                task, 0, dealing.keys.public, dealing.tree.root, dealing.points, dealer
            )
    chain.advance_time(config.share_duration)
    market.advance(task, mo)
    assert market.phase(task).phase == PHASE_SETTLE
    # SETTLE: every committer settles without complaint, so the phase closes at once
    for dealer in keys:
        market.settle(task, 0, 0, dealer)
    market.advance(task, mo)
    assert market.phase(task).phase == PHASE_SUBMIT

    # SUBMIT: one committed DO of group 1 drops before submitting
    drops_after_commit = groups[1][1]
    quantized = {}
    for members in groups:
        committed = [a for a in members if a in keys]
        for do in committed:
            if do == drops_after_commit:
                continue
            x = quantize(rng.normal(0, 0.01, D), quant, rng)
            quantized[do] = x
            peers = {int(p, 16): keys[p].public for p in committed if p != do}
            y = mask_update(
                x,
                self_seed=seeds[do],
                my_keys=keys[do],
                my_addr=int(do, 16),
                peers=peers,
                task=task,
                round=0,
                lane_bits=lane_bits,
            )
            market.submit_update(task, 0, pack_lanes(y, lane_bits), do, chunk_words=100)
    chain.advance_time(config.submit_duration)
    market.advance(task, mo)
    assert market.phase(task).phase == PHASE_UNMASK

    # UNMASK: submitters reveal one share per committed member (seed if it submitted, else key)
    for members in groups:
        committed = [a for a in members if a in keys]
        for holder in [a for a in committed if a in quantized]:
            position = members.index(holder)
            reveals = []
            for dealer in committed:
                kind = KIND_SELF_SEED if dealer in quantized else KIND_MASK_KEY
                dealing = shares[dealer][kind]
                share, blind = dealing.shares[position], dealing.blinds[position]
                proof = dealt[dealer].proof(position, kind)
                reveals.append((dealer, kind, share, blind, proof, points[dealer]))
            if market.group_result(task, 0, groups.index(members)) == GROUP_FINALIZED:
                break
            market.unmask(task, 0, reveals, holder)
    assert market.phase(task).phase in (PHASE_ROUND_DONE, PHASE_ENDED)

    submissions = market.submissions(task, 0)
    revealed = market.revealed_shares(task, 0)
    for g, members in enumerate(groups):
        assert market.group_result(task, 0, g) == GROUP_FINALIZED
        addrs = [int(a, 16) for a in members]
        aggregate = recover_group_aggregate(
            members=addrs,
            threshold=2,
            statuses={int(a, 16): market.status(task, 0, a) for a in members},
            mask_public_keys={int(a, 16): market.mask_pk(task, 0, a) for a in members if a in keys},
            points={int(a, 16): p for a, p in market.dealt_points(task, 0).items()},
            submissions={a: s for a, s in submissions.items() if a in addrs},
            reveals=[r for r in revealed if r.holder in addrs],
            task=task,
            round=0,
            quant=quant,
            d=D,
        )
        survivors = [a for a in members if a in quantized]
        expected = np.zeros(D, dtype=quant.ring_dtype)
        for a in survivors:
            expected += quantized[a]
        assert aggregate.submitters == tuple(int(a, 16) for a in survivors)
        np.testing.assert_array_equal(aggregate.ring_sum, expected)
        for a in members:
            assert market.credits(a) == (REWARD if a in quantized else 0)
