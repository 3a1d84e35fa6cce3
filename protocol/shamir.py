"""Verifiable Shamir sharing of the round's two secrets (``docs/interfaces.md`` §4).

This module owns the share format and its Pedersen commitments. A secret is an element of
``Z_r``, where ``r`` is the order of the BN254 (alt_bn128) group G1, written as 32 big-endian
bytes. The dealer picks two random polynomials of degree ``t - 1``: ``f`` with ``f(0) = secret``
and ``g`` with ``g(0)`` uniform in ``[1, r)``; the holder at member position ``p`` gets the share
``f(p + 1)`` and the blind ``g(p + 1)`` (32 bytes each), and the dealer commits to the
coefficients as points ``C_j = a_j · G + b_j · H`` (Pedersen, 1991; ``H`` is
``protocol.bn254``'s second generator, whose discrete log nobody knows). Anybody holding the
commitments checks a share and its blind:

    share · G + blind · H == Σ_j (p + 1)^j · C_j

Why Pedersen and not Feldman (``C_j = a_j · G``): Feldman's ``C_0 = secret · G`` is public, on
the chain for good, so the secret (the X25519 mask key, the self-mask seed) would be exactly one
BN254 discrete log away from anybody who archives the chain, and BN254 is a ~100-bit curve since
the exTNFS attacks, short of X25519's 128. Pedersen commitments are perfectly hiding: ``C_0`` is
equally likely for every secret, so no amount of computation on public data yields it; binding
rests on the discrete log of ``H``, which matters only while the round runs.

The EVM has BN254 addition and scalar multiplication as precompiles (``ecAdd``, ``ecMul``), so
the shares court runs the very same check on answers and on revealed shares.

Why not pycryptodome's Shamir: it shares over GF(2^128), a field of characteristic 2 that is no
group order, so its shares cannot be checked against group commitments. The arithmetic here is
a few lines of modular interpolation; the curve operations are `protocol.bn254`'s, on integers
(py_ecc, the Ethereum Foundation's reference implementation, is what its tests compare with).

Commitments travel as ``64 · t`` bytes: ``x ‖ y`` of each ``C_j`` (32-byte big-endian
coordinates, the point at infinity as ``(0, 0)``), exactly the words the contract's
``uint256[2]`` array holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eth_utils import keccak

from protocol import bn254
from protocol.constants import MAX_GROUP, MAX_THRESHOLD, SECRET_BYTES
from protocol.errors import ConfigError, LocalProtocolError, ShareError

RandBytes = Callable[[int], bytes]

FIELD_ORDER = bn254.R  # r: the order of G1, and the field shares live in
SHARE_BYTES = SECRET_BYTES
POINT_BYTES = 64
_SCALAR_MASK = (1 << FIELD_ORDER.bit_length()) - 1

Point = bn254.Point


def random_scalar(randbytes: RandBytes) -> int:
    """A uniform element of ``[1, r)`` from injected randomness (rejection sampling, no bias)."""
    while True:
        raw = randbytes(SECRET_BYTES)
        if not isinstance(raw, bytes) or len(raw) != SECRET_BYTES:
            raise LocalProtocolError(f"randbytes must return {SECRET_BYTES} bytes")
        value = int.from_bytes(raw, "big") & _SCALAR_MASK
        if 0 < value < FIELD_ORDER:
            return value


def random_secret(randbytes: RandBytes) -> bytes:
    """A fresh shareable secret: a uniform non-zero element of ``Z_r`` as 32 bytes."""
    return random_scalar(randbytes).to_bytes(SECRET_BYTES, "big")


def scalar_of(secret: bytes, what: str = "secret") -> int:
    """The ``Z_r`` element a 32-byte secret or share encodes; ``ShareError`` if it is not one."""
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise ShareError(f"a {what} is {SECRET_BYTES} bytes")
    value = int.from_bytes(secret, "big")
    if value >= FIELD_ORDER:
        raise ShareError(f"a {what} must be below the BN254 group order")
    return value


@dataclass(frozen=True, slots=True)
class Dealing:
    """One secret dealt: ``shares[p]`` and ``blinds[p]`` for member position ``p``, and the
    Pedersen commitments to both polynomials' coefficients."""

    shares: tuple[bytes, ...]
    blinds: tuple[bytes, ...]
    commitments: bytes


def _encode_affine(affine: bn254.Affine | None) -> bytes:
    if affine is None:
        return bytes(POINT_BYTES)
    x, y = affine
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def encode_point(point: Point) -> bytes:
    """``x ‖ y`` of a G1 point, 32-byte big-endian each; infinity as 64 zero bytes."""
    return _encode_affine(bn254.to_affine(point))


