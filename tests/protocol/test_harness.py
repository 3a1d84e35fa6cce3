"""Whole rounds of DO machines in memory: dropouts in every phase, dealers that withhold shares
and answer complaints (then sit the round out) or get excluded in SETTLE, recovery from chain
data."""

from __future__ import annotations

import numpy as np
import pytest
from harness import Dropout, Harness, Plan, Sharing, UpdateTiming, addresses
from hypothesis import event, given
from hypothesis import strategies as st

from protocol.constants import GROUP_FINALIZED, KIND_MASK_KEY
from protocol.encoding import QuantConfig, quantize
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
    # SETTLE: complaints only against dealers that withheld shares; exactly those that left one
    # unanswered (silent, or gone mid-settle) are excluded, and none of them submitted.
    accused = {dealer for dealer, _ in chain.complaints}
    assert all(h.plans[d].sharing != Sharing.FULL for d in accused)
    silent = {
        d
        for d in accused
        if h.plans[d].sharing == Sharing.PARTIAL_SILENT or h.plans[d].dropout == Dropout.MID_SETTLE
    }
    assert chain.excluded == silent and not silent & set(chain.submitters())
    # A dealer that answered is exposed: it sat the round out (its machine failed, it never
    # submitted), and the court counts it as a committed non-submitter.
    assert chain.exposed == accused - silent and not chain.exposed & set(chain.submitters())
    for d in chain.exposed:
        assert out.machines[d].state == State.FAILED and out.machines[d].chunks() == []
    # Every standing dealer's shares reached every holder, over the channel or answered from the
    # chain, so t surviving submitters suffice.
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


def settled(h: Harness) -> list[str]:
    """What SETTLE saw, for hypothesis' statistics."""
    seen = ["complaints answered" if h.chain.answers else "none answered"]
    return [*seen, "a dealer excluded" if h.chain.excluded else "nobody excluded"]


plans = st.builds(
    Plan,
    # Survivors and full dealers weighted up so that about half the rounds finalize.
    dropout=st.sampled_from([Dropout.NONE] * 10 + list(Dropout)),
    timing=st.sampled_from(UpdateTiming),
    sharing=st.sampled_from([Sharing.FULL] * 4 + list(Sharing)),
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
    event("SETTLE: " + ", ".join(settled(h)))


@pytest.mark.parametrize("dropout", list(Dropout))
@pytest.mark.parametrize("restore", [False, True])
def test_one_dropout_in_each_phase(dropout: Dropout, restore: bool) -> None:
    members = addresses(5, 1)
    plans = {m: Plan() for m in members}
    plans[members[2]] = Plan(dropout=dropout)
    h = Harness(members, 3, QUANT32, 17, plans, seed=5, restore_each_event=restore)
    check_outcome(h)
    assert h.chain.result == GROUP_FINALIZED


@pytest.mark.parametrize("restore", [False, True])
@pytest.mark.parametrize(
    ("sharing", "dropout", "excluded"),
    [
        (Sharing.PARTIAL_ANSWERS, Dropout.NONE, False),
        (Sharing.PARTIAL_ANSWERS, Dropout.AFTER_SUBMIT, False),
        (Sharing.PARTIAL_ANSWERS, Dropout.MID_SETTLE, True),
        (Sharing.PARTIAL_SILENT, Dropout.NONE, True),
    ],
)
def test_a_dealer_that_withheld_shares_answers_or_is_excluded(
    sharing: Sharing, dropout: Dropout, excluded: bool, restore: bool
) -> None:
    members = addresses(5, 4)
    plans = {m: Plan() for m in members}
    dealer = members[1]
    plans[dealer] = Plan(dropout=dropout, sharing=sharing)
    h = Harness(members, 3, QUANT32, 17, plans, seed=6, restore_each_event=restore)
    check_outcome(h)
    chain = h.chain
    assert chain.result == GROUP_FINALIZED
    # Its four peers: the first two got their shares, the other two complained.
    complained = {holder for d, holder in chain.complaints if d == dealer}
    assert complained == set(members[3:])
    answered = {(a.dealer, a.holder) for a in chain.answers}
    assert answered == (set() if excluded else {(dealer, holder) for holder in complained})
    assert (dealer in chain.excluded) == excluded
    # Answered or excluded, the dealer never submits: answering made its shares public.
    assert (dealer in chain.exposed) != excluded
    assert dealer not in chain.submitters()
    # The complainers took the answered shares as the dealer's delivery: their unmask messages
    # (late ones revert once the group finalized) reveal its mask-key share, never its seed's,
    # or nothing of an excluded dealer.
    for holder in complained:
        assert h.machines[holder].state == State.DONE
        revealed = {kind for d, kind in h.machines[holder].revealed if d == dealer}
        assert revealed == (set() if excluded else {KIND_MASK_KEY})
    if not excluded:
        assert h.machines[dealer].state == State.FAILED
        assert "sit the round out" in (h.machines[dealer].failure or "")
        assert dealer in h.chain.recover(h.quant).dropped


@pytest.mark.parametrize(
    "dropouts",
    [
        [Dropout.BEFORE_SHARE, Dropout.MID_SHARE, Dropout.AFTER_COMMIT],
        [Dropout.MID_SUBMIT, Dropout.AFTER_COMMIT, Dropout.NONE],
        [Dropout.AFTER_SUBMIT, Dropout.AFTER_SUBMIT, Dropout.NONE],
        [Dropout.MID_SETTLE, Dropout.MID_SETTLE, Dropout.NONE],
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
    # Floats take the actor's one path to lanes (clip, then quantize) before the machine.
    original = h.give_update

    def give_floats(member: int, timing: UpdateTiming) -> None:
        if h.plans[member].timing == timing:
            lanes = quantize(floats[member], QUANT32, np.random.default_rng(member % 2**32))
            h.perform(member, h.feed(member, LocalUpdateReady(lanes)))

    h.give_update = give_floats  # type: ignore[method-assign]
    out = h.run()
    assert original is not None and out.chain.result == GROUP_FINALIZED
    result = out.chain.recover(QUANT32)
    truth = sum(floats.values())
    assert np.all(np.abs(result.update - truth) <= 4 * 2.0**-QUANT32.scale_bits)
