"""Whole-round cost on a real node (anvil): total gas, ETH at a stated gas price, chain time.

For N in {10, 20, 50} data owners in groups of 5 and d = the demo model's public parameters
(46,730, plus the sample-count lane), one round run by the real actors (`bench.gas.one_round`:
model owner, data owners, Noise channels, masked submissions; synthetic updates in place of
training), each N on a fresh anvil node. Contract deployment is not part of a round.

`chain_seconds` sums every receipt's send-to-receipt wall time. Data owners send concurrently,
so the sum can exceed the round's wall time. The ratio printed is the round's total gas to the
EIP-7623 calldata floor of every masked update's words: what the whole protocol costs beyond
carrying the updates at all. `protocol_overhead` (a fraction of local training time) is null
here, nothing is trained: `bench.chain_time` measures it on the demo. Writes
bench/results/rounds.json.

    python -m bench.rounds [--dos 10 20 50] [--gas-price-gwei 20]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import trio
from rich.console import Console
from rich.table import Table

from actors.chain.anvil import AnvilNode
from actors.chain.rpc_backend import RpcChain
from actors.learning.model import public_parameter_count
from bench.gas import RESULTS, calldata_floor, one_round
from protocol.constants import MAX_CHUNK_WORDS

DOS = (10, 20, 50)
GROUP_SIZE = 5
LANE_BITS = 32
GAS_PRICE_GWEI = 20


def measure_round(dos: int, params: int, gas_price_gwei: float) -> dict:
    """One round of `dos` data owners on a fresh node; its row."""
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        started = time.perf_counter()
        market, mo = trio.run(one_round, chain, dos, GROUP_SIZE, params, LANE_BITS, MAX_CHUNK_WORDS)
        wall = time.perf_counter() - started
        submissions = market.submissions(mo.task, 0)
        floor = sum(calldata_floor(w) for s in submissions.values() for w in s.chunks)
        groups = market.group_count(mo.task)
    total = sum(r.gas_used for r in market.receipts)
    return {
        "dos": dos,
        "groups": groups,
        "submitted": len(submissions),
        "d": params,
        "lanes": params + 1,
        "lane_bits": LANE_BITS,
        "chunk_words": MAX_CHUNK_WORDS,
        "total_gas": total,
        "gas_per_do": total / dos,
        "eth_at_gas_price": total * gas_price_gwei * 10**9 / 10**18,
        "gas_price_gwei": gas_price_gwei,
        "chain_seconds": sum(r.seconds for r in market.receipts),
        "wall_seconds": wall,
        "transactions": len(market.receipts),
        "floor_gas": floor,
        "total_to_floor": total / floor,
        "gas_by_function": market.gas_by_function(),
        # a fraction of local training time: synthetic updates train nothing, so it is
        # measured on the demo with real training (bench/results/chain_time.json)
        "protocol_overhead": None,
    }


def measure(dos: Sequence[int], params: int, gas_price_gwei: float) -> dict:
    return {
        "chain": "anvil 1.7.1 (hardfork Bpo1, EIP-7623 calldata floor), automine",
        "group_size": GROUP_SIZE,
        "gas_price_gwei": gas_price_gwei,
        "chain_seconds": "sum over receipts of send-to-receipt wall time (concurrent sends "
        "overlap)",
        "rows": [measure_round(n, params, gas_price_gwei) for n in dos],
    }


def print_table(console: Console, result: dict) -> None:
    price = result["gas_price_gwei"]
    table = Table(title=f"one round on anvil, groups of {result['group_size']}")
    for name in (
        "DOs",
        "d",
        "total gas",
        "gas per DO",
        f"ETH @ {price:g} gwei",
        "x floor",
        "chain s",
        "wall s",
    ):
        table.add_column(name, justify="right")
    for row in result["rows"]:
        table.add_row(
            str(row["dos"]),
            f"{row['d']:,}",
            f"{row['total_gas'] / 1e6:,.2f} M",
            f"{row['gas_per_do'] / 1e6:.2f} M",
            f"{row['eth_at_gas_price']:.4f}",
            f"[bold]{row['total_to_floor']:.3f}[/bold]",
            f"{row['chain_seconds']:.1f}",
            f"{row['wall_seconds']:.1f}",
        )
    console.print(table)
    console.print(
        "x floor: the round's total gas over the EIP-7623 floor of all masked updates' words"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dos", type=int, nargs="+", default=list(DOS))
    parser.add_argument("--params", type=int, default=public_parameter_count())
    parser.add_argument("--gas-price-gwei", type=float, default=GAS_PRICE_GWEI)
    parser.add_argument("--out", type=Path, default=RESULTS / "rounds.json")
    args = parser.parse_args()
    if any(n < GROUP_SIZE for n in args.dos):
        parser.error(f"at least {GROUP_SIZE} data owners (one group)")
    result = measure(args.dos, args.params, args.gas_price_gwei)
    console = Console()
    print_table(console, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
