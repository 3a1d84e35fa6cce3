"""`omnilytics deploy`: the court, the delivery desk and the market on a named network, recorded
for verification.

A deployment is recorded in the network's deployments file (`deployments/NAME.json` beside the
config file that defines it; actors.entry.networks): chain id, deployer, each contract's address,
transaction hash, block, gas, constructor arguments, the keccak256 of its init code and of its
runtime code, and the compiler's version and settings. Records are appended, never replaced:
a second deploy to the same network warns, and `--network` then uses the newest.

Beside the record go the Vyper standard-JSON inputs (`deployments/standard-json/`) that block
explorers and Sourcify verify from; nothing is uploaded. Each is compiled again here from the
project's sources with the project directory as the only search path, and the deploy is refused
unless that gives the very init code that is sent, so the file reproduces the deployed bytes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from actors.entry.home import CliError, one_line_errors, warn
from actors.entry.networks import Network
from actors.entry.signer import (
    AccountName,
    MaxFee,
    PasswordFile,
    PriorityFee,
    Signer,
    Yes,
    open_signer,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FORMAT = "omnilytics-deployments/1"


class DeployError(CliError):
    """A deployment refused or a deployments file that cannot be read."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """One contract as the verifier sees it: its standard-JSON input and what it compiles to."""

    name: str
    source: str  # path relative to the project, as in the standard JSON
    initcode: bytes
    runtime: bytes
    standard_json: dict[str, Any]
    settings: dict[str, Any]


def compile_for_verification(source: Path) -> Compiled:
    """Compile `source` with the project directory as the only search path (so the standard
    JSON names files by their project paths) and build its standard-JSON input (once per
    process, and again only if the file changed)."""
    source = source.resolve()
    return _compile(source, source.stat().st_mtime_ns)


@functools.cache
def _compile(source: Path, mtime_ns: int) -> Compiled:
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.output import build_solc_json
    from vyper.compiler.phases import CompilerData
    from vyper.evm.opcodes import DEFAULT_EVM_VERSION

    relative = source.relative_to(PROJECT_ROOT)
    bundle = FilesystemInputBundle([PROJECT_ROOT])
    data = CompilerData(bundle.load_file(relative), input_bundle=bundle)
    initcode, runtime = bytes(data.bytecode), bytes(data.bytecode_runtime)
    # the writer names sources relative to the working directory
    with contextlib.chdir(PROJECT_ROOT):
        standard_json = build_solc_json(data)
    settings = data.settings
    return Compiled(
        name=source.stem,
        source=relative.as_posix(),
        initcode=initcode,
        runtime=runtime,
        standard_json=standard_json,
        settings={
            "optimize": settings.optimize.name.lower() if settings.optimize else "gas",
            "evm_version": settings.evm_version or DEFAULT_EVM_VERSION,
            "experimental_codegen": bool(settings.experimental_codegen),
        },
    )


def read_deployments(network: Network) -> list[dict[str, Any]]:
    """Every recorded deployment of `network`, oldest first (none if no file)."""
    path = network.deployments_file
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeployError(f"deployments file {path} is unreadable: {error}") from None
    records = data.get("deployments") if isinstance(data, dict) else None
    if data.get("format") != FORMAT or not isinstance(records, list):
        raise DeployError(f"deployments file {path} is not in the {FORMAT} format")
    return records


def latest_deployment(network: Network) -> dict[str, Any] | None:
    """The newest deployment on this network's chain id, or None."""
    records = [r for r in read_deployments(network) if r.get("chain_id") == network.chain_id]
    return records[-1] if records else None


