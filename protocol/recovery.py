"""A group's aggregate, recovered from chain data alone (DESIGN.md §3 step 5, §1 G5).

This module owns the reader's side of double masking: given what the chain shows after a group
finalized (members, statuses, round mask public keys, every committed member's Pedersen points
from ``SharesCommitted``, every submitter's masked words from the ``UpdateChunk`` events and its
running digest, and the ``ShareRevealed`` shares with their blinds), it

1. checks every submission against its on-chain digest and decodes it (a blob chunk's blobs
   first against the versioned hashes the chain recorded),
2. checks every revealed share and blind against its dealer's points (the Pedersen check at the
   holder's ``x``) and drops, recording it (``off_polynomial``), any that fails: a dealer could
   put a share off its polynomial in its own tree, for itself, and reveal it;
3. reconstructs each submitter's self-mask seed and each dropped member's mask secret key from at
   least ``t`` valid revealed shares (refusing inconsistent share sets and keys that do not match
   the posted public key),
4. removes the self masks, cancels the pairwise masks that the submitters still carry towards
   members that committed but did not submit, and
5. returns the ring sum of the submitters' quantized updates and its dequantized floats.

Nothing here trusts the caller's view of who is who beyond the statuses: any inconsistency is a
``GroupRecoveryError`` with a named ``reason``, and no partial or wrong aggregate is ever
returned: a secret is rebuilt only from shares its dealer's commitments vouch for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from protocol.blobs import BlobMismatch, blobs_to_words, check_blob
from protocol.chain_data import BlobChunk, RevealedShare, Submission
from protocol.commitments import ZERO_DIGEST, chunk_digest
from protocol.constants import (
    BLOB_WORDS,
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    SECRET_KINDS,
    STATUS_COMMITTED,
    STATUS_NONE,
    STATUS_SUBMITTED,
    STATUS_UNMASKED,
)
from protocol.encoding import QuantConfig, dequantize, unpack_lanes, word_count
from protocol.errors import (
    ConfigError,
    DecodeError,
    KeyAgreementError,
    LocalProtocolError,
    RecoveryError,
    ShareError,
)
from protocol.masks import MaskKeyPair, expand, pairwise_mask_sum
from protocol.shamir import POINT_BYTES, combine_shares, decode_points, verify_share

_STATUSES = (STATUS_NONE, STATUS_COMMITTED, STATUS_SUBMITTED, STATUS_UNMASKED)


class RecoveryReason(StrEnum):
    """Why chain data yields no aggregate; compares equal to its string."""

    UNKNOWN_MEMBER = "unknown_member"
    BAD_STATUS = "bad_status"
    TOO_FEW_SUBMITTERS = "too_few_submitters"
    MISSING_PUBLIC_KEY = "missing_public_key"
    MISSING_UPDATE = "missing_update"
    DIGEST_MISMATCH = "digest_mismatch"
    BLOB_MISMATCH = "blob_mismatch"
    MALFORMED_UPDATE = "malformed_update"
    UNEXPECTED_HOLDER = "unexpected_holder"
    WRONG_KIND = "wrong_kind"
    BOTH_KINDS = "both_kinds"
    CONFLICTING_SHARES = "conflicting_shares"
    OFF_POLYNOMIAL = "off_polynomial"  # a revealed share failing its dealer's Pedersen check
    MISSING_POINTS = "missing_points"
    BAD_POINTS = "bad_points"
    TOO_FEW_SHARES = "too_few_shares"
    INCONSISTENT_SHARES = "inconsistent_shares"
    KEY_MISMATCH = "key_mismatch"
    BAD_PUBLIC_KEY = "bad_public_key"


class GroupRecoveryError(RecoveryError):
    """Chain data from which no group aggregate can be recovered; ``.reason`` names the rule."""

    def __init__(self, reason: RecoveryReason, detail: str = "") -> None:
        self.reason = RecoveryReason(reason)
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else str(self.reason))


@dataclass(frozen=True, slots=True)
class RefusedShare:
    """A revealed share left out of every reconstruction, and why."""

    share: RevealedShare
    reason: RecoveryReason


@dataclass(frozen=True, slots=True)
class GroupAggregate:
    """The recovered aggregate of one group: whose updates it sums and the sum itself."""

    submitters: tuple[int, ...]
    dropped: tuple[int, ...]
    ring_sum: np.ndarray  # ring dtype of the task's lane bits: Σ x_i mod 2**k
    update: np.ndarray  # float64: ring_sum read as signed fixed point
    refused: tuple[RefusedShare, ...] = ()  # revealed shares that failed their dealer's check


def _addr(a: int) -> str:
    return f"{a:#042x}"


def _check_group(members: Sequence[int], threshold: int, d: int) -> tuple[int, ...]:
    group = tuple(members)
    if len(set(group)) != len(group) or not group:
        raise ConfigError("members must be a non-empty list of distinct addresses")
    if not 2 <= threshold <= len(group):
        raise ConfigError(f"threshold must be in [2, {len(group)}], got {threshold}")
    if not isinstance(d, int) or d < 1:
        raise ConfigError(f"d must be a positive integer, got {d!r}")
    return group


def _blob_words(addr: int, chunk: BlobChunk, words: int) -> list[int]:
    """The first `words` words of a blob chunk, each blob checked against its versioned hash."""
    if len(chunk.blobs) != len(chunk.hashes) or None in chunk.blobs:
        raise GroupRecoveryError(
            RecoveryReason.MISSING_UPDATE, f"a blob of {_addr(addr)} is unavailable"
        )
    blobs = [b for b in chunk.blobs if b is not None]
    for blob, expected in zip(blobs, chunk.hashes, strict=True):
        try:
            check_blob(blob, expected)
        except BlobMismatch as exc:
            raise GroupRecoveryError(RecoveryReason.BLOB_MISMATCH, f"{_addr(addr)}: {exc}") from exc
    return blobs_to_words(blobs, min(words, len(blobs) * BLOB_WORDS))


def _decode_submission(addr: int, sub: Submission, d: int, lane_bits: int) -> np.ndarray:
    digest = ZERO_DIGEST
    words: list[int] = []
    total = word_count(d, lane_bits)
    try:
        for chunk in sub.chunks:
            if isinstance(chunk, BlobChunk):
                # the contract folds the versioned hashes as it folds words (§3b)
                digest = chunk_digest(digest, [int.from_bytes(h, "big") for h in chunk.hashes])
                words.extend(_blob_words(addr, chunk, max(0, total - len(words))))
            else:
                digest = chunk_digest(digest, chunk)
                words.extend(chunk)
        if digest != sub.digest:
            raise GroupRecoveryError(
                RecoveryReason.DIGEST_MISMATCH, f"chunks of {_addr(addr)} do not hash to its digest"
            )
        return unpack_lanes(words, d, lane_bits)
    except (DecodeError, LocalProtocolError) as exc:
        # A chunk outside 1..MAX_CHUNK_WORDS, a word outside uint256, the wrong word count or
        # non-zero padding: the chain would not have accepted it, so the input is inconsistent.
        raise GroupRecoveryError(RecoveryReason.MALFORMED_UPDATE, f"{_addr(addr)}: {exc}") from exc


def _check_points(
    committed: Sequence[int], points: Mapping[int, bytes], threshold: int
) -> dict[int, tuple[bytes, bytes]]:
    """Each committed member's points split into (self-seed, mask-key) halves of ``t`` curve
    points each."""
    halves: dict[int, tuple[bytes, bytes]] = {}
    size = 2 * threshold * POINT_BYTES
    for addr in committed:
        data = points.get(addr)
        if data is None:
            raise GroupRecoveryError(RecoveryReason.MISSING_POINTS, _addr(addr))
        if not isinstance(data, bytes) or len(data) != size:
            got = len(data) if isinstance(data, bytes) else type(data).__name__
            raise GroupRecoveryError(
                RecoveryReason.BAD_POINTS, f"{_addr(addr)}: {got} bytes, {size} for t = {threshold}"
            )
        try:
            decode_points(data, 2 * threshold)
        except ShareError as exc:
            raise GroupRecoveryError(RecoveryReason.BAD_POINTS, f"{_addr(addr)}: {exc}") from exc
        half = size // 2
        halves[addr] = (data[:half], data[half:])
    return halves


def _shares_by_dealer(
    group: tuple[int, ...],
    submitters: frozenset[int],
    expected_kind: Mapping[int, int],
    polynomials: Mapping[int, tuple[bytes, bytes]],
    threshold: int,
    reveals: Sequence[RevealedShare],
) -> tuple[dict[int, dict[int, bytes]], list[RefusedShare]]:
    """Revealed shares as ``dealer -> {x: share}``, after checking each against the statuses,
    and the shares dropped because they fail their dealer's Pedersen check."""
    position = {a: p for p, a in enumerate(group)}
    kinds: dict[int, set[int]] = {}
    out: dict[int, dict[int, bytes]] = {}
    refused: list[RefusedShare] = []
    verified: set[tuple[int, int, bytes, bytes]] = set()
    for r in reveals:
        if r.dealer not in position:
            raise GroupRecoveryError(RecoveryReason.UNKNOWN_MEMBER, f"dealer {_addr(r.dealer)}")
        if r.holder not in submitters:
            # Only submitters may unmask; a reveal by anyone else is not chain data.
            raise GroupRecoveryError(RecoveryReason.UNEXPECTED_HOLDER, f"holder {_addr(r.holder)}")
        if r.kind not in SECRET_KINDS or not all(
            isinstance(v, bytes) and len(v) == 32 for v in (r.share, r.blind)
        ):
            raise GroupRecoveryError(
                RecoveryReason.WRONG_KIND, f"malformed reveal of {_addr(r.dealer)}"
            )
        seen = kinds.setdefault(r.dealer, set())
        seen.add(r.kind)
        if len(seen) > 1:
            raise GroupRecoveryError(
                RecoveryReason.BOTH_KINDS, f"both secrets of {_addr(r.dealer)} were revealed"
            )
        expected = expected_kind.get(r.dealer)
        if expected != r.kind:
            # A submitter's seed, a dropped member's key, nothing of a member that never committed.
            want = "nothing" if expected is None else f"kind {expected}"
            raise GroupRecoveryError(
                RecoveryReason.WRONG_KIND,
                f"kind {r.kind} revealed for {_addr(r.dealer)}, {want} due",
            )
        x = position[r.holder] + 1
        key = (r.dealer, x, r.share, r.blind)
        if key not in verified:
            if not verify_share(x, r.share, r.blind, polynomials[r.dealer][r.kind], threshold):
                # Off the committed polynomial: worthless for reconstruction, whoever put it there.
                refused.append(RefusedShare(r, RecoveryReason.OFF_POLYNOMIAL))
                continue
            verified.add(key)
        held = out.setdefault(r.dealer, {})
        # Like the consistency check below, reachable only by breaking the binding of H.
        if held.get(x, r.share) != r.share:
            raise GroupRecoveryError(
                RecoveryReason.CONFLICTING_SHARES,
                f"two shares of {_addr(r.dealer)} from holder {_addr(r.holder)}",
            )
        held[x] = r.share
    return out, refused


