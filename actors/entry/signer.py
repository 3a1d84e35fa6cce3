"""How a command that signs finds its node, its market and its key: one way for `deploy`,
`task create`, `join` and `withdraw`.

`--network NAME` names a network of omnilytics.toml (actors.entry.networks: the chain id checked
at connect, the market from the table or the latest deployment, `live` asking before value
moves); `--account NAME` a keystore (actors.entry.accounts; the network's `default_account` if
not given). Without `--network`, `--rpc-url` and `--market` name them directly, as the swarm's
processes do, and the key may come from `$OMNILYTICS_PRIVATE_KEY` (CI; said to be unsafe).
`--max-fee` and `--priority-fee` (gwei) override the EIP-1559 fees read from the node
(actors.chain.fees).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from actors.entry.accounts import signing_key
from actors.entry.home import CliError
from actors.entry.networks import (
    Network,
    confirm_live,
    connect,
    get_network,
    market_address,
    open_market,
)

if TYPE_CHECKING:
    from actors.chain.market import Market
    from actors.chain.rpc_backend import RpcChain

NetworkName = Annotated[
    str | None, typer.Option("--network", help="the network's name in omnilytics.toml")
]
AccountName = Annotated[
    str | None,
    typer.Option("--account", help="sign with this keystore (default: the network's)"),
]
PasswordFile = Annotated[
    Path | None, typer.Option(help="the keystore's password, first line (default: a prompt)")
]
Yes = Annotated[bool, typer.Option("--yes", help="no confirmation on a live network")]
MaxFee = Annotated[
    str | None, typer.Option(help="max fee per gas in gwei (default: from the node's fees)")
]
PriorityFee = Annotated[
    str | None,
    typer.Option(help="priority fee per gas in gwei (default: what the node suggests)"),
]
RpcUrl = Annotated[str | None, typer.Option(help="JSON-RPC URL of the node (instead of --network)")]
MarketAddress = Annotated[
    str | None, typer.Option(help="address of the DataMarket contract (instead of --network)")
]

_GWEI = 10**9


def _market(chain: RpcChain, network: Network, address: str | None) -> Market:
    """The market a command acts on (`--market` if given, else the network's), refused unless
    a DataMarket answers there."""
    if address is not None:
        from eth_utils import is_address, to_checksum_address

        if not is_address(address):
            raise CliError(f"--market {address!r} is not an address (0x and 40 hex digits)")
        address = to_checksum_address(address)
    elif not network.name:
        raise CliError("--rpc-url needs --market ADDRESS (or use --network NAME)")
    else:
        address = market_address(network)
    return open_market(chain, address, network)


def gwei(option: str, text: str | None) -> int | None:
    """A fee in gwei (decimals allowed, down to 1 wei) as wei, or None if not given."""
    if text is None:
        return None
    try:
        value = Decimal(text) * _GWEI
    except InvalidOperation:
        raise CliError(f"{option} {text!r}: not a number of gwei") from None
    if not value.is_finite() or value < 0 or value != value.to_integral_value() or value >= 2**256:
        raise CliError(f"{option} {text!r}: gwei must be >= 0 with at most 9 decimals")
    return int(value)


@dataclass(frozen=True, slots=True)
class Reader:
    """A connected chain client (`task show`), and the network it came from."""

    network: Network  # a named one, or `Network.direct` for --rpc-url
    chain: RpcChain

    def market(self, address: str | None) -> Market:
        return _market(self.chain, self.network, address)


@dataclass(frozen=True, slots=True)
class Signer(Reader):
    """A connected chain client that signs for `account` (its address)."""

    account: str

    def confirm(self, action: str, yes: bool) -> None:
        """Ask before `action` (which moves value) on a live network; --yes skips the question."""
        confirm_live(self.network, action, yes)


def _connect(network: str | None, rpc_url: str | None) -> tuple[Network, RpcChain]:
    if network is not None:
        net = get_network(network)
    elif rpc_url is not None:
        parts = urlsplit(rpc_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"--rpc-url {rpc_url!r} is not an http(s) URL")
        net = Network.direct(rpc_url)
    else:
        raise CliError("no chain: pass --network NAME (omnilytics.toml), or --rpc-url and --market")
    return net, connect(net)


def open_reader(network: str | None, rpc_url: str | None) -> Reader:
    """Connect to `--network`'s node, or `--rpc-url`'s."""
    return Reader(*_connect(network, rpc_url))


def open_signer(
    network: str | None,
    account: str | None,
    password_file: Path | None,
    *,
    rpc_url: str | None = None,
    max_fee: str | None = None,
    priority_fee: str | None = None,
) -> Signer:
    """Connect (the node first, so an unreachable one fails before a password is asked for),
    unlock the key and set the fee overrides."""
    from actors.chain.fees import FeeOverrides

    fees = FeeOverrides(gwei("--max-fee", max_fee), gwei("--priority-fee", priority_fee))
    if None not in (fees.max_fee, fees.priority_fee) and fees.priority_fee > fees.max_fee:
        raise CliError(f"--priority-fee {priority_fee} gwei is above --max-fee {max_fee} gwei")
    net, chain = _connect(network, rpc_url)
    account = account or net.default_account
    key = signing_key(account, password_file)
    chain.fees.overrides = fees
    return Signer(net, chain, chain.add_account(key))
