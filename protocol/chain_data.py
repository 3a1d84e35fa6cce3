"""The schema of chain data: what a reader takes from the market's events and views, decoded once.

This module owns the records ``protocol/`` computes with when it reads the chain, and the one
step that builds them from the values an ABI decoder returns (``docs/interfaces.md`` §10):

- ``MemberCommitment``: a member's ``commit_shares``, from the views ``mask_pk``,
  ``shares_root`` and ``points_digest``;
- ``RevealedShare``: one ``ShareRevealed`` event (the court's: share and Pedersen blind);
- ``Submission``: a member's masked update, its ``UpdateChunk`` words and ``UpdateBlobs``
  blob chunks in chunk order, with its ``update_digest``;
- ``answered_delivery``: a ``ComplaintAnswered`` event (two shares and their blinds), with the
  dealer's commitment, as the ``ShareDelivery`` the holder's round machine checks like one from
  the dealer's channel.

The ABI types fix most of this already, but a reader cannot tell a faithful node from a faulty
one, so every field is checked again: an address is 160 bits, a ``bytes32`` is 32 bytes, a
share and a blind are below ``r``, a kind is 0 or 1, a word is a ``uint256``, a chunk holds 1 to
``MAX_CHUNK_WORDS`` words (1 to ``MAX_CHUNK_BLOBS`` blobs) and a member's chunks are numbered
``0 .. n-1``. A value that breaks the schema raises ``ChainDataError`` with a named
``ChainDataReason``. Rules that relate records to a group are here too (``check_commitments``,
``check_submitters``: the round machine's view of the chain); rules that need the whole round
(digests, word counts, the Pedersen check of revealed shares against their dealers' points,
reconstructions) are recovery's (``protocol.recovery.RecoveryReason``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import msgspec

from protocol.constants import (
    ADDRESS_BITS,
    MAX_CHUNK_BLOBS,
    MAX_CHUNK_WORDS,
    SECRET_KINDS,
    WORD_BITS,
)
from protocol.errors import RemoteProtocolError
from protocol.messages import ShareDelivery, address_bytes
from protocol.shamir import FIELD_ORDER


class ChainDataReason(StrEnum):
    """Why a record read from the chain is refused; compares equal to its string."""

    ADDRESS = "address"  # not a 160-bit address
    FIELD_SIZE = "field_size"  # a bytes32 of another length, a proof or points of a wrong size
    KIND = "kind"  # a secret kind other than 0 (self seed) and 1 (mask key)
    SHARE_RANGE = "share_range"  # a share or blind that is no element of Z_r
    WORD_RANGE = "word_range"  # a word that is no uint256
    CHUNK_SIZE = "chunk_size"  # a chunk of no words or more than the contract takes
    CHUNK_ORDER = "chunk_order"  # a member's chunk indices are not exactly 0 .. n-1
    NOT_MEMBER = "not_member"  # a commitment of an address outside the group
    DUPLICATE = "duplicate"  # two commitments of one member, a submitter listed twice
    NOT_COMMITTED = "not_committed"  # a submitter without a commitment


class ChainDataError(RemoteProtocolError):
    """Chain data that breaks its schema; ``.reason`` names the rule."""

    def __init__(self, reason: ChainDataReason, detail: str = "") -> None:
        self.reason = ChainDataReason(reason)
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else str(self.reason))


# ---------------------------------------------------------------------------------------------
# The records


@dataclass(frozen=True, slots=True)
class MemberCommitment:
    """One member's ``commit_shares`` as the chain holds it."""

    member: int
    mask_public: bytes
    shares_root: bytes
    points_digest: bytes  # keccak256 of the member's Pedersen commitments


@dataclass(frozen=True, slots=True)
class RevealedShare:
    """One ``ShareRevealed(task, round, dealer, holder, kind, share, blind)`` event: a share of
    ``dealer``'s secret ``kind`` held by ``holder``, and its Pedersen blind."""

    dealer: int
    holder: int
    kind: int
    share: bytes
    blind: bytes


