"""How a round's gas and chain time grow with N (data owners), m (group size) and d (parameters),
and the largest d one block carries on the event path; on a real node (anvil), from receipts.

Each point is one round run by the real actors (`bench.gas.one_round`: model owner, data owners,
Noise channels, Shamir shares, masked submissions; synthetic updates in place of training) on a
fresh anvil node with automine, 32-bit lanes. Three sweeps from one base point (N = 10, m = 5,
d = 10,000): N in {10, 20, 40}, m in {2, 5, 10} (N = 20) and d in {10,000, 50,000, 200,000}.
`chain_seconds` sums every receipt's send-to-receipt wall time with every chain request of every
actor serialized (as `bench.chain_time` measures it: no transaction waits behind another).
The ratios printed: gas per data owner per parameter over the EIP-7623 floor of its words, and
each sweep's growth factors (gas, gas per data owner, chain time) against the growth of N or d.

Block capacity: the largest update one 30M-gas block carries on the event path, computed from
the gas of submitted chunks (a linear fit, gas = a + b * words, over receipts) and the node's
limits: the block's gas limit, the per-transaction size limit (anvil has none beyond its 2 MB
request body), the contract's chunk limit (`MAX_CHUNK_WORDS` words a transaction). It is then
checked on the node: with automine off, the chunks of that update are sent with their exact
gas limits and mined in one block, and an update one word longer spills into a second block.

Writes bench/results/scale.json (`{"rows": [...], "block_capacity": {...}}`) and scale.png.

    python -m bench.scale [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import trio
from rich.console import Console
from rich.table import Table

from actors.chain.anvil import AnvilNode
from actors.chain.rpc_backend import RpcChain
from bench.chain_time import SerialChain
from bench.gas import (
    FLOOR_PER_NONZERO_BYTE,
    FLOOR_PER_ZERO_BYTE,
    RESULTS,
    calldata_floor,
    one_round,
)
from bench.paths import EventPath
from protocol.commitments import split_chunks
from protocol.constants import MAX_CHUNK_WORDS

LANE_BITS = 32
BASE = {"dos": 10, "group_size": 5, "d": 10_000}
SWEEPS = {
    "dos": {"values": (10, 20, 40), "fixed": {"group_size": 5, "d": 10_000}},
    "group_size": {"values": (2, 5, 10), "fixed": {"dos": 20, "d": 10_000}},
    "d": {"values": (10_000, 50_000, 200_000), "fixed": {"dos": 10, "group_size": 5}},
}
QUICK_SWEEPS = {
    "dos": {"values": (10, 20), "fixed": {"group_size": 5, "d": 2_000}},
    "group_size": {"values": (2, 5), "fixed": {"dos": 10, "d": 2_000}},
    "d": {"values": (2_000, 20_000), "fixed": {"dos": 5, "group_size": 5}},
}
TX_BASE_GAS = 21_000
# anvil's default request body limit (`--no-request-size-limit` lifts it); a raw transaction
# travels hex-encoded, two characters a byte
ANVIL_REQUEST_LIMIT = 2 * 1024 * 1024
LANES_PER_WORD = 256 // LANE_BITS


def measure_round(dos: int, group_size: int, d: int) -> dict:
    """One round on a fresh node; its row."""
    with AnvilNode() as node:
        chain = SerialChain(RpcChain(node.url, dev=True))
        started = time.perf_counter()
        market, mo = trio.run(one_round, chain, dos, group_size, d, LANE_BITS, MAX_CHUNK_WORDS)
        wall = time.perf_counter() - started
        submissions = market.submissions(mo.task, 0)
        floor = sum(calldata_floor(w) for s in submissions.values() for w in s.chunks)
    by_function = market.gas_by_function()
    total = sum(by_function.values())
    submitted = len(submissions)
    return {
        "dos": dos,
        "group_size": group_size,
        "threshold": max(2, group_size // 2 + 1),
        "d": d,
        "lanes": d + 1,
        "lane_bits": LANE_BITS,
        "submitted": submitted,
        "total_gas": total,
        "gas_per_do": total / dos,
        "gas_per_do_per_param": total / (dos * d),
        "submit_gas_per_param": by_function["submit"] / (submitted * d),
        "floor_gas_per_param": floor / (submitted * d),
        "submit_to_floor": by_function["submit"] / floor,
        "total_to_floor": total / floor,
        "other_gas_per_do": (total - by_function["submit"]) / dos,
        "gas_by_function": by_function,
        "transactions": len(market.receipts),
        "chain_seconds": sum(r.seconds for r in market.receipts),
        "wall_seconds": wall,
        # a fraction of local training time: synthetic updates train nothing, so it is
        # measured on the demo with real training (bench/results/chain_time.json)
        "protocol_overhead": None,
    }


def _tx_floor(data: bytes) -> int:
    """EIP-7623 floor of a transaction carrying `data`: what a data-heavy call pays."""
    zeros = data.count(0)
    return TX_BASE_GAS + FLOOR_PER_ZERO_BYTE * zeros + FLOOR_PER_NONZERO_BYTE * (len(data) - zeros)


def _dense_words(count: int, rng: np.random.Generator) -> list[int]:
    """Masked words with no zero byte: the most a word of an update costs at the floor."""
    raw = rng.integers(1, 256, size=(count, 32), dtype=np.uint8)
    return [int.from_bytes(row.tobytes(), "big") for row in raw]


def _submits(path: EventPath, task: int, words: Sequence[int]) -> list[tuple[list, bytes]]:
    """Each chunk's `submit` arguments and calldata, cut as data owners cut them."""
    codec = path.chain._codecs[path.market.address]
    out = []
    for index, chunk in enumerate(split_chunks(list(words), MAX_CHUNK_WORDS)):
        args = [task, 0, index, list(chunk)]
        out.append((args, codec.encode_call("submit", args)))
    return out