def decode_points(data: bytes, count: int | None = None) -> list[Point]:
    """Points of a commitment vector; ``ShareError`` for a bad length or a point off the curve."""
    if not isinstance(data, bytes) or not data or len(data) % POINT_BYTES:
        raise ShareError(f"commitments are a non-empty multiple of {POINT_BYTES} bytes")
    if count is not None and len(data) != count * POINT_BYTES:
        raise ShareError(f"expected {count} commitment points, got {len(data) // POINT_BYTES}")
    points: list[Point] = []
    for offset in range(0, len(data), POINT_BYTES):
        x = int.from_bytes(data[offset : offset + 32], "big")
        y = int.from_bytes(data[offset + 32 : offset + POINT_BYTES], "big")
        if x == 0 and y == 0:
            points.append(bn254.INFINITY)
            continue
        if x >= bn254.P or y >= bn254.P:
            raise ShareError("a commitment coordinate is not a field element")
        if not bn254.is_on_curve(x, y):
            raise ShareError("a commitment point is not on the BN254 curve")
        points.append((x, y, 1))
    return points


def split_secret(secret: bytes, threshold: int, holders: int, randbytes: RandBytes) -> Dealing:
    """Deal ``secret`` to ``holders`` members, any ``threshold`` of whom reconstruct it.

    ``shares[p]`` is ``f(p + 1)`` and ``blinds[p]`` is ``g(p + 1)``; every coefficient but the
    secret comes from ``randbytes`` (``f``'s first, then ``g``'s). A threshold below 2 would hand
    every holder the secret itself, so it is refused.
    """
    if not 2 <= threshold <= holders <= MAX_GROUP or threshold > MAX_THRESHOLD:
        raise ConfigError(
            f"need 2 <= threshold <= holders <= {MAX_GROUP} and threshold <= {MAX_THRESHOLD}, "
            f"got t={threshold}, n={holders}"
        )
    try:
        constant = scalar_of(secret)
    except ShareError as exc:
        raise LocalProtocolError(str(exc)) from exc
    f = [constant] + [random_scalar(randbytes) for _ in range(threshold - 1)]
    g = [random_scalar(randbytes) for _ in range(threshold)]
    xs = range(1, holders + 1)
    shares = tuple(_evaluate(f, x).to_bytes(SHARE_BYTES, "big") for x in xs)
    blinds = tuple(_evaluate(g, x).to_bytes(SHARE_BYTES, "big") for x in xs)
    points = bn254.to_affine_all([bn254.pedersen(a, b) for a, b in zip(f, g, strict=True)])
    commitments = b"".join(_encode_affine(point) for point in points)
    return Dealing(shares=shares, blinds=blinds, commitments=commitments)


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    value = 0
    for a in reversed(coefficients):
        value = (value * x + a) % FIELD_ORDER
    return value


def verify_share(
    x: int, share: bytes, blind: bytes, commitments: bytes, threshold: int | None = None
) -> bool:
    """Whether ``share`` and ``blind`` are ``f(x)`` and ``g(x)`` for the polynomials behind
    ``commitments`` (the Pedersen check).

    Malformed input (a share or blind outside ``Z_r``, commitments off the curve or of the wrong
    count) is simply not a valid share: False.
    """
    try:
        value = scalar_of(share, "share")
        mask = scalar_of(blind, "blind")
        points = decode_points(commitments, threshold)
    except ShareError:
        return False
    if not isinstance(x, int) or isinstance(x, bool) or not 1 <= x <= MAX_GROUP:
        return False
    return bn254.equal(_evaluate_commitments(points, x), bn254.pedersen(value, mask))


def _evaluate_commitments(points: Sequence[Point], x: int) -> Point:
    """``Σ_j x^j · C_j``: the commitment to ``(f(x), g(x))`` the points imply."""
    # Horner: ((C_{t-1} · x + C_{t-2}) · x + ...) + C_0; x is small, so each step is cheap.
    expected = bn254.INFINITY
    for point in reversed(points):
        expected = bn254.add(bn254.small_multiply(expected, x), point)
    return expected


def commitment_digest(commitments: bytes) -> bytes:
    """``keccak256(points)``: what the market stores per dealer (``points_digest``)."""
    if len(commitments) % POINT_BYTES:
        raise ShareError(f"commitments are a multiple of {POINT_BYTES} bytes")
    return keccak(commitments)


def combine_shares(shares: Sequence[tuple[int, bytes]]) -> bytes:
    """Reconstruct a secret from ``(x, share)`` pairs (``x = position + 1``) by interpolation at 0.

    Give at least the threshold's number of shares: fewer interpolate to an unrelated value, which
    nothing here can detect (commitments are what vouch for each share). Raises ``ShareError`` for
    no shares, a duplicate x, an x outside ``[1, MAX_GROUP]`` or a share that is not in ``Z_r``.
    """
    if not shares:
        raise ShareError("no shares to combine")
    seen: set[int] = set()
    points: list[tuple[int, int]] = []
    for x, share in shares:
        if not isinstance(x, int) or isinstance(x, bool) or not 1 <= x <= MAX_GROUP:
            raise ShareError(f"share x-coordinate must be in [1, {MAX_GROUP}], got {x!r}")
        if x in seen:
            raise ShareError(f"duplicate share for x = {x}")
        seen.add(x)
        points.append((x, scalar_of(share, f"share for x = {x}")))
    secret = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num = num * xj % FIELD_ORDER
                den = den * (xj - xi) % FIELD_ORDER
        secret = (secret + yi * num * pow(den, -1, FIELD_ORDER)) % FIELD_ORDER
    return secret.to_bytes(SECRET_BYTES, "big")
