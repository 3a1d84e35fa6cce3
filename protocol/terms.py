"""Whether a data owner should join a task: the terms it checks before it stakes a bond.

This module owns a data owner's refusal of hostile or impossible task terms (``docs/interfaces.md``
§7). The market contract enforces its own floor (every phase at least ``MIN_DURATION`` seconds,
``2 <= t <= m``), but a data owner may meet a market it did not deploy, and its own needs are
larger than the floor: a SUBMIT phase shorter than its training cannot be met, whatever the
contract allows. A task is refused, before any transaction, when:

- a phase is shorter than the data owner's floor for it (a phase it cannot act in forfeits its
  bond to the model owner);
- the Shamir threshold is below 2 (every holder would hold a secret outright) or above the
  group size;
- the bond is out of proportion to the reward: more than ``max_bond_rounds`` rounds of reward
  (by default the whole task's reward for one data owner: never stake more than the task can
  pay);
- the reward is zero.

The config is read by attribute (``actors.chain.market.TaskConfig`` has them all), so this
module stays free of the actors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from protocol.constants import MIN_DURATION
from protocol.errors import ConfigError


class Terms(Protocol):
    """The task-config fields the check reads."""

    rounds: int
    group_size: int
    threshold: int
    reward_per_do: int
    bond: int
    register_duration: int
    share_duration: int
    submit_duration: int
    unmask_duration: int


class HostileTerms(ConfigError):
    """Task terms a data owner refuses; ``field`` and ``rule`` name what broke."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


@dataclass(frozen=True, slots=True)
class JoinPolicy:
    """A data owner's floors and ceilings for the tasks it joins."""

    min_phase_seconds: int = MIN_DURATION
    # SUBMIT holds the local training and the update's transactions: the longest need of all
    min_submit_seconds: int = MIN_DURATION
    # the most bond a data owner stakes, in rounds of reward (None: the task's round count)
    max_bond_rounds: int | None = None
    # a direct task: the least challenge fee that pays for posting our update on-chain
    min_challenge_fee: int = 1


def check_challenge_fee(fee: int, policy: JoinPolicy | None = None) -> None:
    """Raise ``HostileTerms`` for a direct task whose challenge fee is below our floor: the fee
    is what answering a challenge on-chain earns."""
    policy = policy or JoinPolicy()
    if fee < policy.min_challenge_fee:
        raise HostileTerms(
            "challenge_fee", f"{fee} wei < the {policy.min_challenge_fee} wei this data owner needs"
        )


def check_terms(config: Terms, policy: JoinPolicy | None = None) -> None:
    """Raise ``HostileTerms`` for the first term a data owner with ``policy`` must refuse."""
    policy = policy or JoinPolicy()
    if config.reward_per_do <= 0:
        raise HostileTerms("reward_per_do", "a task that pays nothing")
    if config.threshold < 2:
        raise HostileTerms(
            "threshold", f"t = {config.threshold} < 2 hands every holder the secrets outright"
        )
    if config.threshold > config.group_size:
        raise HostileTerms("threshold", f"t = {config.threshold} > group size {config.group_size}")
    floors = {
        "register_duration": policy.min_phase_seconds,
        "share_duration": policy.min_phase_seconds,
        "submit_duration": max(policy.min_phase_seconds, policy.min_submit_seconds),
        "unmask_duration": policy.min_phase_seconds,
    }
    for field, floor in floors.items():
        seconds = getattr(config, field)
        if seconds < floor:
            raise HostileTerms(field, f"{seconds} s < the {floor} s this data owner needs")
    rounds = config.rounds if policy.max_bond_rounds is None else policy.max_bond_rounds
    ceiling = rounds * config.reward_per_do
    if config.bond > ceiling:
        raise HostileTerms(
            "bond", f"{config.bond} > {rounds} rounds of reward ({ceiling}): out of proportion"
        )