def _reconstruct(
    dealer: int, shares: Mapping[int, bytes], threshold: int, refused: Sequence[RefusedShare]
) -> bytes:
    """The secret behind ``shares``; every share beyond the first ``t`` must agree with it."""
    if len(shares) < threshold:
        off = sum(1 for f in refused if f.share.dealer == dealer)
        raise GroupRecoveryError(
            RecoveryReason.TOO_FEW_SHARES,
            f"{len(shares)} valid shares of {_addr(dealer)} revealed ({off} off its polynomial),"
            f" {threshold} needed",
        )
    points = sorted(shares.items())
    base, extra = points[:threshold], points[threshold:]
    try:
        secret = combine_shares(base)
        # Any t points fix the polynomial; an extra point off it means the dealer dealt shares
        # of no single secret. Shares that passed the Pedersen check cannot disagree unless
        # somebody knows log_G H: this stays as a guard that costs a few interpolations.
        for point in extra:
            if combine_shares([*base[: threshold - 1], point]) != secret:
                raise GroupRecoveryError(
                    RecoveryReason.INCONSISTENT_SHARES,
                    f"shares of {_addr(dealer)} do not lie on one polynomial",
                )
    except ShareError as exc:
        raise GroupRecoveryError(RecoveryReason.CONFLICTING_SHARES, str(exc)) from exc
    return secret


