"""Masked updates as blobs (protocol.blobs, docs/interfaces.md §3b) and their recovery: words
round-trip through blobs, every element stays below the BLS12-381 modulus, a blob is checked
against its versioned hash, and a group whose updates came as blobs recovers exactly — or not at
all when a blob does not match or is missing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.blobs import (
    BYTES_PER_BLOB,
    BlobMismatch,
    blob_chunks,
    blob_count,
    blobs_to_words,
    check_blob,
    commitment,
    versioned_hash,
    words_to_blobs,
)
from protocol.commitments import ZERO_DIGEST, chunk_digest
from protocol.constants import BLOB_WORDS, STATUS_SUBMITTED
from protocol.recovery import BlobChunk, GroupRecoveryError, RecoveryReason, Submission
from tests.protocol.test_recovery import build_group

# the scalar field of BLS12-381: every 32-byte element of a blob must be below it
BLS_MODULUS = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
uint256 = st.integers(0, 2**256 - 1)


@given(words=st.lists(uint256, max_size=50), extra=st.integers(0, 3))
def test_words_round_trip_through_blobs(words: list[int], extra: int) -> None:
    blobs = words_to_blobs(words)
    assert len(blobs) == blob_count(len(words))
    assert all(len(b) == BYTES_PER_BLOB for b in blobs)
    assert blobs_to_words(blobs, len(words)) == words
    # a reader asking for fewer words gets a prefix
    assert blobs_to_words(blobs, max(0, len(words) - extra)) == words[: max(0, len(words) - extra)]


def test_every_element_is_a_field_element_and_blobs_fill_in_order() -> None:
    words = [2**256 - 1] * (BLOB_WORDS + 1)
    first, second = words_to_blobs(words)
    for blob in (first, second):
        elements = [int.from_bytes(blob[i : i + 32], "big") for i in range(0, BYTES_PER_BLOB, 32)]
        assert max(elements) < BLS_MODULUS
    assert first[:32] == b"\x00" + b"\xff" * 31
    # the second blob carries one word (32 bytes over two elements), then zero padding
    assert second[:64] == b"\x00" + b"\xff" * 31 + b"\x00\xff" + bytes(30)
    assert second[64:] == bytes(BYTES_PER_BLOB - 64)


def test_blob_chunks_are_full_blobs_per_transaction_but_the_last() -> None:
    words = list(range(7 * BLOB_WORDS + 5))
    chunks = blob_chunks(words, blobs_per_tx=6)
    assert [len(c) for c in chunks] == [6 * BLOB_WORDS, BLOB_WORDS + 5]
    assert [w for c in chunks for w in c] == words
    with pytest.raises(ValueError):
        blob_chunks(words, blobs_per_tx=0)


def test_a_blob_matches_only_its_versioned_hash() -> None:
    blob, other = words_to_blobs([1]), words_to_blobs([2])
    expected = versioned_hash(commitment(blob[0]))
    assert expected[:1] == b"\x01"
    assert expected[1:] == hashlib.sha256(commitment(blob[0])).digest()[1:]
    check_blob(blob[0], expected)
    with pytest.raises(BlobMismatch):
        check_blob(other[0], expected)
    with pytest.raises(BlobMismatch):
        check_blob(blob[0][:-1], expected)
    # an element above the field modulus is no blob at all
    with pytest.raises(BlobMismatch):
        check_blob(b"\xff" * BYTES_PER_BLOB, expected)


def as_blob_submission(sub: Submission, blobs_per_tx: int = 1) -> Submission:
    """The same update posted with `submit_blobs`: what the chain and a blob source show."""
    words = [w for chunk in sub.chunks for w in chunk]
    digest, chunks = ZERO_DIGEST, []
    for chunk in blob_chunks(words, blobs_per_tx):
        blobs = tuple(words_to_blobs(chunk))
        hashes = tuple(versioned_hash(commitment(b)) for b in blobs)
        digest = chunk_digest(digest, [int.from_bytes(h, "big") for h in hashes])
        chunks.append(BlobChunk(hashes=hashes, blobs=blobs))
    return Submission(chunks=tuple(chunks), digest=digest)


def blob_group(d: int):
    group = build_group(5, [STATUS_SUBMITTED] * 3, threshold=2, d=d, chunk_words=4096)
    group.submissions = {a: as_blob_submission(s) for a, s in group.submissions.items()}
    return group


def test_a_group_of_blob_updates_recovers_exactly() -> None:
    # two blobs per update (the second partly filled), one per transaction
    group = blob_group(d=8 * BLOB_WORDS + 40)
    aggregate = group.recover()
    assert (aggregate.ring_sum == group.expected).all()


def test_a_blob_that_does_not_match_its_hash_spoils_the_group() -> None:
    group = blob_group(d=20)
    who = next(iter(group.submissions))
    (chunk,) = group.submissions[who].chunks
    forged = BlobChunk(hashes=chunk.hashes, blobs=tuple(words_to_blobs([7, 7, 7])))
    group.submissions[who] = Submission(chunks=(forged,), digest=group.submissions[who].digest)
    with pytest.raises(GroupRecoveryError) as info:
        group.recover()
    assert info.value.reason == RecoveryReason.BLOB_MISMATCH


def test_a_blob_the_source_does_not_have_is_a_missing_update() -> None:
    group = blob_group(d=20)
    who = next(iter(group.submissions))
    (chunk,) = group.submissions[who].chunks
    lost = BlobChunk(hashes=chunk.hashes, blobs=(None,))
    group.submissions[who] = Submission(chunks=(lost,), digest=group.submissions[who].digest)
    with pytest.raises(GroupRecoveryError) as info:
        group.recover()
    assert info.value.reason == RecoveryReason.MISSING_UPDATE


def test_blob_hashes_that_do_not_fold_to_the_digest_are_refused() -> None:
    group = blob_group(d=20)
    who = next(iter(group.submissions))
    group.submissions[who] = Submission(chunks=group.submissions[who].chunks, digest=bytes(32))
    with pytest.raises(GroupRecoveryError) as info:
        group.recover()
    assert info.value.reason == RecoveryReason.DIGEST_MISMATCH
