"""BN254 (alt_bn128) G1 arithmetic on plain integers, for the Pedersen checks of `protocol.shamir`.

py_ecc is the reference (the tests compare against it, and its constants are used here), but it
wraps every coordinate in a field object: a data owner's commitment work (the Feldman scheme of
before: six commitments dealt and eight shares checked a round, in a group of five) took about
12 ms of CPU there, the largest part of its protocol work. Here the same curve, ``y² = x³ + 3``
over ``F_p``, works on integers:

- points in Jacobian coordinates ``(X, Y, Z)`` standing for ``(X / Z², Y / Z³)``; the point at
  infinity has ``Z = 0``;
- two generators: ``G = (1, 2)`` and ``H``, a second one nobody knows the discrete log of (below);
- ``g_multiply``, ``h_multiply`` and ``pedersen(a, b) = a·G + b·H`` through tables of
  ``k · 256^i · G`` (and of ``H``) in affine coordinates (32 windows of 8 bits, 255 points each,
  built once per generator, 60 ms to a few hundred depending on load): at most 32 mixed
  additions per generator;
- ``small_multiply`` by the small x-coordinates of shares (Horner's rule in ``verify_share``),
  ``add`` of two points, ``equal`` without leaving Jacobian coordinates, and ``to_affine`` (one
  inversion) for encoding.

``H`` comes from a nothing-up-my-sleeve try-and-increment: for ``ctr = 0, 1, ...``,
``x = keccak256(b"omnilytics/pedersen/H/v1" ‖ ctr as 32 big-endian bytes) mod p``; the first ``x``
with ``x³ + 3`` a square gives ``H = (x, y)`` with the even root ``y``. G1's cofactor is 1, so any
curve point is in G1, and a hash output leaves nobody knowing ``log_G H``. The module derives
``H`` at import and refuses to load if it differs from the constants the contract holds.

The formulas are the standard ones for curves with ``a = 0`` (the Explicit-Formulas Database:
dbl-2009-l, add-2007-bl, madd-2007-bl).
"""

from __future__ import annotations

import functools
from typing import Final

from eth_utils import keccak
from py_ecc.optimized_bn128 import curve_order, field_modulus

P = field_modulus  # the base field
R = curve_order  # the order of G1
B = 3
G = (1, 2, 1)
INFINITY = (1, 1, 0)
WINDOW_BITS = 8

Point = tuple[int, int, int]  # Jacobian
Affine = tuple[int, int]

H_DOMAIN: Final = b"omnilytics/pedersen/H/v1"
H_COUNTER: Final = 1  # the first counter whose x is on the curve
H_AFFINE: Final = (
    11711197069860854400599243185465880082237782576325844805189761335331431321712,
    21364449253837443648535319466223791736143145901471762962134496570904289189668,
)
H: Final = (*H_AFFINE, 1)


def is_on_curve(x: int, y: int) -> bool:
    """Whether the affine ``(x, y)`` (coordinates already below ``P``) is on the curve."""
    return (y * y - x * x * x - B) % P == 0


