"""Properties of protocol.commitments: leaf encoding, sorted-pair Merkle proofs, running digests."""

import eth_abi
import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from protocol.commitments import (
    ZERO_DIGEST,
    abi_encode_words,
    chunk_digest,
    deal_commitment,
    hash_sorted,
    merkle_proof,
    merkle_root,
    model_digest,
    share_leaf,
    split_chunks,
    update_digest,
    verify_proof,
)
from protocol.constants import KIND_MASK_KEY, KIND_SELF_SEED, MAX_PROOF
from protocol.errors import LocalProtocolError

hashes = st.binary(min_size=32, max_size=32)
uint256 = st.integers(0, 2**256 - 1)
address = st.integers(0, 2**160 - 1)


def flip(b: bytes, i: int) -> bytes:
    return b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1 :]


@given(
    task=uint256,
    rnd=uint256,
    dealer=address,
    holder=address,
    kind=st.sampled_from([KIND_SELF_SEED, KIND_MASK_KEY]),
    share=hashes,
    blind=hashes,
)
def test_leaf_matches_eth_abi(task, rnd, dealer, holder, kind, share, blind) -> None:
    encoded = eth_abi.encode(
        ["uint256", "uint256", "address", "address", "uint256", "bytes32", "bytes32"],
        [task, rnd, dealer.to_bytes(20, "big"), holder.to_bytes(20, "big"), kind, share, blind],
    )
    assert len(encoded) == 7 * 32
    assert share_leaf(task, rnd, dealer, holder, kind, share, blind) == keccak(encoded)


def test_leaf_refusals() -> None:
    with pytest.raises(LocalProtocolError):
        share_leaf(1, 0, 2**160, 1, 0, bytes(32), bytes(32))
    with pytest.raises(LocalProtocolError):
        share_leaf(1, 0, 1, 2, 2, bytes(32), bytes(32))
    with pytest.raises(LocalProtocolError):
        share_leaf(1, 0, 1, 2, 0, bytes(31), bytes(32))
    with pytest.raises(LocalProtocolError):
        share_leaf(1, 0, 1, 2, 0, bytes(32), bytes(33))


def reference_root(leaves: list[bytes]) -> bytes:
    """The docs' tree, written independently: sort each pair as integers, carry the odd node."""
    layer = leaves
    while len(layer) > 1:
        nxt = []
        for i in range(0, len(layer), 2):
            if i + 1 == len(layer):
                nxt.append(layer[i])
            else:
                a, b = sorted((layer[i], layer[i + 1]), key=lambda h: int.from_bytes(h, "big"))
                nxt.append(keccak(a + b))
        layer = nxt
    return layer[0]


