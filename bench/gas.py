"""Gas of one whole round on a real node (anvil), from transaction receipts.

One task, 10 data owners in 2 groups, d = 50,000 parameters (plus the sample-count lane), run by
the real actors (model owner, data owners, Noise channels, masked submissions) with synthetic
updates in place of training. Prints gas per entry point, and the masked-submission gas per
parameter beside the EIP-7623 calldata floor of the same words (40 gas per non-zero byte), and
writes bench/results/gas.json: the round's totals, and `rows`, one per entry point (`function`,
`calls`, `gas`, `gas_per_call`; the `submit` row also as a gas-path row: `path`, `d`,
`lane_bits`, `gas_per_param`, `floor_gas_per_param`, `ratio`).

    python -m bench.gas [--dos 10] [--group-size 5] [--params 50000] [--lane-bits 32]
                        [--chunk-words 6144]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import trio
from rich.console import Console
from rich.table import Table

from actors.chain.anvil import AnvilNode
from actors.chain.market import Market
from actors.chain.rpc_backend import RpcChain
from actors.roles.data_owner import DataOwner, DataOwnerSettings
from actors.roles.model_owner import ModelOwner, TaskPlan
from actors.roles.store import StateStore
from protocol.constants import DATA_PATH_EVENT, MAX_CHUNK_WORDS
from protocol.encoding import words_bytes

RESULTS = Path(__file__).resolve().parent / "results"
FLOOR_PER_NONZERO_BYTE = 40  # EIP-7623: 10 gas per token, 4 tokens per non-zero byte
FLOOR_PER_ZERO_BYTE = 10


class SyntheticUpdate:
    """A data owner's learner with a fixed random update: gas depends on sizes, not on learning."""

    def __init__(self, params: int, seed: int) -> None:
        self.update = np.random.default_rng(seed).normal(0, 0.01, params)

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        return self.update, 1_000


class SyntheticOwner:
    """A model owner's learner whose public model is a zero vector of `params` floats."""

    def __init__(self, params: int) -> None:
        self.vector = np.zeros(params, dtype=np.float32)

    def public_size(self) -> int:
        return self.vector.size

    def model_bytes(self) -> bytes:
        return self.vector.astype("<f4").tobytes()

    def reference_update(self) -> np.ndarray:
        return np.ones(self.vector.size)

    def apply(self, update: np.ndarray) -> None:
        self.vector = (self.vector + update).astype(np.float32)

    def fit_head(self) -> None:
        """No private head."""

    def accuracy(self) -> float:
        return 0.0


def calldata_floor(words: list[int] | tuple[int, ...]) -> int:
    """EIP-7623 floor of the words' own bytes (no selector, no transaction base cost)."""
    data = words_bytes(words)
    zeros = data.count(0)
    return FLOOR_PER_NONZERO_BYTE * (len(data) - zeros) + FLOOR_PER_ZERO_BYTE * zeros


