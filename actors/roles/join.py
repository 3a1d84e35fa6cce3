"""A data owner deciding to join a task: the spec from chain data, its own files against it.

This module owns everything a data owner checks about a task's spec before it stakes a bond
(DESIGN.md §8): the spec's canonical bytes come from the task's `TaskSpec` event alone, checked
against the config's `spec_hash` (`Market.task_spec`) and decoded strictly
(`protocol.spec.decode_canonical`); the on-chain config must say what the spec says (the sample
cap that weights the secure sum, the public model's size, the quantization, the terms), so a
model owner cannot publish one sample cap and configure another; and the data owner's own files
must fit the spec's schema (`adapters.read_data`). Any refusal is a `JoinRefused` whose message
names the task, the field or the file, and the rule, in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from actors.chain.market import Market, PhaseInfo, TaskConfig
from actors.learning.adapters import DataError, read_data
from actors.learning.spec_learners import SpecDataOwner
from protocol.constants import Phase
from protocol.errors import RemoteProtocolError
from protocol.spec import SpecError, TaskSpec, decode_canonical, infer_shapes


class JoinRefused(Exception):
    """A task this data owner will not join, or data it cannot join with: one line."""


@dataclass(frozen=True, slots=True)
class TaskTerms:
    """A task as a data owner reads it from the chain: its spec and its config."""

    task: int
    spec: TaskSpec
    config: TaskConfig


def config_mismatches(spec: TaskSpec, config: TaskConfig) -> list[tuple[str, object, object]]:
    """Every (spec field, the spec's value, the config's value) that disagree."""
    m = spec.market
    d = infer_shapes(spec).public_params + 1  # + the sample-count lane
    pairs = [
        ("data.max_samples (the sample cap)", spec.data.max_samples, config.sample_cap),
        ("model (public parameters + the count lane)", d, config.d),
        ("market.lane_bits", m.lane_bits, config.lane_bits),
        ("market.scale_bits", m.scale_bits, config.scale_bits),
        ("market.clip_norm (micro)", round(m.clip_norm * 1e6), config.clip_norm_micro),
        ("market.rounds", m.rounds, config.rounds),
        ("market.max_dos", m.max_dos, config.max_dos),
        ("market.min_dos", m.min_dos, config.min_dos),
        ("market.group_size", m.group_size, config.group_size),
        ("market.threshold", m.threshold, config.threshold),
        ("market.reward_wei", m.reward_wei, config.reward_per_do),
        ("market.bond_wei", m.bond_wei, config.bond),
        ("market.register_duration", m.register_duration, config.register_duration),
        ("market.share_duration", m.share_duration, config.share_duration),
        ("market.submit_duration", m.submit_duration, config.submit_duration),
        ("market.unmask_duration", m.unmask_duration, config.unmask_duration),
        ("market.data_path", m.data_path_id, config.data_path),
    ]  # fmt: skip
    return [(name, ours, theirs) for name, ours, theirs in pairs if ours != theirs]


def check_seat(market: Market, task: int, account: str) -> None:
    """Refuse a task that does not exist, is past registration or is full, unless `account`
    is one of its data owners already (a restart resumes it)."""
    count = market.task_count()
    if not 0 < task <= count:
        raise JoinRefused(f"task {task} does not exist (the market has {count} tasks)")
    phase, members, registered = market.views(
        [
            ("task_phase_of", (task,)),
            ("member_count", (task,)),
            ("is_registered", (task, account)),
        ]
    )
    if registered:
        return
    info = PhaseInfo(*phase)
    if info.phase != Phase.REGISTER:
        name = Phase(info.phase).name if info.phase in set(Phase) else str(info.phase)
        raise JoinRefused(f"task {task} is past registration: it is in phase {name}")
    max_dos = market.config(task).max_dos
    if members >= max_dos:
        raise JoinRefused(f"task {task} is full: {members} of {max_dos} data owners registered")
    if info.deadline <= market.chain.timestamp():
        raise JoinRefused(f"task {task}'s registration closed at {info.deadline}")


def read_terms(market: Market, task: int) -> TaskTerms:
    """The task's spec from chain data alone, checked, and its config, checked against it."""
    config = market.config(task)
    try:
        raw = market.task_spec(task, config.spec_hash)
    except RemoteProtocolError as error:
        raise JoinRefused(f"task {task}: {error}") from None
    if not raw:
        raise JoinRefused(f"task {task} publishes no task spec: there is nothing to train")
    try:
        spec = decode_canonical(raw)
    except SpecError as error:
        raise JoinRefused(f"task {task}: spec field {error}") from None
    wrong = config_mismatches(spec, config)
    if wrong:
        name, ours, theirs = wrong[0]
        raise JoinRefused(f"task {task}: {name}: the spec says {ours}, the task config {theirs}")
    return TaskTerms(task, spec, config)


def spec_learner(terms: TaskTerms, data: Path, *, seed: int) -> SpecDataOwner:
    """The data owner's learner on its own files, refused unless they fit the spec."""
    try:
        samples = read_data(terms.spec, data)
    except DataError as error:
        raise JoinRefused(f"task {terms.task}: data {error}") from None
    return SpecDataOwner(terms.spec, samples, seed=seed)