def _one_block(path: EventPath, words: int, rng: np.random.Generator) -> dict:
    """Send every chunk of one data owner's update of `words` dense words with automine off,
    each with its exact floor as gas limit, then mine: the blocks the node put them in."""
    chain = path.chain
    task, (do, _) = path.open_submit(words * LANES_PER_WORD, LANE_BITS)
    submits = _submits(path, task, _dense_words(words, rng))
    nonce = int(chain._rpc("eth_getTransactionCount", [do, "pending"]), 16)
    fee = 2 * int(chain._rpc("eth_gasPrice", []), 16) + 1
    account = chain._accounts[do]
    chain._rpc("evm_setAutomine", [False])
    try:
        hashes = []
        for i, (_, data) in enumerate(submits):
            tx = {
                "chainId": chain.chain_id,
                "type": 2,
                "nonce": nonce + i,
                "to": path.market.address,
                "data": data,
                "value": 0,
                "gas": _tx_floor(data),
                "maxFeePerGas": fee,
                "maxPriorityFeePerGas": 1,
            }
            raw = account.sign_transaction(tx).raw_transaction
            hashes.append(chain._rpc("eth_sendRawTransaction", ["0x" + raw.hex()]))
        chain._rpc("evm_mine", [])
        chain._rpc("evm_mine", [])
    finally:
        chain._rpc("evm_setAutomine", [True])
    receipts = [chain._rpc("eth_getTransactionReceipt", [h]) for h in hashes]
    if any(r is None for r in receipts):
        raise RuntimeError("block capacity: a chunk was not mined in two blocks")
    floors = [_tx_floor(data) for _, data in submits]
    used = [int(r["gasUsed"], 16) for r in receipts]
    return {
        "words": words,
        "params": words * LANES_PER_WORD - 1,
        "chunks": len(submits),
        "gas_limits": sum(floors),
        "gas_used": sum(used),
        "gas_used_is_floor": used == floors,
        "blocks": len({int(r["blockNumber"], 16) for r in receipts}),
        "all_succeeded": all(int(r["status"], 16) == 1 for r in receipts),
    }


