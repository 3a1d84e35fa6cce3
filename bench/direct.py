"""Gas per data owner per round on the direct data path, beside the event path, on anvil.

Whole rounds scripted with the `Market` client and the protocol's functions (no actors): a
one-round task of N = 10 data owners in groups of 5 (t = 3), 32-bit lanes, `d` lanes, on one
anvil node. Every data owner registers, deals real Pedersen-shared secrets (`deal_round`) and
commits them, settles with no complaint, then:

- `event`: posts its masked update (uniformly random words) with `submit`, in the fewest even
  chunks of at most 6,144 words;
- `direct`: commits `(direct_digest(words), W)` at the desk (`commit_update`); the model owner
  closes DELIVERY with no challenge (`close_delivery`);
- `direct`, challenged: the model owner challenges every data owner (paying the fee) and each
  answers on-chain with its words as event chunks (`answer`), which must give the committed
  digest; then DELIVERY is closed.

Then the first t members of each group unmask and the group finalizes. `gas_per_do_round` is
everything the data owners' own transactions used (register, commit_shares, settle, submit or
commit_update and any answer, unmask) divided by N: the register is NOT amortised (a one-round
task; `register_gas_per_do` says how much of it is registration), and unmask is the group's t
messages shared by its 5 members. The model owner's transactions (create_task, terms, advances,
challenges, close_delivery) are reported apart.

The event path is measured at d <= 200,000 (and the demo's 46,730); beyond, its row is computed
from the 200,000 round (`extrapolated: true`): the non-submit gas measured there plus the
measured submit gas per parameter times d. A section recomputes every row under a 64 gas/byte
calldata floor (EIP-7976, DESIGN §9: zero and non-zero bytes alike) from each transaction's
measured calldata bytes and gas: `max(gas_used, 21,000 + 64 x bytes)`.

Writes bench/results/direct_path.json and prints the ratios.

    python -m bench.direct [--params 10000 50000 46730 200000 1000000 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from actors.chain.anvil import AnvilNode
from actors.chain.base import Receipt
from actors.chain.market import Market, TaskConfig
from actors.chain.rpc_backend import RpcChain
from bench.gas import RESULTS
from protocol.commitments import direct_digest, model_digest
from protocol.constants import (
    DATA_PATH_DIRECT,
    DATA_PATH_EVENT,
    GROUP_FINALIZED,
    KIND_SELF_SEED,
    PHASE_UNMASK,
    Challenge,
)
from protocol.dealing import deal_round
from protocol.encoding import pack_lanes
from protocol.masks import MaskKeyPair

PARAMS = (10_000, 46_730, 50_000, 200_000, 1_000_000, 10_000_000)
# the event path and the challenged direct path post every word: measured up to here
ON_CHAIN_MAX = 200_000
DOS = 10
GROUP_SIZE = 5
THRESHOLD = 3
LANE_BITS = 32
FEE = 10**14
TX_BASE_GAS = 21_000
EIP7976_PER_BYTE = 64
DEMO_D = 46_730
MODEL = b"bench.direct: the public model's bytes only need a digest here"


@dataclass
class RoundCost:
    """The receipts of one round, by who paid them, and each one's calldata bytes."""

    dos: int
    do_receipts: list[Receipt] = field(default_factory=list)
    mo_receipts: list[Receipt] = field(default_factory=list)
    challenge_receipts: list[Receipt] = field(default_factory=list)
    calldata: dict[str, int] = field(default_factory=dict)  # tx hash -> calldata bytes

    def do_gas(self, functions: Sequence[str] | None = None) -> int:
        return sum(
            r.gas_used for r in self.do_receipts if functions is None or r.function in functions
        )

    def do_gas_7976(self) -> int:
        """The data owners' gas had every transaction paid at least 64 gas per calldata byte."""
        return sum(
            max(r.gas_used, TX_BASE_GAS + EIP7976_PER_BYTE * self.calldata[r.tx_hash])
            for r in self.do_receipts
        )


