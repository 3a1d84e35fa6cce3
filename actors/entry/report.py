"""What a market run reports: a table on the console, a JSON file and a PNG plot.

Gas comes from chain data alone (every mined transaction to the market), so the same report
works for the in-process demo and for a swarm of separate processes on a node.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from actors.chain.base import TxRecord

if TYPE_CHECKING:
    from actors.chain.market import Market


@dataclass
class RunReport:
    """One run of the market, in the shape of `--report` JSON (keys as documented in README)."""

    chain: str
    dos: int
    rounds: int
    groups: int
    d: int
    accuracy_before: list[float] = field(default_factory=list)
    accuracy_after: list[float] = field(default_factory=list)
    gas: dict[str, int] = field(default_factory=dict)
    gas_by_round: list[int] = field(default_factory=list)
    gas_per_param_submit: float = 0.0
    chain_seconds: float = 0.0
    wall_seconds: float = 0.0
    # a one-process run's rounds end to end: from the market's start to round 0's aggregate
    # applied, then from each round's aggregate applied to the next one's (seconds)
    round_seconds: list[float] = field(default_factory=list)
    # per data owner, from chain data: rewards the market credited it in this task, and what
    # it withdrew (rewards and bond); one credited but never withdrawn shows both apart
    credited_wei: dict[str, int] = field(default_factory=dict)
    withdrawn_wei: dict[str, int] = field(default_factory=dict)
    refunded_wei: int = 0
    dropped: list[str] = field(default_factory=list)
    aggregate_exact: bool | None = None
    rule: str = "mean"
    # processes of a swarm (`actors.measure.memory.MemoryPeak.summary`); empty for a one-process run
    memory: dict[str, int | str] = field(default_factory=dict)
    # a spec run: the spec file, and the ceiling: the same network trained centrally on the union
    # of the data owners' data with the same recipe (`recipe.train_central`), same test data
    task: str | None = None
    accuracy_central: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


# the entry points that carry masked updates: words in events, or blobs (their blob gas is apart)
SUBMIT_FUNCTIONS = ("submit", "submit_blobs")


def payments(market: Market, task: int, accounts: Sequence[str]) -> tuple[dict, dict]:
    """What each data owner was credited in `task` (the market's `Credited` events: rewards) and
    what it withdrew from the market (`Withdrawn`: rewards and bond), from chain data alone."""
    credited = dict.fromkeys(accounts, 0)
    withdrawn = dict.fromkeys(accounts, 0)
    by_lower = {a.lower(): a for a in accounts}
    for event in market.chain.events(market.address, "Credited", filters={"task": task}):
        who = by_lower.get(event.args["account"].lower())
        if who is not None:
            credited[who] += event.args["amount"]
    for event in market.chain.events(market.address, "Withdrawn"):
        who = by_lower.get(event.args["account"].lower())
        if who is not None:
            withdrawn[who] += event.args["amount"]
    return credited, withdrawn


@dataclass(frozen=True, slots=True)
class GasSummary:
    per_phase: dict[str, int]  # entry point -> gas, plus "total"
    by_round: list[int]
    submit_per_param: float


def summarize_gas(txs: Sequence[TxRecord], params: int) -> GasSummary:
    """Gas per entry point and per round, and masked-submission gas per DO per parameter.

    A transaction without a `round` argument (registration, `advance`, withdrawals) counts
    towards the round most recently named before it.
    """
    per_phase: dict[str, int] = defaultdict(int)
    by_round: dict[int, int] = defaultdict(int)
    submissions: set[tuple[str, int]] = set()
    current = 0
    for tx in txs:
        per_phase[tx.function] += tx.gas_used
        current = tx.args.get("round", current)
        by_round[current] += tx.gas_used
        if tx.function in SUBMIT_FUNCTIONS and tx.success:
            submissions.add((tx.sender, current))
    submit_gas = sum(per_phase.get(f, 0) for f in SUBMIT_FUNCTIONS)
    per_param = submit_gas / (len(submissions) * params) if submissions else 0.0
    rounds = max(by_round, default=-1) + 1
    return GasSummary(
        per_phase=dict(per_phase) | {"total": sum(per_phase.values())},
        by_round=[by_round.get(r, 0) for r in range(rounds)],
        submit_per_param=per_param,
    )


def payment_line(report: RunReport) -> str:
    """What the data owners were paid, from chain data: one sum when every data owner withdrew
    what it was credited, else the credited and the withdrawn apart, with who has not withdrawn.
    (Withdrawals also carry bonds: a data owner withdrew its credit when it withdrew as much.)"""
    credited = sum(report.credited_wei.values())
    withdrawn = sum(report.withdrawn_wei.values())
    owed = {a: c for a, c in report.credited_wei.items() if c}
    short = [a for a, c in owed.items() if report.withdrawn_wei.get(a, 0) < c]
    if not short and withdrawn == credited:
        return f"paid {credited / 1e18:.4f} ETH to {len(owed)} data owners (credited, withdrawn)"
    line = (
        f"credited {credited / 1e18:.4f} ETH to {len(owed)} data owners, "
        f"{withdrawn / 1e18:.4f} ETH withdrawn"
    )
    if short:
        left = sum(owed[a] - report.withdrawn_wei.get(a, 0) for a in short)
        line += f" ({len(short)} have not withdrawn {left / 1e18:.4f} ETH credited)"
    return line


def print_report(report: RunReport, console: Console | None = None) -> None:
    console = console or Console()
    rounds = Table(
        title=f"OmniLytics on {report.chain}: {report.dos} data owners, "
        f"{report.groups} groups, d = {report.d:,}"
        + (f", task {Path(report.task).name}" if report.task else "")
    )
    rounds.add_column("round", justify="right")
    rounds.add_column("MO accuracy before", justify="right")
    rounds.add_column("after", justify="right")
    central = report.accuracy_central
    if central is not None:
        rounds.add_column("central (ceiling)", justify="right")
    rounds.add_column("gas", justify="right")
    pairs = zip(report.accuracy_before, report.accuracy_after, strict=True)
    for r, (before, after) in enumerate(pairs):
        gas = report.gas_by_round[r] if r < len(report.gas_by_round) else 0
        ceiling = [] if central is None else [f"{central:.1%}"]
        rounds.add_row(
            str(r + 1), f"{before:.1%}", f"[bold]{after:.1%}[/bold]", *ceiling, f"{gas:,}"
        )
    console.print(rounds)

    note = " (embedded EVM: indicative, quote anvil's)" if report.chain == "boa" else ""
    gas = Table(title=f"gas by entry point, from chain data{note}")
    gas.add_column("entry point")
    gas.add_column("gas", justify="right")
    for name, used in sorted(report.gas.items(), key=lambda kv: -kv[1]):
        gas.add_row(name, f"{used:,}")
    console.print(gas)
    if "commit_update" in report.gas and not report.gas_per_param_submit:
        # the direct path: a digest on-chain, the words over the model owner's channel
        submit = f"{report.gas['commit_update'] // max(1, report.dos * report.rounds):,} gas"
        submit = f"submit: digest only, {submit} per data owner per round"
    else:
        submit = f"submit: {report.gas_per_param_submit:.1f} gas per parameter per data owner"
    console.print(
        f"{submit} · "
        f"chain time {report.chain_seconds:.2f} s of {report.wall_seconds:.1f} s wall · "
        f"{payment_line(report)} · refunded {report.refunded_wei / 1e18:.4f} ETH · "
        f"dropped {len(report.dropped)}"
    )
    if report.memory:
        m, mib = report.memory, 2**20
        load = Table(title="the swarm's processes (sampled from /proc)")
        load.add_column("measure")
        load.add_column("value", justify="right")
        load.add_row("wall time", f"{report.wall_seconds:,.1f} s")
        load.add_row(
            f"peak summed RSS ({m['peak_processes']} processes)",
            f"{m['peak_total_rss_bytes'] / mib:,.0f} MiB",
        )
        load.add_row(
            "peak summed PSS (shared pages split)", f"{m['peak_total_pss_bytes'] / mib:,.0f} MiB"
        )
        load.add_row(
            f"largest process ({m['largest_process']}, peak RSS)",
            f"{m['largest_process_rss_bytes'] / mib:,.0f} MiB",
        )
        console.print(load)
    if report.aggregate_exact is not None:
        verdict = "[green]exact[/green]" if report.aggregate_exact else "[red]WRONG[/red]"
        console.print(f"recovered group aggregates vs plaintext ring sums: {verdict}")


def plot_report(report: RunReport, path: Path) -> None:
    """Accuracy and gas per round, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = list(range(1, len(report.accuracy_after) + 1))
    fig, (acc, gas) = plt.subplots(1, 2, figsize=(9, 3.5))
    alone = report.accuracy_before[0] if report.accuracy_before else 0.0
    acc.plot([0, *rounds], [alone, *report.accuracy_after], marker="o", label="model owner")
    if report.accuracy_central is not None:
        acc.axhline(report.accuracy_central, linestyle="--", color="grey", label="central")
        acc.legend(loc="lower right")
    acc.set_xticks([0, *rounds], ["alone", *(str(r) for r in rounds)])
    acc.set_xlabel("round")
    acc.set_ylabel("model owner test accuracy")
    acc.set_ylim(0, 1)
    acc.grid(alpha=0.3)
    gas.bar(rounds, [g / 1e6 for g in report.gas_by_round[: len(rounds)]], width=0.5)
    gas.set_xticks(rounds)
    gas.set_xlabel("round")
    gas.set_xlim(0.25, len(rounds) + 0.75)
    gas.set_ylabel("gas, millions" + (" (embedded EVM)" if report.chain == "boa" else ""))
    gas.grid(alpha=0.3, axis="y")
    task = f", task {Path(report.task).stem}" if report.task else ""
    fig.suptitle(f"OmniLytics: {report.dos} data owners on {report.chain}{task}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
