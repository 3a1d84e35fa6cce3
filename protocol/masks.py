"""Key agreement and mask expansion for double masking (``docs/interfaces.md`` §6).

This module owns the round's X25519 mask key pair, the HKDF-SHA256 derivation of a pairwise seed
bound to (task, round, both addresses), the AES-256-CTR expansion of a 256-bit seed into a ring
vector, and the masked update ``y = x + PRG(b) + Σ sign(i, j) · PRG(s_ij)``. Recovery uses
``pairwise_mask_sum`` to recompute, from a dropped DO's reconstructed key, the pairwise masks that
the survivors' updates still carry.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.constants import ADDRESS_BITS, SECRET_BYTES, WORD_BITS
from protocol.encoding import ring_dtype
from protocol.errors import EncodingError, KeyAgreementError, LocalProtocolError
from protocol.shamir import random_secret

PAIRWISE_INFO_PREFIX = b"omnilytics/pairwise/v1"
KEY_BYTES = 32
_ZERO_BLOCK = bytes(16)
_LE_DTYPES = {16: np.dtype("<u2"), 32: np.dtype("<u4")}

RandBytes = Callable[[int], bytes]


def _check_secret(name: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != SECRET_BYTES:
        raise LocalProtocolError(f"{name} must be {SECRET_BYTES} bytes")


def _check_uint(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise LocalProtocolError(f"{name} must be a uint{bits}, got {value!r}")


@dataclass(frozen=True, slots=True)
class MaskKeyPair:
    """A DO's X25519 mask key pair for one round; ``secret`` (32 bytes) gets Shamir-shared."""

    secret: bytes
    public: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> MaskKeyPair:
        """Rebuild the pair from its 32-byte secret (e.g. one reconstructed from shares)."""
        _check_secret("mask secret key", secret)
        public = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
        return cls(secret=secret, public=public)

    @classmethod
    def generate(cls, randbytes: RandBytes) -> MaskKeyPair:
        """A fresh pair from injected randomness (``os.urandom`` or ``secrets.token_bytes``).

        The secret is a uniform element of the BN254 scalar field (``protocol.shamir``), so that
        it can be dealt with Pedersen commitments; as an X25519 private key it keeps ~253.6 bits.
        """
        return cls.from_secret(random_secret(randbytes))


def new_self_seed(randbytes: RandBytes) -> bytes:
    """A fresh self-mask seed ``b_i`` for one round: a uniform element of the BN254 scalar field
    (~253.6 bits, shareable with Pedersen commitments), from injected randomness."""
    seed = random_secret(randbytes)
    _check_secret("self seed", seed)
    return seed


def pairwise_sign(me: int, peer: int) -> int:
    """``+1`` if ``me`` orders below ``peer`` as a 160-bit address, else ``-1``; so masks cancel."""
    if me == peer:
        raise LocalProtocolError("a DO has no pairwise mask with itself")
    return 1 if me < peer else -1


