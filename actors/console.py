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
from typing import Any

import boa
from boa.contracts.base_evm_contract import BoaError
from eth_account import Account
from rich.console import Console
from rich.table import Table

from actors.chain.artifacts import MARKET_SOURCE
from actors.chain.boa_backend import BoaChain, deployer_for
from actors.chain.rpc_backend import RpcChain
from actors.market import Market, TaskConfig
from actors.report import summarize_gas
from actors.roles import KEY_ENV
from actors.status import read_market, render


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


def namespace(rpc_url: str | None = None, market_address: str | None = None) -> dict[str, Any]:
    """Everything the console starts with."""
    console = Console()
    if rpc_url is None:
        chain: Any = BoaChain()
        owner = chain.new_account(10**22)
        market = Market.deploy(chain, owner)
        dm = chain.contract(market.address)
        boa.env.eoa = owner
    else:
        boa.set_network_env(rpc_url)
        key = os.environ.get(KEY_ENV)
        account = Account.from_key(key) if key else Account.create()
        if not key:  # a dev node: fund a throwaway account
            boa.env._rpc.fetch("anvil_setBalance", [account.address, hex(10**22)])
        boa.env.add_account(account, force_eoa=True)
        owner = account.address
        deployer = deployer_for(MARKET_SOURCE)
        dm = deployer.at(market_address) if market_address else deployer.deploy()
        warm_up(dm, boa.env._rpc)
        chain = RpcChain(rpc_url, dev=key is None)
        chain.add_account(account.key.hex())
        market = Market(chain, str(dm.address))

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
