"""Chain processing time of a round and the data owners' client overhead, on anvil.

Two measures, each a ratio to its target, from one run:

- **Chain processing time of a round** at the paper's scale (the MNIST spec's CNN,
  ``examples/mnist-cnn.toml``: d = 46,730 public parameters + the sample-count lane, 10 data
  owners in groups of 5, 32-bit lanes). One
  round is run by the real actors (`bench.gas.one_round`: model owner, data owners, Noise
  channels, masked submissions; synthetic updates in place of training) on a fresh anvil node
  with automine, with every chain request of every actor serialized through one lock: exactly one
  request is in flight at a time, so no transaction waits behind another. `chain_seconds` is the
  sum over the round's transactions of send-to-receipt wall time (`Receipt.seconds`: encode,
  fee, sign, send, the node executing and mining it, receipt, decoded events), deployment
  excluded. `node_seconds` is the part spent inside `eth_sendRawTransaction` (anvil executes and
  mines an automined transaction before it answers). Median of `--repeats` fresh runs, beside
  the seed paper's 500 ms.
- **Client overhead**: the demo's own market (`actors.entry.scenario.Scenario()`, a run of the MNIST
  spec: 10 data owners, 1,000 MNIST samples each read from their own PNG folders, the spec's
  learners and recipe) on anvil. Per data owner, protocol time is its
  trio tasks' step time (round machine: quantization, masking, Shamir, Merkle trees; Noise
  channels; state store) plus the wall time of its chain calls (transactions and reads, run in
  worker threads); local training time is the wall time of its learner's `train`. The fraction
  is protocol over training; the row reports the median over data owners (the max beside it).
  A data owner also polls `task_phase_of` and the chain's clock every `poll_interval` (50 ms)
  while it waits for the next phase: that wall time is waiting, not work, and is reported apart
  (`protocol_overhead_with_phase_polls` counts it too). On a shared 2-core machine every wall
  time above waits for the CPU too; `protocol_overhead_cpu` is the same fraction in CPU time of
  the threads (trio steps, chain calls, training), which the machine's load does not inflate.

Writes bench/results/chain_time.json.

    python -m bench.chain_time [--repeats 3] [--skip-demo]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio
from rich.console import Console
from rich.table import Table

from actors.chain.anvil import AnvilNode
from actors.chain.base import Chain
from actors.chain.market import Market
from actors.chain.rpc_backend import RpcChain
from actors.entry.scenario import (
    MNIST_SPEC,
    Scenario,
    data_owner_learner,
    load_spec_file,
    model_owner_learner,
    split_data,
)
from actors.entry.swarm import Swarm
from actors.learning.train import use_threads
from actors.measure.timing import StepClock, TimedChain, TimedLearner, new_times, summarize
from actors.roles.data_owner import DataOwner, DataOwnerSettings
from actors.roles.model_owner import ModelOwner
from actors.roles.store import StateStore
from bench.gas import RESULTS, one_round
from protocol.constants import DATA_PATH_EVENT, MAX_CHUNK_WORDS
from protocol.spec import infer_shapes

PAPER_SECONDS = 0.5  # "within 500 ms of blockchain processing time" (the seed paper)
OVERHEAD_TARGET = 0.10
DOS = 10
GROUP_SIZE = 5
LANE_BITS = 32

MEASURE = (
    "chain_seconds: one round (10 DOs, groups of 5, 32-bit lanes, synthetic updates) on a fresh "
    "anvil with automine, every chain request of every actor serialized (one in flight); sum "
    "over the round's transactions of send-to-receipt wall time (encode, fee, sign, send, "
    "execute and mine, receipt, decode), deployment excluded; median of repeats. "
    "node_seconds: the part inside eth_sendRawTransaction(Sync). protocol_overhead: the demo "
    "scenario (the MNIST spec examples/mnist-cnn.toml: 10 DOs, real training with the spec's "
    "learners on MNIST PNG folders, 5 rounds) as a swarm of task create/join processes on "
    "anvil, once per measured DO, that DO's process alone on one core (a machine of its own) "
    "and the node, model owner "
    "and other nine DOs (at nice 19) on the other; over its middle rounds 1-3 together "
    "(protocol_overhead_last_round: its last, with the payout), its (trio step time + wall time "
    "of its chain calls, "
    "except the phase "
    "polls while it waits for the next phase, reported apart as "
    "protocol_overhead_with_phase_polls, and its one-off contract attach at start-up) / wall "
    "time of its local training; median over the measured DOs. protocol_overhead_one_process: "
    "the same for the demo itself, all 10 DOs and the model owner in one process sharing its GIL "
    "and 2 cores with the node; median over DOs. protocol_overhead_cpu: the one-process figure "
    "in CPU time (thread_time of the trio steps, of the worker threads' chain calls, of the "
    "training thread), which the load of a shared machine does not inflate."
)


class SerialChain:
    """A chain whose requests run one at a time, each transaction's RPC calls timed.

    Every actor's transactions and reads pass through one lock, so a transaction's
    send-to-receipt time is its own, not a queue behind another data owner's.
    """

    def __init__(self, chain: RpcChain) -> None:
        self._chain = chain
        self._lock = threading.Lock()
        self._rpc: list[tuple[str, float]] | None = None
        self.name = chain.name
        self.breakdown: list[tuple[str, float, dict[str, float]]] = []
        # every raw request of the client (sends, receipts) passes through its transport
        transport = chain._transport
        request = transport.request

        def timed(method: str, params: Any, timeout: float | None = None) -> Any:
            started = time.perf_counter()
            try:
                return request(method, params, timeout)
            finally:
                if self._rpc is not None:
                    self._rpc.append((method, time.perf_counter() - started))

        transport.request = timed

    def transact(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._rpc = []
            try:
                receipt = self._chain.transact(*args, **kwargs)
            finally:
                rpc, self._rpc = self._rpc, None
            per_method: dict[str, float] = defaultdict(float)
            for method, seconds in rpc:
                per_method[method] += seconds
            self.breakdown.append((receipt.function, receipt.seconds, dict(per_method)))
            return receipt

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._chain, name)
        if not callable(attr):
            return attr

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return locked


def serialized_round(params: int, data_path: int = DATA_PATH_EVENT) -> dict:
    """One round, every request serialized, on a fresh anvil: its transactions' times."""
    with AnvilNode() as node:
        chain = SerialChain(RpcChain(node.url, dev=True))
        started = time.perf_counter()
        market, _ = trio.run(
            one_round, chain, DOS, GROUP_SIZE, params, LANE_BITS, MAX_CHUNK_WORDS, data_path
        )
        wall = time.perf_counter() - started
    receipts = market.receipts
    deploy_free = chain.breakdown[-len(receipts) :]
    by_function: dict[str, dict[str, float]] = {}
    rpc_totals: dict[str, float] = defaultdict(float)
    for function, seconds, rpc in deploy_free:
        row = by_function.setdefault(function, {"calls": 0, "seconds": 0.0, "rpc_seconds": 0.0})
        row["calls"] += 1
        row["seconds"] += seconds
        row["rpc_seconds"] += sum(rpc.values())
        for method, spent in rpc.items():
            rpc_totals[method] += spent
    return {
        "transactions": len(receipts),
        "total_gas": sum(r.gas_used for r in receipts),
        "chain_seconds": sum(r.seconds for r in receipts),
        "node_seconds": sum(
            rpc_totals.get(m, 0.0) for m in ("eth_sendRawTransaction", "eth_sendRawTransactionSync")
        ),
        "rpc_seconds": dict(rpc_totals),
        "by_function": by_function,
        "wall_seconds": wall,
    }