async def one_round(
    chain: RpcChain,
    dos: int,
    group_size: int,
    params: int,
    lane_bits: int,
    chunk_words: int,
    data_path: int = DATA_PATH_EVENT,
    keep_plaintext: bool = False,
    owner_type: type[ModelOwner] = ModelOwner,
    actors_out: list[DataOwner] | None = None,
) -> tuple[Market, ModelOwner]:
    """One round by the real actors on `chain` (`actors_out` receives the data owners)."""
    mo_account = chain.new_account(10**22)
    market = Market.deploy(chain, mo_account)
    plan = TaskPlan(
        max_dos=dos,
        min_dos=dos,
        group_size=group_size,
        threshold=max(2, group_size // 2 + 1),
        lane_bits=lane_bits,
        scale_bits=lane_bits // 2,
        clip_norm=1.0,
        sample_cap=1_000,
        data_path=data_path,
    )
    mo = owner_type(market, mo_account, SyntheticOwner(params), plan, poll_interval=0.05)
    task = await mo.create_task()
    with tempfile.TemporaryDirectory() as state:
        actors = []
        for i in range(dos):
            account = chain.new_account(10**20)
            store = StateStore(Path(state) / f"do{i}.sqlite")
            settings = DataOwnerSettings(
                poll_interval=0.05, chunk_words=chunk_words, keep_plaintext=keep_plaintext
            )
            actors.append(
                DataOwner(
                    market, account, task, SyntheticUpdate(params, i), store, settings=settings
                )
            )
        async with trio.open_nursery() as nursery:
            for actor in actors:
                await nursery.start(actor.run)
            await mo.run()
    if actors_out is not None:
        actors_out.extend(actors)
    return market, mo


def measure(dos: int, group_size: int, params: int, lane_bits: int, chunk_words: int) -> dict:
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        started = time.perf_counter()
        market, mo = trio.run(one_round, chain, dos, group_size, params, lane_bits, chunk_words)
        wall = time.perf_counter() - started
        per_phase = market.gas_by_function()
        calls = {}
        for receipt in market.receipts:
            calls[receipt.function] = calls.get(receipt.function, 0) + 1
        submissions = market.submissions(mo.task, 0)
        floor = sum(calldata_floor(w) for s in submissions.values() for w in s.chunks)
        lanes = params + 1
        submitted = len(submissions)
        submit_gas = per_phase["submit"]
    rows = []
    for name, gas in sorted(per_phase.items(), key=lambda kv: -kv[1]):
        row = {
            "function": name,
            "calls": calls[name],
            "gas": gas,
            "gas_per_call": gas // calls[name],
        }
        if name == "submit":
            # the masked updates' data path, in bench.paths' row shape beside the floor
            row |= {
                "path": "event",
                "d": params,
                "lane_bits": lane_bits,
                "gas_per_param": submit_gas / (submitted * params),
                "floor_gas_per_param": floor / (submitted * params),
                "ratio": submit_gas / floor,
            }
        rows.append(row)
    return {
        "d": params,
        "lanes": lanes,
        "lane_bits": lane_bits,
        "dos": dos,
        "groups": dos // group_size,
        "chunk_words": chunk_words,
        "per_phase": per_phase,
        "calls": calls,
        "total_gas": sum(per_phase.values()),
        "submit_gas_per_param": submit_gas / (submitted * params),
        "floor_gas_per_param": floor / (submitted * params),
        "submit_to_floor": submit_gas / floor,
        "chain": "anvil",
        "wall_seconds": wall,
        "chain_seconds": sum(r.seconds for r in market.receipts),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dos", type=int, default=10)
    parser.add_argument("--group-size", type=int, default=5)
    parser.add_argument("--params", type=int, default=50_000)
    parser.add_argument("--lane-bits", type=int, default=32, choices=(16, 32))
    # the data owners' own default (DataOwnerSettings): the fewest chunks the contract takes
    parser.add_argument("--chunk-words", type=int, default=MAX_CHUNK_WORDS)
    parser.add_argument("--out", type=Path, default=RESULTS / "gas.json")
    args = parser.parse_args()
    result = measure(args.dos, args.group_size, args.params, args.lane_bits, args.chunk_words)

    console = Console()
    table = Table(
        title=f"one round: {args.dos} DOs, {result['groups']} groups, d = {args.params:,}"
    )
    table.add_column("entry point")
    table.add_column("calls", justify="right")
    table.add_column("gas", justify="right")
    table.add_column("gas per call", justify="right")
    for row in result["rows"]:
        table.add_row(
            row["function"], str(row["calls"]), f"{row['gas']:,}", f"{row['gas_per_call']:,}"
        )
    table.add_row("total", "", f"{result['total_gas']:,}", "")
    console.print(table)
    console.print(
        f"submit: {result['submit_gas_per_param']:.1f} gas/param, EIP-7623 floor of the same words "
        f"{result['floor_gas_per_param']:.1f} gas/param -> "
        f"[bold]{result['submit_to_floor']:.3f}x[/bold] the floor"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
