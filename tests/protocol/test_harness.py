"""Whole rounds of DO machines in memory: dropouts in every phase, recovery from chain data."""

from __future__ import annotations

import numpy as np
import pytest
from harness import Dropout, Harness, Plan, UpdateTiming, addresses
from hypothesis import event, given
from hypothesis import strategies as st

from protocol.constants import GROUP_FINALIZED
from protocol.encoding import QuantConfig
from protocol.recovery import GroupRecoveryError, RecoveryReason
from protocol.round import LocalUpdateReady, PostUnmask, State

QUANT32 = QuantConfig(lane_bits=32, scale_bits=10, clip_norm=4.0)
QUANT16 = QuantConfig(lane_bits=16, scale_bits=8, clip_norm=4.0)


def check_outcome(h: Harness) -> bool:
    """What every round must satisfy, whatever the dropouts."""
    out = h.run()
    chain = out.chain
    survivors = [m for m in chain.submitters() if m in out.alive]
    finalized = chain.result == GROUP_FINALIZED
    # Every committed dealer delivered all its shares first, so t surviving submitters suffice.
    assert finalized == (len(survivors) >= h.threshold)
    if finalized:
        result = chain.recover(h.quant)
        assert np.array_equal(result.ring_sum, out.expected_sum(h.quant))
        assert set(result.submitters) == set(chain.submitters())
    else:
        with pytest.raises(GroupRecoveryError) as info:
            chain.recover(h.quant)
        assert info.value.reason in (
            RecoveryReason.TOO_FEW_SUBMITTERS,
            RecoveryReason.TOO_FEW_SHARES,
        )
    for m in out.alive:
        expected = State.DONE if finalized and m in survivors else State.FAILED
        assert out.machines[m].state == expected, (m, out.machines[m].failure)
    # Never both secrets of one member, across every unmask message of the group.
    kinds: dict[int, set[int]] = {}
    for actions in out.actions.values():
        for action in actions:
            if isinstance(action, PostUnmask):
                for r in action.reveals:
                    kinds.setdefault(r.dealer, set()).add(r.kind)
    assert all(len(k) == 1 for k in kinds.values())
    return finalized


plans = st.builds(
    Plan,
    # Survivors weighted up so that about half the rounds finalize.
    dropout=st.sampled_from([Dropout.NONE] * 4 + list(Dropout)),
    timing=st.sampled_from(UpdateTiming),
)


@given(
    st.integers(2, 8).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(2, n), st.lists(plans, min_size=n, max_size=n))
    ),
    st.integers(0, 2**16),
    st.sampled_from([QUANT16, QUANT32]),
    st.integers(1, 3),
    st.integers(1, 40),
    st.booleans(),
)
def test_rounds_recover_the_survivors_exact_sum(
    group: tuple[int, int, list[Plan]],
    seed: int,
    quant: QuantConfig,
    chunk_words: int,
    d: int,
    restore: bool,
) -> None:
    n, threshold, member_plans = group
    members = addresses(n, seed)
    h = Harness(
        members,
        threshold,
        quant,
        d,
        dict(zip(members, member_plans, strict=True)),
        seed,
        chunk_words=chunk_words,
        restore_each_event=restore,
    )
    event("finalized" if check_outcome(h) else "failed")


@pytest.mark.parametrize("dropout", list(Dropout))
@pytest.mark.parametrize("restore", [False, True])
def test_one_dropout_in_each_phase(dropout: Dropout, restore: bool) -> None:
    members = addresses(5, 1)
    plans = {m: Plan() for m in members}
    plans[members[2]] = Plan(dropout=dropout)
    h = Harness(members, 3, QUANT32, 17, plans, seed=5, restore_each_event=restore)
    check_outcome(h)
    assert h.chain.result == GROUP_FINALIZED


@pytest.mark.parametrize(
    "dropouts",
    [
        [Dropout.BEFORE_SHARE, Dropout.MID_SHARE, Dropout.AFTER_COMMIT],
        [Dropout.MID_SUBMIT, Dropout.AFTER_COMMIT, Dropout.NONE],
        [Dropout.AFTER_SUBMIT, Dropout.AFTER_SUBMIT, Dropout.NONE],
    ],
)
def test_fewer_than_t_survivors_reveal_nothing_usable(dropouts: list[Dropout]) -> None:
    members = addresses(4, 2)
    plans = {m: Plan() for m in members}
    for m, dropout in zip(members, dropouts, strict=False):
        plans[m] = Plan(dropout=dropout)
    h = Harness(members, 3, QUANT32, 9, plans, seed=9, chunk_words=1)
    check_outcome(h)
    assert h.chain.result != GROUP_FINALIZED
    # A machine that saw fewer than t submitters revealed nothing at all.
    if len(h.chain.submitters()) < 3:
        assert h.chain.reveals == []


def test_float_updates_aggregate_to_the_float_sum() -> None:
    members = addresses(4, 3)
    h = Harness(members, 2, QUANT32, 30, {m: Plan() for m in members}, seed=4)
    gen = np.random.default_rng(4)
    floats = {m: gen.normal(scale=0.3, size=30) for m in members}
    # Floats go in instead of ring vectors: the machine clips and quantizes them itself.
    original = h.give_update

    def give_floats(member: int, timing: UpdateTiming) -> None:
        if h.plans[member].timing == timing:
            h.perform(member, h.feed(member, LocalUpdateReady(floats[member])))

    h.give_update = give_floats  # type: ignore[method-assign]
    out = h.run()
    assert original is not None and out.chain.result == GROUP_FINALIZED
    result = out.chain.recover(QUANT32)
    truth = sum(floats.values())
    assert np.all(np.abs(result.update - truth) <= 4 * 2.0**-QUANT32.scale_bits)