def block_capacity(seed: int = 0) -> dict:
    """The largest update one block carries on the event path: computed, then checked.

    Computed from the exact EIP-7623 floor of each chunk's calldata (what a data-heavy
    `submit` pays: execution, event and hashing cost less) for words with no zero byte, the
    costliest a masked word can be; so any update of that size fits."""
    rng = np.random.default_rng(seed)
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        path = EventPath(chain)
        block_gas = chain.block_gas_limit
        dummy = [2**256 - 1]  # a word of no zero byte
        words = block_gas // (32 * FLOOR_PER_NONZERO_BYTE)
        while sum(_tx_floor(d) for _, d in _submits(path, 1, dummy * words)) > block_gas:
            words -= 1
        fits = _one_block(path, words, rng)
        spills = _one_block(path, words + 1, rng)
    return {
        "lane_bits": LANE_BITS,
        "block_gas_limit": block_gas,
        "per_word_floor": 32 * FLOOR_PER_NONZERO_BYTE,
        "max_words": words,
        "max_lanes": words * LANES_PER_WORD,
        "max_params": words * LANES_PER_WORD - 1,  # one lane carries the sample count
        "max_params_16_bit_lanes": words * 16 - 1,
        "contract_chunk_words": MAX_CHUNK_WORDS,
        "contract_chunk_bytes": 32 * MAX_CHUNK_WORDS,
        "tx_bytes_the_block_gas_buys": (block_gas - TX_BASE_GAS) // FLOOR_PER_NONZERO_BYTE,
        "node_tx_bytes_limit": ANVIL_REQUEST_LIMIT // 2,
        "binds": "the block gas limit; per transaction, the contract's chunk limit",
        "check_fits": fits,
        "check_one_word_more": spills,
        "checked": fits["blocks"] == 1
        and fits["all_succeeded"]
        and fits["gas_used_is_floor"]
        and spills["blocks"] == 2,
    }


def measure(sweeps: dict) -> dict:
    rows: list[dict] = []
    cache: dict[tuple[int, int, int], dict] = {}
    for swept, spec in sweeps.items():
        for value in spec["values"]:
            point = {**spec["fixed"], swept: value}
            key = (point["dos"], point["group_size"], point["d"])
            if key not in cache:
                cache[key] = measure_round(*key)
            rows.append({**cache[key], "sweep": swept})
    return {
        "chain": "anvil 1.7.1 (hardfork Bpo1, EIP-7623 calldata floor), automine",
        "lane_bits": LANE_BITS,
        "chain_seconds": "sum over receipts of send-to-receipt wall time, every chain request "
        "serialized (one in flight)",
        "rows": rows,
        "growth": growth(rows),
        "block_capacity": block_capacity(),
    }