def _write_json(path: Path, value: Any) -> None:
    """Write through a temporary file, so a crash never leaves half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".tmp")
    partial.write_text(json.dumps(value, indent=2) + "\n")
    partial.replace(path)


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def deploy(signer: Signer, *, yes: bool = False) -> dict[str, Any]:
    """Deploy the court, the delivery desk and the market to the signer's network, signed by
    it; record the deployment and return its record."""
    from eth_abi import encode
    from eth_utils import keccak

    from actors.chain.artifacts import COURT_SOURCE, DESK_SOURCE, MARKET_SOURCE, artifact_for
    from actors.chain.base import ChainError
    from actors.chain.market import Market

    network, chain, sender = signer.network, signer.chain, signer.account
    previous = read_deployments(network)
    if previous:
        last = previous[-1]
        warn(
            f"network {network.name} already has {len(previous)} deployment(s), the last the "
            f"market {last.get('market')} of {last.get('deployed_at')}; the new one is added "
            f"to {network.deployments_file} and --network will use it"
        )
    if network.market is not None:
        warn(f"{network.config} sets market {network.market} for {network.name}: it stays in use")
    signer.confirm("deploy the court, the delivery desk and the market", yes)
    compiled = {}
    for source in (COURT_SOURCE, DESK_SOURCE, MARKET_SOURCE):
        progress(f"compiling {source.name}")
        compiled[source.stem] = built = compile_for_verification(source)
        if artifact_for(source).bytecode != built.initcode:
            raise DeployError(f"{source.name}: the standard JSON does not give the deployed code")
    progress(f"deploying from {sender} to {network.name} (chain id {network.chain_id})")
    try:
        market = Market.deploy(chain, sender)
    except ChainError as error:
        raise DeployError(f"deploy to {network.name}: {error}") from None
    addresses = {
        "SharesCourt": market.court,
        "DeliveryDesk": market.desk,
        "DataMarket": market.address,
    }
    arguments = {
        "SharesCourt": b"",
        "DeliveryDesk": b"",
        "DataMarket": encode(["address", "address"], [market.court, market.desk]),
    }
    json_dir = network.deployments_file.parent / "standard-json"
    contracts = {}
    from vyper import __long_version__ as vyper_version

    for name, built in compiled.items():
        address = addresses[name]
        receipt = chain.creations[address]
        code = bytes.fromhex(chain.request("eth_getCode", [address, "latest"])[2:])
        if not code.startswith(built.runtime):  # Vyper appends immutables to the runtime code
            raise DeployError(f"{name} at {address}: the chain's code is not the compiled code")
        json_path = json_dir / f"{name}-{keccak(built.initcode).hex()[:12]}.json"
        _write_json(json_path, built.standard_json)
        contracts[name] = {
            "address": address,
            "tx_hash": receipt.tx_hash,
            "block": receipt.block,
            "gas_used": receipt.gas_used,
            "source": built.source,
            "constructor_args": _hex(arguments[name]),
            "initcode_keccak": _hex(keccak(built.initcode)),
            "runtime_keccak": _hex(keccak(built.runtime)),
            "standard_json": json_path.relative_to(network.deployments_file.parent).as_posix(),
        }
    record = {
        "network": network.name,
        "chain_id": network.chain_id,
        "url": network.url,
        "deployed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "deployer": sender,
        "market": market.address,
        "court": market.court,
        "desk": market.desk,
        "contracts": contracts,
        "compiler": {
            "name": "vyper",
            "version": vyper_version,
            "settings": compiled["DataMarket"].settings,
        },
    }
    _write_json(
        network.deployments_file,
        {"format": FORMAT, "network": network.name, "deployments": [*previous, record]},
    )
    return record


def progress(message: str) -> None:
    print(message, file=sys.stderr)


def deploy_command(
    network: Annotated[str, typer.Option(help="the network's name in omnilytics.toml")],
    account: AccountName = None,
    password_file: PasswordFile = None,
    yes: Yes = False,
    max_fee: MaxFee = None,
    priority_fee: PriorityFee = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole record")] = False,
) -> None:
    """Deploy the court, the delivery desk and the market, record them, and write the
    standard-JSON inputs."""
    with one_line_errors():
        signer = open_signer(
            network, account, password_file, max_fee=max_fee, priority_fee=priority_fee
        )
        record = deploy(signer, yes=yes)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        return
    progress(f"court {record['court']}; recorded in {signer.network.deployments_file}")
    typer.echo(record["market"])
