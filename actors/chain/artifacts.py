"""Compiled contract artifacts (ABI + deploy bytecode) for the JSON-RPC backend.

Compiled by the same vyper the embedded chain uses, once per process per source version, and
kept as JSON in the user's cache directory (`$XDG_CACHE_HOME/omnilytics/artifacts`, else
`~/.cache/omnilytics/artifacts`), named by a hash of every contract source and the compiler's
version: a data owner's `tasks` and `join` read the ABI there instead of compiling the market
again (9-18 s of CPU a command on a busy machine), and a changed source is a new name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
MARKET_SOURCE = CONTRACTS_DIR / "DataMarket.vy"
COURT_SOURCE = CONTRACTS_DIR / "SharesCourt.vy"
DESK_SOURCE = CONTRACTS_DIR / "DeliveryDesk.vy"


@dataclass(frozen=True, slots=True)
class Artifact:
    """What a node needs to deploy and call a contract."""

    abi: list[dict[str, Any]]
    bytecode: bytes


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "omnilytics" / "artifacts"


def _sources_key() -> str:
    """A hash of every contract source (a module changes the contracts that import it) and of
    the compiler's version."""
    from vyper import __long_version__

    digest = hashlib.sha256(__long_version__.encode())
    for path in sorted(CONTRACTS_DIR.rglob("*.vy*")):
        digest.update(path.relative_to(CONTRACTS_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def artifact_for(source: Path) -> Artifact:
    """ABI and deploy bytecode of a Vyper source: from the cache, else compiled (and cached)."""
    return _artifact(source.resolve(), _sources_key())


@functools.cache
def _artifact(source: Path, key: str) -> Artifact:
    path = cache_dir() / f"{source.stem}-{key}.json"
    try:
        saved = json.loads(path.read_text())
        return Artifact(abi=saved["abi"], bytecode=bytes.fromhex(saved["bytecode"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not cached yet, or unreadable: compile
    from vyper.compiler.output import build_abi_output

    from actors.chain.boa_backend import deployer_for

    data = deployer_for(source).compiler_data
    artifact = Artifact(abi=build_abi_output(data), bytecode=bytes(data.bytecode))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"abi": artifact.abi, "bytecode": artifact.bytecode.hex()}))
        partial.replace(path)  # whole or not at all, whoever else writes it meanwhile
    except OSError:
        pass  # a read-only home: compile again next time
    return artifact