def derive_generator(domain: bytes) -> tuple[int, Affine]:
    """Try-and-increment: the first counter whose hashed ``x`` is on the curve, and the point
    ``(x, y)`` with ``y`` even. ``p ≡ 3 (mod 4)``, so ``rhs^((p + 1) / 4)`` is a square root of
    ``rhs`` whenever it has one."""
    counter = 0
    while True:
        x = int.from_bytes(keccak(domain + counter.to_bytes(32, "big")), "big") % P
        rhs = (x * x * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return counter, (x, P - y if y & 1 else y)
        counter += 1


# Not an assert: the check must hold under ``python -O`` too.
if derive_generator(H_DOMAIN) != (H_COUNTER, H_AFFINE):
    raise RuntimeError("the derived Pedersen generator H differs from its constants")


def double(point: Point) -> Point:
    x, y, z = point
    if z == 0 or y == 0:
        return INFINITY
    a = x * x % P
    b = y * y % P
    c = b * b % P
    d = 2 * ((x + b) * (x + b) - a - c) % P
    e = 3 * a % P
    x3 = (e * e - 2 * d) % P
    return x3, (e * (d - x3) - 8 * c) % P, 2 * y * z % P


def add(p1: Point, p2: Point) -> Point:
    """``p1 + p2`` for any two points (equal ones and infinity included)."""
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2z2 % P, x2 * z1z1 % P
    s1, s2 = y1 * z2 * z2z2 % P, y2 * z1 * z1z1 % P
    h = (u2 - u1) % P
    r = 2 * (s2 - s1) % P
    if h == 0:
        return double(p1) if r == 0 else INFINITY
    i = 4 * h * h % P
    j = h * i % P
    v = u1 * i % P
    x3 = (r * r - j - 2 * v) % P
    y3 = (r * (v - x3) - 2 * s1 * j) % P
    z3 = ((z1 + z2) * (z1 + z2) - z1z1 - z2z2) * h % P
    return x3, y3, z3


def add_affine(p1: Point, p2: Affine) -> Point:
    """``p1 + p2`` where ``p2`` is a finite point in affine coordinates (a table entry)."""
    x1, y1, z1 = p1
    x2, y2 = p2
    if z1 == 0:
        return x2, y2, 1
    z1z1 = z1 * z1 % P
    u2 = x2 * z1z1 % P
    s2 = y2 * z1 * z1z1 % P
    h = (u2 - x1) % P
    r = 2 * (s2 - y1) % P
    if h == 0:
        return double(p1) if r == 0 else INFINITY
    hh = h * h % P
    i = 4 * hh
    j = h * i % P
    v = x1 * i % P
    x3 = (r * r - j - 2 * v) % P
    y3 = (r * (v - x3) - 2 * y1 * j) % P
    z3 = ((z1 + h) * (z1 + h) - z1z1 - hh) % P
    return x3, y3, z3


def to_affine(point: Point) -> Affine | None:
    """``(x, y)`` of a point, or None for the point at infinity."""
    x, y, z = point
    if z == 0:
        return None
    inverse = pow(z, -1, P)
    inverse2 = inverse * inverse % P
    return x * inverse2 % P, y * inverse2 * inverse % P


def equal(p1: Point, p2: Point) -> bool:
    """Whether two Jacobian triples stand for the same point (no inversion)."""
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0 or z2 == 0:
        return z1 == z2 == 0
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    return (x1 * z2z2 - x2 * z1z1) % P == 0 and (y1 * z2 * z2z2 - y2 * z1 * z1z1) % P == 0


def small_multiply(point: Point, k: int) -> Point:
    """``k · point`` by double-and-add: for the small ``k`` of share x-coordinates."""
    if k < 0:
        raise ValueError("a negative multiplier")
    result = INFINITY
    for bit in bin(k)[2:]:
        result = double(result)
        if bit == "1":
            result = add(result, point)
    return result


def _normalize_all(points: list[Point]) -> list[Affine]:
    """Affine coordinates of finite points with one inversion (Montgomery's trick)."""
    prefix = [1]
    for _, _, z in points:
        prefix.append(prefix[-1] * z % P)
    inverse = pow(prefix[-1], -1, P)
    out: list[Affine] = [(0, 0)] * len(points)
    for index in range(len(points) - 1, -1, -1):
        x, y, z = points[index]
        z_inverse = inverse * prefix[index] % P
        inverse = inverse * z % P
        z2 = z_inverse * z_inverse % P
        out[index] = (x * z2 % P, y * z2 * z_inverse % P)
    return out


def to_affine_all(points: list[Point]) -> list[Affine | None]:
    """``to_affine`` of many points with one inversion; None for the point at infinity."""
    finite = [point for point in points if point[2] != 0]
    affine = iter(_normalize_all(finite)) if finite else iter(())
    return [next(affine) if point[2] != 0 else None for point in points]


@functools.cache
def _table(base: Point) -> tuple[tuple[Affine, ...], ...]:
    """Row ``i``: ``k · 256^i · base`` for ``k = 1 .. 255``, affine (``base`` is G or H)."""
    windows = -(-R.bit_length() // WINDOW_BITS)
    size = (1 << WINDOW_BITS) - 1
    points: list[Point] = []
    for _ in range(windows):
        row = [base]
        for _ in range(size - 1):
            row.append(add(row[-1], base))
        points += row
        base = add(row[-1], base)  # 256 · base
    flat = _normalize_all(points)
    return tuple(tuple(flat[w * size : (w + 1) * size]) for w in range(windows))


def warm() -> None:
    """Build both fixed-base tables now rather than on first use (once a process: 0.1 to 0.4 s
    for both, depending on load)."""
    _table(G)
    _table(H)


def _check_scalar(scalar: int) -> None:
    if not 0 <= scalar < R:
        raise ValueError("a scalar must be in [0, r)")


def _accumulate(acc: Point, table: tuple[tuple[Affine, ...], ...], scalar: int) -> Point:
    """``acc + scalar · base`` for the base of ``table``: one mixed addition per 8-bit digit."""
    mask = (1 << WINDOW_BITS) - 1
    for row in table:
        if not scalar:
            break
        digit = scalar & mask
        if digit:
            acc = add_affine(acc, row[digit - 1])
        scalar >>= WINDOW_BITS
    return acc


def g_multiply(scalar: int) -> Point:
    """``scalar · G`` for ``0 <= scalar < R``."""
    _check_scalar(scalar)
    return _accumulate(INFINITY, _table(G), scalar)


def h_multiply(scalar: int) -> Point:
    """``scalar · H`` for ``0 <= scalar < R``."""
    _check_scalar(scalar)
    return _accumulate(INFINITY, _table(H), scalar)


def pedersen(a: int, b: int) -> Point:
    """The Pedersen commitment ``a · G + b · H`` (both scalars in ``[0, R)``)."""
    _check_scalar(a)
    _check_scalar(b)
    return _accumulate(_accumulate(INFINITY, _table(G), a), _table(H), b)


_MULTIPLY_WINDOW = 4


def multiply(point: Point, scalar: int) -> Point:
    """``scalar · point`` for any point of G1 and any ``scalar >= 0`` (taken mod ``R``): through
    the fixed-base tables when the point is ``G`` or ``H`` in affine form, else by 4-bit windows
    (254 doublings and at most 64 additions). The embedded chain's ECMUL
    (`actors.chain.boa_precompiles`) runs on it."""
    if scalar < 0:
        raise ValueError("a negative multiplier")
    scalar %= R
    if point[2] == 0 or scalar == 0:
        return INFINITY
    if point == G:
        return _accumulate(INFINITY, _table(G), scalar)
    if point == H:
        return _accumulate(INFINITY, _table(H), scalar)
    multiples = [INFINITY, point]  # k · point for k < 16
    for _ in range(2, 1 << _MULTIPLY_WINDOW):
        multiples.append(add(multiples[-1], point))
    mask = (1 << _MULTIPLY_WINDOW) - 1
    top = -(-scalar.bit_length() // _MULTIPLY_WINDOW) * _MULTIPLY_WINDOW
    result = INFINITY
    for shift in range(top - _MULTIPLY_WINDOW, -1, -_MULTIPLY_WINDOW):
        for _ in range(_MULTIPLY_WINDOW):
            result = double(result)
        digit = (scalar >> shift) & mask
        if digit:
            result = add(result, multiples[digit])
    return result
