"""Where a round of the demo's time goes, per phase and per kind of work (`bench.peer`'s breakdown).

Runs the demo's market in this process (`actors.entry.run.run_market`, the scenario of
`omnilytics demo`: a run of the MNIST spec) on one chain, with timers put around what a round
spends time on; run it in a process of its own (`bench.peer` does), since the timers replace
functions for the process:

- **phases**, from the model owner's own events: SHARE, SETTLE, SUBMIT and UNMASK as the model
  owner drives them (from its `phase` event to the next one), then ``aggregate`` (recovering the
  group aggregates from chain data, combining and applying them) and ``open_next`` (what the
  model owner does before the next round's SHARE: publishing and opening it); its fitting of
  the private head and evaluation run beside the next round (``evaluate_beside``);
- **work**, summed over every party in the round's window (wall seconds of what ran, so
  concurrent work adds up; ``cpu`` is CPU time): ``training`` (data owners' learners, in
  their training processes, whose CPU time it counts); ``model_owner`` (its evaluation,
  reference update, fine-tuning, model bytes);
  ``chain_transactions``, ``chain_reads`` and ``chain_polls`` (every party's chain calls, from
  the call to its answer); ``evm`` (inside the chain: titanoboa's ``Env.execute_code`` on the
  embedded chain, the node's JSON-RPC answers on anvil); ``cryptography`` (the protocol's
  dealing, share and proof checks, masks, quantization and packing, and the model owner's
  recovery of the aggregate); ``cpu node``: the CPU time of the node's process (anvil).

    python -m bench.peer_profile CHAIN ROUNDS OUT.json [DATA_PATH]
"""

from __future__ import annotations

import functools
import io
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from rich.console import Console

import actors.chain.aggregation
import actors.roles.model_owner
import actors.roles.round_driver
import protocol.round_rules
from actors.entry.run import open_chain, run_market
from actors.entry.scenario import Scenario
from actors.learning.spec_learners import SpecModelOwner
from actors.learning.train import use_threads
from actors.learning.trainers import HostedLearner
from actors.measure.memory import PROC, descendants
from actors.measure.timing import TimedChain, new_times
from protocol.constants import DATA_PATHS, PHASE_SETTLE, PHASE_SHARE, PHASE_SUBMIT, PHASE_UNMASK

PHASES = {PHASE_SHARE: "share", PHASE_SETTLE: "settle", PHASE_SUBMIT: "submit"}
PHASES[PHASE_UNMASK] = "unmask"
# the protocol's cryptography and encoding, by the module namespace that calls it
CRYPTO = {
    protocol.round_rules: (
        "deal_round",
        "mask_update",
        "pairwise_seed",
        "verify_share",
        "verify_proof",
        "share_leaf",
        "commitment_digest",
        "pack_lanes",
    ),
    actors.roles.round_driver: ("encode_weighted",),
    actors.chain.aggregation: ("recover_group_aggregate",),
    actors.roles.model_owner: ("decode_weighted",),
}
MODEL_OWNER_WORK = ("accuracy", "reference_update", "apply", "fit_head", "model_bytes")


class Ledger:
    """Seconds spent, by kind, summed from every thread."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, kind: str, seconds: float, cpu: float) -> None:
        with self._lock:
            self.spent[kind] += seconds
            self.spent[f"cpu {kind}"] += cpu

    def timed(self, kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, its wall time and its thread's CPU time added to ``kind`` (the outermost
        call only, where one timed function calls another of the same kind)."""
        depth = threading.local()

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if getattr(depth, "inside", False):
                return fn(*args, **kwargs)
            depth.inside = True
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                depth.inside = False
                self.add(kind, time.perf_counter() - started, time.thread_time() - cpu)

        return wrapper

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.spent)


def _instrument(ledger: Ledger) -> None:
    """Put the ledger's timers around the round's work, for this process."""
    for module, names in CRYPTO.items():
        for name in names:
            setattr(module, name, ledger.timed("cryptography", getattr(module, name)))
    # the demo's data owners train in processes of their own: here their wall time, their CPU
    # time from those processes (`_descendants_cpu`)
    HostedLearner.train = ledger.timed("training", HostedLearner.train)
    for name in MODEL_OWNER_WORK:
        setattr(SpecModelOwner, name, ledger.timed("model_owner", getattr(SpecModelOwner, name)))


