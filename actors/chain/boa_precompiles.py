"""The embedded chain's ECMUL precompile on `protocol.bn254`'s integer arithmetic.

py-evm runs ECMUL (address 0x07) on py_ecc's field objects: about 4 ms a call here. The court
checks every share a data owner reveals at UNMASK against its dealer's Pedersen commitments
(`SharesCourt._on_polynomial`: ``share · G + blind · H``, two full-size multiplications a
share), so a group of five's unmask transaction spent some 50 ms in ECMUL alone, and a round's
UNMASK, whose transactions the embedded chain runs one after the other, most of a second. This
one takes the same input and gives the same output and the same gas: the 96 input bytes (right
padded with zeros), a point with a coordinate at or above the field modulus or off the curve
fails the call, ``(0, 0)`` is the point at infinity, and the scalar is any 256-bit number. The
fixed-base tables make ``G`` and ``H`` multiplications about 0.1 ms.

`install` registers it with titanoboa (for every `boa.Env` of the process, as titanoboa's
registered precompiles are); a node (anvil, Hardhat) keeps its own.
"""

from __future__ import annotations

from typing import Any

from boa.vm.py_evm import register_raw_precompile
from eth.exceptions import VMError

from protocol import bn254

ECMUL_ADDRESS = b"\x00" * 19 + b"\x07"


def ecmul(computation: Any) -> Any:
    """ECMUL as the fork in use defines it (its gas cost read from the fork's own)."""
    fork_ecmul = type(computation)._precompiles[ECMUL_ADDRESS]
    computation.consume_gas(fork_ecmul.keywords["gas_cost"], reason="ECMUL Precompile")
    data = computation.msg.data_as_bytes[:96].ljust(96, b"\x00")
    x, y, scalar = (int.from_bytes(data[i : i + 32], "big") for i in (0, 32, 64))
    if x >= bn254.P or y >= bn254.P:
        raise VMError("Invalid ECMUL parameters")
    if (x, y) == (0, 0):
        point = bn254.INFINITY
    elif bn254.is_on_curve(x, y):
        point = (x, y, 1)
    else:
        raise VMError("Invalid ECMUL parameters")
    result = bn254.to_affine(bn254.multiply(point, scalar)) or (0, 0)
    computation.output = result[0].to_bytes(32, "big") + result[1].to_bytes(32, "big")
    return computation


def install() -> None:
    """Use `ecmul` for ECMUL in every titanoboa env of this process (idempotent)."""
    register_raw_precompile(ECMUL_ADDRESS, ecmul, force=True)