def recover_group_aggregate(
    *,
    members: Sequence[int],
    threshold: int,
    statuses: Mapping[int, int],
    mask_public_keys: Mapping[int, bytes],
    points: Mapping[int, bytes],
    submissions: Mapping[int, Submission],
    reveals: Sequence[RevealedShare],
    task: int,
    round: int,
    quant: QuantConfig,
    d: int,
) -> GroupAggregate:
    """Recover ``Σ x_i`` over the group's submitters from chain data alone.

    ``statuses`` maps members to ``STATUS_*`` (absent = ``STATUS_NONE``); ``mask_public_keys``
    holds the key every committed member posted; ``points`` the Pedersen points every committed
    member posted (``SharesCommitted``: ``128 t`` bytes, self seed's ``t`` then mask key's);
    ``submissions`` the masked words of every submitter; ``reveals`` every ``ShareRevealed``
    event of the group in this round. A revealed share that fails its dealer's Pedersen check is
    left out (``GroupAggregate.refused``); fewer than ``t`` valid shares of a secret is
    ``too_few_shares``. Raises ``GroupRecoveryError`` (a ``RecoveryError``) naming the first rule
    the data breaks, and ``ConfigError`` for a malformed group or ``d``.
    """
    group = _check_group(members, threshold, d)
    for addr, status in statuses.items():
        if addr not in group:
            raise GroupRecoveryError(RecoveryReason.UNKNOWN_MEMBER, f"status for {_addr(addr)}")
        if status not in _STATUSES:
            raise GroupRecoveryError(RecoveryReason.BAD_STATUS, f"{_addr(addr)}: {status!r}")
    status_of = {a: statuses.get(a, STATUS_NONE) for a in group}
    # Member-list order everywhere, so the result does not depend on mapping order.
    committed = tuple(a for a in group if status_of[a] >= STATUS_COMMITTED)
    submitters = tuple(a for a in group if status_of[a] >= STATUS_SUBMITTED)
    dropped = tuple(a for a in committed if status_of[a] == STATUS_COMMITTED)
    if len(submitters) < threshold:
        # The privacy floor: a "sum" of fewer than t updates must never be computed.
        raise GroupRecoveryError(
            RecoveryReason.TOO_FEW_SUBMITTERS,
            f"{len(submitters)} submitters, threshold {threshold}",
        )
    for addr in committed:
        if addr not in mask_public_keys:
            raise GroupRecoveryError(RecoveryReason.MISSING_PUBLIC_KEY, _addr(addr))

    polynomials = _check_points(committed, points, threshold)

    expected_kind = {a: KIND_SELF_SEED for a in submitters} | {a: KIND_MASK_KEY for a in dropped}
    shares, refused = _shares_by_dealer(
        group, frozenset(submitters), expected_kind, polynomials, threshold, reveals
    )
    seeds = {a: _reconstruct(a, shares.get(a, {}), threshold, refused) for a in submitters}
    dropped_keys: dict[int, MaskKeyPair] = {}
    for addr in dropped:
        secret = _reconstruct(addr, shares.get(addr, {}), threshold, refused)
        pair = MaskKeyPair.from_secret(secret)
        if pair.public != mask_public_keys[addr]:
            raise GroupRecoveryError(
                RecoveryReason.KEY_MISMATCH,
                f"reconstructed mask key of {_addr(addr)} does not match its posted public key",
            )
        dropped_keys[addr] = pair

    total = np.zeros(d, dtype=quant.ring_dtype)
    for addr in submitters:
        if addr not in submissions:
            raise GroupRecoveryError(RecoveryReason.MISSING_UPDATE, _addr(addr))
        masked = _decode_submission(addr, submissions[addr], d, quant.lane_bits)
        # Wrapping uint arithmetic is the ring: add y_i, then take the self mask PRG(b_i) off.
        np.add(total, masked, out=total)
        np.subtract(total, expand(seeds[addr], d, quant.lane_bits), out=total)

    survivors = {a: mask_public_keys[a] for a in submitters}
    for addr, pair in dropped_keys.items():
        try:
            # pairwise_mask_sum from the dropped member's side is the negation of what the
            # submitters still carry towards it, so adding it cancels those masks.
            leftover = pairwise_mask_sum(
                pair.secret,
                my_addr=addr,
                peers=survivors,
                task=task,
                round=round,
                d=d,
                lane_bits=quant.lane_bits,
            )
        except KeyAgreementError as exc:
            raise GroupRecoveryError(RecoveryReason.BAD_PUBLIC_KEY, str(exc)) from exc
        np.add(total, leftover, out=total)

    return GroupAggregate(
        submitters=submitters,
        dropped=dropped,
        ring_sum=total,
        update=dequantize(total, quant),
        refused=tuple(refused),
    )
