"""The chain-data decode step: records from ABI values, each broken rule refused by its name."""

from __future__ import annotations

import pytest

from protocol.chain_data import (
    BlobChunk,
    ChainDataError,
    ChainDataReason,
    MemberCommitment,
    RevealedShare,
    Submission,
    address,
    answered_delivery,
    check_commitments,
    check_submitters,
    member_commitment,
    revealed_share,
    submission,
)
from protocol.constants import MAX_CHUNK_BLOBS, MAX_CHUNK_WORDS, MAX_PROOF
from protocol.errors import RemoteProtocolError
from protocol.shamir import FIELD_ORDER

DEALER = "0x" + "Ab" * 20  # checksummed case, as the ABI decoders return addresses
HOLDER = "0x" + "01" * 20
B32 = bytes(range(32))
TOP_SHARE = (FIELD_ORDER - 1).to_bytes(32, "big")
ANSWER = {
    "dealer": DEALER,
    "holder": HOLDER,
    "seed_share": B32,
    "seed_blind": TOP_SHARE,
    "key_share": TOP_SHARE,
    "key_blind": B32,
    "seed_proof": (B32,) * MAX_PROOF,
    "key_proof": (),
    "mask_public": B32,
    "shares_root": B32,
    "points": bytes(4 * 64),
}


def refused(reason: ChainDataReason) -> pytest.RaisesExc:
    return pytest.raises(ChainDataError, match=f"^{reason}")


def test_well_formed_values_decode_to_their_records() -> None:
    assert address(DEALER) == int(DEALER, 16) == address(int(DEALER, 16))
    assert member_commitment(DEALER, B32, B32, B32) == MemberCommitment(
        int(DEALER, 16), B32, B32, B32
    )
    assert revealed_share(DEALER, HOLDER, 1, TOP_SHARE, B32) == RevealedShare(
        int(DEALER, 16), int(HOLDER, 16), 1, TOP_SHARE, B32
    )
    # chunks come in event order, which need not be chunk order; a blob chunk keeps its blobs
    blobs = BlobChunk(hashes=(B32,), blobs=(None,))
    got = submission(DEALER, [(2, [5]), (0, [0, 2**256 - 1]), (1, blobs)], B32)
    assert got == Submission(chunks=((0, 2**256 - 1), blobs, (5,)), digest=B32)
    delivery = answered_delivery(3, 1, **ANSWER)
    assert delivery.dealer == int(DEALER, 16).to_bytes(20, "big")
    assert delivery.key_share == TOP_SHARE and delivery.seed_proof == (B32,) * MAX_PROOF
    assert (delivery.seed_blind, delivery.key_blind) == (TOP_SHARE, B32)
    assert issubclass(ChainDataError, RemoteProtocolError)


@pytest.mark.parametrize(
    "value",
    ["0x1234", "Ab" * 21, "0x" + "g" * 40, "0x" + "0" * 41, -1, 2**160, True, 1.0, B32[:20]],
)
def test_address_reason(value: object) -> None:
    with refused(ChainDataReason.ADDRESS):
        revealed_share(value, HOLDER, 0, B32, B32)  # type: ignore[arg-type]
    with refused(ChainDataReason.ADDRESS):
        member_commitment(value, B32, B32, B32)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        lambda: member_commitment(DEALER, B32[:31], B32, B32),
        lambda: member_commitment(DEALER, B32, B32 + b"\0", B32),
        lambda: member_commitment(DEALER, B32, B32, B32.hex()),
        lambda: revealed_share(DEALER, HOLDER, 0, B32[:31], B32),
        lambda: revealed_share(DEALER, HOLDER, 0, B32, B32 + b"\0"),
        lambda: answered_delivery(3, 1, **{**ANSWER, "key_blind": B32[:31]}),
        lambda: submission(DEALER, [(0, [1])], B32[:31]),
        lambda: submission(DEALER, [(0, BlobChunk(hashes=(B32[:31],), blobs=(None,)))], B32),
        lambda: answered_delivery(3, 1, **{**ANSWER, "seed_proof": (B32[:31],)}),
        lambda: answered_delivery(3, 1, **{**ANSWER, "key_proof": (B32,) * (MAX_PROOF + 1)}),
        lambda: answered_delivery(3, 1, **{**ANSWER, "points": bytes(2 * 64)}),
        lambda: answered_delivery(3, 1, **{**ANSWER, "mask_public": B32[:16]}),
        lambda: check_commitments([1], [MemberCommitment(1, B32, B32[:31], B32)]),
    ],
)
def test_field_size_reason(build) -> None:
    with refused(ChainDataReason.FIELD_SIZE):
        build()


@pytest.mark.parametrize("kind", [2, -1, True, "0", None])
def test_kind_reason(kind: object) -> None:
    with refused(ChainDataReason.KIND):
        revealed_share(DEALER, HOLDER, kind, B32, B32)  # type: ignore[arg-type]


@pytest.mark.parametrize("share", [FIELD_ORDER, 2**256 - 1])
def test_share_range_reason(share: int) -> None:
    raw = share.to_bytes(32, "big")
    with refused(ChainDataReason.SHARE_RANGE):
        revealed_share(DEALER, HOLDER, 0, raw, B32)
    with refused(ChainDataReason.SHARE_RANGE):
        revealed_share(DEALER, HOLDER, 0, B32, raw)
    for field in ("seed_share", "seed_blind", "key_share", "key_blind"):
        with refused(ChainDataReason.SHARE_RANGE):
            answered_delivery(3, 1, **{**ANSWER, field: raw})


@pytest.mark.parametrize("word", [2**256, -1, True, 1.0, "1"])
def test_word_range_reason(word: object) -> None:
    with refused(ChainDataReason.WORD_RANGE):
        submission(DEALER, [(0, [1, 2]), (1, [3, word])], B32)  # type: ignore[list-item]


@pytest.mark.parametrize(
    "chunk",
    [
        (),
        (0,) * (MAX_CHUNK_WORDS + 1),
        BlobChunk(hashes=(), blobs=()),
        BlobChunk(hashes=(B32,) * (MAX_CHUNK_BLOBS + 1), blobs=(None,) * (MAX_CHUNK_BLOBS + 1)),
    ],
)
def test_chunk_size_reason(chunk: tuple[int, ...] | BlobChunk) -> None:
    with refused(ChainDataReason.CHUNK_SIZE):
        submission(DEALER, [(0, [1]), (1, chunk)], B32)


@pytest.mark.parametrize("indices", [[1], [0, 2], [0, 0], [0, 1, 1], [-1, 0]])
def test_chunk_order_reason(indices: list[int]) -> None:
    with refused(ChainDataReason.CHUNK_ORDER):
        submission(DEALER, [(i, [7]) for i in indices], B32)


def test_group_reasons() -> None:
    members = [1, 2, 3]

    def mc(member: int) -> MemberCommitment:
        return MemberCommitment(member, B32, B32, B32)

    assert check_commitments(members, [mc(3), mc(1)]) == {1, 3}
    with refused(ChainDataReason.NOT_MEMBER):
        check_commitments(members, [mc(1), mc(4)])
    with refused(ChainDataReason.DUPLICATE):
        check_commitments(members, [mc(2), mc(2)])
    assert check_submitters({1, 2}, (2, 1)) == (2, 1)
    with refused(ChainDataReason.DUPLICATE):
        check_submitters({1, 2}, (1, 2, 1))
    with refused(ChainDataReason.NOT_COMMITTED):
        check_submitters({1, 2}, (1, 3))
