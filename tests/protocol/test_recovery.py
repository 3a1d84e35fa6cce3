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
from protocol.shamir import FIELD_ORDER, combine_shares, split_secret

TASK, ROUND = 7, 2


@dataclass
class Group:
    """Chain data of one group, as an honest chain would show it, plus the expected answer."""

    members: tuple[int, ...]
    threshold: int
    statuses: dict[int, int]
    mask_public_keys: dict[int, bytes]
    points: dict[int, bytes]
    submissions: dict[int, Submission]
    reveals: list[RevealedShare]
    quant: QuantConfig
    d: int
    expected: np.ndarray
    floats: dict[int, np.ndarray] = field(default_factory=dict)
    shares: dict[tuple[int, int, int], bytes] = field(default_factory=dict)
    blinds: dict[tuple[int, int, int], bytes] = field(default_factory=dict)

    def reveal(self, dealer: int, holder: int, kind: int) -> RevealedShare:
        """The honest ``ShareRevealed`` of ``holder``'s share of ``dealer``'s secret ``kind``."""
        key = (dealer, holder, kind)
        return RevealedShare(dealer, holder, kind, self.shares[key], self.blinds[key])

    def recover(self, **overrides: object):
        args = dict(
            members=self.members,
            threshold=self.threshold,
            statuses=self.statuses,
            mask_public_keys=self.mask_public_keys,
            points=self.points,
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
    blinds: dict[tuple[int, int, int], bytes] = {}
    points: dict[int, bytes] = {}
    for dealer in members:
        points[dealer] = b""
        for kind, secret in ((KIND_SELF_SEED, seeds[dealer]), (KIND_MASK_KEY, keys[dealer].secret)):
            dealt = split_secret(secret, threshold, n, rnd.randbytes)
            points[dealer] += dealt.commitments  # self seed's t points, then mask key's
            for p, holder in enumerate(members):
                shares[dealer, holder, kind] = dealt.shares[p]
                blinds[dealer, holder, kind] = dealt.blinds[p]
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
        RevealedShare(
            dealer, holder, kind, shares[dealer, holder, kind], blinds[dealer, holder, kind]
        )
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
        points={a: points[a] for a in committed},
        submissions=submissions,
        reveals=reveals,
        quant=quant,
        d=d,
        expected=expected,
        floats=floats,
        shares=shares,
        blinds=blinds,
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
    extra = g.reveal(dropped, holder, KIND_SELF_SEED)
    assert _reason(g, reveals=[*g.reveals, extra]) == RecoveryReason.BOTH_KINDS


def test_refuses_a_seed_share_of_a_dropped_member_and_a_key_share_of_a_submitter() -> None:
    g = build_group(2, BASE, threshold=2)
    sub, dropped = g.members[0], g.members[3]
    swapped = [
        g.reveal(r.dealer, r.holder, KIND_MASK_KEY if r.dealer == sub else KIND_SELF_SEED)
        if r.dealer in (sub, dropped)
        else r
        for r in g.reveals
    ]
    assert _reason(g, reveals=swapped) == RecoveryReason.WRONG_KIND
    outsider = g.members[4]
    stray = g.reveal(outsider, sub, KIND_MASK_KEY)
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


def test_refuses_too_few_shares() -> None:
    g = build_group(5, BASE, threshold=3)
    dealer = g.members[1]
    fewer = [r for r in g.reveals if not (r.dealer == dealer and r.holder == g.members[0])]
    assert _reason(g, reveals=fewer) == RecoveryReason.TOO_FEW_SHARES


def test_a_share_off_its_polynomial_is_dropped_and_recorded() -> None:
    # Three submitters reveal, threshold 2: a bent share is dropped, the other two rebuild.
    g = build_group(5, BASE, threshold=2)
    dealer, holder = g.members[1], g.members[2]
    bent = [
        replace(r, share=bytes(32)) if (r.dealer, r.holder) == (dealer, holder) else r
        for r in g.reveals
    ]
    result = g.recover(reveals=bent)
    assert np.array_equal(result.ring_sum, g.expected)
    (refused,) = result.refused
    assert refused.reason == RecoveryReason.OFF_POLYNOMIAL
    assert (refused.share.dealer, refused.share.holder, refused.share.share) == (
        dealer,
        holder,
        bytes(32),
    )
    # the right share with another blind is as bad
    blinded = [
        replace(r, blind=r.share) if (r.dealer, r.holder) == (dealer, holder) else r
        for r in g.reveals
    ]
    assert [f.share.blind for f in g.recover(reveals=blinded).refused] == [
        g.shares[dealer, holder, KIND_SELF_SEED]
    ]
    assert g.recover().refused == ()


def test_an_off_polynomial_self_share_in_the_dealers_own_tree_yields_no_aggregate() -> None:
    """The attack: a submitter puts a share of its own seed off its polynomial in its own tree,
    for itself, and reveals it; exactly t shares reach the chain (the t-th unmask finalizes), so
    nothing on the chain disagrees with it. Interpolating them yields a wrong seed and a wrong
    aggregate with no error; only the Pedersen check against its points catches it."""
    statuses = [STATUS_SUBMITTED] * 3 + [STATUS_COMMITTED]
    g = build_group(8, statuses, threshold=3, unmaskers=3)
    attacker = g.members[0]
    mine = g.reveal(attacker, attacker, KIND_SELF_SEED)
    shifted = (int.from_bytes(mine.share, "big") + 1) % FIELD_ORDER
    forged = replace(mine, share=shifted.to_bytes(32, "big"))
    reveals = [forged if r == mine else r for r in g.reveals]
    # exactly t shares of the attacker's seed, one forged: interpolation is silently wrong
    of_attacker = [r for r in reveals if r.dealer == attacker]
    assert len(of_attacker) == g.threshold
    x = {a: p + 1 for p, a in enumerate(g.members)}
    honest = [(x[r.holder], r.share) for r in g.reveals if r.dealer == attacker]
    assert combine_shares([(x[r.holder], r.share) for r in of_attacker]) != combine_shares(honest)
    with pytest.raises(GroupRecoveryError) as info:
        g.recover(reveals=reveals)
    assert info.value.reason == RecoveryReason.TOO_FEW_SHARES
    assert "1 off its polynomial" in str(info.value)


def test_refuses_missing_or_malformed_points() -> None:
    g = build_group(9, BASE, threshold=2)
    dropped = g.members[3]
    missing = {a: pts for a, pts in g.points.items() if a != dropped}
    assert _reason(g, points=missing) == RecoveryReason.MISSING_POINTS
    short = {**g.points, dropped: g.points[dropped][:-64]}
    assert _reason(g, points=short) == RecoveryReason.BAD_POINTS
    off_curve = {**g.points, dropped: (1).to_bytes(64, "big") + g.points[dropped][64:]}
    assert _reason(g, points=off_curve) == RecoveryReason.BAD_POINTS
    # another dealer's (well-formed) points: none of the dropped member's shares verify
    swapped = {**g.points, dropped: g.points[g.members[0]]}
    assert _reason(g, points=swapped) == RecoveryReason.TOO_FEW_SHARES
    # a member that never committed needs no points
    assert g.members[4] not in g.points and g.recover().submitters == g.members[:3]


def test_refuses_conflicting_shares_and_strangers() -> None:
    g = build_group(6, BASE, threshold=2)
    first = g.reveals[0]
    # A second share from the same holder can only be off the polynomial (Pedersen binds the
    # share at each x): dropped, the sum exact. An identical duplicate is harmless too.
    twin = replace(first, share=bytes(32))
    result = g.recover(reveals=[*g.reveals, twin, first])
    assert np.array_equal(result.ring_sum, g.expected)
    assert [f.share for f in result.refused] == [twin]
    stranger = replace(first, dealer=12345)
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