def pairwise_seed(
    my_secret: bytes, peer_public: bytes, task: int, round: int, my_addr: int, peer_addr: int
) -> bytes:
    """The 32-byte seed ``s_ij`` shared by two DOs: HKDF-SHA256 over their X25519 secret.

    ``info`` binds the seed to the task, the round and the unordered pair of addresses
    (``prefix ‖ task (32 B) ‖ round (32 B) ‖ lo_addr (20 B) ‖ hi_addr (20 B)``, big-endian like
    the ABI), so both sides derive the same seed and no seed is reused across rounds or tasks.
    A low-order peer key (all-zero shared secret) raises ``KeyAgreementError``.
    """
    _check_secret("mask secret key", my_secret)
    _check_uint("task", task, WORD_BITS)
    _check_uint("round", round, WORD_BITS)
    _check_uint("my_addr", my_addr, ADDRESS_BITS)
    _check_uint("peer_addr", peer_addr, ADDRESS_BITS)
    if my_addr == peer_addr:
        raise LocalProtocolError("a DO has no pairwise seed with itself")
    if not isinstance(peer_public, bytes) or len(peer_public) != KEY_BYTES:
        raise KeyAgreementError(f"mask public key of {peer_addr:#042x} is not {KEY_BYTES} bytes")
    try:
        shared = X25519PrivateKey.from_private_bytes(my_secret).exchange(
            X25519PublicKey.from_public_bytes(peer_public)
        )
    except ValueError as exc:
        # OpenSSL refuses to return the all-zero secret of a low-order point.
        raise KeyAgreementError(f"low-order mask public key of {peer_addr:#042x}") from exc
    if shared == bytes(len(shared)):
        raise KeyAgreementError(f"low-order mask public key of {peer_addr:#042x}")
    lo, hi = sorted((my_addr, peer_addr))
    info = (
        PAIRWISE_INFO_PREFIX
        + task.to_bytes(32, "big")
        + round.to_bytes(32, "big")
        + lo.to_bytes(20, "big")
        + hi.to_bytes(20, "big")
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def expand(seed: bytes, d: int, lane_bits: int) -> np.ndarray:
    """``PRG(seed, d, k)``: the AES-256-CTR keystream of ``seed`` read as ``d`` little-endian lanes.

    The keystream is the encryption of zeros under a 16-byte zero counter block, computed by
    OpenSSL in one call and viewed by numpy without a per-lane loop.
    """
    _check_secret("PRG seed", seed)
    dtype = ring_dtype(lane_bits)
    try:
        d = operator.index(d)  # numpy integers (e.g. an array's size) are fine, floats are not
    except TypeError:
        raise EncodingError(f"d must be an integer, got {d!r}") from None
    if d < 1:
        raise EncodingError(f"a mask has at least one lane, got d = {d!r}")
    n = d * lane_bits // 8
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(_ZERO_BLOCK)).encryptor()
    # update_into a bytearray gives a writable numpy view without copying the keystream;
    # cryptography asks for block-size - 1 spare bytes in the output buffer.
    out = bytearray(n + 15)
    encryptor.update_into(bytes(n), out)
    return np.frombuffer(out, dtype=_LE_DTYPES[lane_bits], count=d).astype(dtype, copy=False)


def pairwise_mask_sum(
    my_secret: bytes,
    *,
    my_addr: int,
    peers: Mapping[int, bytes],
    task: int,
    round: int,
    d: int,
    lane_bits: int,
) -> np.ndarray:
    """``Σ_j sign(me, j) · PRG(s_me,j)`` over ``peers`` (address -> mask public key), mod ``2**k``.

    A DO adds this to its update. After DO ``j`` dropped, its pairwise masks stay in the sum of
    the survivors ``S`` as ``Σ_{i ∈ S} sign(i, j) · PRG(s_ij)``; calling this with ``j``'s
    reconstructed secret, ``my_addr = j`` and ``peers`` = the survivors yields exactly the
    negation, so recovery *adds* it to the survivors' sum to cancel them.
    """
    if my_addr in peers:
        raise LocalProtocolError("peers must not contain the DO itself")
    total = np.zeros(d, dtype=ring_dtype(lane_bits))
    for peer_addr, peer_public in peers.items():
        seed = pairwise_seed(my_secret, peer_public, task, round, my_addr, peer_addr)
        mask = expand(seed, d, lane_bits)
        # Unsigned wrapping addition and subtraction are the ring operations.
        if pairwise_sign(my_addr, peer_addr) > 0:
            np.add(total, mask, out=total)
        else:
            np.subtract(total, mask, out=total)
    return total


def mask_update(
    x: np.ndarray,
    *,
    self_seed: bytes,
    my_keys: MaskKeyPair,
    my_addr: int,
    peers: Mapping[int, bytes],
    task: int,
    round: int,
    lane_bits: int,
) -> np.ndarray:
    """The masked update ``y = x + PRG(b) + Σ_j sign(me, j) · PRG(s_me,j)`` in the ring.

    ``x`` is the quantized update (ring dtype of ``lane_bits``); ``peers`` maps the address of
    every *other* committed group member to its round mask public key.
    """
    dtype = ring_dtype(lane_bits)
    if not isinstance(x, np.ndarray) or x.dtype != dtype or x.ndim != 1 or x.size == 0:
        raise EncodingError(f"x must be a non-empty 1-d {np.dtype(dtype)} ring vector")
    y = pairwise_mask_sum(
        my_keys.secret,
        my_addr=my_addr,
        peers=peers,
        task=task,
        round=round,
        d=x.size,
        lane_bits=lane_bits,
    )
    np.add(y, x, out=y)
    np.add(y, expand(self_seed, x.size, lane_bits), out=y)
    return y