async def _demo_market(scenario: Scenario, chain: Chain, state_dir: Path) -> list[dict]:
    """The demo's market (as `actors.entry.run.run_market` builds it), each data owner timed."""
    data = await trio.to_thread.run_sync(split_data, scenario)
    owner_learner = await trio.to_thread.run_sync(model_owner_learner, scenario, data)
    mo_account = chain.new_account(10**22)
    market = Market.deploy(chain, mo_account)
    mo = ModelOwner(market, mo_account, owner_learner, scenario.plan())
    task = await mo.create_task()
    limiter = trio.CapacityLimiter(2)  # as the demo: one trainer per core
    clock = StepClock()
    trio.lowlevel.add_instrument(clock)
    spent = [new_times() for _ in range(scenario.dos)]
    dos = []
    for i in range(scenario.dos):
        account = chain.new_account(10**20)
        settings = DataOwnerSettings(keep_plaintext=True)
        learner = TimedLearner(data_owner_learner(scenario, data, i), spent[i])
        own_market = Market(TimedChain(chain, spent[i]), market.address)
        store = StateStore(state_dir / f"do-{i}.sqlite")
        dos.append(
            DataOwner(
                own_market, account, task, learner, store, settings=settings, train_limiter=limiter
            )
        )

    def rooted(actor: DataOwner, times: dict[str, float]) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            clock.roots[trio.lowlevel.current_task()] = times
            await actor.run(task_status=task_status)

        return run

    async with trio.open_nursery() as nursery:
        for actor, times in zip(dos, spent, strict=True):
            await nursery.start(rooted(actor, times))
        await mo.run()
        nursery.cancel_scope.cancel()
    trio.lowlevel.remove_instrument(clock)
    return [dict(times) for times in spent]


