"""BN254 (alt_bn128) G1 arithmetic on plain integers, for the Feldman checks of `protocol.shamir`.

py_ecc is the reference (the tests compare against it, and its constants are used here), but it
wraps every coordinate in a field object: a data owner's Feldman work (six commitments dealt and
eight shares checked a round, in a group of five) took about 12 ms of CPU there, the largest part
of its protocol work. Here the same curve, ``y² = x³ + 3`` over ``F_p``, works on integers:

- points in Jacobian coordinates ``(X, Y, Z)`` standing for ``(X / Z², Y / Z³)``; the point at
  infinity has ``Z = 0``;
- ``g_multiply``: the generator ``G = (1, 2)`` times a scalar, through a table of
  ``k · 256^i · G`` in affine coordinates (32 windows of 8 bits, 255 points each, built once in
  about 60 ms): at most 32 mixed additions a multiplication;
- ``small_multiply`` by the small x-coordinates of shares (Horner's rule in ``verify_share``),
  ``add`` of two points, ``equal`` without leaving Jacobian coordinates, and ``to_affine`` (one
  inversion) for encoding.

The formulas are the standard ones for curves with ``a = 0`` (the Explicit-Formulas Database:
dbl-2009-l, add-2007-bl, madd-2007-bl).
"""

from __future__ import annotations

import functools

from py_ecc.optimized_bn128 import curve_order, field_modulus

P = field_modulus  # the base field
R = curve_order  # the order of G1
B = 3
G = (1, 2, 1)
INFINITY = (1, 1, 0)
WINDOW_BITS = 8

Point = tuple[int, int, int]  # Jacobian
Affine = tuple[int, int]


def is_on_curve(x: int, y: int) -> bool:
    """Whether the affine ``(x, y)`` (coordinates already below ``P``) is on the curve."""
    return (y * y - x * x * x - B) % P == 0


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


@functools.cache
def _table() -> tuple[tuple[Affine, ...], ...]:
    """Row ``i``: ``k · 256^i · G`` for ``k = 1 .. 255``, affine."""
    windows = -(-R.bit_length() // WINDOW_BITS)
    size = (1 << WINDOW_BITS) - 1
    points: list[Point] = []
    base = G
    for _ in range(windows):
        row = [base]
        for _ in range(size - 1):
            row.append(add(row[-1], base))
        points += row
        base = add(row[-1], base)  # 256 · base
    flat = _normalize_all(points)
    return tuple(tuple(flat[w * size : (w + 1) * size]) for w in range(windows))


def warm() -> None:
    """Build the fixed-base table now (a process does once, ~60 ms) rather than on first use."""
    _table()


def g_multiply(scalar: int) -> Point:
    """``scalar · G`` for ``0 <= scalar < R``."""
    if not 0 <= scalar < R:
        raise ValueError("a scalar must be in [0, r)")
    acc = INFINITY
    mask = (1 << WINDOW_BITS) - 1
    for row in _table():
        if not scalar:
            break
        digit = scalar & mask
        if digit:
            acc = add_affine(acc, row[digit - 1])
        scalar >>= WINDOW_BITS
    return acc