class Rounds:
    """One market on one node; each measurement is a fresh one-round task on it."""

    def __init__(self, chain: RpcChain) -> None:
        self.chain = chain
        self.owner = chain.new_account(10**24)
        self.market = Market.deploy(chain, self.owner)

    def _do(self, cost: RoundCost, receipt: Receipt | list[Receipt]) -> None:
        cost.do_receipts.extend(receipt if isinstance(receipt, list) else [receipt])

    def run(self, d: int, path: str, rng: np.random.Generator) -> RoundCost:
        """One whole round of `DOS` data owners on `path` ("event", "direct" or "challenged")."""
        market, owner, chain = self.market, self.owner, self.chain
        direct = path != "event"
        config = TaskConfig(
            model_hash=model_digest(bytes(32), MODEL),
            d=d,
            lane_bits=LANE_BITS,
            scale_bits=LANE_BITS // 2,
            clip_norm_micro=1_000_000,
            rounds=1,
            max_dos=DOS,
            min_dos=DOS,
            group_size=GROUP_SIZE,
            threshold=THRESHOLD,
            reward_per_do=10**15,
            data_path=DATA_PATH_DIRECT if direct else DATA_PATH_EVENT,
        )
        cost = RoundCost(DOS)
        task, receipt = market.create_task(config, owner)
        cost.mo_receipts.append(receipt)
        if direct:
            key = MaskKeyPair.generate(os.urandom).public
            receipt = market.set_delivery_terms(task, key, "127.0.0.1:9", FEE, owner)
            cost.mo_receipts.append(receipt)
        else:
            market.publish_model(task, 0, MODEL, owner)
        dos = [chain.new_account(10**21) for _ in range(DOS)]
        for do in dos:
            # an endpoint nobody dials: no channel is opened in a gas measurement
            key = MaskKeyPair.generate(os.urandom).public
            self._do(cost, market.register(task, key, "127.0.0.1:9", do))
        cost.mo_receipts.append(market.close_registration(task, owner))
        groups = [list(market.group_members(task, g)) for g in range(market.group_count(task))]
        dealings = {}
        for members in groups:
            ints = [int(m, 16) for m in members]
            for do in members:
                dealing = deal_round(task, 0, int(do, 16), ints, THRESHOLD, os.urandom)
                dealings[do] = dealing
                receipt = market.commit_shares(
                    task, 0, dealing.keys.public, dealing.tree.root, dealing.points, do
                )
                self._do(cost, receipt)
        cost.mo_receipts.append(market.advance(task, owner))  # SETTLE
        for do in dos:
            self._do(cost, market.settle(task, 0, 0, do))
        cost.mo_receipts.append(market.advance(task, owner))  # SUBMIT
        words = {do: pack_lanes(random_lanes(d, rng), LANE_BITS) for do in dos}
        for do in dos:
            if direct:
                digest = direct_digest(words[do])
                self._do(cost, market.commit_update(task, 0, digest, len(words[do]), do))
            else:
                self._do(cost, market.submit_update(task, 0, words[do], do))
        cost.mo_receipts.append(market.advance(task, owner))  # DELIVERY, or UNMASK
        if direct:
            if path == "challenged":
                for do in dos:
                    cost.challenge_receipts.append(market.challenge(task, 0, do, owner))
                for do in dos:
                    self._do(cost, market.answer_update(task, 0, words[do], do))
                    if market.challenge_state(task, 0, do) != Challenge.ANSWERED:
                        raise RuntimeError("challenged path: an answer did not complete")
            cost.mo_receipts.append(market.close_delivery(task, 0, owner))
            cost.mo_receipts.append(market.advance(task, owner))
        if market.phase(task).phase != PHASE_UNMASK:
            raise RuntimeError(f"{path}: the round did not reach UNMASK")
        for g, members in enumerate(groups):
            for holder in members[:THRESHOLD]:
                h = members.index(holder)
                reveals = []
                for dealer in members:
                    dealing = dealings[dealer]
                    reveals.append(
                        (
                            dealer,
                            KIND_SELF_SEED,
                            dealing.seed.shares[h],
                            dealing.seed.blinds[h],
                            dealing.tree.proof(h, KIND_SELF_SEED),
                            dealing.points,
                        )
                    )
                self._do(cost, market.unmask(task, 0, reveals, holder))
            if market.group_result(task, 0, g) != GROUP_FINALIZED:
                raise RuntimeError(f"{path}: group {g} did not finalize")
        for r in [*cost.do_receipts, *cost.challenge_receipts]:
            tx = chain.request("eth_getTransactionByHash", [r.tx_hash])
            cost.calldata[r.tx_hash] = (len(tx["input"]) - 2) // 2
        return cost


