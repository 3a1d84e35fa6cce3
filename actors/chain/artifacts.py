"""Compiled contract artifacts (ABI + deploy bytecode) for the JSON-RPC backend.

Compiled by the same vyper the embedded chain uses, once per process per source version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vyper.compiler.output import build_abi_output

from actors.chain.boa_backend import deployer_for

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
MARKET_SOURCE = CONTRACTS_DIR / "DataMarket.vy"
COURT_SOURCE = CONTRACTS_DIR / "SharesCourt.vy"
DESK_SOURCE = CONTRACTS_DIR / "DeliveryDesk.vy"


@dataclass(frozen=True, slots=True)
class Artifact:
    """What a node needs to deploy and call a contract."""

    abi: list[dict[str, Any]]
    bytecode: bytes


def artifact_for(source: Path) -> Artifact:
    """ABI and deploy bytecode of a Vyper source (compiled once, cached by boa's deployer)."""
    data = deployer_for(source).compiler_data
    return Artifact(abi=build_abi_output(data), bytecode=bytes(data.bytecode))
