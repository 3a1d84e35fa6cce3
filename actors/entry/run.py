"""One whole market in one process: the model owner and every data owner as trio tasks.

This is `omnilytics demo` (embedded chain by default, or anvil): a run of a task spec
(``examples/mnist-cnn.toml`` unless another is given) on the data set the project ships for it,
real loopback Noise channels, real masked submissions; a live table shows every data owner's
progress, and the run ends with a report (console table, JSON, PNG) that adds the central
ceiling. In demo mode every data owner
keeps its plaintext update so the run can check that each recovered group aggregate is exact.

A run ends when every actor has finished its own job: the model owner its task, each data owner
its rounds and then the collection of what it is owed (bond, rewards, complaint refunds, court
credits). An actor that raises, or a data owner still at work `COLLECT_GRACE` seconds after the
model owner saw the task end, fails the run (`RunError`, each one named with its reason).
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from actors.chain.base import Chain
from actors.chain.boa_backend import BoaChain
from actors.chain.market import Market
from actors.entry.collector import freeze_setup, rare_full_collections
from actors.entry.report import RunReport, payments, plot_report, print_report, summarize_gas
from actors.entry.scenario import (
    Scenario,
    central_accuracy,
    data_owner_learner,
    data_owner_seed,
    model_owner_learner,
    split_data,
)
from actors.entry.status import PHASE_NAMES
from actors.learning.train import use_threads
from actors.learning.trainers import TrainingProcesses
from actors.roles.data_owner import DataOwner, DataOwnerSettings
from actors.roles.model_owner import ModelOwner
from actors.roles.store import StateStore
from protocol.constants import STATUS_SUBMITTED

# Once the model owner is done (the task ended on-chain), how long (wall seconds) the data owners
# may still take to finish their own job: notice the end (a poll), then release the bond,
# withdraw credits, refund complaints and withdraw court credits, a few transactions each. One
# still at work after that is named in the run's failure.
TRAINERS = 2  # data owners training at once: one per core of the machine we measured on
COLLECT_GRACE = 60.0


class RunError(RuntimeError):
    """Actors of a one-process run failed or did not finish: `failures` maps each one's name to
    its reason; `report` is the run's report if the model owner finished its task (else None)."""

    def __init__(self, failures: dict[str, str], report: RunReport | None = None) -> None:
        self.failures = failures
        self.report = report
        super().__init__("; ".join(f"{who}: {why}" for who, why in failures.items()))


def _reason(error: BaseException) -> str:
    """An exception in one line: its type and message (every leaf of a group)."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_reason(e) for e in error.exceptions)
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


@dataclass
class _Crew:
    """Which actors of a run are still at work, and why any of them failed."""

    busy: set[str] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)
    idle: trio.Event = field(default_factory=trio.Event)

    def done(self, name: str, failure: str | None = None) -> None:
        self.busy.discard(name)
        if failure is not None:
            self.failures[name] = failure
        if not self.busy:
            self.idle.set()


class _Started:
    """An actor's task status that remembers whether the actor reported itself started."""

    def __init__(self, status: trio.TaskStatus[None]) -> None:
        self.status, self.called = status, False

    def started(self, value: None = None) -> None:
        self.called = True
        self.status.started(value)


