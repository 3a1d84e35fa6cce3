"""The model owner actor: escrows the reward, publishes the public model, drives the phases,
recovers each group's aggregate from chain data, combines them robustly, and opens the next round.

Its private head never leaves its `OwnerLearner`; what it publishes is the public part plus the
public auxiliary head. It calls `advance` as soon as a phase is complete (or its deadline passed);
anyone could, so a model owner that stops driving cannot stall the data owners.

Given a `StateStore`, it saves its task, its model (public part and private head) and the rounds
it has applied, so a killed process resumes its task: it finishes publishing a model it had half
published, drives the round the chain is in, recovers and applies an aggregate it had not yet
applied, and opens the next round; it never creates a second task or publishes a model twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import numpy as np
import trio
from eth_utils import keccak

from actors.chain.aggregation import recover_round
from actors.chain.aio import on_chain
from actors.chain.base import TransactionReverted
from actors.chain.blocks import Wakeup, ring_on_blocks
from actors.chain.market import Market, TaskConfig
from actors.chain.round_view import RoundView, read_round
from actors.roles.direct_owner import DirectOwner
from actors.roles.store import StateStore
from actors.roles.task_plan import TaskPlan
from protocol.commitments import model_chunks, model_digest, published_model_digest
from protocol.constants import (
    DATA_PATH_DIRECT,
    PHASE_CANCELLED,
    PHASE_DRAW,
    PHASE_ENDED,
    PHASE_REGISTER,
    PHASE_ROUND_DONE,
    PHASE_SETTLE,
    PHASE_SHARE,
    PHASE_SUBMIT,
    PHASE_UNMASK,
)
from protocol.encoding import check_headroom
from protocol.errors import ConfigError, RecoveryError
from protocol.robust import REFERENCE_RULES, rule_from_spec
from protocol.spec import decode_canonical, infer_shapes
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
        """Apply a combined update to the public part (the next round's model)."""
        ...

    def fit_head(self) -> None:
        """Fine-tune the private head to the public part as it stands (before `accuracy`): a
        function of the public part alone, so a head saved stale is fitted again on resume."""
        ...

    def accuracy(self) -> float:
        """Test accuracy of the public part under the private head."""
        ...


class ResumableLearner(OwnerLearner, Protocol):
    """A learner whose whole model (public part and private head) a store can keep."""

    def state(self) -> bytes:
        """The model as bytes (no pickle)."""
        ...

    def restore(self, state: bytes) -> None:
        """Load the model from `state()`'s bytes."""
        ...


class ResumeError(RuntimeError):
    """The state directory does not describe a task this model owner can resume."""


class _SavedRound(msgspec.Struct, frozen=True):
    """What a round the model owner applied did (a `RoundReport` without its arrays)."""

    round: int
    accuracy_before: float
    accuracy_after: float
    groups: int
    finalized_groups: int
    submitters: int
    samples: int
    failed_groups: list[int]
    recovery_errors: dict[int, str]
    chain_seconds: float
    evaluated: bool = True  # False: applied, its head not fitted and its accuracy not measured


class _Saved(msgspec.Struct, frozen=True):
    """The model owner's progress: its task and the rounds whose aggregate it applied (its
    saved model is the one after the last of them)."""

    market: str
    task: int
    rounds: list[_SavedRound] = []
    refunded_wei: int = 0


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
    # the aggregate is applied; the private head fitted and the accuracy measured (in the
    # background, beside the next round: `ModelOwner._evaluate_beside`)
    evaluated: bool = False

    def saved(self) -> _SavedRound:
        return _SavedRound(**{f: getattr(self, f) for f in _SavedRound.__struct_fields__})

    @classmethod
    def from_saved(cls, saved: _SavedRound) -> RoundReport:
        return cls(**{f: getattr(saved, f) for f in saved.__struct_fields__})


_NS = "mo"  # the store's namespace: "progress" (msgpack `_Saved`) and "model" (learner bytes)


@dataclass(frozen=True, slots=True)
class SavedModel:
    """A model owner's saved model: for a spec learner its exported model
    (`SpecModelOwner.state`), after `rounds` applied aggregates."""

    market: str
    task: int
    rounds: int
    model: bytes


def saved_model(store: StateStore) -> SavedModel | None:
    """The task and the model a model owner's store holds, or None."""
    raw, model = store.get(_NS, "progress"), store.get(_NS, "model")
    if raw is None or model is None:
        return None
    saved = msgspec.msgpack.decode(raw, type=_Saved)
    return SavedModel(saved.market, saved.task, len(saved.rounds), model)


class ModelOwner:
    """One model owner running one task."""

    direct_type: type[DirectOwner] = DirectOwner  # a direct task's endpoint (tests subclass it)

    def __init__(
        self,
        market: Market,
        account: str,
        learner: OwnerLearner,
        plan: TaskPlan,
        *,
        poll_interval: float = 0.05,
        observe: Observer | None = None,
        store: StateStore | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """With a `store`, the learner must be a `ResumableLearner`: the model owner saves its
        progress there and `start` resumes it. On a direct task it serves its channel endpoint
        on `host:port` (0: any free port)."""
        self.market = market
        self.store = store
        self.account = account
        self.learner = learner
        self.plan = plan
        self.poll_interval = poll_interval
        self._wakeup = Wakeup()  # rung by blocks and deliveries (`actors.chain.blocks`)
        ring_on_blocks(market.chain, self._wakeup)
        self._observe = observe or (lambda *args, **kwargs: None)
        self.task: int | None = None
        self.config: TaskConfig | None = None
        self.reports: list[RoundReport] = []
        self.refunded_wei = 0
        self.host, self.port = host, port
        self.fees_back_wei = 0  # a direct task's unanswered challenges' fees, withdrawn
        self.direct: DirectOwner | None = None  # a direct task's endpoint and DELIVERY
        self._models: dict[int, bytes] = {}  # a direct task's models not served yet, by round
        # the learner's work beside the round (fitting the head, measuring accuracy): done when
        # set; the public part may change only then
        self._learner_idle = trio.Event()
        self._learner_idle.set()
        self._saving = trio.Lock()
        rule_from_spec(plan.rule)  # a misspelt rule fails here, not after a whole round
        if plan.spec:
            size = infer_shapes(decode_canonical(plan.spec)).public_params
            if learner.public_size() != size:
                raise ConfigError(
                    f"the learner's public model has {learner.public_size()} parameters, "
                    f"the spec's {size}"
                )
        check_headroom(plan.quant, 2 * plan.group_size - 1)
        check_count_headroom(plan.quant, 2 * plan.group_size - 1, plan.sample_cap)

    def _chain(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return on_chain(self.market.chain, fn, *args, **kwargs)

    def observe(self, what: str, **fields: Any) -> None:
        self._observe("mo", self.account, what, **fields)

    # -- setting the task up -------------------------------------------------------------

    async def start(self) -> int:
        """Resume the task our store holds, or create one; return the task id."""
        saved = self._load()
        if saved is None:
            return await self.create_task()
        if saved.market.lower() != self.market.address.lower():
            raise ResumeError(
                f"the state holds task {saved.task} of market {saved.market}, "
                f"not of {self.market.address}"
            )
        owner = await self._chain(self.market.owner, saved.task)
        if owner.lower() != self.account.lower():
            raise ResumeError(f"task {saved.task} belongs to {owner}, not to {self.account}")
        model = self.store.get(_NS, "model")
        if model is None:
            raise ResumeError("the state holds a task but no model")
        await trio.to_thread.run_sync(self.learner.restore, model)
        self.task = saved.task
        self.config = await self._chain(self.market.config, saved.task)
        self.reports = [RoundReport.from_saved(r) for r in saved.rounds]
        self.refunded_wei = saved.refunded_wei
        log.info("resumed task %d with %d rounds applied", self.task, len(self.reports))
        self.observe("resumed", task=self.task, applied=len(self.reports))
        if self.plan.data_path == DATA_PATH_DIRECT:
            await self._open_direct()
        if (await self._chain(self.market.phase, self.task)).phase == PHASE_REGISTER:
            # killed while publishing the round-0 model: publish what is left of it
            await self._publish(0, await trio.to_thread.run_sync(self.learner.model_bytes))
        return self.task

    async def create_task(self) -> int:
        """Escrow the reward and publish the round-0 model; return the task id."""
        plan = self.plan
        model = self.learner.model_bytes()
        config = TaskConfig(
            model_hash=published_model_digest(model),
            spec_hash=keccak(plan.spec),
            d=self.learner.public_size() + 1,  # + the sample-count lane
            lane_bits=plan.lane_bits,
            scale_bits=plan.scale_bits,
            clip_norm_micro=round(plan.clip_norm * 1e6),
            sample_cap=plan.sample_cap,
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
        self.task, _ = await self._chain(self.market.create_task, config, self.account, plan.spec)
        self.config = config
        await self._save(model=True)
        self.observe("task_created", task=self.task, escrow=config.escrow, d=config.d)
        if plan.data_path == DATA_PATH_DIRECT:
            await self._open_direct()
        await self._publish(0, model)
        return self.task

    async def _open_direct(self) -> None:
        """A direct task: bind our endpoint and set the delivery terms (REGISTER)."""
        self.direct = self.direct_type(
            self.market,
            self.account,
            self.task,
            await self._chain(self.market.update_words, self.task),
            self.plan.fee,
            host=self.host,
            port=self.port,
            store=self.store,
            poll_interval=self.poll_interval,
            observe=self.observe,
            wakeup=self._wakeup,
        )
        await self.direct.open()

    async def _publish(self, number: int, model: bytes) -> bytes:
        """Publish round `number`'s model, or what a killed predecessor left of it; return its
        digest. The chunks on chain must be the first of ours (`ResumeError` if not)."""
        if self.plan.data_path == DATA_PATH_DIRECT:
            # nothing goes on-chain but the digest, as the round's model hash: the bytes are
            # served at our endpoint
            self._models[number] = model
            if self.direct is not None:
                self.direct.serve_model(number, model)
            return published_model_digest(model)
        chunks = model_chunks(model)
        done, digest = await self._chain(self.market.publication, self.task, number)
        ours = bytes(32)
        for chunk in chunks[:done]:
            ours = model_digest(ours, chunk)
        if done > len(chunks) or ours != digest:
            raise ResumeError(f"round {number}'s model on chain is not the one this state holds")
        for index in range(done, len(chunks)):
            await self._chain(
                self.market.publish_chunk, self.task, number, chunks[index], self.account
            )
            self.observe("model_chunk", round=number, index=index, chunks=len(chunks))
        return published_model_digest(model)

    # -- what the store keeps ------------------------------------------------------------

    def _load(self) -> _Saved | None:
        if self.store is None:
            return None
        raw = self.store.get(_NS, "progress")
        return None if raw is None else msgspec.msgpack.decode(raw, type=_Saved)

    async def _save(self, *, model: bool) -> None:
        """Save the progress (and, with `model`, the learner's model) in one transaction."""
        if self.store is None:
            return
        async with self._saving:  # the round loop and the evaluation beside it both save
            progress = _Saved(
                self.market.address,
                self.task,
                [r.saved() for r in self.reports],
                self.refunded_wei,
            )
            items = {"progress": msgspec.msgpack.encode(progress)}
            if model:
                items["model"] = await trio.to_thread.run_sync(self.learner.state)
            self.store.put_many(_NS, items)

    # -- driving the task ----------------------------------------------------------------

    async def run(self) -> list[RoundReport]:
        """Drive every round to its end (from where a resumed task stands); return what each
        round did."""
        if self.task is None:
            await self.start()
        if self.plan.data_path != DATA_PATH_DIRECT:
            return await self._run()
        if self.direct is None:
            await self._open_direct()
        async with trio.open_nursery() as nursery:
            info = await self._chain(self.market.phase, self.task)
            if info.round not in self._models and len(self.reports) == info.round:
                # resumed mid-round: the learner holds this round's model
                self._models[info.round] = await trio.to_thread.run_sync(self.learner.model_bytes)
            for number, model in sorted(self._models.items()):
                self.direct.serve_model(number, model)
            await nursery.start(self.direct.serve)
            reports = await self._run()
            nursery.cancel_scope.cancel()
        return reports

    async def _run(self) -> list[RoundReport]:
        task = self.task
        await self._drive(PHASE_REGISTER, 0, self._registration_full)
        # registration closed: the groups are drawn from the closing block's hash, a block later
        await self._drive(PHASE_DRAW, 0, None)
        if (await self._chain(self.market.phase, task)).phase == PHASE_CANCELLED:
            self.observe("cancelled")
            await self._collect()
            return self.reports
        groups = await self._chain(self.market.group_count, task)
        self.observe("groups_fixed", groups=groups)
        # The model owner's own learning between rounds (fitting its private head to the new
        # public part, measuring its accuracy) runs beside the next round rather than before
        # it: the next round's model is the public part alone, so it is published as soon as
        # the aggregate is applied. The public part changes again only once that work is done.
        async with trio.open_nursery() as beside:
            for report in self.reports:
                if not report.evaluated:  # resumed between applying and evaluating
                    self._evaluate_beside(beside, report)
            for number in range(len(self.reports), self.plan.rounds):
                if number > 0 and not await self._open(number):
                    break  # the task ended before we opened this round
                report = RoundReport(round=number, accuracy_before=0.0, groups=groups)
                first = not self.reports
                if first:  # the model owner's model alone: measured beside round 0
                    self._measure_beside(beside, report)
                await self._drive(PHASE_SHARE, number, RoundView.all_committed)
                await self._drive(PHASE_SETTLE, number, RoundView.all_settled)
                await self._drive(PHASE_SUBMIT, number, self._all_submitted)
                if self.direct is not None:
                    await self.direct.run_delivery(number)
                await self._drive(PHASE_UNMASK, number, None)
                await self._learner_idle.wait()
                if not first:  # the model has not moved since the last round's evaluation
                    report.accuracy_before = self.reports[-1].accuracy_after
                await self._aggregate(report)
                self.reports.append(report)
                await self._save(model=True)
                if self.direct is not None:
                    self.direct.inbox.forget(number)
                    self._models.pop(number, None)
                self.observe("round_applied", round=number)
                self._evaluate_beside(beside, report)
            await self._learner_idle.wait()
        await self._collect()
        return self.reports

    def _measure_beside(self, nursery: trio.Nursery, report: RoundReport) -> None:
        """Measure the accuracy of the model as it stands into `report.accuracy_before`."""

        async def measure() -> None:
            report.accuracy_before = await trio.to_thread.run_sync(self.learner.accuracy)

        self._beside(nursery, measure)

    def _evaluate_beside(self, nursery: trio.Nursery, report: RoundReport) -> None:
        """Fit the private head to the applied aggregate and measure the accuracy into
        `report`; save, and tell the round is done."""

        async def evaluate() -> None:
            await trio.to_thread.run_sync(self.learner.fit_head)
            report.accuracy_after = await trio.to_thread.run_sync(self.learner.accuracy)
            report.evaluated = True
            await self._save(model=True)
            self.observe(
                "round_done",
                round=report.round,
                accuracy_before=report.accuracy_before,
                accuracy_after=report.accuracy_after,
                finalized=report.finalized_groups,
            )

        self._beside(nursery, evaluate)

    def _beside(self, nursery: trio.Nursery, work: Callable[[], Awaitable[None]]) -> None:
        idle = self._learner_idle = trio.Event()

        async def run() -> None:
            try:
                await work()
            finally:
                idle.set()

        nursery.start_soon(run)

    async def _drive(
        self, phase: int, number: int, complete: Callable[[RoundView], bool] | None
    ) -> None:
        """Wait until the task leaves `phase` of round `number`, advancing it when we may: once
        its deadline passed, or `complete` says nobody is left to wait for (one read of the
        round a poll: `actors.chain.round_view`)."""
        task = self.task
        self.observe("phase", round=number, phase=phase)
        while True:
            view = await self._chain(
                read_round, self.market, task, number, counts=complete is not None
            )
            info = view.info
            if (info.phase, info.round) != (phase, number):
                return
            if view.now >= info.deadline or (complete is not None and complete(view)):
                try:
                    await self._chain(self.market.advance, task, self.account)
                    continue
                except TransactionReverted as error:
                    log.info("advance not yet possible: %s", error.reason)
            await self._wakeup.wait(self.poll_interval)

    def _registration_full(self, view: RoundView) -> bool:
        return view.counts["member_count"] == self.plan.max_dos

    def _all_submitted(self, view: RoundView) -> bool:
        # exposed dealers (they answered a complaint) may not submit: nobody waits for them
        counts = view.counts
        if counts["round_submitted"] + counts["round_exposed"] != counts["round_committed"]:
            return False
        # a direct task's SUBMIT waits for the words of every submitter too (or its deadline)
        return self.direct is None or self.direct.delivered_all(
            counts["round_submitted"], view.round
        )

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
        reference = None  # the model owner's own training, for a rule that reads it
        if rule.name in REFERENCE_RULES:
            reference = await trio.to_thread.run_sync(self.learner.reference_update)
        combined = rule.combine(updates, weights=weights, reference=reference)
        await trio.to_thread.run_sync(self.learner.apply, combined)

    def _recover_round(self, report: RoundReport) -> list[WeightedMean]:
        config = self.config or self.market.config(self.task)
        delivered = None if self.direct is None else self.direct.updates(report.round)
        recovered = recover_round(self.market, self.task, report.round, delivered)
        report.failed_groups = recovered.failed
        report.recovery_errors = dict(recovered.errors)
        for group, error in recovered.errors.items():
            log.error("group %d of round %d: no aggregate: %s", group, report.round, error)
        means = []
        for group, aggregate in sorted(recovered.aggregates.items()):
            try:
                mean = decode_weighted(
                    aggregate.ring_sum, cap=config.sample_cap, quant=config.quant
                )
            except RecoveryError as error:
                report.recovery_errors[group] = str(error)
                continue
            report.finalized_groups += 1
            report.submitters += len(aggregate.submitters)
            report.samples += mean.samples
            report.aggregates[group] = aggregate.ring_sum
            means.append(mean)
        return means

    async def _open(self, number: int) -> bool:
        """Open round `number` on the model we hold, unless it is open already; False if the
        task ended first (its window to open passed while we were away)."""
        info = await self._chain(self.market.phase, self.task)
        if info.round >= number:
            return True
        if info.phase != PHASE_ROUND_DONE:
            return False
        model = await trio.to_thread.run_sync(self.learner.model_bytes)
        digest = await self._publish(number, model)
        await self._chain(self.market.open_round, self.task, number, digest, self.account)
        self.observe("round_opened", round=number)
        return True

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
            await self._save(model=False)
            self.observe("refunded", amount=owed)
        if self.plan.data_path == DATA_PATH_DIRECT:
            # the fees of challenges nobody answered come back to us
            fees = await self._chain(self.market.desk_credits, self.account, token)
            if fees:
                await self._chain(self.market.withdraw_desk, self.account, token)
                self.fees_back_wei += fees
                self.observe("fees_back", amount=fees)