def random_lanes(d: int, rng: np.random.Generator) -> np.ndarray:
    """A masked update's statistics: lanes uniform in [0, 2^k) (masks make them so)."""
    return rng.integers(0, 2**LANE_BITS, d, dtype=np.uint64)


SUBMIT_FUNCTIONS = ("submit", "commit_update", "answer")


def row(path: str, d: int, cost: RoundCost) -> dict:
    """A measured round's row."""
    n = cost.dos
    challenge_gas = sum(r.gas_used for r in cost.challenge_receipts)
    functions = sorted({r.function for r in cost.do_receipts})
    return {
        "path": "event" if path == "event" else "direct",
        "challenged": path == "challenged",
        "d": d,
        "lane_bits": LANE_BITS,
        "dos": n,
        "extrapolated": False,
        "gas_per_do_round": cost.do_gas() / n,
        "register_gas_per_do": cost.do_gas(("register",)) / n,
        "update_gas_per_do": cost.do_gas(SUBMIT_FUNCTIONS) / n,
        "gas_by_function_per_do": {name: cost.do_gas((name,)) / n for name in functions},
        "do_transactions": len(cost.do_receipts),
        "do_calldata_bytes_per_do": sum(cost.calldata[r.tx_hash] for r in cost.do_receipts) / n,
        "gas_per_do_round_7976": cost.do_gas_7976() / n,
        "challenge_gas_per_do": challenge_gas / n,
        "model_owner_gas": sum(r.gas_used for r in cost.mo_receipts) + challenge_gas,
    }


def extrapolated_event_row(d: int, base: dict) -> dict:
    """The event path at `d`, from a measured event row: its gas outside the update unchanged,
    its update gas (and bytes, and 64 gas/byte floor) scaled by d / base d."""
    scale = d / base["d"]
    update = base["update_gas_per_do"]
    other = base["gas_per_do_round"] - update
    update_7976 = base["gas_per_do_round_7976"] - other  # the other transactions are not floored
    return {
        "path": "event",
        "challenged": False,
        "d": d,
        "lane_bits": LANE_BITS,
        "dos": base["dos"],
        "extrapolated": True,
        "extrapolated_from_d": base["d"],
        "gas_per_do_round": other + update * scale,
        "register_gas_per_do": base["register_gas_per_do"],
        "update_gas_per_do": update * scale,
        "gas_per_do_round_7976": other + update_7976 * scale,
    }


