"""A round of ours beside a round of Flower's SecAgg+ on the same job, measured in one run.

The job is the demo's (`actors.entry.scenario.Scenario()`, a run of ``examples/mnist-cnn.toml``):
10 data owners x 1,000 MNIST samples, IID, seed 0; the spec's split CNN from the model the model
owner publishes at round 0; the spec's recipe; 2 trainers at a time with 1 torch thread each.
Run back to back and interleaved, ``--repeats`` times each (the order rotates from one repeat to
the next):

- ours: ``omnilytics demo`` at 1 and 3 rounds, on the embedded chain (boa) and on anvil, with
  each data path asked for (``--data-path``: the direct path, where a masked update goes to the
  model owner over a channel and only its digest on-chain, and the event path, where it goes
  on-chain in events; both by default);
- Flower 1.42 (``bench/flower_peer.py`` under ``.venv-flower``, in Flower's simulation engine on
  Ray), with ``SecAggPlusWorkflow`` (5 shares, threshold 3) and with plain FedAvg, 1 and 3 rounds.

Flower's side gets the same samples (as our learners read and preprocessed them from their files)
as ``.npy`` files and the same round-0 public vector (``.npz``) from this side; it trains and
evaluates with our modules for that network and recipe (the model owner's way: a private head
fine-tuned from the aggregated auxiliary head, then the test set).

Each run is a process of its own, timed from start to exit: ``wall_seconds`` (start-up
included), the CPU time of the processes it left behind (``resource.getrusage`` of children: on
this shared 2-core machine wall times wait for the CPU, CPU times do not), and
``peak_rss_bytes``, the largest summed RSS of all its processes (Ray's included), sampled.
``seconds_per_round`` is the marginal time of a further round as each 3-round run times its
rounds inside (ours: the report's ``round_seconds``, between the moments the aggregates were
applied; Flower's: between its server-side evaluations, which end its rounds): the median over
the repeats of the mean of rounds 2 and 3. ``peer_ratio`` is ours over Flower SecAgg+'s, both
measured in this run. ``whole_run_seconds_per_round`` is the same from whole runs,
``(t3 - t1) / 2`` of the medians, with ``whole_run_peer_ratio``; it carries the noise of two
start-ups (torch, Ray, the compiler: 15-25 s that moved by 5 s between identical runs here),
which once put Flower's FedAvg at 1.24x of its SecAgg+. ``cpu_seconds_per_round`` and
``cpu_peer_ratio``: the same from whole runs in CPU seconds, which wait for no one. After the
timed runs, one more 3-round run of ours per chain and data path, with timers in
(`bench.peer_profile`), says where a round's time goes: ``breakdown`` holds its middle round
(the first further round: from its SHARE to the next round's SHARE) per phase and per kind of
work. Writes bench/results/peer.json.

    python -m bench.peer [--repeats 2] [--out bench/results/peer.json] [--data-path direct event]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from actors.entry.scenario import (
    Scenario,
    central_accuracy,
    data_owner_learner,
    data_owner_seed,
    model_owner_learner,
    split_data,
)
from actors.learning.spec_model import public_vector
from actors.learning.train import use_threads
from actors.measure.memory import MemoryPeak, descendants
from bench.gas import RESULTS
from bench.mask import FLOWER_VENV, flower_python, flower_version
from bench.peer_profile import process_cpu_ticks

ROOT = Path(__file__).resolve().parents[1]
FLOWER_SIDE = Path(__file__).resolve().parent / "flower_peer.py"
FLOWER_REQUIREMENTS = ("flwr[simulation]==1.42.*", "torch==2.13.0", "numpy")
FLOWER_CHECK = (
    "import flwr, ray, torch; "
    "assert flwr.__version__.startswith('1.42.') and torch.__version__.startswith('2.13.0')"
)
ROUNDS = (1, 3)
CHAINS = ("boa", "anvil")
OURS, SECAGG, FEDAVG = "omnilytics", "flower_secaggplus", "flower_fedavg"
# the breakdown's kinds of work (`bench.peer_profile`), summed over every party
WORK_KINDS = (
    "training",
    "model_owner",
    "chain_transactions",
    "chain_reads",
    "chain_polls",
    "evm",
    "cryptography",
    "node",
)
_SAMPLE_EVERY = 0.25  # seconds between memory samples of a run's processes

console = Console(width=max(Console().width, 130))


@dataclass(frozen=True, slots=True)
class Config:
    """One kind of run: which system, on which chain and data path (ours only), for how many
    rounds."""

    system: str
    chain: str | None
    rounds: int
    data_path: str | None = None


@dataclass
class Run:
    """What one process run measured."""

    wall: float
    cpu: float
    peak_rss: int
    accuracy: list[float]
    extra: dict = field(default_factory=dict)


def export_job(scenario: Scenario, where: Path) -> None:
    """The scenario's split (one ``.npy`` pair per party, the test set) and the model owner's
    round-0 public vector, for Flower's side; the seeds its data owners train with."""
    data = split_data(scenario)
    owner = model_owner_learner(scenario, data)
    parts = {f"do{i}": data_owner_learner(scenario, data, i).data for i in range(scenario.dos)}
    parts |= {"mo": owner.own, "test": owner.test}
    for name, samples in parts.items():
        np.save(where / f"{name}_x.npy", samples.x.numpy(), allow_pickle=False)
        np.save(where / f"{name}_y.npy", samples.y.numpy(), allow_pickle=False)
    np.savez(where / "initial.npz", public=public_vector(owner.public))
    job = {
        "do_seeds": [data_owner_seed(scenario, i) for i in range(scenario.dos)],
        "mo_train_seed": owner.train_seed,
    }
    (where / "job.json").write_text(json.dumps(job))