@given(leaves=st.lists(hashes, min_size=1, max_size=2**MAX_PROOF // 8))
def test_every_leaf_proof_verifies(leaves: list[bytes]) -> None:
    root = merkle_root(leaves)
    assert root == reference_root(leaves)
    for i, leaf in enumerate(leaves):
        proof = merkle_proof(leaves, i)
        assert len(proof) <= MAX_PROOF
        assert verify_proof(leaf, proof, root)


@given(leaves=st.lists(hashes, min_size=2, max_size=24, unique=True), data=st.data())
def test_any_changed_byte_fails(leaves: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle_proof(leaves, i)
    byte = data.draw(st.integers(0, 31))
    assert not verify_proof(flip(leaves[i], byte), proof, root)
    assert not verify_proof(leaves[i], proof, flip(root, byte))
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:j], flip(proof[j], byte), *proof[j + 1 :]]
        assert not verify_proof(leaves[i], bad, root)
        assert not verify_proof(leaves[i], proof[:-1], root)


def test_tree_shape_examples() -> None:
    a, b, c = (keccak(bytes([i])) for i in range(3))
    assert merkle_root([a]) == a and merkle_proof([a], 0) == []
    assert merkle_root([a, b]) == hash_sorted(b, a) == keccak(min(a, b) + max(a, b))
    # c is carried up one level: its proof has one sibling, not two
    assert merkle_proof([a, b, c], 2) == [hash_sorted(a, b)]
    assert merkle_root([a, b, c]) == hash_sorted(hash_sorted(a, b), c)


def test_verify_refuses_overlong_and_malformed_proofs() -> None:
    a = keccak(b"a")
    assert not verify_proof(a, [a] * (MAX_PROOF + 1), a)
    assert not verify_proof(a, [b"short"], a)
    with pytest.raises(LocalProtocolError):
        merkle_root([])
    with pytest.raises(LocalProtocolError):
        merkle_proof([a], 1)


@given(n=st.integers(1, 12), data=st.data())
def test_deal_commitment_layout(n: int, data: st.DataObject) -> None:
    members = data.draw(st.lists(address, min_size=n, max_size=n, unique=True))
    dealer = data.draw(st.sampled_from(members))
    seed_shares = [keccak(b"s" + bytes([p])) for p in range(n)]
    key_shares = [keccak(b"k" + bytes([p])) for p in range(n)]
    seed_blinds = [keccak(b"S" + bytes([p])) for p in range(n)]
    key_blinds = [keccak(b"K" + bytes([p])) for p in range(n)]
    dealt = deal_commitment(5, 1, dealer, members, seed_shares, key_shares, seed_blinds, key_blinds)
    assert len(dealt.leaves) == 2 * n
    assert dealt.root == merkle_root(list(dealt.leaves))
    for p, holder in enumerate(members):
        for kind, share, blind in (
            (KIND_SELF_SEED, seed_shares[p], seed_blinds[p]),
            (KIND_MASK_KEY, key_shares[p], key_blinds[p]),
        ):
            leaf = share_leaf(5, 1, dealer, holder, kind, share, blind)
            assert dealt.leaves[2 * p + kind] == dealt.leaf(p, kind) == leaf
            assert verify_proof(leaf, dealt.proof(p, kind), dealt.root)
            # a share revealed under the other kind, or with another blind, fails
            wrong = share_leaf(5, 1, dealer, holder, 1 - kind, share, blind)
            assert not verify_proof(wrong, dealt.proof(p, kind), dealt.root)
            other_blind = share_leaf(5, 1, dealer, holder, kind, share, share)
            assert not verify_proof(other_blind, dealt.proof(p, kind), dealt.root)


def test_deal_commitment_refusals() -> None:
    s = [bytes(32)] * 2
    with pytest.raises(LocalProtocolError):
        deal_commitment(1, 0, 9, [1, 2], s, s, s, s)  # dealer not a member
    with pytest.raises(LocalProtocolError):
        deal_commitment(1, 0, 1, [1, 1], s, s, s, s)
    with pytest.raises(LocalProtocolError):
        deal_commitment(1, 0, 1, [1, 2], s, s[:1], s, s)
    with pytest.raises(LocalProtocolError):
        deal_commitment(1, 0, 1, [1, 2], s, s, s, s[:1])
    dealt = deal_commitment(1, 0, 1, [1, 2], s, s, s, s)
    with pytest.raises(LocalProtocolError):
        dealt.proof(2, 0)
    with pytest.raises(LocalProtocolError):
        dealt.proof(0, 2)


@given(words=st.lists(uint256, min_size=1, max_size=40), prev=hashes)
def test_chunk_digest_matches_abi_encoding(words: list[int], prev: bytes) -> None:
    encoded = eth_abi.encode(["uint256[]"], [words])
    assert abi_encode_words(words) == encoded
    assert chunk_digest(prev, words) == keccak(prev + keccak(encoded))


def test_update_digest_chains_chunks() -> None:
    words = list(range(10))
    chunks = split_chunks(words, 4)
    assert chunks == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    d = ZERO_DIGEST
    for chunk in chunks:
        d = chunk_digest(d, chunk)
    assert update_digest(chunks) == d
    with pytest.raises(LocalProtocolError):
        chunk_digest(ZERO_DIGEST, [])
    with pytest.raises(LocalProtocolError):
        chunk_digest(ZERO_DIGEST, [2**256])


@given(words=st.lists(st.integers(0, 99), min_size=1, max_size=3_000), limit=st.integers(1, 4_096))
def test_split_chunks_fewest_and_even(words: list[int], limit: int) -> None:
    chunks = split_chunks(words, limit)
    sizes = [len(c) for c in chunks]
    assert max(sizes) <= limit
    assert len(chunks) == -(-len(words) // limit)  # no fewer chunks of at most `limit` exist
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)
    assert [w for chunk in chunks for w in chunk] == words


def test_split_chunks_of_the_demo_update() -> None:
    # 46,731 lanes of 32 bits: 5,842 words, one transaction
    assert [len(c) for c in split_chunks(list(range(5_842)))] == [5_842]
    # an update one word over the limit: two chunks of 3,073 + 3,072, not 6,144 + 1
    assert [len(c) for c in split_chunks(list(range(6_145)))] == [3_073, 3_072]
    with pytest.raises(LocalProtocolError):
        split_chunks([], 4)
    with pytest.raises(LocalProtocolError):
        split_chunks([1], 6_145)


@given(data=st.binary(min_size=1, max_size=300), prev=hashes)
def test_model_digest(data: bytes, prev: bytes) -> None:
    assert model_digest(prev, data) == keccak(prev + keccak(data))


def test_model_digest_refuses_bad_chunk_sizes() -> None:
    with pytest.raises(LocalProtocolError):
        model_digest(ZERO_DIGEST, bytes(65537))
    with pytest.raises(LocalProtocolError):  # the contract refuses empty chunks too
        model_digest(ZERO_DIGEST, b"")
