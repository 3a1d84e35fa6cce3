"""The embedded chain's ECMUL (`actors.chain.boa_precompiles`) against py-evm's own: the same
output, the same failures and the same gas, called from a contract."""

import boa
import pytest
from boa.vm.py_evm import deregister_raw_precompile
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc import optimized_bn128 as reference

from actors.chain import boa_precompiles
from protocol import bn254

SOURCE = """
@external
def mul(x: uint256, y: uint256, s: uint256) -> uint256[2]:
    return ecmul([x, y], s)
"""


@pytest.fixture(scope="module")
def probe():
    with boa.env.anchor():
        yield boa.loads(SOURCE)


def _both(probe, x: int, y: int, scalar: int) -> tuple[object, object]:
    """(ours, py-evm's): each the output words, or the failure's name."""
    results = []
    for install in (True, False):
        if install:
            boa_precompiles.install()
        else:
            deregister_raw_precompile(boa_precompiles.ECMUL_ADDRESS)
        try:
            out = probe.mul(x, y, scalar)
            results.append(tuple(out))
        except boa.BoaError as error:
            results.append(type(error).__name__)
        finally:
            boa_precompiles.install()
    return results[0], results[1]


def _point(k: int) -> tuple[int, int]:
    x, y = reference.normalize(reference.multiply(reference.G1, k))
    return x.n, y.n


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, bn254.R - 1), scalar=st.integers(0, 2**256 - 1))
def test_same_product_as_py_evm(probe, k: int, scalar: int) -> None:
    x, y = _point(k)
    ours, theirs = _both(probe, x, y, scalar)
    assert ours == theirs
    expected = reference.normalize(reference.multiply(reference.G1, k * scalar % bn254.R))
    assert ours == (expected[0].n, expected[1].n)


EDGES = {
    "G, a full scalar": (1, 2, bn254.R - 2),
    "H, a full scalar": (*bn254.H_AFFINE, 2**255 + 7),
    "scalar zero": (1, 2, 0),
    "scalar R": (1, 2, bn254.R),
    "scalar 2^256 - 1": (*bn254.H_AFFINE, 2**256 - 1),
    "infinity": (0, 0, 12345),
    "off the curve": (1, 3, 5),
    "x at the modulus": (bn254.P, 2, 5),
    "y above the modulus": (1, bn254.P + 2, 5),
}


@pytest.mark.parametrize("case", EDGES.values(), ids=EDGES.keys())
def test_edges_as_py_evm(probe, case: tuple[int, int, int]) -> None:
    ours, theirs = _both(probe, *case)
    assert ours == theirs


def test_same_gas_as_py_evm(probe) -> None:
    gas = []
    for install in (True, False):
        if not install:
            deregister_raw_precompile(boa_precompiles.ECMUL_ADDRESS)
        try:
            with boa.env.anchor():
                probe.mul(*bn254.H_AFFINE, 2**200 + 3)
                gas.append(probe._computation.get_gas_used())
        finally:
            boa_precompiles.install()
    assert gas[0] == gas[1]
