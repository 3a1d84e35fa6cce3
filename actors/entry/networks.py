"""Networks by name: `omnilytics.toml`, connecting with the chain id checked, live confirmation.

`[networks.NAME]` tables hold `url`, `chain_id`, `market`, `beacon_url`, `default_account` and
`live` (real funds move there). They are read from `omnilytics.toml` in the project directory
(the current one) and in the per-user directory (actors.entry.home); a network of the project's
file shadows the user's of the same name. A network's deployments (`omnilytics deploy`) are
recorded beside the file that defines it, in `deployments/NAME.json`, and give its market when
the table names none. Without `--network`, commands keep the embedded chain: no config needed.
"""

from __future__ import annotations

import time
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from actors.entry.home import CliError, user_home

if TYPE_CHECKING:
    from actors.chain.market import Market
    from actors.chain.rpc_backend import RpcChain

CONFIG_NAME = "omnilytics.toml"
_KEYS: dict[str, type] = {
    "url": str,
    "chain_id": int,
    "market": str,
    "beacon_url": str,
    "default_account": str,
    "live": bool,
}
_REQUIRED = ("url", "chain_id")
# an unreachable node is asked this many times, with a doubling pause from _RETRY_PAUSE s
CONNECT_ATTEMPTS = 3
_RETRY_PAUSE = 0.5


class NetworkError(CliError):
    """An unknown or malformed network, or a node that does not match its config."""


@dataclass(frozen=True, slots=True)
class Network:
    """One `[networks.NAME]` table, checked."""

    name: str
    url: str
    chain_id: int
    config: Path  # the file that defines it
    market: str | None = None
    beacon_url: str | None = None
    default_account: str | None = None
    live: bool = False

    @property
    def label(self) -> str:
        """How messages name it: `network NAME`, or the URL given with `--rpc-url`."""
        return f"network {self.name}" if self.name else f"--rpc-url {self.url}"

    @classmethod
    def direct(cls, url: str) -> Network:
        """The node of `--rpc-url`: no name, no config, its chain id whatever it answers."""
        return cls(name="", url=url, chain_id=0, config=Path())

    @property
    def deployments_file(self) -> Path:
        return self.config.parent / "deployments" / f"{self.name}.json"


def config_files(project_dir: Path | None = None) -> list[Path]:
    """The config files that exist, the user's first (the project's shadows it)."""
    candidates = [user_home() / CONFIG_NAME, (project_dir or Path.cwd()) / CONFIG_NAME]
    return [path for path in dict.fromkeys(candidates) if path.is_file()]


