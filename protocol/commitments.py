"""Hash commitments the contract checks, byte for byte (``docs/interfaces.md`` §3, §4, §7).

This module owns: the share leaf ``keccak256(abi_encode(task, round, dealer, holder, kind,
share, blind))``; the sorted-pair Merkle tree over a dealer's ``2n`` leaves (root, proofs,
verification); the running digest of a masked update's chunks; and the running digest of the
public model's bytes. Every function mirrors a computation of ``contracts/DataMarket.vy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak

from protocol.constants import (
    ADDRESS_BITS,
    MAX_CHUNK_WORDS,
    MAX_GROUP,
    MAX_MODEL_CHUNK,
    MAX_PROOF,
    SECRET_BYTES,
    SECRET_KINDS,
    WORD_BITS,
)
from protocol.encoding import words_bytes
from protocol.errors import CommitmentError, LocalProtocolError

HASH_BYTES = 32
ZERO_DIGEST = bytes(HASH_BYTES)
_ABI_ARRAY_OFFSET = (32).to_bytes(32, "big")


def _word(value: int, bits: int, name: str) -> bytes:
    """One ABI word: an unsigned integer (or address) left-padded to 32 bytes, big-endian."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise LocalProtocolError(f"{name} must be a uint{bits}, got {value!r}")
    return value.to_bytes(32, "big")


