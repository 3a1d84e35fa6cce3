"""`omnilytics swarm`: the model owner and every data owner as separate OS processes on a node.

A swarm runs a task spec (`--task SPEC`, ``examples/mnist-cnn.toml`` unless another is given):
the processes are `omnilytics task create` and `omnilytics join`; the launcher writes each data
owner's files in a folder of its own (`--data-dir`, else the split's cache folder) and the spec
that is run, and each process reads only its own folder and the spec from the chain.

The launcher only sets the stage and watches: it deploys the market, funds one fresh account per
actor, hands each process its private key through the environment, and shows the market's state
read from the chain (the same view as `omnilytics status`). When the processes are done it
recovers every group's aggregate from chain data itself, checks it against the data owners'
plaintext updates (test mode), and reports accuracy, gas, chain time, payments, wall time and
the peak memory of its processes (`actors.measure.memory`, sampled while it waits).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.live import Live

from actors.chain.aggregation import recover_round
from actors.chain.blob_sources import blob_source
from actors.chain.market import Market
from actors.chain.node_process import LOCAL_NODES, start_local_node
from actors.chain.rpc_backend import RpcChain
from actors.entry.processes import KEY_ENV, save_scenario
from actors.entry.report import RunReport, payments, plot_report, print_report, summarize_gas
from actors.entry.scenario import (
    Scenario,
    SpecData,
    central_accuracy,
    data_owner_seed,
    split_data,
)
from actors.entry.status import read_task, render
from actors.measure.memory import MemoryPeak
from protocol.constants import DATA_PATH_DIRECT, STATUS_SUBMITTED
from protocol.spec import canonical_bytes

FUNDS = 10**20
# Once the model owner's process has ended the task, how long (seconds) the data owner processes
# may still take to finish their own job (collect what they are owed, write their result, exit)
# before the swarm fails naming those still running: as `actors.entry.run.COLLECT_GRACE`.
COLLECT_GRACE = 60.0


class SwarmError(RuntimeError):
    """A swarm process failed or the swarm did not finish in time."""


@dataclass
class Swarm:
    """The processes of one market run; `start`, then `wait`, then `report`."""

    scenario: Scenario
    chain: RpcChain
    state_dir: Path
    keep_plaintext: bool = True
    market: Market | None = None
    task: int | None = None
    mo: subprocess.Popen | None = None
    dos: dict[int, subprocess.Popen] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # role -> address
    started: float = 0.0
    beacon_url: str | None = None  # the model owner reads blobs there (default: the node)
    # Data owners on hosts of their own (tests): the address each one's peer channel listens on,
    # and the command that runs its process there (e.g. `ip netns exec NAME`).
    do_hosts: dict[int, str] = field(default_factory=dict)
    do_prefixes: dict[int, list[str]] = field(default_factory=dict)
    # Every process this launcher started (node included), sampled while it waits.
    memory: MemoryPeak = field(default_factory=lambda: MemoryPeak(os.getpid()))
    roles: dict[int, str] = field(default_factory=dict)  # pid -> role, for the memory report
    timings: bool = False  # data owners write where their time went (`actors.measure.timing`)
    mo_prefix: list[str] = field(default_factory=list)  # what runs the model owner's process
    # sampling reads every process's smaps (~10 ms each): a timing run turns it off
    sample_memory: bool = True
    spec_data: SpecData | None = None  # a spec run's files and the spec that is run

    # -- processes -------------------------------------------------------------------------

    def _spawn(
        self, role: str, args: list[str], prefix: list[str] | None = None
    ) -> subprocess.Popen:
        address = self.accounts.get(role) or self.chain.new_account(FUNDS)
        self.accounts[role] = address
        env = dict(os.environ, **{KEY_ENV: self.chain.private_key(address)})
        log = (self.state_dir / f"{role}.out").open("ab")
        command = [*(prefix or []), sys.executable, "-m", "actors.entry.cli", *args]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.roles[process.pid] = role
        return process

    def start(self, timeout: float = 300.0) -> None:
        """Deploy, start the model owner, wait for its task, start every data owner."""
        self.started = time.perf_counter()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        deployer = self.chain.new_account(FUNDS)
        source = blob_source(self.chain, self.beacon_url)
        self.market = Market.deploy(self.chain, deployer, blob_source=source)
        # what was run, for the record (`omnilytics mo|do --scenario` run one party of it)
        save_scenario(self.scenario, self.state_dir / "scenario.json")
        self._write_spec_run()
        self.start_model_owner()
        task_file = self.state_dir / "mo" / "task"
        deadline = time.monotonic() + timeout
        while not task_file.exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise SwarmError("the model owner did not create its task in time")
            if self.sample_memory:
                self.memory.sample()
            time.sleep(0.2)
        self.task = int(task_file.read_text())
        for i in range(self.scenario.dos):
            self.start_data_owner(i)

    def _write_spec_run(self) -> None:
        """Write the data owners' files (one folder each) and the spec that is run (canonical
        JSON): the processes get nothing else, no scenario."""
        if self.scenario.attack != "none":
            raise SwarmError("a swarm runs honest data owners only")
        self.spec_data = split_data(self.scenario)
        (self.state_dir / "spec.json").write_bytes(canonical_bytes(self.spec_data.spec))

    def start_model_owner(self) -> None:
        """(Re)start the model owner: a restarted one resumes its task from its state directory."""
        layout = self.spec_data.layout
        args = ["task", "create", str(self.state_dir / "spec.json")]
        args += ["--validation", str(layout.owner), "--test", str(layout.test)]
        args += ["--seed", str(self.scenario.seed)]
        args += ["--rpc-url", self.chain.url, "--market", self.market.address]
        args += ["--state-dir", str(self.state_dir / "mo")]
        if self.beacon_url:
            args += ["--beacon-url", self.beacon_url]
        self.mo = self._spawn("mo", args, self.mo_prefix)

    def kill_model_owner(self) -> None:
        """SIGKILL the model owner (no clean-up: its state is what it persisted)."""
        self.mo.send_signal(signal.SIGKILL)
        self.mo.wait()

    def start_data_owner(self, index: int) -> None:
        """(Re)start data owner `index`: a restarted one resumes from its state directory."""
        args = ["join", str(self.task), "--data", str(self.spec_data.layout.data_owners[index])]
        args += ["--seed", str(data_owner_seed(self.scenario, index))]
        drop = {i: (r, step) for i, r, step in self.scenario.drops}.get(index)
        if drop is not None:
            args += ["--drop", f"{drop[0]}:{drop[1]}"]
        args += ["--rpc-url", self.chain.url, "--market", self.market.address]
        args += ["--state-dir", str(self.state_dir / f"do-{index}")]
        if self.keep_plaintext:
            args.append("--keep-plaintext")
        if index in self.do_hosts:
            args += ["--host", self.do_hosts[index]]
        if self.timings:
            args.append("--timings")
        self.dos[index] = self._spawn(f"do-{index}", args, self.do_prefixes.get(index))

    def kill_data_owner(self, index: int) -> None:
        """SIGKILL data owner `index` (no clean-up: its state is what it persisted)."""
        process = self.dos[index]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def account_of(self, index: int) -> str:
        return self.accounts[f"do-{index}"]

    def _check_alive(self) -> None:
        for role, process in [("mo", self.mo), *((f"do-{i}", p) for i, p in self.dos.items())]:
            if process is not None and process.poll() not in (None, 0):
                log = self.state_dir / f"{role}.out"
                lines = log.read_text(errors="replace").strip().splitlines()
                last = lines[-1].strip() if lines else "no output"
                raise SwarmError(f"{role} exited with {process.returncode}: {last} (log: {log})")

    def running(self) -> bool:
        processes = [self.mo, *self.dos.values()]
        return any(p is not None and p.poll() is None for p in processes)

    def wait(
        self,
        timeout: float,
        console: Console | None = None,
        collect_grace: float = COLLECT_GRACE,
    ) -> None:
        """Wait for every process to finish, showing the market from chain data meanwhile; the
        data owners have `collect_grace` seconds once the model owner's process has ended."""
        deadline = time.monotonic() + timeout
        task_ended = None  # when the model owner's process ended the task
        with contextlib.ExitStack() as stack:
            live = None
            if console is not None:
                live = stack.enter_context(Live(console=console, refresh_per_second=2))
            while self.running():
                self._check_alive()
                if task_ended is None and self.mo is not None and self.mo.poll() == 0:
                    task_ended = time.monotonic()
                if task_ended is not None and time.monotonic() > task_ended + collect_grace:
                    busy = [f"do-{i}" for i, p in self.dos.items() if p.poll() is None]
                    self.stop()
                    raise SwarmError(
                        f"{', '.join(busy)} not finished {collect_grace:g} s after the model "
                        f"owner ended the task (logs in {self.state_dir})"
                    )
                if time.monotonic() > deadline:
                    self.stop()
                    raise SwarmError(f"the swarm did not finish within {timeout:.0f} s")
                if live is not None:
                    live.update(render([read_task(self.market, self.task)]))
                if self.sample_memory:
                    self.memory.sample()
                time.sleep(0.5)
        self._check_alive()

    def stop(self) -> None:
        for process in [self.mo, *self.dos.values()]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    # -- the outcome -----------------------------------------------------------------------

    def report(self) -> RunReport:
        market, task = self.market, self.task
        config = market.config(task)
        mo = json.loads((self.state_dir / "mo" / "result.json").read_text())
        results = {
            i: json.loads((self.state_dir / f"do-{i}" / "result.json").read_text())
            for i in self.dos
            if (self.state_dir / f"do-{i}" / "result.json").exists()
        }
        gas = summarize_gas(market.transactions(), config.d - 1)
        exact = None
        if self.keep_plaintext:
            exact = all(self._exact(r) for r in range(len(mo["accuracy_after"])))
        # from chain data: a process that died was still credited what its group earned
        credited, withdrawn = payments(market, task, [self.account_of(i) for i in self.dos])
        return RunReport(
            chain=self.chain.name,
            dos=self.scenario.dos,
            rounds=self.scenario.rounds,
            groups=market.group_count(task),
            d=config.d - 1,
            accuracy_before=mo["accuracy_before"],
            accuracy_after=mo["accuracy_after"],
            gas=gas.per_phase,
            gas_by_round=gas.by_round,
            gas_per_param_submit=gas.submit_per_param,
            chain_seconds=mo["chain_seconds"] + sum(r["chain_seconds"] for r in results.values()),
            wall_seconds=time.perf_counter() - self.started,
            credited_wei=credited,
            withdrawn_wei=withdrawn,
            refunded_wei=mo["refunded_wei"],
            dropped=[
                self.account_of(i) for i in self.dos if results.get(i, {}).get("dropped", True)
            ],
            aggregate_exact=exact,
            rule=self.scenario.rule,
            memory=self.memory.summary(self.roles),
            task=self.scenario.task,
            accuracy_central=central_accuracy(self.scenario, self.spec_data),
        )

    def _exact(self, round: int) -> bool:
        """Recover the round's aggregates from chain data here, and compare with plaintexts. A
        direct task's updates are not on-chain (only the model owner holds them): its
        aggregates are the model owner's, as it wrote them."""
        market, task = self.market, self.task
        if market.config(task).data_path == DATA_PATH_DIRECT:
            found = sorted((self.state_dir / "mo").glob(f"aggregate-{round}-*.npy"))
            sums = {int(f.stem.rsplit("-", 1)[1]): np.load(f) for f in found}
        else:
            recovered = recover_round(market, task, round)
            if recovered.errors:
                return False
            sums = {group: a.ring_sum for group, a in recovered.aggregates.items()}
        if not sums:
            return False
        for group, ring_sum in sums.items():
            members = set(market.group_members(task, group))
            expected = None
            for i in self.dos:
                account = self.account_of(i)
                if account not in members or market.status(task, round, account) < STATUS_SUBMITTED:
                    continue
                lanes = np.load(self.state_dir / f"do-{i}" / f"plaintext-{round}.npy")
                expected = lanes if expected is None else expected + lanes
            if expected is None or not np.array_equal(ring_sum, expected):
                return False
        return True


