"""`omnilytics tasks`: a market's open tasks, from chain data alone.

What a data owner reads before it decides to join: for each task its terms (reward per data
owner per round, rounds, seats left, bond), its phase and deadline, and from the spec it
published (read back from its `TaskSpec` event, checked against the config's hash, decoded
strictly by protocol.spec) the model's layers and parameter counts and the data schema. A task
is open while it registers, has a seat left and its registration deadline has not passed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from actors.entry.home import one_line_errors
from actors.entry.networks import connect, get_network, market_address, open_market
from protocol.constants import Phase

if TYPE_CHECKING:
    from actors.chain.market import Market
    from protocol.spec import TaskSpec

# the token address that means ether (actors.chain.market.ETH; that module loads the compiler)
_ETH = "0x" + "00" * 20


@dataclass(frozen=True, slots=True)
class SpecSummary:
    """What a task's published spec says about its model and data."""

    layers: int
    public_params: int  # the public body and the public auxiliary head
    private_params: int  # the model owner's private head, which never leaves it
    data: str


@dataclass(frozen=True, slots=True)
class TaskListing:
    task: int
    owner: str
    phase: str
    round: int
    deadline: int
    now: int
    rounds: int
    reward_per_do: int
    bond: int
    token: str
    members: int
    max_dos: int
    group_size: int
    threshold: int
    spec: SpecSummary | None
    spec_problem: str | None  # why a published spec could not be read

    @property
    def seats_left(self) -> int:
        return max(self.max_dos - self.members, 0)

    @property
    def open(self) -> bool:
        registering = self.phase == Phase.REGISTER.name
        return registering and self.seats_left > 0 and self.deadline > self.now


def _data_schema(spec: TaskSpec) -> str:
    data = spec.data
    labels = f"{data.classes} classes" if data.classes else "regression"
    shape = "x".join(map(str, data.shape))
    return (
        f"{data.kind} {shape} {data.dtype}, label {data.label!r}, {labels}, "
        f"{data.min_samples:,}+ samples (counted up to {data.max_samples:,})"
    )


def summarize(spec_bytes: bytes) -> SpecSummary:
    """The model and data summary of canonical spec bytes (SpecError if they break a rule)."""
    from protocol.spec import decode_canonical, infer_shapes

    spec = decode_canonical(spec_bytes)
    plan = infer_shapes(spec)
    return SpecSummary(
        layers=len(spec.model.layers),
        public_params=plan.public_params,
        private_params=plan.head_params,
        data=_data_schema(spec),
    )


def read_listing(market: Market, task: int, now: int) -> TaskListing:
    """One task's listing: its views in one round trip, then its spec from its event."""
    from actors.chain.market import PhaseInfo, TaskConfig
    from protocol.errors import ConfigError, RemoteProtocolError
    from protocol.spec import NO_SPEC_HASH

    raw_config, raw_phase, members, owner = market.views(
        [
            ("task_config", (task,)),
            ("task_phase_of", (task,)),
            ("member_count", (task,)),
            ("task_owner", (task,)),
        ]
    )
    config, phase = TaskConfig.from_chain(raw_config), PhaseInfo(*raw_phase)
    spec, problem = None, None
    if config.spec_hash != NO_SPEC_HASH:
        try:
            spec = summarize(market.task_spec(task, config.spec_hash))
        except (ConfigError, RemoteProtocolError) as error:
            problem = str(error)
    return TaskListing(
        task=task,
        owner=owner,
        phase=_phase_name(phase.phase),
        round=phase.round,
        deadline=phase.deadline,
        now=now,
        rounds=config.rounds,
        reward_per_do=config.reward_per_do,
        bond=config.bond,
        token=config.token,
        members=members,
        max_dos=config.max_dos,
        group_size=config.group_size,
        threshold=config.threshold,
        spec=spec,
        spec_problem=problem,
    )


def _phase_name(value: int) -> str:
    try:
        return Phase(value).name
    except ValueError:
        return str(value)


def read_tasks(market: Market, *, every: bool = False) -> list[TaskListing]:
    """The market's open tasks (every task with `every`), newest first."""
    now = market.chain.timestamp()
    listings = [read_listing(market, t, now) for t in range(market.task_count(), 0, -1)]
    return [listing for listing in listings if every or listing.open]


def _amount(wei: int, token: str) -> str:
    if token == _ETH:
        return f"{Decimal(wei) / Decimal(10**18):f} ETH"
    return f"{wei:,} units of {token}"


def _timing(listing: TaskListing) -> str:
    if listing.phase in (Phase.ENDED.name, Phase.CANCELLED.name):
        return listing.phase
    left = listing.deadline - listing.now
    when = f"ends in {left} s" if left > 0 else "deadline passed"
    return f"{listing.phase} (round {listing.round + 1}), {when}"


def render(listings: list[TaskListing], every: bool) -> Table:
    table = Table(title=None if listings else "no open tasks" if not every else "no tasks")
    for column in ("task", "reward / DO / round", "rounds", "seats left", "bond", "phase"):
        table.add_column(column, justify="right" if column != "phase" else "left")
    table.add_column("model")
    table.add_column("data")
    for listing in listings:
        if listing.spec is not None:
            model = (
                f"{listing.spec.layers} layers, {listing.spec.public_params:,} public / "
                f"{listing.spec.private_params:,} private params"
            )
            data = listing.spec.data
        else:
            problem = listing.spec_problem
            model = data = f"spec unreadable: {problem}" if problem else "no spec"
        table.add_row(
            str(listing.task),
            _amount(listing.reward_per_do, listing.token),
            str(listing.rounds),
            f"{listing.seats_left}/{listing.max_dos}",
            _amount(listing.bond, listing.token),
            _timing(listing),
            model,
            data,
        )
    return table


def as_dict(listing: TaskListing) -> dict[str, Any]:
    return {**asdict(listing), "seats_left": listing.seats_left, "open": listing.open}


def tasks_command(
    network: Annotated[str, typer.Option(help="the network's name in omnilytics.toml")],
    every: Annotated[bool, typer.Option("--all", help="every task, not only open ones")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
) -> None:
    """A market's open tasks: terms, phase, deadline, model and data schema (chain data only)."""
    with one_line_errors():
        net = get_network(network)
        chain = connect(net)
        market = open_market(chain, market_address(net), net)
        listings = read_tasks(market, every=every)
    if as_json:
        typer.echo(json.dumps([as_dict(listing) for listing in listings]))
        return
    Console().print(render(listings, every))