def measure(params: Sequence[int] = PARAMS, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        rounds = Rounds(chain)
        for d in params:
            rows.append(row("direct", d, rounds.run(d, "direct", rng)))
            if d <= ON_CHAIN_MAX:
                rows.append(row("event", d, rounds.run(d, "event", rng)))
                rows.append(row("challenged", d, rounds.run(d, "challenged", rng)))
    measured_event = [r for r in rows if r["path"] == "event"]
    if measured_event:
        base = max(measured_event, key=lambda r: r["d"])
        for d in params:
            if d > ON_CHAIN_MAX:
                rows.append(extrapolated_event_row(d, base))
    rows.sort(key=lambda r: (r["d"], r["path"], r["challenged"]))
    event = {r["d"]: r for r in rows if r["path"] == "event"}
    for r in rows:
        e = event.get(r["d"])
        if e is None:
            continue
        r["vs_event"] = r["gas_per_do_round"] / e["gas_per_do_round"]
        r["vs_event_7976"] = r["gas_per_do_round_7976"] / e["gas_per_do_round_7976"]
        if r["challenged"]:
            # the data owner's answer beside the event path, the model owner's challenge added
            r["vs_event_with_challenge"] = (r["gas_per_do_round"] + r["challenge_gas_per_do"]) / e[
                "gas_per_do_round"
            ]
    plain = [r["gas_per_do_round"] for r in rows if r["path"] == "direct" and not r["challenged"]]
    challenged = [r for r in rows if r["challenged"]]
    targets = {
        "direct_max_over_min": max(plain) / min(plain) if plain else None,
        "direct_max_gas_per_do_round": max(plain) if plain else None,
        "challenged_max_vs_event": max((r["vs_event"] for r in challenged), default=None),
        "challenged_max_vs_event_with_challenge": max(
            (r["vs_event_with_challenge"] for r in challenged), default=None
        ),
        "issue": "direct, no challenge: largest within 1.05x of smallest and <= 1.0 M gas per "
        "DO per round; challenged: within 1.05x of the event path, the challenge's own cost "
        "(the model owner's transaction, challenge_gas_per_do) apart",
    }
    return {
        "chain": "anvil 1.7.1 (hardfork Bpo1, EIP-7623 calldata floor), automine",
        "dos": DOS,
        "group_size": GROUP_SIZE,
        "threshold": THRESHOLD,
        "lane_bits": LANE_BITS,
        "challenge_fee_wei": FEE,
        "gas_per_do_round": "sum of the data owners' own receipts / N: register (not amortised: "
        "a one-round task), commit_shares, settle, submit or commit_update (and answer when "
        "challenged), unmask (t = 3 messages per group of 5); the model owner's transactions "
        "(create_task, set_terms, advances, challenges, close_delivery) in model_owner_gas",
        "event_extrapolation": f"event rows above d = {ON_CHAIN_MAX:,} are computed, not "
        "measured: the measured event row at the largest measured d, its gas outside the update "
        "kept and its update gas scaled linearly in d (measured per-parameter cost)",
        "eip7976": "gas_per_do_round_7976: each data owner transaction at max(gas_used, 21,000 + "
        f"{EIP7976_PER_BYTE} x calldata bytes), from the measured receipts and transactions "
        "(zero and non-zero bytes alike)",
        "direct_flatness": max(plain) / min(plain) if plain else None,
        "targets": targets,
        "rows": rows,
    }


def print_table(console: Console, result: dict) -> None:
    table = Table(title=f"gas per data owner per round, {result['dos']} DOs, groups of 5, anvil")
    for name in (
        "path",
        "d",
        "gas/DO/round",
        "x event",
        "challenge/DO",
        "x event + challenge",
        "64 gas/B floor",
        "x event (7976)",
    ):
        table.add_column(name, justify="right", no_wrap=True)
    for r in result["rows"]:
        name = r["path"] + (" challenged" if r["challenged"] else "")
        name += "*" if r["extrapolated"] else ""
        table.add_row(
            name,
            f"{r['d']:,}",
            f"{r['gas_per_do_round'] / 1e6:,.3f} M",
            f"[bold]{r['vs_event']:.3f}[/bold]" if "vs_event" in r else "",
            f"{r['challenge_gas_per_do']:,.0f}" if r["challenged"] else "",
            f"{r['vs_event_with_challenge']:.3f}" if "vs_event_with_challenge" in r else "",
            f"{r['gas_per_do_round_7976'] / 1e6:,.3f} M",
            f"{r['vs_event_7976']:.3f}" if "vs_event_7976" in r else "",
        )
    console.print(table)
    console.print(
        "* computed from the largest measured event round (update gas linear in d); register "
        "not amortised (one-round task)"
    )
    targets = result["targets"]
    console.print(
        f"direct, no challenge: largest / smallest over d = {targets['direct_max_over_min']:.3f}"
        f" (target 1.05), at most {targets['direct_max_gas_per_do_round'] / 1e6:.3f} M gas per "
        "DO per round (target 1.0 M)"
    )
    if targets["challenged_max_vs_event"] is not None:
        console.print(
            f"every DO challenged: at most {targets['challenged_max_vs_event']:.3f}x the event "
            f"path (target 1.05), {targets['challenged_max_vs_event_with_challenge']:.3f}x with "
            "the model owner's challenge transaction added"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, nargs="+", default=list(PARAMS))
    parser.add_argument("--out", type=Path, default=RESULTS / "direct_path.json")
    args = parser.parse_args()
    started = time.perf_counter()
    result = measure(args.params)
    console = Console(width=140)
    print_table(console, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