async def _supervised(
    name: str,
    run: Callable[..., Awaitable[None]],
    crew: _Crew,
    board: _Board,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one data owner to its end, recording in `crew` that it finished or why it failed (its
    exception stays here: the others carry on). A data owner dropped by fault injection returns
    from `run` (DroppedOut is its own way to finish)."""
    crew.busy.add(name)
    status = _Started(task_status)
    try:
        await run(task_status=status)
    except Exception as error:  # reported by name, with its reason
        crew.done(name, _reason(error))
        board.rows[name]["state"] = f"failed: {_reason(error)}"
    else:
        crew.done(name)
        if not board.rows[name]["state"].startswith("dropped"):
            board.rows[name]["state"] = "done"
    if not status.called:  # it failed before it was up: let the run go on without it
        task_status.started()


@dataclass
class _Board:
    """The live view: one row per data owner."""

    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    owner: str = "creating the task"
    applied: list[float] = field(default_factory=list)  # when each round's aggregate was applied

    def observe(self, role: str, who: str, what: str, **fields: Any) -> None:
        if role == "mo":
            self.owner = _describe(what, fields)
            if what == "round_applied":
                self.applied.append(time.perf_counter())
            return
        row = self.rows.setdefault(who, {"state": "", "paid": ""})
        if what == "withdrew":
            row["paid"] = f"{fields['amount'] / 1e18:.4f}"
        if what not in ("chunk", "peer_error") or not row["state"].startswith("submit"):
            row["state"] = _describe(what, fields)

    def render(self) -> Table:
        table = Table(title=f"model owner: {self.owner}", expand=False)
        table.add_column("data owner")
        table.add_column("progress")
        table.add_column("paid (ETH)", justify="right")
        for who, row in self.rows.items():
            table.add_row(who[:10] + "…", row["state"], row["paid"])
        return table


def _describe(what: str, fields: dict[str, Any]) -> str:
    shown = {k: PHASE_NAMES.get(v, v) if k == "phase" else v for k, v in fields.items()}
    detail = ", ".join(
        f"{k}={v:.1%}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
    )
    return f"{what} ({detail})" if detail else what


@contextlib.contextmanager
def open_chain(kind: str, rpc_url: str | None = None, key: str | None = None) -> Iterator[Chain]:
    """The chain a run uses: `boa` (embedded), `anvil` or `hardhat` (a local node we start), or
    `rpc`."""
    if kind == "boa":
        yield BoaChain(realtime=True, cache_views=True)
        return
    from actors.chain.node_process import LOCAL_NODES, start_local_node
    from actors.chain.rpc_backend import RpcChain

    if kind in LOCAL_NODES:
        with start_local_node(kind) as node:
            yield RpcChain(node.url, dev=True)
        return
    if kind == "rpc":
        if not rpc_url:
            raise ValueError("--rpc-url is required with --chain rpc")
        yield RpcChain(rpc_url, funder_key=key)
        return
    raise ValueError(f"unknown chain {kind!r}: boa, anvil, hardhat or rpc")


async def run_market(
    scenario: Scenario,
    chain: Chain,
    state_dir: Path,
    *,
    console: Console | None = None,
    live: bool = True,
    collect_grace: float = COLLECT_GRACE,
) -> RunReport:
    """Run the whole market once, until every actor has finished its own job; return its
    report. RunError names the actors that failed or did not finish `collect_grace` seconds
    after the task ended."""
    with rare_full_collections(), contextlib.ExitStack() as resources:
        return await _run_market(
            scenario, chain, state_dir, console, live, collect_grace, resources
        )


async def _run_market(
    scenario: Scenario,
    chain: Chain,
    state_dir: Path,
    console: Console | None,
    live: bool,
    collect_grace: float,
    resources: contextlib.ExitStack,
) -> RunReport:
    started = time.perf_counter()
    data = await trio.to_thread.run_sync(split_data, scenario)
    owner_learner = await trio.to_thread.run_sync(model_owner_learner, scenario, data)

    board = _Board()
    mo_account = chain.new_account(10**22)
    market = Market.deploy(chain, mo_account)
    mo = ModelOwner(market, mo_account, owner_learner, scenario.plan(), observe=board.observe)
    task = await mo.create_task()
    drops = {(i): (r, step) for i, r, step in scenario.drops}
    # two single-threaded trainers, one per core, in processes of their own
    # (`actors.learning.trainers`): the data owners' learners live there for the run
    trainers = min(TRAINERS, scenario.dos)
    learners = [data_owner_learner(scenario, data, i) for i in range(scenario.dos)]
    hosts = await trio.to_thread.run_sync(
        functools.partial(TrainingProcesses, learners, workers=trainers)
    )
    resources.enter_context(hosts)
    limiter = trio.CapacityLimiter(trainers)
    dos = []
    for i in range(scenario.dos):
        account = chain.new_account(10**20)
        board.rows[account] = {"state": "starting", "paid": ""}
        settings = DataOwnerSettings(
            keep_plaintext=True,
            drop_at=drops.get(i),
            rounding_seed=data_owner_seed(scenario, i),
        )
        learner = hosts.learner(i)
        store = StateStore(state_dir / f"do-{i}.sqlite")
        dos.append(
            DataOwner(
                market,
                account,
                task,
                learner,
                store,
                settings=settings,
                observe=board.observe,
                train_limiter=limiter,
            )
        )

    freeze_setup()  # the data, the learners and the compiled contracts stay for the run
    console = console or Console()
    crew = _Crew()
    reports = None
    with Live(board.render(), console=console, refresh_per_second=4) as view:
        async with trio.open_nursery() as nursery:
            if live:
                nursery.start_soon(_refresh, view, board)
            for actor in dos:
                await nursery.start(_supervised, actor.account, actor.run, crew, board)
            try:
                reports = await mo.run()
            except Exception as error:  # reported by name, with its reason
                crew.failures["model owner"] = _reason(error)
                for who in sorted(crew.busy):
                    crew.failures[who] = "stopped unfinished: the model owner failed"
            else:
                # the task ended on-chain: each data owner still collects what it is owed
                with trio.move_on_after(collect_grace):
                    await crew.idle.wait()
                for who in sorted(crew.busy):
                    last = board.rows[who]["state"] or "nothing yet"
                    crew.failures[who] = (
                        f"not finished {collect_grace:g} s after the task ended (last: {last})"
                    )
            nursery.cancel_scope.cancel()
        view.update(board.render())  # the last frame stays on screen, above the report
    report = None
    if reports is not None:
        wall = time.perf_counter() - started
        report = _report(scenario, chain, market, mo, reports, dos, wall)
        report.round_seconds = np.diff([started, *board.applied]).tolist()
        # the ceiling, once the market is done (it would compete with its training)
        report.accuracy_central = await trio.to_thread.run_sync(central_accuracy, scenario, data)
    if crew.failures:
        raise RunError(crew.failures, report)
    return report


async def _refresh(view: Live, board: _Board) -> None:
    while True:
        view.update(board.render())
        await trio.sleep(0.25)


def _report(
    scenario: Scenario,
    chain: Chain,
    market: Market,
    mo: ModelOwner,
    reports: list,
    dos: list[DataOwner],
    wall: float,
) -> RunReport:
    task = mo.task
    config = market.config(task)
    gas = summarize_gas(market.transactions(), config.d - 1)
    exact = True
    for report in reports:
        for group, ring_sum in report.aggregates.items():
            members = set(market.group_members(task, group))
            expected = sum(
                do.plaintext[report.round]
                for do in dos
                if do.account in members
                and market.status(task, report.round, do.account) >= STATUS_SUBMITTED
            )
            exact = exact and bool(np.array_equal(ring_sum, expected))
    credited, withdrawn = payments(market, task, [do.account for do in dos])
    return RunReport(
        chain=chain.name,
        dos=scenario.dos,
        rounds=scenario.rounds,
        groups=market.group_count(task),
        d=config.d - 1,
        accuracy_before=[r.accuracy_before for r in reports],
        accuracy_after=[r.accuracy_after for r in reports],
        gas=gas.per_phase,
        gas_by_round=gas.by_round,
        gas_per_param_submit=gas.submit_per_param,
        chain_seconds=sum(r.seconds for r in market.receipts),
        wall_seconds=wall,
        credited_wei=credited,
        withdrawn_wei=withdrawn,
        refunded_wei=mo.refunded_wei,
        dropped=[do.account for do in dos if do.settings.drop_at is not None],
        aggregate_exact=exact and any(r.aggregates for r in reports),
        rule=scenario.rule,
        task=scenario.task,
    )


def demo(
    scenario: Scenario,
    *,
    chain_kind: str = "boa",
    report_path: Path | None = None,
    plot_path: Path | None = None,
    state_dir: Path | None = None,
    console: Console | None = None,
    collect_grace: float = COLLECT_GRACE,
) -> RunReport:
    """Run one market end to end and print/write its report. On RunError the report is still
    printed if the model owner finished (what the chain says was paid), nothing is written."""
    console = console or Console()
    use_threads(1)
    run = functools.partial(run_market, console=console, collect_grace=collect_grace)
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        chain = stack.enter_context(open_chain(chain_kind))
        try:
            report = trio.run(run, scenario, chain, state_dir)
        except RunError as error:
            if error.report is not None:
                print_report(error.report, console)
            raise
    print_report(report, console)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(report.to_json())
        console.print(f"report written to {report_path}")
    if plot_path is not None:
        plot_report(report, plot_path)
        console.print(f"plot written to {plot_path}")
    return report
