"""The direct data path through the real actors on anvil: a large model's round, and the chain
time of the demo's round.

Two measures, from one run, each beside its reference measured in the same run:

- **A round at d >= 1 M** (default d = 1,000,000 public parameters + the sample-count lane, 10
  data owners in groups of 5, 32-bit lanes, synthetic updates in place of training), run by the
  real actors (`bench.gas.one_round`: model owner, data owners, Noise channels) on a fresh anvil.
  Every data owner commits its update's digest at the desk and streams its 4 MB of words to the
  model owner; nothing of the update goes on-chain. Reports the wall time, the gas of the round
  and of each data owner (`gas_per_do_round`: every transaction a data owner sent in the round,
  registration included, from anvil receipts; `gas_per_do_round_7976` at a 64 gas/byte
  calldata floor, each transaction at max(gas used, 21,000 + 64 x its calldata bytes)), the
  peak RSS of this process (all eleven actors run in it), and whether each group's recovered
  aggregate equals the sum of its members' plaintext updates. With `--challenge-all` the model owner
  challenges every data owner and each answers on-chain (the dispute's worst case).
- **Chain time of the demo's round** (d = 46,730, 10 data owners, groups of 5) on the direct path
  vs the event path, each request serialized (`bench.chain_time.serialized_round`: the sum of the
  transactions' send-to-receipt times), beside the seed paper's 500 ms; its row (`path: "direct"`)
  joins bench/results/chain_time.json's rows.

Writes bench/results/direct_round.json and the direct row of bench/results/chain_time.json.

    python -m bench.direct_round [--params 1000000] [--dos 10] [--challenge-all] [--skip-chain-time]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import trio
from rich.console import Console
from rich.table import Table

from actors.chain.anvil import AnvilNode
from actors.chain.rpc_backend import RpcChain
from actors.roles.direct_owner import DirectOwner
from actors.roles.model_owner import ModelOwner
from bench.chain_time import PAPER_SECONDS, serialized_round
from bench.direct import EIP7976_PER_BYTE, TX_BASE_GAS
from bench.gas import RESULTS, one_round
from protocol.constants import DATA_PATH_DIRECT, DATA_PATH_EVENT, MAX_CHUNK_WORDS

DEMO_PARAMS = 46_730
LANE_BITS = 32
CHAIN_TIME_TARGET = 0.05  # seconds: the target for the direct path's round


class ChallengeEveryone(DirectOwner):
    """A model owner that challenges every committed update, delivered or not."""

    async def _challenge_missing(self, round: int) -> None:
        self.inbox.forget(round)
        await super()._challenge_missing(round)


class ChallengingOwner(ModelOwner):
    direct_type = ChallengeEveryone


def large_round(params: int, dos: int, group_size: int, challenge_all: bool) -> dict:
    actors: list = []
    owner_type = ChallengingOwner if challenge_all else ModelOwner
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        started = time.perf_counter()
        market, mo = trio.run(
            one_round,
            chain,
            dos,
            group_size,
            params,
            LANE_BITS,
            MAX_CHUNK_WORDS,
            DATA_PATH_DIRECT,
            True,  # keep plaintexts: check the aggregates
            owner_type,
            actors,
        )
        wall = time.perf_counter() - started
        task = mo.task
        report = mo.reports[0]
        exact = report.finalized_groups == dos // group_size
        for group in range(market.group_count(task)):
            members = set(market.group_members(task, group))
            expected = sum(a.plaintext[0] for a in actors if a.account in members)
            exact = exact and np.array_equal(report.aggregates[group], expected)
        words = market.update_words(task)
        challenged = len(market.challenged(task, 0))
        # from chain data: every mined transaction to the market, its court and its desk
        txs = market.transactions()
        senders = {a.account.lower() for a in actors}
        floored = sum(
            max(gas, TX_BASE_GAS + EIP7976_PER_BYTE * size) for gas, size in sent_by(chain, senders)
        )
    do_gas = [tx.gas_used for tx in txs if tx.sender.lower() in senders]
    by_function: dict[str, int] = {}
    for tx in txs:
        if tx.sender.lower() in senders:
            by_function[tx.function] = by_function.get(tx.function, 0) + tx.gas_used
    total = sum(tx.gas_used for tx in txs if tx.function != "constructor")
    return {
        "path": "direct",
        "d": params,
        "lanes": params + 1,
        "words": words,
        "update_bytes": 32 * words,
        "dos": dos,
        "group_size": group_size,
        "lane_bits": LANE_BITS,
        "challenged": challenge_all,
        "challenges": challenged,
        "gas_per_do_round": sum(do_gas) / dos,
        "gas_per_do_round_7976": floored / dos,
        "do_gas_by_function": {k: v / dos for k, v in sorted(by_function.items())},
        "mo_gas": total - sum(do_gas),
        "total_gas": total,
        "transactions": len(market.receipts),
        "wall_seconds": wall,
        "chain_seconds": sum(r.seconds for r in market.receipts),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "processes": "one: the model owner and every data owner",
        "aggregates_exact": bool(exact),
        "submitters": report.submitters,
    }


def sent_by(chain: RpcChain, senders: set[str]) -> list[tuple[int, int]]:
    """(gas used, calldata bytes) of every mined transaction from `senders`."""
    w3, out = chain.w3, []
    for number in range(w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"].lower() in senders:
                receipt = w3.eth.get_transaction_receipt(tx["hash"])
                out.append((receipt["gasUsed"], len(tx["input"])))
    return out


def chain_time(repeats: int) -> dict:
    """The demo's round on both paths, serialized, median of `repeats` interleaved runs."""
    runs: dict[int, list[dict]] = {DATA_PATH_EVENT: [], DATA_PATH_DIRECT: []}
    for _ in range(repeats):
        for path in runs:
            runs[path].append(serialized_round(DEMO_PARAMS, path))
    direct = statistics.median(r["chain_seconds"] for r in runs[DATA_PATH_DIRECT])
    event = statistics.median(r["chain_seconds"] for r in runs[DATA_PATH_EVENT])
    return {
        "path": "direct",
        "dos": 10,
        "d": DEMO_PARAMS,
        "group_size": 5,
        "lane_bits": LANE_BITS,
        "transactions": runs[DATA_PATH_DIRECT][0]["transactions"],
        "total_gas": runs[DATA_PATH_DIRECT][0]["total_gas"],
        "chain_seconds": direct,
        "chain_seconds_runs": [r["chain_seconds"] for r in runs[DATA_PATH_DIRECT]],
        "node_seconds": statistics.median(r["node_seconds"] for r in runs[DATA_PATH_DIRECT]),
        "event_chain_seconds": event,
        "event_total_gas": runs[DATA_PATH_EVENT][0]["total_gas"],
        "paper_seconds": PAPER_SECONDS,
        "chain_to_paper": direct / PAPER_SECONDS,
        "direct_to_event": direct / event,
        "target_seconds": CHAIN_TIME_TARGET,
        "measure": "one round by the real actors (10 DOs, groups of 5, synthetic updates) on a "
        "fresh anvil with automine, every chain request serialized; sum over the round's "
        "transactions of send-to-receipt wall time, deployment excluded; median of interleaved "
        "repeats of the direct and the event path",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=1_000_000)
    parser.add_argument("--dos", type=int, default=10)
    parser.add_argument("--group-size", type=int, default=5)
    parser.add_argument("--challenge-all", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-chain-time", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "direct_round.json")
    args = parser.parse_args()
    console = Console()

    row = large_round(args.params, args.dos, args.group_size, args.challenge_all)
    table = Table(title=f"one direct round on anvil: {args.dos} DOs, d = {args.params:,}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("update per data owner", f"{row['update_bytes'] / 2**20:.1f} MiB")
    table.add_row("challenged", f"{row['challenges']} of {args.dos}")
    table.add_row("gas per data owner per round", f"{row['gas_per_do_round']:,.0f}")
    table.add_row("model owner's gas", f"{row['mo_gas']:,}")
    table.add_row("wall time", f"{row['wall_seconds']:.1f} s")
    table.add_row("peak RSS (one process, 11 actors)", f"{row['peak_rss_bytes'] / 2**20:,.0f} MiB")
    table.add_row("aggregates", "exact" if row["aggregates_exact"] else "WRONG")
    console.print(table)
    result = {"rows": [row]}
    if args.out.exists():  # keep the other configuration's row
        kept = json.loads(args.out.read_text()).get("rows", [])
        result["rows"] += [
            r for r in kept if (r.get("d"), r.get("challenged")) != (row["d"], row["challenged"])
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")

    if not args.skip_chain_time:
        timing = chain_time(args.repeats)
        console.print(
            f"chain time of the demo's round: direct {1e3 * timing['chain_seconds']:.0f} ms, "
            f"event {1e3 * timing['event_chain_seconds']:.0f} ms, the paper's "
            f"{1e3 * PAPER_SECONDS:.0f} ms -> [bold]{timing['chain_to_paper']:.3f}x[/bold] "
            f"(target {1e3 * CHAIN_TIME_TARGET:.0f} ms)"
        )
        path = RESULTS / "chain_time.json"
        data = json.loads(path.read_text()) if path.exists() else {"rows": []}
        data["rows"] = [r for r in data["rows"] if r.get("path") != "direct"] + [timing]
        path.write_text(json.dumps(data, indent=2) + "\n")
        console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
