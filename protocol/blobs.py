"""Masked updates as EIP-4844 blobs (docs/interfaces.md §3b): words to blobs and back, KZG
commitments, proofs and versioned hashes.

A blob is 4096 field elements of 32 bytes, big-endian, each below the BLS12-381 scalar modulus.
Each element carries 31 payload bytes after a zero first byte, so a blob carries 126,976 bytes:
3,968 words of 32 bytes. A chunk's words, big-endian and back to back, fill its blobs in order;
every blob is full except the update's last, which is zero-padded. A reader takes the words the
chunk counts as and never reads an element's first byte, so any blob the network accepted decodes.

KZG comes from `ckzg` with the trusted setup eth-account ships, loaded once per process (a few
seconds): eth-account's own blob signing reloads it on every call.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import ckzg
import eth_account
import numpy as np

from protocol.commitments import chunk_digest
from protocol.constants import BLOB_WORDS
from protocol.encoding import words_bytes
from protocol.errors import EncodingError, RemoteProtocolError

FIELD_ELEMENTS_PER_BLOB = 4096
BYTES_PER_FIELD_ELEMENT = 32
BYTES_PER_BLOB = FIELD_ELEMENTS_PER_BLOB * BYTES_PER_FIELD_ELEMENT
PAYLOAD_BYTES = BYTES_PER_FIELD_ELEMENT - 1
WORD_BYTES = 32
assert FIELD_ELEMENTS_PER_BLOB * PAYLOAD_BYTES == BLOB_WORDS * WORD_BYTES
# EIP-4844: a versioned hash is this byte, then sha256(commitment) without its first byte
VERSIONED_HASH_VERSION_KZG = b"\x01"
# blobs one transaction may carry: EIP-7594 (Osaka) caps it at 6, as anvil 1.7.1 does
MAX_BLOBS_PER_TX = 6

_SETUP_FILE = (
    Path(eth_account.__file__).parent / "typed_transactions/blob_transactions/kzg_trusted_setup.txt"
)
_setup_lock = threading.Lock()
_setup: object | None = None


class BlobMismatch(RemoteProtocolError):
    """A blob does not hash to the versioned hash the chain recorded for it."""


def trusted_setup() -> object:
    """The KZG trusted setup, loaded on first use and kept for the process."""
    global _setup
    with _setup_lock:
        if _setup is None:
            _setup = ckzg.load_trusted_setup(str(_SETUP_FILE), 0)
        return _setup


def blob_count(words: int) -> int:
    """Blobs that carry `words` words."""
    return -(-words // BLOB_WORDS)


def blob_chunks(words: Sequence[int], blobs_per_tx: int = MAX_BLOBS_PER_TX) -> list[list[int]]:
    """An update cut into transactions of `blobs_per_tx` full blobs, the last one the rest."""
    if blobs_per_tx < 1:
        raise ValueError("blobs_per_tx must be at least 1")
    size = blobs_per_tx * BLOB_WORDS
    return [list(words[i : i + size]) for i in range(0, len(words), size)]


def words_to_blobs(words: Sequence[int]) -> list[bytes]:
    """The blobs carrying `words`, in order (the last one zero-padded)."""
    if not words:
        return []
    try:
        data = words_bytes(words)
    except EncodingError:
        raise ValueError("words must be integers in [0, 2**256)") from None
    count = blob_count(len(words))
    payload = np.zeros(count * FIELD_ELEMENTS_PER_BLOB * PAYLOAD_BYTES, dtype=np.uint8)
    payload[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    elements = np.zeros((count * FIELD_ELEMENTS_PER_BLOB, BYTES_PER_FIELD_ELEMENT), np.uint8)
    elements[:, 1:] = payload.reshape(-1, PAYLOAD_BYTES)
    raw = elements.tobytes()
    return [raw[i : i + BYTES_PER_BLOB] for i in range(0, len(raw), BYTES_PER_BLOB)]


def blobs_to_words(blobs: Sequence[bytes], words: int) -> list[int]:
    """The first `words` words the blobs carry (§3b); an element's first byte is not read."""
    if any(len(b) != BYTES_PER_BLOB for b in blobs):
        raise ValueError(f"a blob is {BYTES_PER_BLOB} bytes")
    if words > len(blobs) * BLOB_WORDS:
        raise ValueError(f"{len(blobs)} blobs carry at most {len(blobs) * BLOB_WORDS} words")
    elements = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(-1, BYTES_PER_FIELD_ELEMENT)
    data = elements[:, 1:].tobytes()[: words * WORD_BYTES]
    view = memoryview(data)
    return [
        int.from_bytes(view[i : i + WORD_BYTES], "big") for i in range(0, len(data), WORD_BYTES)
    ]


def commitment(blob: bytes) -> bytes:
    """The blob's 48-byte KZG commitment."""
    return bytes(ckzg.blob_to_kzg_commitment(blob, trusted_setup()))


def cell_proofs(blob: bytes) -> list[bytes]:
    """The blob's 128 cell proofs (EIP-7594), which an Osaka transaction wrapper carries."""
    _, proofs = ckzg.compute_cells_and_kzg_proofs(blob, trusted_setup())
    return [bytes(p) for p in proofs]


def versioned_hash(kzg_commitment: bytes) -> bytes:
    """What BLOBHASH returns for a blob with this commitment."""
    return VERSIONED_HASH_VERSION_KZG + hashlib.sha256(kzg_commitment).digest()[1:]


def blob_update_digest(words: Sequence[int], blobs_per_tx: int = MAX_BLOBS_PER_TX) -> bytes:
    """The running digest an update leaves when posted as blobs, `blobs_per_tx` a transaction
    (`blob_chunks`): each chunk folds its blobs' versioned hashes, read as big-endian words
    (docs/interfaces.md §3b). What a direct task's data owner commits to when it would answer a
    challenge with blobs."""
    digest = bytes(32)
    for chunk in blob_chunks(words, blobs_per_tx):
        hashes = [versioned_hash(commitment(blob)) for blob in words_to_blobs(chunk)]
        digest = chunk_digest(digest, [int.from_bytes(h, "big") for h in hashes])
    return digest


def check_blob(blob: bytes, expected: bytes) -> None:
    """Raise BlobMismatch unless `blob` is the blob whose versioned hash is `expected`."""
    if len(blob) != BYTES_PER_BLOB:
        raise BlobMismatch(f"a blob is {BYTES_PER_BLOB} bytes, got {len(blob)}")
    try:
        found = versioned_hash(commitment(blob))
    except RuntimeError as error:  # ckzg: an element not below the field modulus
        raise BlobMismatch(f"not a blob: {error}") from None
    if found != expected:
        raise BlobMismatch(f"blob hashes to {found.hex()}, the chain recorded {expected.hex()}")
