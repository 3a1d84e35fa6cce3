"""protocol.bn254 against py_ecc, the reference: the same points for every operation, the
awkward cases (infinity, a point plus itself or its negation, window edges) included."""

from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.optimized_bn128 import G1, Z1, multiply, neg, normalize
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
        with pytest.raises(ValueError):
            bn254.g_multiply(k)
    with pytest.raises(ValueError):
        bn254.small_multiply(bn254.G, -1)
