"""protocol.bn254 against py_ecc, the reference: the same points for every operation, the
awkward cases (infinity, a point plus itself or its negation, window edges) included; the
Pedersen generator H recomputed from its documented recipe."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.optimized_bn128 import FQ, G1, Z1, multiply, neg, normalize
from py_ecc.optimized_bn128 import add as ref_add
from py_ecc.optimized_bn128 import double as ref_double

from protocol import bn254

scalars = st.integers(0, bn254.R - 1)
edges = st.sampled_from(
    [0, 1, 2, 255, 256, 257, 2**8 - 1, 2**248, 2**253, bn254.R - 1, bn254.R - 256]
)


def ours(point) -> tuple[int, int] | None:
    return bn254.to_affine(point)


def ref(point) -> tuple[int, int] | None:
    if point[2] == 0:
        return None
    x, y = normalize(point)
    return int(x), int(y)


def ref_g(k: int):
    return multiply(G1, k) if k else Z1


REF_H = (FQ(bn254.H_AFFINE[0]), FQ(bn254.H_AFFINE[1]), FQ(1))


def ref_h(k: int):
    return multiply(REF_H, k) if k else Z1


@settings(max_examples=30, deadline=None)
@given(k=scalars | edges)
def test_fixed_base_multiplication_is_py_eccs(k: int) -> None:
    assert ours(bn254.g_multiply(k)) == ref(ref_g(k))


@settings(max_examples=30, deadline=None)
@given(a=scalars | edges, b=scalars | edges)
def test_addition_doubling_and_equality_are_py_eccs(a: int, b: int) -> None:
    pa, pb = bn254.g_multiply(a), bn254.g_multiply(b)
    assert ours(bn254.add(pa, pb)) == ref(ref_add(ref_g(a), ref_g(b)))
    assert ours(bn254.double(pa)) == ref(ref_double(ref_g(a)))
    assert bn254.equal(bn254.add(pa, pb), bn254.g_multiply((a + b) % bn254.R))
    assert bn254.equal(pa, pb) == (a == b)
    affine = bn254.to_affine(pb)
    if affine is not None:
        assert bn254.equal(bn254.add_affine(pa, affine), bn254.add(pa, pb))


@settings(max_examples=30, deadline=None)
@given(a=scalars | edges, k=st.integers(0, 2**12))
def test_small_multiplication_is_py_eccs(a: int, k: int) -> None:
    assert ours(bn254.small_multiply(bn254.g_multiply(a), k)) == ref(multiply(ref_g(a), k))


def test_a_point_plus_its_negation_is_infinity_in_both_forms() -> None:
    p = bn254.g_multiply(12345)
    x, y = bn254.to_affine(p)
    minus = (x, bn254.P - y, 1)
    assert bn254.add(p, minus)[2] == 0
    assert bn254.add_affine(p, (x, bn254.P - y))[2] == 0
    assert ours(bn254.add(p, minus)) == ref(ref_add(ref_g(12345), neg(ref_g(12345))))
    assert bn254.add_affine(bn254.INFINITY, (x, y)) == (x, y, 1)
    assert bn254.equal(bn254.INFINITY, (5, 7, 0))
    assert not bn254.equal(bn254.INFINITY, p)


def test_curve_membership() -> None:
    assert bn254.is_on_curve(1, 2)
    assert not bn254.is_on_curve(1, 1)
    x, y = bn254.to_affine(bn254.g_multiply(bn254.R - 1))
    assert bn254.is_on_curve(x, y)
    assert (x, y) == (1, bn254.P - 2)  # -G


def test_scalars_outside_the_group_order_are_refused() -> None:
    import pytest

    for k in (-1, bn254.R):
        for multiply_by in (bn254.g_multiply, bn254.h_multiply):
            with pytest.raises(ValueError):
                multiply_by(k)
        with pytest.raises(ValueError):
            bn254.pedersen(k, 1)
        with pytest.raises(ValueError):
            bn254.pedersen(1, k)
    with pytest.raises(ValueError):
        bn254.small_multiply(bn254.G, -1)


# -- the second generator H and Pedersen commitments --------------------------------------------


def test_h_is_the_documented_try_and_increment_point() -> None:
    # Recomputed here from the recipe of docs/interfaces.md §4, independently of derive_generator.
    from eth_utils import keccak

    found = None
    for ctr in range(16):
        x = int.from_bytes(keccak(b"omnilytics/pedersen/H/v1" + ctr.to_bytes(32, "big")), "big")
        x %= bn254.P
        rhs = (x**3 + 3) % bn254.P
        y = pow(rhs, (bn254.P + 1) // 4, bn254.P)
        if y * y % bn254.P == rhs:
            found = ctr, (x, y if y % 2 == 0 else bn254.P - y)
            break
    assert found == (1, bn254.H_AFFINE) == (bn254.H_COUNTER, bn254.H_AFFINE)
    assert bn254.derive_generator(bn254.H_DOMAIN) == found
    assert bn254.is_on_curve(*bn254.H_AFFINE)
    assert bn254.to_affine(bn254.H) == bn254.H_AFFINE
    # G1 has cofactor 1: r · H is infinity, so H is in the group
    assert ref(multiply(REF_H, bn254.R)) is None
    assert bn254.derive_generator(b"another domain") != found


@settings(max_examples=30, deadline=None)
@given(a=scalars | edges, b=scalars | edges)
def test_h_multiplication_and_pedersen_are_py_eccs(a: int, b: int) -> None:
    assert ours(bn254.h_multiply(b)) == ref(ref_h(b))
    expected = ref_add(ref_g(a), ref_h(b))
    assert ours(bn254.pedersen(a, b)) == ref(expected)


def test_batch_affine_conversion_keeps_infinity() -> None:
    points = [bn254.g_multiply(5), bn254.INFINITY, bn254.pedersen(7, 9), bn254.INFINITY]
    assert bn254.to_affine_all(points) == [bn254.to_affine(p) for p in points]
    assert bn254.to_affine_all([]) == []
    assert bn254.to_affine_all([bn254.INFINITY]) == [None]


@settings(max_examples=30, deadline=None)
@given(
    base=st.sampled_from(["G", "H", "other"]),
    k=st.integers(1, bn254.R - 1),
    scalar=st.one_of(st.integers(0, 2**256 - 1), edges),
)
def test_multiply_matches_py_ecc(base: str, k: int, scalar: int) -> None:
    """Any point (G and H through their tables, others by windows), any 256-bit scalar."""
    if base == "other":
        point = multiply(G1, k)
    else:
        affine = bn254.H_AFFINE if base == "H" else (1, 2)
        point = (FQ(affine[0]), FQ(affine[1]), FQ(1))
    x, y = ref(point)
    assert ours(bn254.multiply((x, y, 1), scalar)) == ref(multiply(point, scalar % bn254.R))


def test_multiply_of_infinity_and_a_negative_scalar() -> None:
    assert bn254.multiply(bn254.INFINITY, 5)[2] == 0
    with pytest.raises(ValueError, match="negative"):
        bn254.multiply(bn254.G, -1)