def _time_the_evm(chain: Any, ledger: Ledger) -> None:
    if chain.name == "boa":
        import boa

        boa.Env.execute_code = ledger.timed("evm", boa.Env.execute_code)
        return
    transport = chain._transport  # a node: its JSON-RPC answers (execution, mining, reads)
    transport.request = ledger.timed("evm", transport.request)
    transport.batch = ledger.timed("evm", transport.batch)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_ticks(pid: int) -> int | None:
    """``pid``'s CPU time so far (user + system) in clock ticks; None if it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:  # exited between listing and reading
        return None
    fields = stat.rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _descendants_cpu(python: bool) -> float:
    """CPU seconds so far of this process's descendants: the Python ones (the training
    processes, `actors.learning.trainers`) or the others (the node: anvil; none on boa)."""
    ticks = 0
    for pid in descendants(os.getpid()):
        try:
            name = (PROC / str(pid) / "comm").read_text()
        except OSError:  # exited between listing and reading
            continue
        if name.startswith("python") == python and (now := process_cpu_ticks(pid)) is not None:
            ticks += now
    return ticks / os.sysconf("SC_CLK_TCK")


def profile(chain_kind: str, rounds: int, data_path: str = "event") -> dict:
    """Run the demo's market for ``rounds`` rounds on ``chain_kind``, its masked updates on
    ``data_path``; each round's phases and work (module docstring)."""
    use_threads(1)
    ledger = Ledger()
    _instrument(ledger)
    # (seconds, event, round, phase) of the model owner's phase, round_applied and round_done
    # events, and at each, the work done so far and the process's CPU time
    marks: list[tuple[float, str, int, int | None]] = []
    at: dict[tuple[str, int, int | None], tuple[float, dict[str, float]]] = {}
    scenario = Scenario(rounds=rounds, data_path=DATA_PATHS[data_path])
    with tempfile.TemporaryDirectory() as state, open_chain(chain_kind) as chain:
        _time_the_evm(chain, ledger)
        calls = new_times()
        observe = actors.roles.model_owner.ModelOwner.observe

        def marked(self: Any, what: str, **fields: Any) -> None:
            if what in ("phase", "round_applied", "round_done"):
                key = (what, fields["round"], fields.get("phase"))
                marks.append((time.perf_counter(), *key))
                trainers = _descendants_cpu(python=True)
                spent = ledger.snapshot()
                at[key] = (
                    _cpu() + trainers,
                    spent
                    | {
                        "cpu training": spent.get("cpu training", 0.0) + trainers,
                        "chain_transactions": calls["transactions"],
                        "chain_reads": calls["reads"],
                        "chain_polls": calls["phase_polls"],
                        "cpu chain_polls": calls["cpu phase_polls"],
                        "cpu chain_calls": calls["cpu chain"],
                        "cpu node": _descendants_cpu(python=False),
                    },
                )
            observe(self, what, **fields)

        actors.roles.model_owner.ModelOwner.observe = marked
        aggregate = actors.roles.model_owner.ModelOwner._aggregate

        async def aggregating(self: Any, report: Any) -> None:
            marks.append((time.perf_counter(), "aggregate", report.round, None))
            await aggregate(self, report)

        actors.roles.model_owner.ModelOwner._aggregate = aggregating
        started = time.perf_counter()
        trio.run(
            functools.partial(
                run_market, console=Console(file=io.StringIO()), live=False, collect_grace=30
            ),
            scenario,
            TimedChain(chain, calls),
            Path(state),
        )
        wall = time.perf_counter() - started
    return {
        "chain": chain_kind,
        "rounds": rounds,
        "data_path": data_path,
        "wall_seconds": wall,
        "per_round": [_round(marks, at, r, rounds) for r in range(rounds)],
    }


def _round(
    marks: list[tuple[float, str, int, int | None]],
    at: dict[tuple[str, int, int | None], tuple[float, dict[str, float]]],
    r: int,
    rounds: int,
) -> dict:
    """Round r's window: from its SHARE to the next round's SHARE (the last round's: to its
    ``round_done``, so it has no ``open_next``). ``aggregate`` ends when the aggregate is
    applied; the model owner's head fitting and evaluation run beside the next round, from
    then to its ``round_done``: ``evaluate_beside``, not a phase of the window."""
    when = {(what, rr, phase): t for t, what, rr, phase in marks}
    start_key = ("phase", r, PHASE_SHARE)
    end_key = ("phase", r + 1, PHASE_SHARE) if r + 1 < rounds else ("round_done", r, None)
    applied, done = when["round_applied", r, None], when["round_done", r, None]
    points = sorted((when["phase", r, p], name) for p, name in PHASES.items())
    points.append((when["aggregate", r, None], "aggregate"))
    ends = [t for t, _ in points[1:]] + [applied]
    phases = {name: end - t for (t, name), end in zip(points, ends, strict=True)}
    if r + 1 < rounds:
        phases["open_next"] = when[end_key] - applied
    else:
        phases["evaluate"] = done - applied  # nothing left beside it
    (cpu0, work0), (cpu1, work1) = at[start_key], at[end_key]
    return {
        "round": r,
        "wall_seconds": when[end_key] - when[start_key],
        "cpu_seconds": cpu1 - cpu0,
        "phases": phases,
        "evaluate_beside": done - applied,
        "work": {k: v - work0.get(k, 0.0) for k, v in sorted(work1.items())},
    }


def main(argv: list[str]) -> None:
    chain_kind, rounds, out = argv[0], int(argv[1]), Path(argv[2])
    data_path = argv[3] if len(argv) > 3 else "event"
    if data_path not in DATA_PATHS:
        raise SystemExit(f"data path {data_path!r}: one of {', '.join(DATA_PATHS)}")
    out.write_text(json.dumps(profile(chain_kind, rounds, data_path), indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
