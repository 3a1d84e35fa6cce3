"""`just console`: IPython with the market at hand.

Embedded by default (titanoboa's EVM, the market freshly deployed); with `--rpc-url` it attaches
to a node through boa's network mode (deploying a market unless `--market` names one). The
namespace holds `boa`, `dm` (the boa contract: call any function, `dm.get_logs()`), `market` (the
typed facade), `chain`, and helpers: `status()`, `gas()`, `example_task()`, `TaskConfig`.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import boa
from boa.contracts.base_evm_contract import BoaError
from eth_account import Account
from rich.console import Console
from rich.table import Table

from actors.chain.artifacts import MARKET_SOURCE
from actors.chain.boa_backend import BoaChain, deployer_for
from actors.chain.market import Market, TaskConfig
from actors.chain.rpc_backend import RpcChain
from actors.entry.processes import KEY_ENV
from actors.entry.report import summarize_gas
from actors.entry.status import read_market, render


def warm_up(contract: Any, rpc: Any, attempts: int = 5) -> None:
    """Make the first call to a contract freshly deployed on a brand-new node succeed.

    On a fresh anvil, boa's first call after the first deploy can fail with "Unknown contract"
    (its view of the node lags one block): mine a block and retry.
    """
    for attempt in range(attempts):
        try:
            contract.task_count()
            return
        except BoaError as error:
            if "Unknown contract" not in str(error) or attempt == attempts - 1:
                raise
            rpc.fetch("evm_mine", [])
            time.sleep(0.1)


def attach_boa(rpc_url: str, address: str, private_key: str) -> Any:
    """Point boa's network mode at `rpc_url` and return the market at `address` as a boa contract.

    The network env is opened only now, after any deploy: boa copies the node's state when it
    is set and runs every call on that copy too, where a market deployed later is missing (boa
    then warns and answers as the node does).
    """
    boa.set_network_env(rpc_url)
    boa.env.add_account(Account.from_key(private_key), force_eoa=True)
    with warnings.catch_warnings():
        # boa compares the runtime code without the immutables (the court's address) the
        # deployed code carries: always a mismatch, never a problem
        warnings.filterwarnings("ignore", "casted bytecode does not match", UserWarning)
        dm = deployer_for(MARKET_SOURCE).at(address)
    warm_up(dm, boa.env._rpc)
    return dm


def namespace(
    rpc_url: str | None = None,
    market_address: str | None = None,
    *,
    console: Console | None = None,
) -> dict[str, Any]:
    """Everything the console starts with: on the embedded chain, or on the node at `rpc_url`
    (the account of $OMNILYTICS_PRIVATE_KEY, else a throwaway one a dev node funds), with the
    market at `market_address` or a court and market freshly deployed as `Market.deploy` does."""
    console = console or Console()
    if rpc_url is None:
        chain: Any = BoaChain()
        owner = chain.new_account(10**22)
        market = Market.deploy(chain, owner)
        dm = chain.contract(market.address)
        boa.env.eoa = owner
    else:
        key = os.environ.get(KEY_ENV)
        # with a key its account funds new accounts (`chain.new_account`); without, a dev node
        # funds a throwaway owner and every new account by its cheat method
        chain = RpcChain(rpc_url, dev=key is None, funder_key=key)
        owner = chain.add_account(key) if key else chain.new_account(10**22)
        market = Market(chain, market_address) if market_address else Market.deploy(chain, owner)
        dm = attach_boa(rpc_url, market.address, chain.private_key(owner))

    def status(task: int | None = None) -> None:
        """Every task (or one): phase, deadline, groups, statuses, credits."""
        console.print(render(read_market(market, [task] if task else None)))

    def gas() -> None:
        """Gas by entry point of every transaction to the market so far."""
        summary = summarize_gas(market.transactions(), params=1)
        table = Table(title="gas by entry point")
        table.add_column("entry point")
        table.add_column("gas", justify="right")
        for name, used in sorted(summary.per_phase.items(), key=lambda kv: -kv[1]):
            table.add_row(name, f"{used:,}")
        console.print(table)

    def example_task(**overrides: Any) -> int:
        """Create a small ETH task from `owner` (fields of TaskConfig may be overridden)."""
        fields = {
            "model_hash": b"\x11" * 32,
            "d": 1_000,
            "lane_bits": 32,
            "scale_bits": 16,
            "clip_norm_micro": 4_000_000,
            "rounds": 1,
            "max_dos": 4,
            "min_dos": 2,
            "group_size": 2,
            "threshold": 2,
            "reward_per_do": 10**16,
        } | overrides
        task, _ = market.create_task(TaskConfig(**fields), owner)
        return task

    return {
        "boa": boa,
        "dm": dm,
        "market": market,
        "chain": chain,
        "owner": owner,
        "status": status,
        "gas": gas,
        "example_task": example_task,
        "TaskConfig": TaskConfig,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="IPython with the OmniLytics market at hand")
    parser.add_argument("--rpc-url", help="attach to a node instead of the embedded chain")
    parser.add_argument("--market", help="an already deployed market's address")
    args = parser.parse_args()
    # boa's network mode runs each call on its own copy of the node's state as well, refreshed
    # only by its own sends: after the facade's (`market.*`), it warns and answers as the node does
    warnings.filterwarnings("ignore", "local fork did not match node", UserWarning)
    names = namespace(args.rpc_url, args.market)

    from IPython import start_ipython
    from traitlets.config import Config

    config = Config()
    config.InteractiveShellApp.extensions = ["boa.ipython"]
    config.TerminalInteractiveShell.banner2 = (
        f"OmniLytics console: market at {names['market'].address} on {names['chain'].name}.\n"
        "dm (boa contract), market (facade), chain, owner; status(), gas(), example_task().\n"
    )
    start_ipython(argv=[], user_ns=names, config=config)


if __name__ == "__main__":
    main()