def keep_ceilings(scenario: Scenario) -> None:
    """Train, untimed, the central ceiling each run of ours reports: the demo keeps it in the
    split's cache folder and reads it there, so no timed run of ours, and no further round
    (t3 - t1), holds its training."""
    use_threads(1)  # the demo's thread count, which the kept ceiling is named by
    for rounds in ROUNDS:
        run = dataclasses.replace(scenario, rounds=rounds)
        central_accuracy(run, split_data(run))


def measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Run ``command`` to its end: (wall seconds, CPU seconds of all its processes, peak summed
    RSS of all its processes).

    CPU: the larger of ``getrusage`` of the children (exact, but only for processes their parent
    waited for: Ray's workers are killed, not reaped) and the sum over every process seen in the
    samples of its last CPU time (misses at most one sampling interval of each)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    peak = MemoryPeak(os.getpid())
    ticks: dict[int, int] = {}
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:
        while proc.poll() is None:
            peak.sample()
            for pid in descendants(os.getpid()):
                if (now := process_cpu_ticks(pid)) is not None:
                    ticks[pid] = now
            time.sleep(_SAMPLE_EVERY)
        stderr = proc.stderr.read() if proc.stderr else ""
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{command[:4]} exited with {proc.returncode}:\n{stderr[-3000:]}")
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    sampled = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
    return wall, max(reaped, sampled), peak.peak_total


def run_ours(config: Config, scratch: Path) -> Run:
    report = scratch / f"ours-{config.chain}-{config.data_path}-{config.rounds}.json"
    command = [sys.executable, "-m", "actors.entry.cli", "demo", "--rounds", str(config.rounds)]
    command += ["--chain", str(config.chain), "--report", str(report)]
    command += ["--data-path", str(config.data_path)]
    command += ["--plot", str(scratch / "demo.png")]
    wall, cpu, rss = measured(command)
    doc = json.loads(report.read_text())
    extra = {"report_wall_seconds": doc["wall_seconds"], "round_seconds": doc["round_seconds"]}
    return Run(wall, cpu, rss, doc["accuracy_after"], extra)


def run_flower(config: Config, python: Path, job: Path, scratch: Path) -> Run:
    out = scratch / f"{config.system}-{config.rounds}.json"
    command = [str(python), str(FLOWER_SIDE), str(job), str(config.rounds), str(out)]
    command += ["--plain"] if config.system == FEDAVG else []
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    wall, cpu, rss = measured(command, env)
    doc = json.loads(out.read_text())
    return Run(wall, cpu, rss, doc["accuracy"], {"round_seconds": doc["round_seconds"]})


def breakdown(chain: str, scratch: Path, data_path: str = "event", rounds: int = 3) -> dict:
    """A round of ours on ``chain`` per phase and per kind of work (`bench.peer_profile`, in a
    process of its own: its timers replace functions there); the middle round's and all."""
    out = scratch / f"profile-{chain}-{data_path}.json"
    command = [sys.executable, "-m", "bench.peer_profile", chain, str(rounds), str(out), data_path]
    measured(command)
    doc = json.loads(out.read_text())
    return {"round": doc["per_round"][1], "per_round": doc["per_round"]}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def in_run_round(runs: list[Run]) -> float:
    """A further round as the runs of ``ROUNDS[1]`` rounds timed it inside: the median over
    those runs of the mean of their rounds after the first (the first holds the start-up)."""
    return _median([statistics.mean(r.extra["round_seconds"][1:]) for r in runs])


def summarize(runs: dict[Config, list[Run]]) -> list[dict]:
    """One row per config, medians over its repeats: a further round as the runs timed it
    inside (`in_run_round`) and as the difference of whole runs, in wall and CPU time, and
    each one's ratio to Flower SecAgg+'s."""
    per_round: dict[tuple[str, str | None, str | None], tuple[float, float, float]] = {}
    for system, chain, path in {(c.system, c.chain, c.data_path) for c in runs}:
        one, three = (runs[Config(system, chain, n, path)] for n in ROUNDS)
        spread = ROUNDS[1] - ROUNDS[0]
        per_round[system, chain, path] = (
            (_median([r.wall for r in three]) - _median([r.wall for r in one])) / spread,
            (_median([r.cpu for r in three]) - _median([r.cpu for r in one])) / spread,
            in_run_round(three),
        )
    flower_wall, flower_cpu, flower_in_run = per_round[SECAGG, None, None]
    rows = []
    for config, done in runs.items():
        wall_round, cpu_round, in_run = per_round[config.system, config.chain, config.data_path]
        accuracies = [r.accuracy for r in done]
        rows.append(
            {
                "system": config.system,
                "rounds": config.rounds,
                "chain": config.chain,
                "data_path": config.data_path,
                "repeats": len(done),
                "wall_seconds": _median([r.wall for r in done]),
                "wall_seconds_runs": [r.wall for r in done],
                "cpu_seconds": _median([r.cpu for r in done]),
                "seconds_per_round": in_run,
                "whole_run_seconds_per_round": wall_round,
                "cpu_seconds_per_round": cpu_round,
                "accuracy": accuracies[0],
                "accuracy_repeats_equal": all(a == accuracies[0] for a in accuracies),
                "peak_rss_bytes": max(r.peak_rss for r in done),
                "peer_ratio": in_run / flower_in_run,
                "whole_run_peer_ratio": wall_round / flower_wall,
                "cpu_peer_ratio": cpu_round / flower_cpu,
                "runs": [r.extra for r in done],
            }
        )
    order = {OURS: 0, SECAGG: 1, FEDAVG: 2}
    rows.sort(
        key=lambda r: (
            order[r["system"]],
            r["data_path"] or "",
            CHAINS.index(r["chain"] or "boa"),
            r["rounds"],
        )
    )
    return rows


def print_rows(rows: list[dict], version: str) -> None:
    table = Table(title=f"the demo's job: ours beside Flower {version} (Ray simulation)")
    table.add_column("system")
    table.add_column("rounds", justify="right")
    for name in ("run: wall (CPU) s", "further round: wall (CPU) s", "ours / SecAgg+: wall (CPU)"):
        table.add_column(name, justify="right")
    table.add_column("further round, whole runs: wall", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("peak RSS", justify="right")
    for r in rows:
        table.add_row(
            " ".join(filter(None, (r["system"], r["chain"], r["data_path"]))),
            str(r["rounds"]),
            f"{r['wall_seconds']:.1f} ({r['cpu_seconds']:.1f})",
            f"{r['seconds_per_round']:.2f} ({r['cpu_seconds_per_round']:.2f})",
            f"{r['peer_ratio']:.2f}x ({r['cpu_peer_ratio']:.2f}x)",
            f"{r['whole_run_seconds_per_round']:.2f} ({r['whole_run_peer_ratio']:.2f}x)",
            " ".join(f"{a:.2%}" for a in r["accuracy"]),
            f"{r['peak_rss_bytes'] / 2**30:.2f} GiB",
        )
    console.print(table)


def print_breakdown(profiles: dict[str, dict]) -> None:
    if not profiles:
        return
    table = Table(title="where a further round of ours goes (wall s; CPU s of the timed code)")
    table.add_column("")
    for chain in profiles:
        table.add_column(chain, justify="right")
    rounds = {chain: p["round"] for chain, p in profiles.items()}
    table.add_row(
        "round", *(f"{r['wall_seconds']:.2f} ({r['cpu_seconds']:.2f})" for r in rounds.values())
    )
    for phase in ("share", "settle", "submit", "unmask", "aggregate", "open_next"):
        table.add_row(f"  phase {phase}", *(f"{r['phases'][phase]:.2f}" for r in rounds.values()))
    table.add_row(
        "  beside: head, accuracy", *(f"{r['evaluate_beside']:.2f}" for r in rounds.values())
    )
    for kind in (*WORK_KINDS, "chain_calls"):
        table.add_row(
            f"  {kind.replace('_', ' ')}", *(_work(r["work"], kind) for r in rounds.values())
        )
    console.print(table)


def _work(work: dict[str, float], kind: str) -> str:
    wall, cpu = work.get(kind), work.get(f"cpu {kind}")
    cells = [f"{wall:.2f}"] if wall is not None else []
    return " ".join(cells + ([f"({cpu:.2f})"] if cpu is not None else [])) or "—"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each kind (>= 2)")
    parser.add_argument("--out", type=Path, default=RESULTS / "peer.json")
    parser.add_argument(
        "--data-path",
        nargs="+",
        choices=("direct", "event"),
        default=["direct", "event"],
        help="how our data owners' masked updates reach the model owner (each is a config)",
    )
    parser.add_argument("--skip-profile", action="store_true", help="no per-phase breakdown")
    args = parser.parse_args(argv)
    python = flower_python(FLOWER_REQUIREMENTS, FLOWER_CHECK)
    version = flower_version(python)
    configs = [
        Config(OURS, chain, n, path) for path in args.data_path for chain in CHAINS for n in ROUNDS
    ]
    configs += [Config(system, None, n) for system in (SECAGG, FEDAVG) for n in ROUNDS]
    runs: dict[Config, list[Run]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        job, scratch = Path(tmp) / "job", Path(tmp) / "scratch"
        job.mkdir()
        scratch.mkdir()
        export_job(Scenario(), job)
        keep_ceilings(Scenario())
        for repeat, step in itertools.product(range(args.repeats), range(len(configs))):
            # each repeat starts one further along, so no kind always follows the same one
            config = configs[(repeat + step) % len(configs)]
            if config.system == OURS:
                run = run_ours(config, scratch)
            else:
                run = run_flower(config, python, job, scratch)
            runs[config].append(run)
            console.print(
                f"[dim]{repeat + 1}/{args.repeats} {config.system} {config.chain or ''} "
                f"{config.data_path or ''} "
                f"{config.rounds} round(s): {run.wall:.1f} s wall, {run.cpu:.1f} s CPU, "
                f"{run.peak_rss / 2**30:.2f} GiB, accuracy {run.accuracy}[/dim]"
            )
        profiles = {
            f"{chain} {path}": breakdown(chain, scratch, path)
            for path in ([] if args.skip_profile else args.data_path)
            for chain in CHAINS
        }
    rows = summarize(runs)
    print_rows(rows, version)
    print_breakdown(profiles)
    result = {
        "flwr_version": version,
        "flower_venv": FLOWER_VENV.name,
        "cores": os.cpu_count(),
        "scenario": "10 DOs x 1,000 MNIST samples, IID, seed 0; 2 trainers x 1 torch thread",
        "data_paths": args.data_path,  # ours: how the masked updates travel
        "rows": rows,
        "breakdown": profiles,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
