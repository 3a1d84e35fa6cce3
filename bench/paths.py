"""Gas per parameter of one data owner's masked update, by data path, on a real node (anvil).

For d in {10,000, 50,000, 200,000} parameters and 16/32-bit lanes, from transaction receipts:

- `event`: the market itself (contracts/DataMarket.vy). A minimal task (2 data owners in one
  group, real X25519 keys and Merkle roots over real Shamir shares) reaches SUBMIT, then one data
  owner posts its whole masked-size update of uniformly random lanes with `submit`.
- `naive`: bench/contracts/NaiveStorage.vy, one storage slot per parameter per data owner.
  Its cost per parameter does not depend on d, so at most 10 full calls are measured (all of
  d = 10,000; above, the row says how many parameters in `sampled_params`).
- `packed_storage`: bench/contracts/PackedAccumulator.vy, the group sum in packed storage words.
  The first data owner writes fresh slots (`first_write_gas_per_param`); the row reports the
  steady state, a second data owner adding into them.
- `blob`: the market on a blob task (EIP-4844, docs/interfaces.md §3b): the same update's words
  in blobs of 3,968 words, at most 6 per type-3 transaction (anvil 1.7.1's limit), through
  `submit_blobs`. `gas_per_param` is execution gas only; the blob gas (131,072 per blob, priced
  on its own fee market) is `blob_gas_per_param`. The row also times KZG on the client
  (commitments and EIP-7594 cell proofs, the trusted setup loaded once beforehand).

Event chunks: the fewest transactions of at most 6,144 words (the contract's limit; a 30M-gas
block would carry about 23,000 at the floor), cut evenly; a sweep at d = 50,000 shows what
smaller chunks cost.

Every row sits beside the EIP-7623 floor of the same update's packed words (40 gas per non-zero
byte, 10 per zero byte: 160 or 80 gas per parameter), the least any path pays to carry it in
calldata. Writes bench/results/gas_paths.json and prints the ratios.

    python -m bench.paths [--params 10000 50000 200000] [--lane-bits 16 32]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ckzg
import numpy as np
from rich.console import Console
from rich.table import Table

from actors.chain.anvil import AnvilNode
from actors.chain.base import Receipt
from actors.chain.market import Market, TaskConfig
from actors.chain.rpc_backend import RpcChain
from bench.gas import FLOOR_PER_NONZERO_BYTE, RESULTS, calldata_floor
from protocol import blobs as kzg
from protocol.blobs import blob_chunks, words_to_blobs
from protocol.commitments import (
    chunk_digest,
    model_digest,
    split_chunks,
    update_digest,
)
from protocol.constants import DATA_PATH_BLOB, DATA_PATH_EVENT, MAX_CHUNK_WORDS, STATUS_SUBMITTED
from protocol.dealing import deal_round
from protocol.encoding import pack_lanes, word_count
from protocol.masks import MaskKeyPair

CONTRACTS = Path(__file__).resolve().parent / "contracts"
NAIVE_SOURCE = CONTRACTS / "NaiveStorage.vy"
PACKED_SOURCE = CONTRACTS / "PackedAccumulator.vy"

PARAMS = (10_000, 50_000, 200_000)
LANE_BITS = (16, 32)
# NaiveStorage.MAX_VALUES: about 23M gas a call, under the 30M block
NAIVE_CHUNK = 1_024
# the naive path's cost per parameter is flat in d: at most this many calls per update (all of
# d = 10,000; the first full ones of larger updates)
NAIVE_SAMPLE_CHUNKS = 10
# fresh packed slots cost ~22,700 gas a word, already written ones ~5,600: both chunks fill
# about 23M gas of the 30M block
PACKED_FIRST_CHUNK = 1_024
PACKED_CHUNK = 4_096
# event-path chunk sizes compared at one (d, lane bits), to show what the chunk size buys
SWEEP_CHUNKS = (512, 1_024, 2_048, 4_096)
SWEEP_AT = (50_000, 32)
TX_BASE_GAS = 21_000
MODEL = b"bench.paths: the public model's bytes only need a digest here"
# KZG timing: blobs of random words, medians
KZG_SAMPLES = 3
BLOB_WORDS_SAMPLE = 3_968


@dataclass(frozen=True, slots=True)
class Submitted:
    """What one data owner's update cost: receipts' gas (execution, and blob gas apart),
    transactions, parameters covered."""

    gas: int
    transactions: int
    params: int
    blob_gas: int = 0

    @classmethod
    def of(cls, receipts: Sequence[Receipt], params: int) -> Submitted:
        return cls(
            sum(r.gas_used for r in receipts),
            len(receipts),
            params,
            sum(r.blob_gas_used for r in receipts),
        )

    @property
    def per_param(self) -> float:
        return self.gas / self.params


def random_lanes(d: int, lane_bits: int, rng: np.random.Generator) -> np.ndarray:
    """A masked update's statistics: lanes uniform in [0, 2^k) (masks make them so)."""
    return rng.integers(0, 2**lane_bits, d, dtype=np.uint64)