def growth(rows: Sequence[dict]) -> dict:
    """Per sweep, last point over first: of the swept variable, gas, gas per DO, chain time."""
    out = {}
    for swept in dict.fromkeys(r["sweep"] for r in rows):
        points = [r for r in rows if r["sweep"] == swept]
        first, last = points[0], points[-1]
        out[swept] = {
            "from": first[swept],
            "to": last[swept],
            "variable": last[swept] / first[swept],
            "total_gas": last["total_gas"] / first["total_gas"],
            "gas_per_do": last["gas_per_do"] / first["gas_per_do"],
            "other_gas_per_do": last["other_gas_per_do"] / first["other_gas_per_do"],
            "chain_seconds": last["chain_seconds"] / first["chain_seconds"],
            "transactions": last["transactions"] / first["transactions"],
        }
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    labels = {"dos": "data owners N", "group_size": "group size m", "d": "parameters d"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, swept in zip(axes, ("dos", "group_size", "d"), strict=True):
        points = [r for r in rows if r["sweep"] == swept]
        if not points:
            continue
        x = [r[swept] for r in points]
        ax.plot(x, [r["gas_per_do"] / 1e6 for r in points], "o-", label="gas per DO")
        ax.plot(x, [r["other_gas_per_do"] / 1e6 for r in points], "s-", label="of which not submit")
        ax.set_xlabel(labels[swept])
        ax.set_ylabel("M gas")
        ax.set_ylim(bottom=0)
        ax.set_xscale("log" if swept == "d" else "linear")
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(
            x, [r["chain_seconds"] for r in points], "^--", color="tab:red", label="chain time"
        )
        twin.set_ylabel("chain seconds (serialized)", color="tab:red")
        twin.set_ylim(bottom=0)
        fixed = {k: v for k, v in points[0].items() if k in labels and k != swept}
        ax.set_title(
            ", ".join(
                f"{'N' if k == 'dos' else 'm' if k == 'group_size' else k} = {v:,}"
                for k, v in fixed.items()
            ),
            fontsize=9,
        )
        if swept == "dos":
            ax.legend(fontsize=8, loc="upper left")
            twin.legend(fontsize=8, loc="lower right")
    cap = result["block_capacity"]
    fig.suptitle(
        f"one round on anvil, 32-bit lanes; one 30M-gas block carries d <= "
        f"{cap['max_params']:,} on the event path"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_result(console: Console, result: dict) -> None:
    table = Table(title="one round on anvil by N, m, d (32-bit lanes)")
    for name in (
        "sweep",
        "N",
        "m",
        "d",
        "total gas",
        "gas/DO/param",
        "submit x floor",
        "other gas/DO",
        "tx",
        "chain s",
    ):
        table.add_column(name, justify="right")
    for r in result["rows"]:
        table.add_row(
            r["sweep"],
            str(r["dos"]),
            str(r["group_size"]),
            f"{r['d']:,}",
            f"{r['total_gas'] / 1e6:.2f} M",
            f"{r['gas_per_do_per_param']:.1f}",
            f"[bold]{r['submit_to_floor']:.3f}[/bold]",
            f"{r['other_gas_per_do'] / 1e3:.0f} k",
            str(r["transactions"]),
            f"{r['chain_seconds']:.2f}",
        )
    console.print(table)
    for swept, g in result["growth"].items():
        console.print(
            f"{swept} x{g['variable']:g} ({g['from']:,} -> {g['to']:,}): total gas "
            f"x{g['total_gas']:.2f}, gas per DO x{g['gas_per_do']:.2f} (besides submit "
            f"x{g['other_gas_per_do']:.2f}), chain time x{g['chain_seconds']:.2f}, "
            f"transactions x{g['transactions']:.2f}"
        )
    cap = result["block_capacity"]
    fits, spills = cap["check_fits"], cap["check_one_word_more"]
    console.print(
        f"event path, one block ({cap['block_gas_limit']:,} gas): d <= [bold]"
        f"{cap['max_params']:,}[/bold] parameters at 32-bit lanes ({cap['max_words']:,} words "
        f"in {fits['chunks']} chunks, {fits['gas_used'] / cap['max_words']:.1f} gas a word = "
        f"{fits['gas_used'] / cap['max_words'] / cap['per_word_floor']:.3f}x the floor's "
        f"{cap['per_word_floor']}). Binds: {cap['binds']} ({cap['contract_chunk_bytes']:,} B; "
        f"the block's gas would buy {cap['tx_bytes_the_block_gas_buys']:,} B in one "
        f"transaction, the node takes {cap['node_tx_bytes_limit']:,} B). Checked on the node: "
        f"{fits['blocks']} block for d = {fits['params']:,}, {spills['blocks']} for one word "
        f"more -> [bold]{'ok' if cap['checked'] else 'FAILED'}[/bold]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    args = parser.parse_args()
    result = measure(QUICK_SWEEPS if args.quick else SWEEPS)
    console = Console()
    print_result(console, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    png = args.out.with_suffix(".png")
    plot(result, png)
    console.print(f"wrote {args.out} and {png}")


if __name__ == "__main__":
    main()