@dataclass(frozen=True, slots=True)
class BlobChunk:
    """A chunk posted as blobs (``UpdateBlobs``): the versioned hashes the chain recorded and the
    blobs a blob source returned for them (None: the source has none)."""

    hashes: tuple[bytes, ...]
    blobs: tuple[bytes | None, ...]


@dataclass(frozen=True, slots=True)
class Submission:
    """A submitter's masked update chunk by chunk, in order: words from its ``UpdateChunk``
    events or blobs behind its ``UpdateBlobs`` events; and the running digest the contract holds
    for it."""

    chunks: tuple[tuple[int, ...] | BlobChunk, ...]
    digest: bytes


# ---------------------------------------------------------------------------------------------
# Fields

_ADDRESS_TEXT = re.compile(r"0x[0-9a-fA-F]{40}")


def address(value: str | int) -> int:
    """A 160-bit address from an ABI decoder's ``0x``-string (any case) or an integer."""
    if isinstance(value, str) and _ADDRESS_TEXT.fullmatch(value):
        return int(value, 16)
    if type(value) is int and 0 <= value < 1 << ADDRESS_BITS:
        return value
    raise ChainDataError(ChainDataReason.ADDRESS, repr(value)[:60])


def _bytes32(what: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        size = len(value) if isinstance(value, bytes) else type(value).__name__
        raise ChainDataError(ChainDataReason.FIELD_SIZE, f"{what} is not 32 bytes: {size}")
    return value


def _share(what: str, value: object) -> bytes:
    share = _bytes32(what, value)
    if int.from_bytes(share, "big") >= FIELD_ORDER:
        raise ChainDataError(ChainDataReason.SHARE_RANGE, f"{what} is not below r")
    return share


def _words(do: int, index: int, words: Sequence[int]) -> tuple[int, ...]:
    if not 1 <= len(words) <= MAX_CHUNK_WORDS:
        raise ChainDataError(
            ChainDataReason.CHUNK_SIZE,
            f"chunk {index} of {do:#042x} has {len(words)} words, not 1..{MAX_CHUNK_WORDS}",
        )
    out = tuple(words)
    # three passes in C rather than a loop in Python: an update has thousands of words
    if set(map(type, out)) != {int} or min(out) < 0 or max(out) >= 1 << WORD_BITS:
        raise ChainDataError(
            ChainDataReason.WORD_RANGE, f"chunk {index} of {do:#042x} holds a non-uint256"
        )
    return out


def _blob_chunk(do: int, index: int, chunk: BlobChunk) -> BlobChunk:
    if not 1 <= len(chunk.hashes) <= MAX_CHUNK_BLOBS:
        raise ChainDataError(
            ChainDataReason.CHUNK_SIZE,
            f"chunk {index} of {do:#042x} has {len(chunk.hashes)} blobs, not 1..{MAX_CHUNK_BLOBS}",
        )
    for h in chunk.hashes:
        _bytes32("a blob's versioned hash", h)
    # the blobs come from a blob source, not the chain: recovery checks them against the hashes
    return BlobChunk(tuple(chunk.hashes), tuple(chunk.blobs))


# ---------------------------------------------------------------------------------------------
# Records from the values an ABI decoder returns


def member_commitment(
    member: str | int, mask_public: bytes, shares_root: bytes, points_digest: bytes
) -> MemberCommitment:
    """A member's standing commitment, from the views ``mask_pk``, ``shares_root`` and
    ``points_digest``."""
    return MemberCommitment(
        member=address(member),
        mask_public=_bytes32("mask_pk", mask_public),
        shares_root=_bytes32("shares_root", shares_root),
        points_digest=_bytes32("points_digest", points_digest),
    )


def revealed_share(
    dealer: str | int, holder: str | int, kind: int, share: bytes, blind: bytes
) -> RevealedShare:
    """One ``ShareRevealed`` event's record (whether the share lies on the dealer's committed
    polynomial is recovery's check, ``off_polynomial``: it needs the dealer's points)."""
    if type(kind) is not int or kind not in SECRET_KINDS:
        raise ChainDataError(ChainDataReason.KIND, repr(kind)[:40])
    return RevealedShare(
        address(dealer),
        address(holder),
        kind,
        _share("a revealed share", share),
        _share("a revealed blind", blind),
    )


def submission(
    do: str | int,
    chunks: Iterable[tuple[int, Sequence[int] | BlobChunk]],
    digest: bytes,
) -> Submission:
    """A member's masked update from its ``(chunk_index, words or BlobChunk)`` events, in any
    order, and its ``update_digest``. Whether the chunks hash to the digest and add up to the
    update's word count is recovery's check (``digest_mismatch``, ``malformed_update``)."""
    who = address(do)
    indexed = sorted(chunks, key=lambda c: c[0])
    if [i for i, _ in indexed] != list(range(len(indexed))):
        raise ChainDataError(
            ChainDataReason.CHUNK_ORDER,
            f"chunks of {who:#042x} are numbered {[i for i, _ in indexed][:8]}",
        )
    return Submission(
        chunks=tuple(
            _blob_chunk(who, i, c) if isinstance(c, BlobChunk) else _words(who, i, c)
            for i, c in indexed
        ),
        digest=_bytes32("update_digest", digest),
    )


def answered_delivery(
    task: int,
    round: int,
    *,
    dealer: str | int,
    holder: str | int,
    seed_share: bytes,
    seed_blind: bytes,
    key_share: bytes,
    key_blind: bytes,
    seed_proof: Sequence[bytes],
    key_proof: Sequence[bytes],
    mask_public: bytes,
    shares_root: bytes,
    points: bytes,
) -> ShareDelivery:
    """A ``ComplaintAnswered`` event as the delivery it settles: the holder's two shares, their
    blinds and proofs, with the dealer's mask key and root (views) and points
    (``SharesCommitted``). The holder's machine checks it in full, as any delivery; this only
    makes it one."""
    fields = {
        "task": task,
        "round": round,
        "dealer": address_bytes(address(dealer)),
        "holder": address_bytes(address(holder)),
        "seed_share": _share("seed_share", seed_share),
        "seed_blind": _share("seed_blind", seed_blind),
        "key_share": _share("key_share", key_share),
        "key_blind": _share("key_blind", key_blind),
        "mask_public": _bytes32("mask_pk", mask_public),
        "shares_root": _bytes32("shares_root", shares_root),
        "seed_proof": tuple(seed_proof),
        "key_proof": tuple(key_proof),
        "points": points,
    }
    try:
        # the channel schema's limits: proofs of at most MAX_PROOF 32-byte siblings, 2t points
        return msgspec.convert(fields, ShareDelivery)
    except msgspec.ValidationError as exc:
        raise ChainDataError(ChainDataReason.FIELD_SIZE, str(exc)) from exc


# ---------------------------------------------------------------------------------------------
# Records against a group


def check_commitments(members: Sequence[int], commitments: Iterable[MemberCommitment]) -> set[int]:
    """The members named by on-chain commitments: each a distinct member of ``members``, with
    32-byte mask key, root and points digest."""
    group = frozenset(members)
    seen: set[int] = set()
    for c in commitments:
        if c.member not in group:
            raise ChainDataError(ChainDataReason.NOT_MEMBER, f"a commitment of {c.member:#x}")
        if c.member in seen:
            raise ChainDataError(ChainDataReason.DUPLICATE, f"two commitments of {c.member:#x}")
        _bytes32("mask_pk", c.mask_public)
        _bytes32("shares_root", c.shares_root)
        _bytes32("points_digest", c.points_digest)
        seen.add(c.member)
    return seen


def check_submitters(committed: Collection[int], submitted: Sequence[int]) -> tuple[int, ...]:
    """Members whose submissions are complete: distinct, and each one that committed."""
    seen: set[int] = set()
    for member in submitted:
        if member in seen:
            raise ChainDataError(ChainDataReason.DUPLICATE, f"submitter {member:#x} listed twice")
        if member not in committed:
            raise ChainDataError(ChainDataReason.NOT_COMMITTED, f"submitter {member:#x}")
        seen.add(member)
    return tuple(submitted)