def floor_per_param(lanes: np.ndarray, lane_bits: int) -> float:
    """EIP-7623 floor of the update's packed words, per parameter."""
    return calldata_floor(pack_lanes(lanes, lane_bits)) / lanes.size


def event_chunk_words(chain: RpcChain) -> int:
    """Largest chunk the contract takes and one block carries at the calldata floor."""
    fits_block = (chain.block_gas_limit - TX_BASE_GAS) // (32 * FLOOR_PER_NONZERO_BYTE)
    return min(MAX_CHUNK_WORDS, fits_block)


def balanced_chunk_words(words: int, max_chunk: int) -> int:
    """The fewest chunks of at most `max_chunk` words, cut as evenly as possible.

    Each transaction pays its base cost once, so the fewest chunks win; a chunk also pays a
    fixed execution cost (storage writes, most in the first and last chunk) that only its
    calldata floor hides when it is long enough: a short remainder chunk would not be.
    """
    return -(-words // -(-words // max_chunk))


class EventPath:
    """The market on one node: opens a minimal task per measurement and submits into it."""

    def __init__(self, chain: RpcChain) -> None:
        self.chain = chain
        self.owner = chain.new_account(10**22)
        self.market = Market.deploy(chain, self.owner)

    def open_submit(
        self, d: int, lane_bits: int, data_path: int = DATA_PATH_EVENT
    ) -> tuple[int, list[str]]:
        """A task of d lanes with two data owners in one group, in its SUBMIT phase."""
        market = self.market
        config = TaskConfig(
            model_hash=model_digest(bytes(32), MODEL),
            d=d,
            lane_bits=lane_bits,
            scale_bits=lane_bits // 2,
            clip_norm_micro=1_000_000,
            rounds=1,
            max_dos=2,
            min_dos=2,
            group_size=2,
            threshold=2,
            reward_per_do=10**15,
            data_path=data_path,
        )
        task, _ = market.create_task(config, self.owner)
        market.publish_model(task, 0, MODEL, self.owner)
        dos = [self.chain.new_account(10**20) for _ in range(2)]
        for do in dos:
            channel_key = MaskKeyPair.generate(os.urandom).public
            # an endpoint nobody dials: no peer channel is opened in a gas measurement
            market.register(task, channel_key, "127.0.0.1:9", do)
        market.close_registration(task, self.owner)
        members = market.group_members(task, market.group_of(task, dos[0]))
        for do in dos:
            dealing = deal_round(task, 0, int(do, 16), [int(m, 16) for m in members], 2, os.urandom)
            market.commit_shares(
                task, 0, dealing.keys.public, dealing.tree.root, dealing.points, do
            )
        market.advance(task, self.owner)  # SETTLE: nobody complains, so it closes at once
        for do in dos:
            market.settle(task, 0, 0, do)
        market.advance(task, self.owner)
        return task, dos

    def measure(self, lanes: np.ndarray, lane_bits: int, chunk_words: int) -> Submitted:
        """One data owner's whole update through `submit`, checked complete and digest-equal."""
        task, (do, _) = self.open_submit(lanes.size, lane_bits)
        words = pack_lanes(lanes, lane_bits)
        receipts = self.market.submit_update(task, 0, words, do, chunk_words=chunk_words)
        chunks = split_chunks(words, chunk_words)  # as submit_update cuts them
        if self.market.status(task, 0, do) != STATUS_SUBMITTED:
            raise RuntimeError("event path: the update did not complete")
        if self.market.update_digest(task, 0, do) != update_digest(chunks):
            raise RuntimeError("event path: on-chain digest differs from the words sent")
        return Submitted.of(receipts, lanes.size)

    def measure_blobs(self, lanes: np.ndarray, lane_bits: int) -> Submitted:
        """One data owner's whole update as blobs, checked complete and digest-equal."""
        task, (do, _) = self.open_submit(lanes.size, lane_bits, DATA_PATH_BLOB)
        words = pack_lanes(lanes, lane_bits)
        receipts = self.market.submit_blob_update(task, 0, words, do)
        digest = bytes(32)
        for chunk in blob_chunks(words):
            hashes = [kzg.versioned_hash(kzg.commitment(b)) for b in words_to_blobs(chunk)]
            digest = chunk_digest(digest, [int.from_bytes(h, "big") for h in hashes])
        if self.market.status(task, 0, do) != STATUS_SUBMITTED:
            raise RuntimeError("blob path: the update did not complete")
        if self.market.update_digest(task, 0, do) != digest:
            raise RuntimeError("blob path: on-chain digest differs from the blobs sent")
        return Submitted.of(receipts, lanes.size)


def kzg_timing(samples: int, rng: np.random.Generator) -> dict:
    """Client KZG work per blob (seconds, medians of `samples` blobs of random words): the
    commitment, the EIP-7594 cell proofs an Osaka transaction carries, and the single EIP-4844
    blob proof they replace; the trusted setup's one load per process."""
    started = time.perf_counter()
    setup = kzg.trusted_setup()
    load = time.perf_counter() - started
    times: dict[str, list[float]] = {"commitment": [], "cell_proofs": [], "blob_proof": []}
    for _ in range(samples):
        words = [int.from_bytes(rng.bytes(32), "big") for _ in range(BLOB_WORDS_SAMPLE)]
        (blob,) = words_to_blobs(words)
        started = time.perf_counter()
        commitment = kzg.commitment(blob)
        times["commitment"].append(time.perf_counter() - started)
        started = time.perf_counter()
        kzg.cell_proofs(blob)
        times["cell_proofs"].append(time.perf_counter() - started)
        started = time.perf_counter()
        ckzg.compute_blob_kzg_proof(blob, commitment, setup)
        times["blob_proof"].append(time.perf_counter() - started)
    median = {key: float(np.median(values)) for key, values in times.items()}
    return {
        "setup_load_seconds": load,
        "seconds_per_blob": median,
        "cell_vs_blob_proof": median["cell_proofs"] / median["blob_proof"],
        "samples": samples,
    }


def naive_path(chain: RpcChain, address: str, lanes: np.ndarray, sample_chunks: int) -> Submitted:
    """One data owner's values into NaiveStorage: every call, or the first `sample_chunks`."""
    do = chain.new_account(10**21)
    values = lanes.tolist()
    offsets = list(range(0, len(values), NAIVE_CHUNK))
    if sample_chunks and len(offsets) > sample_chunks:
        offsets = offsets[:sample_chunks]
    receipts = [
        chain.transact(address, "submit", [i, values[i : i + NAIVE_CHUNK]], do) for i in offsets
    ]
    params = sum(len(values[i : i + NAIVE_CHUNK]) for i in offsets)
    return Submitted.of(receipts, params)


def packed_path(
    chain: RpcChain, owner: str, first: np.ndarray, second: np.ndarray, lane_bits: int
) -> tuple[Submitted, Submitted]:
    """Two data owners' updates into a fresh accumulator: (first write, steady state)."""
    address = chain.deploy(PACKED_SOURCE, [lane_bits], owner)
    results = []
    for lanes, chunk_words in ((first, PACKED_FIRST_CHUNK), (second, PACKED_CHUNK)):
        do = chain.new_account(10**21)
        words = pack_lanes(lanes, lane_bits)
        receipts = [
            chain.transact(address, "add", [i, words[i : i + chunk_words]], do)
            for i in range(0, len(words), chunk_words)
        ]
        results.append(Submitted.of(receipts, lanes.size))
    expected = pack_lanes((first + second) % 2**lane_bits, lane_bits)
    # a spot check: reading back every word would take as many calls as there are words
    for i in np.linspace(0, len(expected) - 1, 5, dtype=int).tolist():
        if chain.call(address, "group_sum", [i]) != expected[i]:
            raise RuntimeError(f"packed path: stored word {i} is not the lanes' sum")
    return results[0], results[1]


def _row(path: str, d: int, lane_bits: int, cost: Submitted, floor: float, **extra) -> dict:
    return {
        "path": path,
        "d": d,
        "lane_bits": lane_bits,
        "gas_per_param": cost.per_param,
        "blob_gas_per_param": cost.blob_gas / cost.params,
        "floor_gas_per_param": floor,
        "ratio": cost.per_param / floor,
        "transactions": cost.transactions,
        **extra,
    }


def measure(
    params: Sequence[int] = PARAMS,
    lane_bits: Sequence[int] = LANE_BITS,
    naive_sample_chunks: int = NAIVE_SAMPLE_CHUNKS,
    sweep: bool = True,
    seed: int = 0,
) -> dict:
    """Every path at every (d, lane bits) on one fresh anvil node; the JSON document."""
    rng = np.random.default_rng(seed)
    rows = []
    chunk_sweep = []
    kzg_time = kzg_timing(KZG_SAMPLES, rng)
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        max_chunk = event_chunk_words(chain)
        event = EventPath(chain)
        naive_address = chain.deploy(NAIVE_SOURCE, [], event.owner)
        for k in lane_bits:
            for d in params:
                lanes = random_lanes(d, k, rng)
                floor = floor_per_param(lanes, k)
                chunk = balanced_chunk_words(word_count(d, k), max_chunk)
                cost = event.measure(lanes, k, chunk)
                rows.append(_row("event", d, k, cost, floor, chunk_words=chunk))

                lanes = random_lanes(d, k, rng)
                cost = event.measure_blobs(lanes, k)
                blobs = kzg.blob_count(word_count(d, k))
                rows.append(_row("blob", d, k, cost, floor_per_param(lanes, k), blobs=blobs))

                lanes = random_lanes(d, k, rng)
                cost = naive_path(chain, naive_address, lanes, naive_sample_chunks)
                extra = {"chunk_values": NAIVE_CHUNK}
                if cost.params < d:
                    extra["sampled_params"] = cost.params
                rows.append(_row("naive", d, k, cost, floor_per_param(lanes, k), **extra))

                first, second = random_lanes(d, k, rng), random_lanes(d, k, rng)
                cold, steady = packed_path(chain, event.owner, first, second, k)
                rows.append(
                    _row(
                        "packed_storage",
                        d,
                        k,
                        steady,
                        floor_per_param(second, k),
                        chunk_words=PACKED_CHUNK,
                        first_write_gas_per_param=cold.per_param,
                        first_write_chunk_words=PACKED_FIRST_CHUNK,
                    )
                )
        if sweep and SWEEP_AT[1] in lane_bits:
            d, k = SWEEP_AT
            lanes = random_lanes(d, k, rng)
            floor = floor_per_param(lanes, k)
            for size in SWEEP_CHUNKS:
                cost = event.measure(lanes, k, min(size, max_chunk))
                chunk_sweep.append(
                    {
                        "chunk_words": size,
                        "d": d,
                        "lane_bits": k,
                        "transactions": cost.transactions,
                        "gas_per_param": cost.per_param,
                        "ratio": cost.per_param / floor,
                    }
                )
        block_gas_limit = chain.block_gas_limit
    event_gas = {(r["d"], r["lane_bits"]): r["gas_per_param"] for r in rows if r["path"] == "event"}
    for row in rows:
        row["vs_event"] = row["gas_per_param"] / event_gas[row["d"], row["lane_bits"]]
    return {
        "chain": "anvil 1.7.1 (hardfork Bpo1, EIP-7623 calldata floor)",
        "block_gas_limit": block_gas_limit,
        "event_max_chunk_words": max_chunk,
        "event_chunks": "the fewest chunks of at most event_max_chunk_words, cut evenly",
        "event_chunk_limit": (
            f"contract MAX_CHUNK_WORDS = {MAX_CHUNK_WORDS}; a {block_gas_limit:,}-gas block "
            f"would carry {(block_gas_limit - TX_BASE_GAS) // (32 * FLOOR_PER_NONZERO_BYTE):,} "
            "words at the calldata floor"
        ),
        "floor": "EIP-7623 floor of the update's packed words (40 gas per non-zero byte, 10 per "
        "zero byte), per parameter; no transaction base cost or call header",
        "blob": (
            "blob rows: execution gas in gas_per_param, blob gas (2**17 a blob, its own fee "
            "market) in blob_gas_per_param; floor and ratio are the event path's calldata floor"
        ),
        "kzg": kzg_time,
        "rows": rows,
        "chunk_sweep": chunk_sweep,
    }


def print_table(console: Console, result: dict) -> None:
    table = Table(title="gas per parameter per data owner, anvil receipts")
    table.add_column("path", no_wrap=True)
    for name in ("d", "bits", "gas/param", "blob gas/param", "floor", "x floor", "x event"):
        table.add_column(name, justify="right")
    for row in result["rows"]:
        path = row["path"] + ("*" if "sampled_params" in row else "")
        table.add_row(
            path,
            f"{row['d']:,}",
            str(row["lane_bits"]),
            f"{row['gas_per_param']:,.2f}",
            f"{row['blob_gas_per_param']:,.1f}" if row["blob_gas_per_param"] else "",
            f"{row['floor_gas_per_param']:.1f}",
            f"[bold]{row['ratio']:.3f}[/bold]",
            f"{row['vs_event']:.1f}",
        )
    console.print(table)
    console.print("* naive: a sample of full calls (its cost per parameter is flat in d)")
    console.print(
        "blob: execution gas beside the event path's floor; blob gas apart (its own fee market)"
    )
    timing = result["kzg"]
    per_blob = timing["seconds_per_blob"]
    console.print(
        f"KZG per blob: commitment {per_blob['commitment'] * 1e3:.0f} ms, cell proofs "
        f"{per_blob['cell_proofs'] * 1e3:.0f} ms = {timing['cell_vs_blob_proof']:.1f}x a "
        f"4844 blob proof ({per_blob['blob_proof'] * 1e3:.0f} ms); trusted setup loaded once "
        f"in {timing['setup_load_seconds']:.1f} s"
    )
    if result["chunk_sweep"]:
        sweep = Table(title="event path by chunk size")
        for name in ("chunk words", "d", "lane bits", "txs", "gas/param", "x floor"):
            sweep.add_column(name, justify="right")
        for row in result["chunk_sweep"]:
            sweep.add_row(
                f"{row['chunk_words']:,}",
                f"{row['d']:,}",
                str(row["lane_bits"]),
                str(row["transactions"]),
                f"{row['gas_per_param']:.1f}",
                f"{row['ratio']:.4f}",
            )
        console.print(sweep)
    console.print(
        f"event chunks: the fewest of at most {result['event_max_chunk_words']:,} words, cut "
        f"evenly ({result['event_chunk_limit']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, nargs="+", default=list(PARAMS))
    parser.add_argument("--lane-bits", type=int, nargs="+", default=list(LANE_BITS))
    parser.add_argument("--naive-sample-chunks", type=int, default=NAIVE_SAMPLE_CHUNKS)
    parser.add_argument("--no-sweep", action="store_true", help="skip the chunk-size sweep")
    parser.add_argument("--out", type=Path, default=RESULTS / "gas_paths.json")
    args = parser.parse_args()
    if any(k not in LANE_BITS for k in args.lane_bits):
        parser.error("lane bits are 16 or 32")
    started = time.perf_counter()
    result = measure(args.params, args.lane_bits, args.naive_sample_chunks, not args.no_sweep)
    console = Console()
    print_table(console, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