MEDIAN_KEYS = (
    "training",
    "steps",
    "transactions",
    "reads",
    "phase_polls",
    "protocol",
    "cpu training",
    "cpu steps",
    "cpu chain",
    "cpu phase_polls",
)


def _overhead(rows: list[dict], wall: float) -> dict:
    fractions = [r["fraction"] for r in rows]
    return {
        "protocol_overhead": statistics.median(fractions),
        "protocol_overhead_max": max(fractions),
        "protocol_overhead_with_phase_polls": statistics.median(
            r["fraction_with_phase_polls"] for r in rows
        ),
        "protocol_overhead_cpu": statistics.median(r["cpu_fraction"] for r in rows),
        "median_seconds": {k: statistics.median(r.get(k, 0.0) for r in rows) for k in MEDIAN_KEYS},
        "per_do": rows,
        "wall_seconds": wall,
    }


def client_overhead() -> dict:
    """The demo scenario in one process on anvil; per data owner, protocol over training."""
    use_threads(1)
    scenario = Scenario()
    with tempfile.TemporaryDirectory() as state, AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        started = time.perf_counter()
        per_do = trio.run(_demo_market, scenario, chain, Path(state))
        wall = time.perf_counter() - started
    return _overhead([summarize(times) for times in per_do], wall)


OWN_CORE_ROUNDS = 5
# measured together: the steady state, neither the first round (start-up, registration) nor the
# last (payout); one round alone moved by a tenth from run to run on this shared machine
MIDDLE_ROUNDS = (1, 2, 3)


def _round_window(result: dict, first: int, last: int | None = None) -> dict[str, float]:
    """A data owner's times from round `first`'s opening to round `last`'s end (default: the
    same round), the next round's opening (or, for the task's last round, the end of the run:
    its withdrawal included)."""
    last = first if last is None else last
    marks = result["seconds_at_round_opening"]
    start = marks[str(first)]
    end = marks.get(str(last + 1), result["seconds"])
    return {key: value - start.get(key, 0.0) for key, value in end.items()}


