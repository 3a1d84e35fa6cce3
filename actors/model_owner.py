"""The model owner actor: escrows the reward, publishes the public model, drives the phases,
recovers each group's aggregate from chain data, combines them robustly, and opens the next round.

Its private head never leaves its `OwnerLearner`; what it publishes is the public part plus the
public auxiliary head. It calls `advance` as soon as a phase is complete (or its deadline passed);
anyone could, so a model owner that stops driving cannot stall the data owners.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import trio

from actors.aggregation import recover_round
from actors.chain.aio import on_chain
from actors.chain.base import TransactionReverted
from actors.market import ETH, Market, TaskConfig
from protocol.commitments import published_model_digest
from protocol.constants import (
    DATA_PATH_EVENT,
    PHASE_CANCELLED,
    PHASE_ENDED,
    PHASE_REGISTER,
    PHASE_ROUND_DONE,
    PHASE_SETTLE,
    PHASE_SHARE,
    PHASE_SUBMIT,
    PHASE_UNMASK,
)
from protocol.encoding import QuantConfig, check_headroom
from protocol.errors import ConfigError, RecoveryError
from protocol.robust import CombinationRule, get_rule
from protocol.weighting import WeightedMean, check_count_headroom, decode_weighted

log = logging.getLogger("omnilytics.mo")

Observer = Callable[..., None]


class OwnerLearner(Protocol):
    """The model owner's side of learning: its private head stays in here."""

    def public_size(self) -> int:
        """P: the number of public parameters a data owner trains (aux head included)."""
        ...

    def model_bytes(self) -> bytes:
        """The current public model (public part + auxiliary head) as published bytes."""
        ...

    def reference_update(self) -> np.ndarray:
        """An update of the public part on the model owner's own data (the trust reference)."""
        ...

    def apply(self, update: np.ndarray) -> None:
        """Apply a combined update to the public part and fine-tune the private head."""
        ...

    def accuracy(self) -> float:
        """Test accuracy of the public part under the private head."""
        ...


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """What the model owner asks for; becomes the on-chain `TaskConfig`."""

    max_dos: int
    min_dos: int
    group_size: int
    threshold: int
    rounds: int = 1
    reward_per_do: int = 10**16
    bond: int = 0
    token: str = ETH
    lane_bits: int = 32
    scale_bits: int = 16
    clip_norm: float = 4.0
    sample_cap: int = 2_000
    register_duration: int = 600
    share_duration: int = 120
    submit_duration: int = 300
    unmask_duration: int = 120
    rule: str = "mean"
    data_path: int = DATA_PATH_EVENT  # DATA_PATH_BLOB: updates as EIP-4844 blobs (needs a node)

    @property
    def quant(self) -> QuantConfig:
        return QuantConfig(self.lane_bits, self.scale_bits, self.clip_norm)


@dataclass
class RoundReport:
    """What one round did, for the console, the JSON report and the plots."""

    round: int
    accuracy_before: float
    accuracy_after: float = 0.0
    groups: int = 0
    finalized_groups: int = 0
    submitters: int = 0
    samples: int = 0
    failed_groups: list[int] = field(default_factory=list)
    recovery_errors: dict[int, str] = field(default_factory=dict)
    aggregates: dict[int, np.ndarray] = field(default_factory=dict)  # ring sums, for checks
    chain_seconds: float = 0.0