def _hash32(name: str, value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise LocalProtocolError(f"{name} must be {HASH_BYTES} bytes")
    return value


def share_leaf(
    task: int, round: int, dealer: int, holder: int, kind: int, share: bytes, blind: bytes
) -> bytes:
    """``keccak256(abi_encode(uint256 task, uint256 round, address dealer, address holder,
    uint256 kind, bytes32 share, bytes32 blind))``: the leaf the court recomputes for a revealed
    share and its Pedersen blind (seven words)."""
    if kind not in SECRET_KINDS:
        raise LocalProtocolError(f"unknown secret kind {kind!r}")
    for name, value in (("share", share), ("blind", blind)):
        if not isinstance(value, bytes) or len(value) != SECRET_BYTES:
            raise LocalProtocolError(f"a {name} is {SECRET_BYTES} bytes")
    return keccak(
        _word(task, WORD_BITS, "task")
        + _word(round, WORD_BITS, "round")
        + _word(dealer, ADDRESS_BITS, "dealer")
        + _word(holder, ADDRESS_BITS, "holder")
        + _word(kind, WORD_BITS, "kind")
        + share
        + blind
    )


def hash_sorted(a: bytes, b: bytes) -> bytes:
    """Parent of two nodes: ``keccak256(min ‖ max)`` (32-byte strings order as big-endian ints)."""
    return keccak(a + b if a <= b else b + a)


def _layers(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every layer of the tree, leaves first; an odd last node is carried up unchanged."""
    if not leaves:
        raise LocalProtocolError("a Merkle tree needs at least one leaf")
    layer = [_hash32("leaf", leaf) for leaf in leaves]
    layers = [layer]
    while len(layer) > 1:
        parents = [hash_sorted(layer[i], layer[i + 1]) for i in range(0, len(layer) - 1, 2)]
        if len(layer) % 2:
            parents.append(layer[-1])
        layer = parents
        layers.append(layer)
    return layers


def _proof_from_layers(layers: Sequence[Sequence[bytes]], index: int) -> list[bytes]:
    if not isinstance(index, int) or not 0 <= index < len(layers[0]):
        raise LocalProtocolError(f"leaf index {index!r} out of range")
    proof = []
    for layer in layers[:-1]:
        sibling = index ^ 1
        # A node without a sibling was carried up: that level adds nothing to the proof.
        if sibling < len(layer):
            proof.append(layer[sibling])
        index //= 2
    return proof


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of the sorted-pair tree over ``leaves`` (the root of one leaf is the leaf)."""
    return _layers(leaves)[-1][0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Siblings of leaf ``index`` from the bottom up, skipping levels where it was carried."""
    return _proof_from_layers(_layers(leaves), index)


def verify_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Fold ``hash_sorted`` over ``proof`` from ``leaf`` and compare with ``root``, as the contract.

    Returns ``False`` (never raises) for anything the contract would reject, including a proof
    longer than ``MAX_PROOF`` or a node that is not 32 bytes.
    """
    if len(proof) > MAX_PROOF:
        return False
    nodes = [leaf, root, *proof]
    if not all(isinstance(n, bytes) and len(n) == HASH_BYTES for n in nodes):
        return False
    h = leaf
    for sibling in proof:
        h = hash_sorted(h, sibling)
    return h == root


def check_share(
    task: int,
    round: int,
    dealer: int,
    holder: int,
    kind: int,
    share: bytes,
    blind: bytes,
    proof: Sequence[bytes],
    root: bytes,
) -> None:
    """Raise ``CommitmentError`` unless ``share`` and ``blind`` are the ones ``dealer`` committed
    for ``holder`` in its tree.

    The Merkle half of the check the court runs on a revealed share (the Pedersen half is
    ``protocol.shamir.verify_share``); a holder runs it when shares arrive, so a dealer's bad
    share is caught before it could cost the holder a reverted unmask.
    """
    leaf = share_leaf(task, round, dealer, holder, kind, share, blind)
    if not verify_proof(leaf, proof, root):
        raise CommitmentError(
            f"share of kind {kind} from dealer {dealer:#042x} for holder {holder:#042x}"
            " does not match the committed root"
        )


def leaf_index(position: int, kind: int) -> int:
    """Index of the leaf for the holder at member ``position`` and secret ``kind``: ``2p + c``."""
    return 2 * position + kind


@dataclass(frozen=True, slots=True)
class DealtShares:
    """A dealer's commitment for one round: its ``2n`` leaves, the tree and the root it posts."""

    task: int
    round: int
    dealer: int
    members: tuple[int, ...]
    leaves: tuple[bytes, ...]
    root: bytes
    tree: tuple[tuple[bytes, ...], ...]  # every layer, leaves first, root last

    def leaf(self, position: int, kind: int) -> bytes:
        """The leaf committed for the holder at ``position`` and secret ``kind``."""
        self._check(position, kind)
        return self.leaves[leaf_index(position, kind)]

    def proof(self, position: int, kind: int) -> list[bytes]:
        """The proof the holder at ``position`` posts with its share of ``kind`` when unmasking."""
        self._check(position, kind)
        return _proof_from_layers(self.tree, leaf_index(position, kind))

    def _check(self, position: int, kind: int) -> None:
        if kind not in SECRET_KINDS:
            raise LocalProtocolError(f"unknown secret kind {kind!r}")
        if not isinstance(position, int) or not 0 <= position < len(self.members):
            raise LocalProtocolError(f"member position {position!r} out of range")


def deal_commitment(
    task: int,
    round: int,
    dealer: int,
    members: Sequence[int],
    seed_shares: Sequence[bytes],
    key_shares: Sequence[bytes],
    seed_blinds: Sequence[bytes],
    key_blinds: Sequence[bytes],
) -> DealtShares:
    """Commit to the shares a dealer hands out: one leaf per (member position, kind), ``2p + c``.

    ``seed_shares[p]`` / ``key_shares[p]`` are the shares of the self-mask seed and of the mask
    secret key for the member at position ``p`` (the dealer's own position included), and
    ``seed_blinds[p]`` / ``key_blinds[p]`` their Pedersen blinds.
    """
    members = tuple(members)
    if not 1 <= len(members) <= MAX_GROUP or len(set(members)) != len(members):
        raise LocalProtocolError("members must be 1..MAX_GROUP distinct addresses")
    if dealer not in members:
        raise LocalProtocolError("the dealer is a member of its own group")
    columns = (seed_shares, key_shares, seed_blinds, key_blinds)
    if any(len(column) != len(members) for column in columns):
        raise LocalProtocolError("one seed share, key share and blind of each per member")
    leaves: list[bytes] = []
    for holder, seed_share, key_share, seed_blind, key_blind in zip(members, *columns, strict=True):
        # Order fixed by leaf_index: kind 0 (self seed) then kind 1 (mask key) per holder.
        for kind, share, blind in (
            (SECRET_KINDS[0], seed_share, seed_blind),
            (SECRET_KINDS[1], key_share, key_blind),
        ):
            leaves.append(share_leaf(task, round, dealer, holder, kind, share, blind))
    layers = _layers(leaves)
    return DealtShares(
        task=task,
        round=round,
        dealer=dealer,
        members=members,
        leaves=tuple(leaves),
        root=layers[-1][0],
        tree=tuple(tuple(layer) for layer in layers),
    )


def abi_encode_words(words: Sequence[int]) -> bytes:
    """ABI encoding of one ``uint256[]`` argument: offset ``0x20`` ‖ length ‖ words (§3)."""
    return _ABI_ARRAY_OFFSET + len(words).to_bytes(32, "big") + words_bytes(words)


def chunk_digest(prev: bytes, words: Sequence[int]) -> bytes:
    """Next running digest of a submission: ``keccak256(prev ‖ keccak256(abi_encode(words)))``.

    Chunks hold ``1..MAX_CHUNK_WORDS`` words, as the contract's ``submit`` accepts.
    """
    _hash32("previous digest", prev)
    if not 1 <= len(words) <= MAX_CHUNK_WORDS:
        raise LocalProtocolError(f"a chunk holds 1..{MAX_CHUNK_WORDS} words, got {len(words)}")
    return keccak(prev + keccak(abi_encode_words(words)))


def chunk_sizes(count: int, chunk_words: int = MAX_CHUNK_WORDS) -> list[int]:
    """The sizes of ``split_chunks``'s chunks of an update of ``count`` words: the fewest chunks
    of at most ``chunk_words`` words, evenly, the longer ones first.

    Each transaction pays its base cost once, so the fewest chunks win; each chunk also pays a
    fixed execution cost that only a long chunk's calldata floor hides, so a short remainder
    chunk would show above the floor (measured: 1.009x -> 1.006x of it at d = 200k, 16-bit).
    """
    if not 1 <= chunk_words <= MAX_CHUNK_WORDS:
        raise LocalProtocolError(f"chunk size must be in 1..{MAX_CHUNK_WORDS}")
    if count < 1:
        raise LocalProtocolError("an update has at least one word")
    chunks = -(-count // chunk_words)
    size, longer = divmod(count, chunks)
    return [size + (index < longer) for index in range(chunks)]


def split_chunks(words: Sequence[int], chunk_words: int = MAX_CHUNK_WORDS) -> list[Sequence[int]]:
    """Cut a packed update into the chunks ``chunk_sizes`` gives, in order. Chunks are slices of
    `words` (of `PackedWords`, packed words again)."""
    chunks, start = [], 0
    for size in chunk_sizes(len(words), chunk_words):
        chunks.append(words[start : start + size])
        start += size
    return chunks


def update_digest(chunks: Sequence[Sequence[int]]) -> bytes:
    """The digest the contract holds after all ``chunks`` of one submission, from ``bytes32(0)``."""
    digest = ZERO_DIGEST
    for chunk in chunks:
        digest = chunk_digest(digest, chunk)
    return digest


def direct_digest(words: Sequence[int]) -> bytes:
    """The digest a direct task's data owner commits to (``commit_update``) when it would answer
    a challenge with event chunks: ``update_digest`` of the fewest even chunks of at most
    ``MAX_CHUNK_WORDS`` words (``split_chunks``), as ``Market.answer_update`` posts them."""
    return update_digest(split_chunks(words, MAX_CHUNK_WORDS))


def model_digest(prev: bytes, data: bytes) -> bytes:
    """Next running digest of the public model: ``keccak256(prev ‖ keccak256(data))`` (§7)."""
    _hash32("previous digest", prev)
    if not isinstance(data, bytes) or not 1 <= len(data) <= MAX_MODEL_CHUNK:
        raise LocalProtocolError(f"a model chunk holds 1..{MAX_MODEL_CHUNK} bytes")
    return keccak(prev + keccak(data))


def model_chunks(data: bytes) -> list[bytes]:
    """The public model's bytes as `publish_model` takes them: in order, MAX_MODEL_CHUNK each."""
    if not isinstance(data, bytes) or not data:
        raise LocalProtocolError("a public model has at least one byte")
    return [data[i : i + MAX_MODEL_CHUNK] for i in range(0, len(data), MAX_MODEL_CHUNK)]


def published_model_digest(data: bytes) -> bytes:
    """The model hash of `data` once published with `model_chunks` (the contract's digest)."""
    digest = ZERO_DIGEST
    for chunk in model_chunks(data):
        digest = model_digest(digest, chunk)
    return digest
