"""Aggregate recovery from chain data: exact ring sums over the submitters, and every named refusal.

The chain data here is built straight from the primitives (no state machine), so a failure points
at recovery itself; ``test_harness.py`` runs the same check through whole rounds of machines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from protocol.commitments import split_chunks, update_digest
from protocol.constants import (
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    STATUS_COMMITTED,
    STATUS_NONE,
    STATUS_SUBMITTED,
    STATUS_UNMASKED,
)
from protocol.encoding import QuantConfig, pack_lanes, quantize
from protocol.errors import ConfigError, RecoveryError
from protocol.masks import MaskKeyPair, mask_update, new_self_seed
from protocol.recovery import (
    GroupRecoveryError,
    RecoveryReason,
    RevealedShare,
    Submission,
    recover_group_aggregate,
)
from protocol.shamir import split_secret

TASK, ROUND = 7, 2


@dataclass
class Group:
    """Chain data of one group, as an honest chain would show it, plus the expected answer."""

    members: tuple[int, ...]
    threshold: int
    statuses: dict[int, int]
    mask_public_keys: dict[int, bytes]
    submissions: dict[int, Submission]
    reveals: list[RevealedShare]
    quant: QuantConfig
    d: int
    expected: np.ndarray
    floats: dict[int, np.ndarray] = field(default_factory=dict)
    shares: dict[tuple[int, int, int], bytes] = field(default_factory=dict)

    def recover(self, **overrides: object):
        args = dict(
            members=self.members,
            threshold=self.threshold,
            statuses=self.statuses,
            mask_public_keys=self.mask_public_keys,
            submissions=self.submissions,
            reveals=self.reveals,
            task=TASK,
            round=ROUND,
            quant=self.quant,
            d=self.d,
        )
        args.update(overrides)
        return recover_group_aggregate(**args)


def build_group(
    seed: int,
    statuses: list[int],
    threshold: int,
    unmaskers: int | None = None,
    d: int = 13,
    lane_bits: int = 32,
    chunk_words: int = 1,
) -> Group:
    """Deal, mask and reveal for one group. ``statuses[p]`` is member ``p``'s final status up to
    STATUS_SUBMITTED; the first ``unmaskers`` submitters (all by default) post unmask messages."""
    rnd = random.Random(seed)
    quant = QuantConfig(lane_bits=lane_bits, scale_bits=8, clip_norm=4.0)
    members = tuple(rnd.getrandbits(160) for _ in statuses)
    n = len(members)
    keys = {a: MaskKeyPair.generate(rnd.randbytes) for a in members}
    seeds = {a: new_self_seed(rnd.randbytes) for a in members}
    shares: dict[tuple[int, int, int], bytes] = {}
    for dealer in members:
        for kind, secret in ((KIND_SELF_SEED, seeds[dealer]), (KIND_MASK_KEY, keys[dealer].secret)):
            for holder, share in zip(
                members, split_secret(secret, threshold, n, rnd.randbytes).shares, strict=True
            ):
                shares[dealer, holder, kind] = share
    status = dict(zip(members, statuses, strict=True))
    committed = [a for a in members if status[a] >= STATUS_COMMITTED]
    submitters = [a for a in members if status[a] >= STATUS_SUBMITTED]
    gen = np.random.default_rng(seed)
    floats: dict[int, np.ndarray] = {}
    submissions: dict[int, Submission] = {}
    expected = np.zeros(d, dtype=quant.ring_dtype)
    for a in submitters:
        floats[a] = gen.normal(scale=0.5, size=d)
        x = quantize(floats[a], quant, gen)
        expected += x
        y = mask_update(
            x,
            self_seed=seeds[a],
            my_keys=keys[a],
            my_addr=a,
            peers={b: keys[b].public for b in committed if b != a},
            task=TASK,
            round=ROUND,
            lane_bits=lane_bits,
        )
        chunks = split_chunks(pack_lanes(y, lane_bits), chunk_words)
        submissions[a] = Submission(
            chunks=tuple(tuple(c) for c in chunks), digest=update_digest(chunks)
        )
    revealers = submitters if unmaskers is None else submitters[:unmaskers]
    reveals = [
        RevealedShare(dealer, holder, kind, shares[dealer, holder, kind])
        for holder in revealers
        for dealer in committed
        for kind in [KIND_SELF_SEED if status[dealer] >= STATUS_SUBMITTED else KIND_MASK_KEY]
    ]
    for a in revealers:
        status[a] = STATUS_UNMASKED
    return Group(
        members=members,
        threshold=threshold,
        statuses={a: s for a, s in status.items() if s != STATUS_NONE},
        mask_public_keys={a: keys[a].public for a in committed},
        submissions=submissions,
        reveals=reveals,
        quant=quant,
        d=d,
        expected=expected,
        floats=floats,
        shares=shares,
    )


@st.composite
def groups(draw: st.DrawFn) -> tuple[list[int], int, int]:
    n = draw(st.integers(2, 8))
    threshold = draw(st.integers(2, n))
    # Mostly enough submitters and unmaskers to recover, sometimes too few to (refusals).
    submitters = draw(st.one_of(st.integers(threshold, n), st.integers(0, n)))
    committed = draw(st.integers(0, n - submitters))
    layout = (
        [STATUS_SUBMITTED] * submitters
        + [STATUS_COMMITTED] * committed
        + [STATUS_NONE] * (n - submitters - committed)
    )
    statuses = draw(st.permutations(layout))
    unmaskers = draw(st.one_of(st.just(n), st.integers(0, n)))
    return list(statuses), threshold, unmaskers


@given(groups(), st.integers(0, 2**32), st.sampled_from([16, 32]), st.integers(1, 3))
def test_recovers_exact_ring_sum_or_refuses(
    case: tuple[list[int], int, int], seed: int, lane_bits: int, chunk_words: int
) -> None:
    statuses, threshold, unmaskers = case
    group = build_group(
        seed, statuses, threshold, unmaskers, lane_bits=lane_bits, chunk_words=chunk_words
    )
    submitters = sum(s >= STATUS_SUBMITTED for s in statuses)
    if submitters < threshold:
        with pytest.raises(GroupRecoveryError) as info:
            group.recover()
        assert info.value.reason == RecoveryReason.TOO_FEW_SUBMITTERS
    elif min(unmaskers, submitters) < threshold:
        with pytest.raises(GroupRecoveryError) as info:
            group.recover()
        assert info.value.reason == RecoveryReason.TOO_FEW_SHARES
    else:
        event("recovered")
        result = group.recover()
        assert np.array_equal(result.ring_sum, group.expected)
        assert result.ring_sum.dtype == group.quant.ring_dtype
        assert len(result.submitters) == submitters


def test_dequantized_update_is_the_float_sum_within_rounding() -> None:
    statuses = [STATUS_SUBMITTED] * 4 + [STATUS_COMMITTED, STATUS_NONE]
    group = build_group(11, statuses, threshold=3, d=40)
    result = group.recover()
    truth = sum(group.floats.values())
    # Stochastic rounding moves each lane by less than one step 2**-scale_bits per submitter.
    assert np.all(np.abs(result.update - truth) < 4 * 2.0**-group.quant.scale_bits)
    assert result.dropped == (group.members[4],)
    assert result.submitters == group.members[:4]


def _reason(group: Group, **overrides: object) -> RecoveryReason:
    with pytest.raises(GroupRecoveryError) as info:
        group.recover(**overrides)
    assert isinstance(info.value, RecoveryError)
    return info.value.reason


BASE = [STATUS_SUBMITTED, STATUS_SUBMITTED, STATUS_SUBMITTED, STATUS_COMMITTED, STATUS_NONE]


def test_refuses_both_kinds_for_one_dealer() -> None:
    g = build_group(1, BASE, threshold=2)
    dropped, holder = g.members[3], g.members[0]
    extra = RevealedShare(
        dropped, holder, KIND_SELF_SEED, g.shares[dropped, holder, KIND_SELF_SEED]
    )
    assert _reason(g, reveals=[*g.reveals, extra]) == RecoveryReason.BOTH_KINDS


def test_refuses_a_seed_share_of_a_dropped_member_and_a_key_share_of_a_submitter() -> None:
    g = build_group(2, BASE, threshold=2)
    sub, dropped = g.members[0], g.members[3]
    swapped = [
        replace(
            r,
            kind=KIND_MASK_KEY if r.dealer == sub else KIND_SELF_SEED,
            share=g.shares[
                r.dealer, r.holder, KIND_MASK_KEY if r.dealer == sub else KIND_SELF_SEED
            ],
        )
        if r.dealer in (sub, dropped)
        else r
        for r in g.reveals
    ]
    assert _reason(g, reveals=swapped) == RecoveryReason.WRONG_KIND
    outsider = g.members[4]
    stray = RevealedShare(outsider, sub, KIND_MASK_KEY, g.shares[outsider, sub, KIND_MASK_KEY])
    assert _reason(g, reveals=[*g.reveals, stray]) == RecoveryReason.WRONG_KIND


def test_refuses_a_digest_mismatch_and_malformed_updates() -> None:
    g = build_group(3, BASE, threshold=2)
    a = g.members[0]
    sub = g.submissions[a]
    tampered = ((sub.chunks[0][0] ^ 1, *sub.chunks[0][1:]), *sub.chunks[1:])
    bad = {**g.submissions, a: replace(sub, chunks=tampered)}
    assert _reason(g, submissions=bad) == RecoveryReason.DIGEST_MISMATCH
    short = (*sub.chunks[:-1],)
    bad = {**g.submissions, a: Submission(chunks=short, digest=update_digest(short))}
    assert _reason(g, submissions=bad) == RecoveryReason.MALFORMED_UPDATE
    padded = ((1 << 255,),)  # d = 13 lanes of 32 bits leave word 1's top lanes as padding
    long = (*sub.chunks[:-1], *padded)
    bad = {**g.submissions, a: Submission(chunks=long, digest=update_digest(long))}
    assert _reason(g, submissions=bad) == RecoveryReason.MALFORMED_UPDATE
    missing = {k: v for k, v in g.submissions.items() if k != a}
    assert _reason(g, submissions=missing) == RecoveryReason.MISSING_UPDATE


def test_refuses_a_key_that_does_not_match_the_posted_public_key() -> None:
    g = build_group(4, BASE, threshold=2)
    dropped = g.members[3]
    other = MaskKeyPair.generate(random.Random(0).randbytes).public
    keys = {**g.mask_public_keys, dropped: other}
    assert _reason(g, mask_public_keys=keys) == RecoveryReason.KEY_MISMATCH
    del keys[dropped]
    assert _reason(g, mask_public_keys=keys) == RecoveryReason.MISSING_PUBLIC_KEY


def test_refuses_too_few_shares_and_inconsistent_extra_shares() -> None:
    g = build_group(5, BASE, threshold=3)
    dealer = g.members[1]
    fewer = [r for r in g.reveals if not (r.dealer == dealer and r.holder == g.members[0])]
    assert _reason(g, reveals=fewer) == RecoveryReason.TOO_FEW_SHARES
    # Three submitters reveal, threshold 2: the third share must lie on the same polynomial.
    g = build_group(5, BASE, threshold=2)
    bent = [
        replace(r, share=bytes(32)) if (r.dealer, r.holder) == (dealer, g.members[2]) else r
        for r in g.reveals
    ]
    assert _reason(g, reveals=bent) == RecoveryReason.INCONSISTENT_SHARES


def test_refuses_conflicting_shares_and_strangers() -> None:
    g = build_group(6, BASE, threshold=2)
    first = g.reveals[0]
    twin = replace(first, share=bytes(32))
    assert _reason(g, reveals=[*g.reveals, twin]) == RecoveryReason.CONFLICTING_SHARES
    # An identical duplicate is harmless.
    assert np.array_equal(g.recover(reveals=[*g.reveals, first]).ring_sum, g.expected)
    stranger = RevealedShare(12345, first.holder, first.kind, first.share)
    assert _reason(g, reveals=[*g.reveals, stranger]) == RecoveryReason.UNKNOWN_MEMBER
    by_dropped = replace(first, holder=g.members[3])
    assert _reason(g, reveals=[*g.reveals, by_dropped]) == RecoveryReason.UNEXPECTED_HOLDER
    assert (
        _reason(g, statuses={**g.statuses, 999: STATUS_COMMITTED}) == RecoveryReason.UNKNOWN_MEMBER
    )
    assert _reason(g, statuses={**g.statuses, g.members[4]: 9}) == RecoveryReason.BAD_STATUS


def test_refuses_bad_group_config() -> None:
    g = build_group(7, BASE, threshold=2)
    with pytest.raises(ConfigError):
        g.recover(threshold=1)
    with pytest.raises(ConfigError):
        g.recover(threshold=6)
    with pytest.raises(ConfigError):
        g.recover(members=(*g.members, g.members[0]))
    with pytest.raises(ConfigError):
        g.recover(d=0)