@contextlib.contextmanager
def swarm_chain(kind: str, rpc_url: str | None) -> Iterator[RpcChain]:
    """A node for the swarm: a fresh anvil or hardhat, or a node already running at `rpc_url`
    (a dev node's cheat methods used unless `kind` is rpc)."""
    if kind in LOCAL_NODES and rpc_url is None:
        with start_local_node(kind) as node:
            yield RpcChain(node.url, dev=True)
        return
    if rpc_url is None:
        raise ValueError("--rpc-url is required unless --chain anvil or hardhat")
    yield RpcChain(rpc_url, dev=kind in LOCAL_NODES, funder_key=os.environ.get(KEY_ENV))


def run_swarm(
    scenario: Scenario,
    *,
    chain_kind: str = "anvil",
    rpc_url: str | None = None,
    state_dir: Path | None = None,
    report_path: Path | None = None,
    plot_path: Path | None = None,
    timeout: float = 1_800.0,
    console: Console | None = None,
    beacon_url: str | None = None,
) -> RunReport:
    console = console or Console()
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        chain = stack.enter_context(swarm_chain(chain_kind, rpc_url))
        swarm = Swarm(scenario, chain, state_dir, beacon_url=beacon_url)
        stack.callback(swarm.stop)
        swarm.start()
        console.print(
            f"market {swarm.market.address}, task {swarm.task}: "
            f"1 model owner + {scenario.dos} data owner processes (logs in {state_dir})"
        )
        swarm.wait(timeout, console=console)
        console.print()
        report = swarm.report()
    print_report(report, console)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(report.to_json())
    if plot_path is not None:
        plot_report(report, plot_path)
    return report