def _check_url(where: str, key: str, value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NetworkError(f"{where}: {key} {value!r} is not an http(s) URL")
    return value


def _check_address(where: str, value: str) -> str:
    from eth_utils import is_address, to_checksum_address

    if not is_address(value):
        raise NetworkError(f"{where}: market {value!r} is not an address (0x and 40 hex digits)")
    return to_checksum_address(value)


def parse_config(path: Path) -> dict[str, Network]:
    """Every network of one config file, each field checked by name and type."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as error:
        raise NetworkError(f"{path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise NetworkError(f"{path}: not a TOML file: {error}") from None
    unknown = set(raw) - {"networks"}
    if unknown:
        raise NetworkError(f"{path}: unknown section {sorted(unknown)[0]!r} (only [networks.*])")
    tables = raw.get("networks", {})
    if not isinstance(tables, dict):
        raise NetworkError(f"{path}: networks must be tables, [networks.NAME]")
    networks = {}
    for name, table in tables.items():
        where = f"{path} [networks.{name}]"
        if not isinstance(table, dict):
            raise NetworkError(f"{where}: must be a table")
        for key, value in table.items():
            kind = _KEYS.get(key)
            if kind is None:
                raise NetworkError(f"{where}: unknown field {key!r}; fields are {', '.join(_KEYS)}")
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise NetworkError(f"{where}: {key} must be {kind.__name__}, not {value!r}")
        missing = [key for key in _REQUIRED if key not in table]
        if missing:
            raise NetworkError(f"{where}: {missing[0]} is missing")
        if not 0 < table["chain_id"] < 2**64:
            raise NetworkError(f"{where}: chain_id {table['chain_id']} is out of range")
        networks[name] = Network(
            name=name,
            url=_check_url(where, "url", table["url"]),
            chain_id=table["chain_id"],
            config=path,
            market=_check_address(where, table["market"]) if "market" in table else None,
            beacon_url=(
                _check_url(where, "beacon_url", table["beacon_url"])
                if "beacon_url" in table
                else None
            ),
            default_account=table.get("default_account"),
            live=table.get("live", False),
        )
    return networks


def load_networks(project_dir: Path | None = None) -> dict[str, Network]:
    networks: dict[str, Network] = {}
    for path in config_files(project_dir):
        networks.update(parse_config(path))
    return networks


def get_network(name: str, project_dir: Path | None = None) -> Network:
    """The network NAME, or a one-line error naming the files searched and what they hold."""
    networks = load_networks(project_dir)
    if name in networks:
        return networks[name]
    files = config_files(project_dir)
    if not files:
        where = f"no {CONFIG_NAME} in {project_dir or Path.cwd()} or {user_home()}"
    else:
        where = f"known: {', '.join(sorted(networks)) or 'none'} (in {', '.join(map(str, files))})"
    raise NetworkError(f"unknown network {name!r}: {where}")


def connect(network: Network, *, attempts: int = CONNECT_ATTEMPTS) -> RpcChain:
    """A client for the network's node, once it answers with the configured chain id (any
    chain id for a `direct` one)."""
    from actors.chain.base import NodeUnavailable
    from actors.chain.rpc_backend import RpcChain

    pause = _RETRY_PAUSE
    for attempt in range(attempts):
        try:
            chain = RpcChain(network.url)
            break
        except NodeUnavailable:
            if attempt == attempts - 1:
                raise NetworkError(
                    f"{network.label}: no JSON-RPC node answers at {network.url} ({attempts} tries)"
                ) from None
            time.sleep(pause)
            pause *= 2
    if network.chain_id and chain.chain_id != network.chain_id:
        raise NetworkError(
            f"network {network.name}: the node at {network.url} has chain id {chain.chain_id}, "
            f"the config says {network.chain_id} ({network.config})"
        )
    return chain


def market_address(network: Network) -> str:
    """The market `--network` means: the table's `market`, else the latest deployment."""
    if network.market is not None:
        return network.market
    from actors.entry.deploy import latest_deployment

    record = latest_deployment(network)
    if record is None:
        raise NetworkError(
            f"network {network.name}: no market (set market in {network.config}, or run "
            f"`omnilytics deploy --network {network.name}`)"
        )
    return record["market"]


def open_market(chain: RpcChain, address: str, network: Network) -> Market:
    """The market at `address`, refused unless a DataMarket answers there."""
    from eth_abi.exceptions import DecodingError

    from actors.chain.base import ChainError
    from actors.chain.blob_sources import blob_source
    from actors.chain.market import Market

    code = chain.request("eth_getCode", [address, "latest"])
    if code in (None, "0x", ""):
        raise NetworkError(
            f"{network.label}: no contract at market {address} (chain id "
            f"{chain.chain_id}; a restarted dev node forgets its contracts: deploy again)"
        )
    try:
        return Market(chain, address, blob_source=blob_source(chain, network.beacon_url))
    except (ChainError, DecodingError, ValueError) as error:
        raise NetworkError(
            f"{network.label}: {address} is not a DataMarket ({error.__class__.__name__})"
        ) from None


def confirm_live(network: Network, action: str, yes: bool) -> None:
    """On a live network, `action` (which moves value) goes ahead only if confirmed or --yes."""
    if not network.live or yes:
        return
    import click
    import typer

    question = f"{action} on live network {network.name} (chain id {network.chain_id})?"
    try:
        confirmed = typer.confirm(question, default=False, err=True)
    except (click.exceptions.Abort, typer.Abort):
        confirmed = False
    if not confirmed:
        raise NetworkError(
            f"{action}: not confirmed on live network {network.name}; answer y, or pass --yes"
        )
