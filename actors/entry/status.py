"""`omnilytics status`: what is happening in the market, from chain data alone.

Every task with its phase and deadline, its groups and who in each has committed, submitted and
unmasked in the current round, each group's result, and what each account was credited. Needs
nothing but a chain connection and the market's address: no actor state, no secrets.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table

from actors.chain.market import Market
from protocol.constants import (
    GROUP_FAILED,
    GROUP_FINALIZED,
    PHASE_CANCELLED,
    PHASE_DRAW,
    PHASE_ENDED,
    PHASE_REGISTER,
    STATUS_COMMITTED,
    STATUS_NONE,
    STATUS_SUBMITTED,
    STATUS_UNMASKED,
    Phase,
)

PHASE_NAMES = {phase: phase.name for phase in Phase if phase != Phase.NONE}
STATUS_NAMES = {
    STATUS_NONE: "-",
    STATUS_COMMITTED: "committed",
    STATUS_SUBMITTED: "submitted",
    STATUS_UNMASKED: "unmasked",
}
RESULT_NAMES = {GROUP_FINALIZED: "finalized", GROUP_FAILED: "failed"}


@dataclass
class GroupView:
    index: int
    members: tuple[str, ...]
    statuses: dict[str, int]
    result: int
    unmasks: int


@dataclass
class TaskView:
    """One task as the chain shows it."""

    task: int
    owner: str
    phase: int
    round: int
    deadline: int
    now: int
    rounds: int
    members: int
    max_dos: int
    escrow_remaining: int
    groups: list[GroupView] = field(default_factory=list)
    credited: dict[str, int] = field(default_factory=dict)

    @property
    def phase_name(self) -> str:
        return PHASE_NAMES.get(self.phase, str(self.phase))


def read_task(market: Market, task: int) -> TaskView:
    """Everything `status` shows about one task, read from views and events."""
    info = market.phase(task)
    config = market.config(task)
    view = TaskView(
        task=task,
        owner=market.owner(task),
        phase=info.phase,
        round=info.round,
        deadline=info.deadline,
        now=market.chain.timestamp(),
        rounds=config.rounds,
        members=market.member_count(task),
        max_dos=config.max_dos,
        escrow_remaining=market.escrow_remaining(task),
    )
    if info.phase not in (PHASE_REGISTER, PHASE_DRAW, PHASE_CANCELLED):
        for g in range(market.group_count(task)):
            members = market.group_members(task, g)
            view.groups.append(
                GroupView(
                    index=g,
                    members=members,
                    statuses={m: market.status(task, info.round, m) for m in members},
                    result=market.group_result(task, info.round, g),
                    unmasks=market.unmask_count(task, info.round, g),
                )
            )
    credited: dict[str, int] = defaultdict(int)
    for event in market.chain.events(market.address, "Credited", filters={"task": task}):
        credited[event.args["account"]] += event.args["amount"]
    view.credited = dict(credited)
    return view


def read_market(market: Market, tasks: list[int] | None = None) -> list[TaskView]:
    """Every task of the market (or the ones asked for), newest first."""
    ids = tasks or list(range(market.task_count(), 0, -1))
    return [read_task(market, t) for t in ids]


def render(views: list[TaskView]) -> Group:
    """The status screen: one block per task."""
    blocks: list[Table] = []
    if not views:
        table = Table(title="no tasks in this market yet")
        blocks.append(table)
    for view in views:
        left = view.deadline - view.now
        timing = f"deadline in {left} s" if left > 0 else "deadline passed: anyone may advance"
        if view.phase in (PHASE_ENDED, PHASE_CANCELLED):
            timing = "over"
        table = Table(
            title=(
                f"task {view.task} · {view.phase_name} · round {view.round + 1}/{view.rounds} · "
                f"{view.members}/{view.max_dos} data owners · {timing} · "
                f"escrow left {view.escrow_remaining / 1e18:.4f}"
            ),
            title_justify="left",
        )
        table.add_column("group")
        table.add_column("data owner")
        table.add_column(f"round {view.round + 1}")
        table.add_column("credited (ETH)", justify="right")
        for group in view.groups:
            result = RESULT_NAMES.get(group.result, f"pending, {group.unmasks} unmasks")
            for i, member in enumerate(group.members):
                table.add_row(
                    f"{group.index} ({result})" if i == 0 else "",
                    member,
                    STATUS_NAMES.get(group.statuses[member], "?"),
                    f"{view.credited.get(member, 0) / 1e18:.4f}",
                )
        if view.owner in view.credited:
            table.add_row(
                "model owner",
                view.owner,
                "",
                f"{view.credited[view.owner] / 1e18:.4f}",
            )
        blocks.append(table)
    return Group(*blocks)