def own_core_overhead(targets: Sequence[int]) -> dict | None:
    """The demo scenario, over `OWN_CORE_ROUNDS` rounds, as a swarm (one process per actor) on
    anvil, once per target data owner: the target alone on the first core, the node at normal
    priority on the rest, the model owner and the other nine data owners there too at the lowest
    priority (`nice 19`), so the node answers as a node of its own would. The target's middle
    rounds (`MIDDLE_ROUNDS`, the steady state) are measured together; its last round, with the
    payout, is kept beside them (`last_round`). None on a machine with one core."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    own, rest = cores[0], set(cores[1:])
    background = ["nice", "-n", "19"]
    rows = []
    started = time.perf_counter()
    for target in targets:
        os.sched_setaffinity(0, rest)  # the node and every process started below inherit it
        try:
            with tempfile.TemporaryDirectory() as state, AnvilNode() as node:
                scenario = Scenario(rounds=OWN_CORE_ROUNDS)
                prefixes = {i: background for i in range(scenario.dos)}
                prefixes[target] = ["taskset", "--cpu-list", str(own)]
                swarm = Swarm(
                    scenario,
                    RpcChain(node.url, dev=True),
                    Path(state),
                    timings=True,
                    do_prefixes=prefixes,
                    mo_prefix=background,
                    sample_memory=False,
                )
                try:
                    swarm.start()
                    swarm.wait(timeout=900)
                finally:
                    swarm.stop()
                result = json.loads((Path(state) / f"do-{target}" / "result.json").read_text())
        finally:
            os.sched_setaffinity(0, cores)
        last = summarize(_round_window(result, OWN_CORE_ROUNDS - 1))
        rows.append(
            {
                "index": target,
                **summarize(_round_window(result, MIDDLE_ROUNDS[0], MIDDLE_ROUNDS[-1])),
                "rounds_measured": len(MIDDLE_ROUNDS),
                "last_round": last,
            }
        )
    overhead = _overhead(rows, time.perf_counter() - started)
    overhead["rounds_measured"] = len(MIDDLE_ROUNDS)
    overhead["protocol_overhead_last_round"] = statistics.median(
        r["last_round"]["fraction"] for r in rows
    )
    return overhead


def measure(repeats: int, params: int, demo: bool, targets: Sequence[int]) -> dict:
    runs = [serialized_round(params) for _ in range(repeats)]
    chain_seconds = statistics.median(r["chain_seconds"] for r in runs)
    one_process = client_overhead() if demo else None
    own_core = own_core_overhead(targets) if demo and targets else None

    def pick(source: dict | None, key: str) -> float | None:
        return source[key] if source else None

    row = {
        "dos": DOS,
        "d": params,
        "lanes": params + 1,
        "group_size": GROUP_SIZE,
        "lane_bits": LANE_BITS,
        "transactions": runs[0]["transactions"],
        "total_gas": runs[0]["total_gas"],
        "chain_seconds": chain_seconds,
        "chain_seconds_runs": [r["chain_seconds"] for r in runs],
        "node_seconds": statistics.median(r["node_seconds"] for r in runs),
        "paper_seconds": PAPER_SECONDS,
        "chain_to_paper": chain_seconds / PAPER_SECONDS,
        "protocol_overhead": pick(own_core, "protocol_overhead"),
        "protocol_overhead_with_phase_polls": pick(own_core, "protocol_overhead_with_phase_polls"),
        "protocol_overhead_last_round": pick(own_core, "protocol_overhead_last_round"),
        "protocol_overhead_one_process": pick(one_process, "protocol_overhead"),
        "protocol_overhead_cpu": pick(one_process, "protocol_overhead_cpu"),
        "overhead_target": OVERHEAD_TARGET,
        "measure": MEASURE,
    }
    return {"rows": [row], "runs": runs, "client": one_process, "client_own_core": own_core}


def print_result(console: Console, result: dict) -> None:
    row = result["rows"][0]
    run = min(result["runs"], key=lambda r: abs(r["chain_seconds"] - row["chain_seconds"]))
    table = Table(title=f"one round, {row['dos']} DOs, d = {row['d']:,}: serialized chain time")
    for name in ("entry point", "calls", "ms per call", "of which RPC ms", "total ms"):
        table.add_column(name, justify="right")
    for function, f in sorted(run["by_function"].items(), key=lambda kv: -kv[1]["seconds"]):
        calls = f["calls"]
        table.add_row(
            function,
            str(calls),
            f"{1e3 * f['seconds'] / calls:.1f}",
            f"{1e3 * f['rpc_seconds'] / calls:.1f}",
            f"{1e3 * f['seconds']:.0f}",
        )
    console.print(table)
    rpc = ", ".join(f"{m} {1e3 * s:.0f} ms" for m, s in sorted(run["rpc_seconds"].items()))
    console.print(f"RPC round trips in that run: {rpc}")
    console.print(
        f"chain processing time of a round: {1e3 * row['chain_seconds']:.0f} ms "
        f"(runs: {', '.join(f'{1e3 * s:.0f}' for s in row['chain_seconds_runs'])}; "
        f"node {1e3 * row['node_seconds']:.0f} ms) vs the paper's "
        f"{1e3 * PAPER_SECONDS:.0f} ms -> [bold]{row['chain_to_paper']:.3f}x[/bold]"
    )
    labels = (
        ("client_own_core", "client overhead, a data owner on a core of its own"),
        ("client", "client overhead, the demo in one process (10 DOs + model owner, one GIL)"),
    )
    for key, label in labels:
        client = result.get(key)
        if client is None:
            continue
        m = client["median_seconds"]
        console.print(
            f"{label} (median DO): protocol {m['protocol']:.3f} s (steps "
            f"{m['steps']:.3f}, transactions {m['transactions']:.3f}, reads {m['reads']:.3f}) / "
            f"training {m['training']:.2f} s -> [bold]{client['protocol_overhead']:.3f}[/bold] "
            f"(max {client['protocol_overhead_max']:.3f}; target {OVERHEAD_TARGET:.2f}); "
            f"with the phase polls while waiting ({m['phase_polls']:.3f} s): "
            f"{client['protocol_overhead_with_phase_polls']:.3f}"
        )
        console.print(
            f"  in CPU time of the threads: protocol "
            f"{m['cpu steps'] + m['cpu chain']:.3f} s (steps {m['cpu steps']:.3f}, chain calls "
            f"{m['cpu chain']:.3f}) / training {m['cpu training']:.2f} s -> "
            f"[bold]{client['protocol_overhead_cpu']:.3f}[/bold]; phase polls "
            f"{m['cpu phase_polls']:.3f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    mnist_params = infer_shapes(load_spec_file(str(MNIST_SPEC))).public_params
    parser.add_argument("--params", type=int, default=mnist_params)
    parser.add_argument("--skip-demo", action="store_true", help="chain time only")
    parser.add_argument(
        "--own-core",
        default="2,5,7",
        help="data owners measured on a core of their own, one swarm run each ('' for none)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "chain_time.json")
    args = parser.parse_args()
    targets = [int(i) for i in args.own_core.split(",") if i.strip()]
    result = measure(args.repeats, args.params, not args.skip_demo, targets)
    print_result(Console(), result)
    if args.out.exists():  # the direct path's row is bench.direct_round's: kept as it is
        previous = json.loads(args.out.read_text())["rows"]
        result["rows"] += [row for row in previous if "path" in row]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    Console().print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
