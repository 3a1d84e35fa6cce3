"""What verifiable shares cost: gas of SETTLE and UNMASK on anvil, and the client's Pedersen work.

For a group of m data owners with threshold t (m = t + 1, t in {2, 3, 5, 8}), from receipts on a
fresh anvil node:

- `commit_gas`: `commit_shares` with the 2 t Pedersen points (128 t bytes of calldata and log);
- `settle_gas`: a holder settling with no complaint, and `settle_complaint_gas` with one (and
  its deposit);
- `answer_gas`: the dealer's answer (two Merkle proofs, two Pedersen checks of t + 1 ecMul and
  t ecAdd each on the precompiles), which also exposes the dealer;
- `unmask_gas`: one unmask message of m reveals through the court, every share checked against
  its proof and its dealer's points (the check the review asked for: hole 4).

Client side (Python, `protocol.bn254`: integer G1 arithmetic, 8-bit fixed-base tables for G, H):
`deal_ms` to deal both secrets with commitments, `verify_ms` to check one delivery (both
shares), `verify_ms_per_round` for the t deliveries of a group of t + 1. The ratio printed:
settling (one transaction per data owner per round) against all a data owner pays for a round
at the demo's size (`rounds.json`, N = 10).

    python -m bench.vss [--thresholds 2 3 5 8]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from actors.chain.anvil import AnvilNode
from actors.chain.market import Market, TaskConfig
from actors.chain.rpc_backend import RpcChain
from bench.gas import RESULTS
from protocol.commitments import model_digest
from protocol.constants import KIND_MASK_KEY, KIND_SELF_SEED
from protocol.dealing import deal_round
from protocol.masks import MaskKeyPair, new_self_seed
from protocol.shamir import split_secret, verify_share

MODEL = b"vss bench model"
THRESHOLDS = (2, 3, 5, 8)


def _median_ms(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def client_row(t: int) -> dict[str, float]:
    m = t + 1
    secret = new_self_seed(os.urandom)
    dealt = split_secret(secret, t, m, os.urandom)
    return {
        "deal_ms": 2 * _median_ms(lambda: split_secret(secret, t, m, os.urandom)),
        "verify_ms": 2
        * _median_ms(
            lambda: verify_share(m, dealt.shares[-1], dealt.blinds[-1], dealt.commitments, t)
        ),
    }


def chain_row(chain: RpcChain, owner: str, t: int) -> dict[str, int]:
    """One task of m = t + 1 data owners through SETTLE: every gas figure from a receipt."""
    m = t + 1
    market = Market.deploy(chain, owner)
    config = TaskConfig(
        model_hash=model_digest(bytes(32), MODEL),
        d=16,
        lane_bits=32,
        scale_bits=16,
        clip_norm_micro=1_000_000,
        rounds=1,
        max_dos=m,
        min_dos=m,
        group_size=m,
        threshold=t,
        reward_per_do=10**12,
    )
    task, _ = market.create_task(config, owner)
    market.publish_model(task, 0, MODEL, owner)
    dos = [chain.new_account(10**20) for _ in range(m)]
    for do in dos:
        market.register(task, MaskKeyPair.generate(os.urandom).public, "127.0.0.1:9", do)
    market.close_registration(task, owner)
    members = list(market.group_members(task, 0))
    dealt, shares, points, commit_gas = {}, {}, {}, []
    for do in members:
        dealing = deal_round(task, 0, int(do, 16), [int(a, 16) for a in members], t, os.urandom)
        shares[do] = (dealing.seed, dealing.key)
        dealt[do], points[do] = dealing.tree, dealing.points
        receipt = market.commit_shares(
            task, 0, dealing.keys.public, dealing.tree.root, dealing.points, do
        )
        commit_gas.append(receipt.gas_used)
    market.advance(task, owner)  # SETTLE
    holder, dealer = members[0], members[1]
    complaint = market.settle(task, 0, 1 << 1, holder, market.complaint_deposit(task, 1))
    plain = [market.settle(task, 0, 0, do).gas_used for do in members[1:]]
    p = members.index(holder)
    answer = market.answer(
        task,
        0,
        holder,
        (
            shares[dealer][0].shares[p],
            shares[dealer][0].blinds[p],
            shares[dealer][1].shares[p],
            shares[dealer][1].blinds[p],
        ),
        (dealt[dealer].proof(p, KIND_SELF_SEED), dealt[dealer].proof(p, KIND_MASK_KEY)),
        points[dealer],
        dealer,
    )
    closed = market.advance(task, owner)
    # SUBMIT: the dealer that answered is exposed and sits the round out; the others submit
    submitters = [do for do in members if do != dealer]
    for do in submitters:
        market.submit(task, 0, 0, [1] * market.update_words(task), do)
    market.advance(task, owner)  # UNMASK: every committer submitted or is exposed
    h = members.index(holder)
    reveals = []
    for who in members:
        kind = KIND_MASK_KEY if who == dealer else KIND_SELF_SEED
        dealing = shares[who][kind]
        proof = dealt[who].proof(h, kind)
        reveals.append((who, kind, dealing.shares[h], dealing.blinds[h], proof, points[who]))
    unmask = market.unmask(task, 0, reveals, holder)
    return {
        "commit_gas": sorted(commit_gas)[len(commit_gas) // 2],
        "points_bytes": len(points[dealer]),
        "settle_gas": sorted(plain)[len(plain) // 2],
        "settle_complaint_gas": complaint.gas_used,
        "answer_gas": answer.gas_used,
        "settle_close_gas": closed.gas_used,
        # one unmask message (not the finalizing one): m reveals, each checked by the court
        # against its proof and, with Pedersen, the dealer's points (2 + t ecMul a reveal)
        "unmask_gas": unmask.gas_used,
        "unmask_gas_per_reveal": unmask.gas_used // len(reveals),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", type=int, nargs="+", default=list(THRESHOLDS))
    args = parser.parse_args(argv)
    console = Console()
    # what a data owner pays for a whole round at the demo's size (bench-rounds, N = 10)
    rounds_json = RESULTS / "rounds.json"
    per_do = None
    if rounds_json.exists():
        first = json.loads(rounds_json.read_text())["rows"][0]
        per_do = first["total_gas"] / first["dos"]
    rows = []
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        owner = chain.new_account(10**21)
        for t in args.thresholds:
            row = {"t": t, "m": t + 1, **chain_row(chain, owner, t), **client_row(t)}
            # a holder checks one delivery from each of the other t dealers in its group
            row["verify_ms_per_round"] = row["verify_ms"] * t
            if per_do is not None:
                row["settle_share_of_round_gas"] = row["settle_gas"] / per_do
            rows.append(row)
    table = Table(title="verifiable shares: gas on anvil, client time (protocol.bn254)")
    for name in (
        "t",
        "commit",
        "settle",
        "settle+complaint",
        "answer",
        "unmask (m reveals)",
        "deal",
        "verify/round",
        "settle / a DO's round gas",
    ):
        table.add_column(name, justify="right")
    for row in rows:
        share = row.get("settle_share_of_round_gas")
        table.add_row(
            str(row["t"]),
            f"{row['commit_gas']:,}",
            f"{row['settle_gas']:,}",
            f"{row['settle_complaint_gas']:,}",
            f"{row['answer_gas']:,}",
            f"{row['unmask_gas']:,}",
            f"{row['deal_ms']:.1f} ms",
            f"{row['verify_ms_per_round']:.1f} ms",
            "—" if share is None else f"{share:.2%}",
        )
    console.print(table)
    out = RESULTS / "vss.json"
    out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