class ModelOwner:
    """One model owner running one task."""

    def __init__(
        self,
        market: Market,
        account: str,
        learner: OwnerLearner,
        plan: TaskPlan,
        *,
        poll_interval: float = 0.05,
        observe: Observer | None = None,
    ) -> None:
        self.market = market
        self.account = account
        self.learner = learner
        self.plan = plan
        self.poll_interval = poll_interval
        self._observe = observe or (lambda *args, **kwargs: None)
        self.task: int | None = None
        self.config: TaskConfig | None = None
        self.reports: list[RoundReport] = []
        self.refunded_wei = 0
        rule_from_spec(plan.rule)  # a misspelt rule fails here, not after a whole round
        check_headroom(plan.quant, 2 * plan.group_size - 1)
        check_count_headroom(plan.quant, 2 * plan.group_size - 1, plan.sample_cap)

    def _chain(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return on_chain(self.market.chain, fn, *args, **kwargs)

    def observe(self, what: str, **fields: Any) -> None:
        self._observe("mo", self.account, what, **fields)

    # -- setting the task up -------------------------------------------------------------

    async def create_task(self) -> int:
        """Escrow the reward and publish the round-0 model; return the task id."""
        plan = self.plan
        model = self.learner.model_bytes()
        config = TaskConfig(
            model_hash=published_model_digest(model),
            d=self.learner.public_size() + 1,  # + the sample-count lane
            lane_bits=plan.lane_bits,
            scale_bits=plan.scale_bits,
            clip_norm_micro=round(plan.clip_norm * 1e6),
            rounds=plan.rounds,
            max_dos=plan.max_dos,
            min_dos=plan.min_dos,
            group_size=plan.group_size,
            threshold=plan.threshold,
            reward_per_do=plan.reward_per_do,
            bond=plan.bond,
            token=plan.token,
            register_duration=plan.register_duration,
            share_duration=plan.share_duration,
            submit_duration=plan.submit_duration,
            unmask_duration=plan.unmask_duration,
            data_path=plan.data_path,
        )
        self.task, _ = await self._chain(self.market.create_task, config, self.account)
        self.config = config
        await self._chain(self.market.publish_model, self.task, 0, model, self.account)
        self.observe("task_created", task=self.task, escrow=config.escrow, d=config.d)
        return self.task

    # -- driving the task ----------------------------------------------------------------

    async def run(self) -> list[RoundReport]:
        """Drive every round to its end; return what each round did."""
        if self.task is None:
            await self.create_task()
        task = self.task
        await self._drive(PHASE_REGISTER, 0, self._registration_full)
        if (await self._chain(self.market.phase, task)).phase == PHASE_CANCELLED:
            self.observe("cancelled")
            await self._collect()
            return self.reports
        groups = await self._chain(self.market.group_count, task)
        self.observe("groups_fixed", groups=groups)
        for number in range(self.plan.rounds):
            report = RoundReport(
                round=number, accuracy_before=self.learner.accuracy(), groups=groups
            )
            self.reports.append(report)
            await self._drive(PHASE_SHARE, number, self._all_committed)
            await self._drive(PHASE_SETTLE, number, self._all_settled)
            await self._drive(PHASE_SUBMIT, number, self._all_submitted)
            await self._drive(PHASE_UNMASK, number, None)
            await self._aggregate(report)
            report.accuracy_after = await trio.to_thread.run_sync(self.learner.accuracy)
            self.observe(
                "round_done",
                round=number,
                accuracy_before=report.accuracy_before,
                accuracy_after=report.accuracy_after,
                finalized=report.finalized_groups,
            )
            if number + 1 < self.plan.rounds:
                await self._open_next(number + 1)
        await self._collect()
        return self.reports

    async def _drive(self, phase: int, number: int, complete: Callable[[], bool] | None) -> None:
        """Wait until the task leaves `phase` of round `number`, advancing it when we may."""
        task = self.task
        self.observe("phase", round=number, phase=phase)
        while True:
            info = await self._chain(self.market.phase, task)
            if (info.phase, info.round) != (phase, number):
                return
            now = await self._chain(self.market.chain.timestamp)
            ready = now >= info.deadline or (complete is not None and await self._chain(complete))
            if ready:
                try:
                    await self._chain(self.market.advance, task, self.account)
                    continue
                except TransactionReverted as error:
                    log.info("advance not yet possible: %s", error.reason)
            await trio.sleep(self.poll_interval)

    def _registration_full(self) -> bool:
        return self.market.member_count(self.task) == self.plan.max_dos

    def _all_committed(self) -> bool:
        info = self.market.phase(self.task)
        committed = self.market.round_committed(self.task, info.round)
        return committed == self.market.member_count(self.task)

    def _all_settled(self) -> bool:
        info = self.market.phase(self.task)
        settled = self.market.round_settled(self.task, info.round)
        if settled != self.market.round_committed(self.task, info.round):
            return False
        return self.market.round_open_complaints(self.task, info.round) == 0

    def _all_submitted(self) -> bool:
        info = self.market.phase(self.task)
        submitted = self.market.round_submitted(self.task, info.round)
        return submitted == self.market.round_committed(self.task, info.round)

    # -- the aggregate -------------------------------------------------------------------

    async def _aggregate(self, report: RoundReport) -> None:
        """Recover every finalized group's weighted mean and apply their robust combination."""
        means = await self._chain(self._recover_round, report)
        if not means:
            self.observe("no_aggregate", round=report.round)
            return
        rule = rule_from_spec(self.plan.rule)
        updates = np.stack([m.update for m in means])
        weights = np.array([m.samples for m in means], dtype=np.float64)
        reference = await trio.to_thread.run_sync(self.learner.reference_update)
        combined = rule.combine(updates, weights=weights, reference=reference)
        await trio.to_thread.run_sync(self.learner.apply, combined)

    def _recover_round(self, report: RoundReport) -> list[WeightedMean]:
        config = self.config or self.market.config(self.task)
        quant = QuantConfig(config.lane_bits, config.scale_bits, config.clip_norm)
        recovered = recover_round(self.market, self.task, report.round)
        report.failed_groups = recovered.failed
        report.recovery_errors = dict(recovered.errors)
        for group, error in recovered.errors.items():
            log.error("group %d of round %d: no aggregate: %s", group, report.round, error)
        means = []
        for group, aggregate in sorted(recovered.aggregates.items()):
            try:
                mean = decode_weighted(aggregate.ring_sum, cap=self.plan.sample_cap, quant=quant)
            except RecoveryError as error:
                report.recovery_errors[group] = str(error)
                continue
            report.finalized_groups += 1
            report.submitters += len(aggregate.submitters)
            report.samples += mean.samples
            report.aggregates[group] = aggregate.ring_sum
            means.append(mean)
        return means

    async def _open_next(self, number: int) -> None:
        model = await trio.to_thread.run_sync(self.learner.model_bytes)
        digest = await self._chain(
            self.market.publish_model, self.task, number, model, self.account
        )
        await self._chain(self.market.open_round, self.task, number, digest, self.account)
        self.observe("round_opened", round=number)

    async def _collect(self) -> None:
        """Take back the escrow no data owner is owed (empty slots, failed groups)."""
        info = await self._chain(self.market.phase, self.task)
        if info.phase not in (PHASE_ENDED, PHASE_CANCELLED, PHASE_ROUND_DONE):
            return
        if await self._chain(self.market.reclaimable, self.task):
            await self._chain(self.market.reclaim, self.task, self.account)
        token = self.plan.token
        owed = await self._chain(self.market.credits, self.account, token)
        if owed:
            await self._chain(self.market.withdraw, self.account, token)
            self.refunded_wei += owed
            self.observe("refunded", amount=owed)


def rule_from_spec(spec: str) -> CombinationRule:
    """A combination rule from `name` or `name:key=value,...` (e.g. `fltrust:norm=median`)."""
    name, _, params = spec.partition(":")
    kwargs: dict[str, object] = {}
    for item in filter(None, params.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"rule parameter {item!r}: use key=value")
        kwargs[key.strip()] = _number_or_text(value.strip())
    return get_rule(name.strip(), **kwargs)


def _number_or_text(value: str) -> object:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value
