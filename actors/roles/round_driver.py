"""The driver of one data owner's round: the only task that feeds its `RoundMachine`.

Everything that happens to a round reaches its driver as a message on the driver's inbox, a
bounded trio memory channel: the chain watcher's `ChainNews`, a peer's delivery (`ShareIn`, from
`actors.roles.deliveries`), an acknowledgement of ours (`Acknowledged`), the trained update
(`Trained`). The driver turns each into machine events, persists the machine (write-ahead:
a snapshot is saved before any action reaches the world), and has its actions performed
(`actors.roles.round_actions`). What the round waits for next is the machine's own `waiting()`: the
driver keeps no second record of its progress, so a restored machine says what is owed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trio

from actors.chain.aio import on_chain
from actors.chain.market import Market, PhaseInfo, TaskConfig
from actors.chain.round_view import RoundView, read_round
from actors.learning.background import run_training
from actors.roles.deliveries import Acknowledged, Deliveries, Offered, ShareIn
from actors.roles.direct_link import DirectLink, ModelUnavailable
from actors.roles.round_actions import RoundActions, checksum
from actors.roles.store import StateStore
from protocol.constants import (
    GROUP_FAILED,
    GROUP_FINALIZED,
    MAX_CHUNK_WORDS,
    PHASE_DELIVERY,
    PHASE_DRAW,
    PHASE_REGISTER,
    PHASE_SETTLE,
    PHASE_SHARE,
    PHASE_SUBMIT,
    PHASE_UNMASK,
    Challenge,
)
from protocol.encoding import QuantConfig
from protocol.errors import ProtocolError
from protocol.round import (
    ComplaintsAgainstUs,
    DeadlineTick,
    Fact,
    GroupFailed,
    GroupFinalized,
    LocalUpdateReady,
    PostAnswer,
    PostChunk,
    PostCommitment,
    PostSettle,
    PostUnmask,
    RoundMachine,
    RoundOpened,
    SendShares,
    SettleDue,
    SharePhaseOpened,
    ShareReceived,
    SharesCommittedOnChain,
    State,
    SubmitPhaseOpened,
    UnmaskPhaseOpened,
)
from protocol.terms import JoinPolicy
from protocol.weighting import encode_weighted

log = logging.getLogger("omnilytics.do")

# machine actions that reach the world: a step that emits one is persisted before it runs
_OUTWARD = (SendShares, PostCommitment, PostSettle, PostAnswer, PostChunk, PostUnmask)
_INBOX = 64  # messages a driver may have waiting (news, deliveries, acknowledgements)


@dataclass(frozen=True, slots=True)
class DataOwnerSettings:
    """How a data owner behaves on the wire; defaults suit a local node."""

    host: str = "127.0.0.1"
    port: int = 0
    poll_interval: float = 0.05
    # While the phase stands still the poll interval doubles up to this: ten data owners polling
    # a node every 50 ms slowed every other request of theirs (a profile of the demo on anvil)
    poll_max: float = 0.4
    chunk_words: int = MAX_CHUNK_WORDS
    # A delivery a peer has not acknowledged is offered again after share_retry seconds, then
    # after twice as long each time, up to share_retry_max (`actors.roles.deliveries`).
    share_retry: float = 0.2
    share_retry_max: float = 2.0
    ack_timeout: float = 5.0
    # After a phase's deadline plus this grace (chain seconds), a data owner advances the task
    # itself: the model owner normally does, but must not be able to stall the data owners.
    advance_grace: int = 5
    # Fault injection for tests and demos: stop for good before this step of this round.
    drop_at: tuple[int, str] | None = None
    # Demo and test mode only: keep the plaintext lanes, so a run can check its aggregates.
    keep_plaintext: bool = False
    # The task terms this data owner accepts (phase floors, bond ceiling): protocol.terms.
    join: JoinPolicy = field(default_factory=JoinPolicy)
    # The seed of the stochastic rounding of our updates (round r draws from [seed, r]): it
    # changes the model, so a run that fixes its seed fixes it too. None draws a fresh one per
    # round from the data owner's randomness. The masks and shares never come from it.
    rounding_seed: int | None = None


class DroppedOut(Exception):
    """Raised inside the actor when its injected fault says to vanish (tests, demos)."""


@dataclass(frozen=True, slots=True)
class ChainNews:
    """A poll of the chain: the task's phase, the chain's clock, and the views this round asked
    to ride along (`RoundDriver.watch_views`), by name."""

    info: PhaseInfo
    now: int
    views: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Trained:
    """The local update, as the lanes `encode_weighted` made of it."""

    lanes: np.ndarray


@dataclass
class DriverContext:
    """What a round's driver borrows from its data owner."""

    market: Market
    account: str
    task: int
    config: TaskConfig
    group: int
    store: StateStore
    settings: DataOwnerSettings
    deliveries: Deliveries
    observe: Callable[..., None]
    learner: Any  # actors.roles.data_owner.Learner
    train_limiter: trio.CapacityLimiter | None = None
    randbytes: Callable[[int], bytes] = secrets.token_bytes
    plaintext: dict[int, np.ndarray] = field(default_factory=dict)
    actions_type: type[RoundActions] = RoundActions
    direct: DirectLink | None = None  # a direct task's link to the model owner

    @property
    def me(self) -> int:
        return int(self.account, 16)

    @property
    def quant(self) -> QuantConfig:
        return self.config.quant

    def check_drop(self, round: int, step: str) -> None:
        if self.settings.drop_at == (round, step):
            self.observe("dropped", round=round, step=step)
            raise DroppedOut(f"{self.account} drops out before {step} of round {round}")


class RoundDriver:
    """One data owner's round, from its opening until its machine is finished."""

    def __init__(
        self,
        ctx: DriverContext,
        number: int,
        members: tuple[str, ...],
        model_hash: bytes,
        stored: bytes | None,
    ) -> None:
        self.ctx, self.number, self.members, self.model_hash = ctx, number, members, model_hash
        self.inbox, self._messages = trio.open_memory_channel[Any](_INBOX)
        self.resumed = stored is not None
        if stored is not None:
            update = ctx.store.get("round", f"{number}/update")
            self.machine = RoundMachine.restore(stored, ctx.randbytes, update=update)
        else:
            self.machine = RoundMachine(ctx.randbytes)
        self._update_saved = self.machine.update_bytes is not None
        self.actions = ctx.actions_type(ctx, number, members, self.machine, self.inbox)
        self.acked: set[int] = set()  # peers that acknowledged our shares (Acknowledged)
        self._blamed: set[int] = set()
        self._stage = _BEFORE  # where the chain stood at the last news
        self._after_offer: list[Any] = []  # actions that wait for our deliveries' first try

    # -- what the watcher reads ------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Nothing more for this round: the machine is done with it, and if we were exposed,
        SETTLE (when later complaints may still come) is over."""
        if self.machine.state not in (State.DONE, State.FAILED, State.ERROR):
            return False
        return not (self.machine.exposed and self._stage <= _SETTLE)

    def watch_views(self) -> list[tuple[Any, ...]]:
        """Views to read with every poll, `(name, (function, args[, contract]))`: a round that
        unmasked waits for its group's result; one that dealt and has not seen the standing
        commitments watches for complaints against us (a view of the court); a direct
        submitter in DELIVERY watches for a challenge of its delivery (a view of the desk)."""
        ctx, facts = self.ctx, self.machine.waiting().facts
        if self._stage == _DELIVERY and self.machine.state is State.SUBMITTED:
            args = (ctx.task, self.number, ctx.account)
            return [("challenge", ("challenge_state", args, ctx.market.desk))]
        if Fact.RESULT in facts:
            return [("group_result", ("group_result", (ctx.task, self.number, ctx.group)))]
        shared = self.machine.state is State.SHARED and Fact.COMMITMENTS in facts
        if shared or (self.machine.exposed and self._stage <= _SETTLE):
            args = (ctx.task, self.number, ctx.account)
            return [("open_against", ("open_against", args, ctx.market.court))]
        return []

    def due(self) -> int | None:
        """The chain time at which a poll is news for this round even if nothing changed."""
        return self.machine.waiting().deadline

    # -- the driver task -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open (or resume) the round, then feed the machine from the inbox until finished."""
        ctx = self.ctx
        async with trio.open_nursery() as nursery:
            if self.machine.opened is None:
                # training is the round's long pole and needs nothing the opening decides: the
                # model's fetch starts before our shares are dealt (a machine that turns out not
                # to want the update ignores it)
                nursery.start_soon(self._train)
                await self._feed(self._opened())
            else:
                if self.resumed:
                    ctx.observe("resumed", round=self.number, state=str(self.machine.state))
                if Fact.UPDATE in self.machine.waiting().facts:
                    nursery.start_soon(self._train)
            task_status.started()
            if self.resumed:
                await self.actions.perform(self._owed(), resumed=True)
                self._offer_shares()
            try:
                async for message in self._messages:
                    await self._handle(message)
                    if self.finished:
                        break
            finally:
                nursery.cancel_scope.cancel()  # training for a round that is over
                ctx.deliveries.withdraw(self.number)
                self._close_inbox()

    def _close_inbox(self) -> None:
        """Refuse what is still queued (a delivery waiting for its acknowledgement is refused:
        its dealer offers it again and is told the round is over), then close the inbox: a
        late sender (the trainer, a watcher's news) finds it closed."""
        while True:
            try:
                message = self._messages.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if isinstance(message, ShareIn):
                message.done.close()
        self.inbox.close()
        self._messages.close()

    def _opened(self) -> RoundOpened:
        ctx = self.ctx
        return RoundOpened(
            task=ctx.task,
            round=self.number,
            members=tuple(int(m, 16) for m in self.members),
            threshold=ctx.config.threshold,
            me=ctx.me,
            model_hash=self.model_hash,
            quant=ctx.quant,
            d=ctx.config.d,
            chunk_words=ctx.settings.chunk_words,
        )

    def _owed(self) -> list[Any]:
        """After a restart: what the last persisted step decided, for the actions to redo
        (each checks the chain first, so what already landed is not posted twice)."""
        machine, redo = self.machine, []
        if machine.state is State.SHARED and (commitment := machine.commitment()) is not None:
            redo.append(commitment)
            if (settlement := machine.settlement()) is not None:
                redo.append(settlement)
        elif machine.state is State.SUBMITTED:
            redo.extend(machine.chunks())
        elif machine.state is State.UNMASKED and (unmask := machine.unmask()) is not None:
            redo.append(unmask)
        return redo

    async def _handle(self, message: Any) -> None:
        if isinstance(message, ChainNews):
            await self._news(message)
        elif isinstance(message, ShareIn):
            async with message.done:
                if not _terminal(self.machine):
                    event = ShareReceived(sender=message.sender, delivery=message.delivery)
                    await self._feed(event)
                await message.done.send(None)
        elif isinstance(message, Trained):
            if Fact.UPDATE in self.machine.waiting().facts and not _terminal(self.machine):
                await self._feed(LocalUpdateReady(update=message.lanes))
        elif isinstance(message, Acknowledged):
            self.acked.add(message.peer)
        elif isinstance(message, Offered):
            waiting, self._after_offer = self._after_offer, []
            await self.actions.perform(waiting)

    # -- chain news into machine events ----------------------------------------------------

    async def _news(self, news: ChainNews) -> None:
        """Feed the machine every chain fact about its round it waits for, in order."""
        ctx, number, info = self.ctx, self.number, news.info
        stage = self._stage = _stage(info, number)
        if stage < _SHARE:
            return
        if Fact.SHARE_PHASE in self.machine.waiting().facts:
            ctx.check_drop(number, "share")
            await self._feed(SharePhaseOpened())
        if stage == _SETTLE:
            await self._settle(news)
        elif stage > _SETTLE:
            await self._after_settle(news, stage)
        deadline = self.machine.waiting().deadline
        if deadline is not None and news.now >= deadline and not _terminal(self.machine):
            await self._feed(DeadlineTick(news.now))

    async def _settle(self, news: ChainNews) -> None:
        """File our complaints once every committed dealer's shares are in, or when the court's
        cut-off (half of SETTLE) comes near; answer complaints against us, and take the shares
        dealers published for ours."""
        if Fact.SETTLE in self.machine.waiting().facts:
            view = await self._read(commitments=True)
            half = self.ctx.config.share_duration // 2
            cutoff = news.info.deadline - half - max(2, half // 4)
            await self._feed(SettleDue(commitments=view.commitments or (), cutoff=cutoff))
        if self.machine.state is State.SHARED or self.machine.exposed:
            holders = await self.actions.open_complaints(news.views.get("open_against"))
            if holders:
                await self._answer(holders)
        if not _terminal(self.machine):
            for sender, delivery in await self.actions.answered_deliveries():
                await self._feed(ShareReceived(sender=sender, delivery=delivery))

    async def _answer(self, holders: list[str]) -> None:
        if self.machine.state is State.SHARED:
            event = ComplaintsAgainstUs(holders=tuple(int(h, 16) for h in holders))
            await self._feed(event)
            return
        for holder in holders:  # exposed already: later complaints of this SETTLE
            answer = self.machine.answer(int(holder, 16))
            if answer is not None:
                await self.actions.perform([answer])

    async def _after_settle(self, news: ChainNews, stage: int) -> None:
        ctx, number = self.ctx, self.number
        facts = self.machine.waiting().facts
        if Fact.COMMITMENTS in facts:
            # shares a dealer published to answer our complaint count like delivered ones
            for sender, delivery in await self.actions.answered_deliveries():
                await self._feed(ShareReceived(sender=sender, delivery=delivery))
            view = await self._read(commitments=True)
            await self._feed(SharesCommittedOnChain(commitments=view.commitments or ()))
        if Fact.SUBMIT_PHASE in self.machine.waiting().facts and not _terminal(self.machine):
            ctx.check_drop(number, "submit")
            deadline = news.info.deadline if stage == _SUBMIT else 0
            await self._feed(SubmitPhaseOpened(deadline=deadline))
        if stage == _SUBMIT:
            return  # (a peer that restarted may still lack our shares: the offers go on)
        ctx.deliveries.withdraw(number)
        if stage == _DELIVERY:
            # a direct task: the model owner challenges what it lacks; we answer on-chain
            if self.machine.state is State.SUBMITTED:
                challenge = news.views.get("challenge")
                if challenge is None or challenge == Challenge.OPEN:
                    await self.actions.answer_challenge(challenge)
            return
        if ctx.direct is not None:
            ctx.direct.withdraw(number)
        if Fact.UNMASK_PHASE in self.machine.waiting().facts:
            ctx.check_drop(number, "unmask")
            view = await self._read(group=True)
            self.actions.before_unmask = (view.status_of(ctx.account), view.result)
            await self._feed(UnmaskPhaseOpened(submitted=view.submitters))
        if Fact.RESULT in self.machine.waiting().facts:
            result = news.views.get("group_result")
            if result is None:
                result = (await self._read(group=True)).result
            if result == GROUP_FINALIZED:
                view = await self._read(group=True)
                await self._feed(GroupFinalized(credited=view.submitters))
            elif result == GROUP_FAILED:
                await self._feed(GroupFailed(reason="the group failed on-chain"))

    async def _read(self, *, commitments: bool = False, group: bool = False) -> RoundView:
        ctx = self.ctx
        return await on_chain(
            ctx.market.chain,
            read_round,
            ctx.market,
            ctx.task,
            self.number,
            group=ctx.group if group else None,
            members=self.members,
            commitments=commitments,
        )

    # -- feeding the machine ---------------------------------------------------------------

    async def _feed(self, event: Any) -> None:
        try:
            actions = self.machine.send(event)
        except ProtocolError:
            # the machine is in ERROR now and accepts nothing more: this round is lost to us,
            # the data owner goes on (`_log_problems` names the reason)
            self._log_problems()
            return
        # Write-ahead: a step is persisted before any of its actions reaches the world. A step
        # that sends nothing (the round opened, the update is ready, the commitments are read,
        # the group is paid) is persisted with the next one; after a crash it is fed again
        # from the same chain facts or a fresh training run. A share delivery is always
        # persisted: the acknowledgement the dealer gets is the world's.
        if isinstance(event, ShareReceived) or any(isinstance(a, _OUTWARD) for a in actions):
            self._save()
        self._log_problems()
        sends = [a for a in actions if isinstance(a, SendShares)]
        rest = [a for a in actions if not isinstance(a, SendShares)]
        if sends:
            # shares go out before the commitment: a dealer that committed has tried to
            # deliver (the rest of the batch waits for `Offered`; the inbox keeps flowing)
            self.ctx.deliveries.offer(self.number, sends, self.inbox.clone())
            self._after_offer.extend(rest)
            return
        await self.actions.perform(rest)

    def _offer_shares(self) -> None:
        """After a restart: offer our deliveries again while peers may still need them."""
        if self.machine.state in (State.SHARED, State.SUBMITTED):
            self.ctx.deliveries.offer(self.number, self.machine.deliveries(), self.inbox.clone())

    def _save(self) -> None:
        # The update (the bulk of a snapshot, fixed once in) is written once, with the first
        # snapshot that has it: rewriting it on every save cost half a round's step time.
        items = {f"{self.number}/machine": self.machine.snapshot(update=False)}
        update = self.machine.update_bytes
        if update is not None and not self._update_saved:
            items[f"{self.number}/update"] = update
        self.ctx.store.put_many("round", items)
        self._update_saved = update is not None

    def _log_problems(self) -> None:
        machine, where = self.machine, f"{self.ctx.account} round {self.number}"
        if machine.state is State.ERROR:
            log.error("%s: protocol error: %s", where, machine.failure)
        for peer, error in machine.peer_errors.items():
            if peer not in self._blamed:
                self._blamed.add(peer)
                name = checksum(peer)
                log.warning("%s: peer %s misbehaved: %r", where, name, error)
                self.ctx.observe("peer_error", round=self.number, peer=name, error=str(error))

    # -- local training --------------------------------------------------------------------

    async def _model(self) -> bytes | None:
        """The round's public model: from the chain, or on a direct task from the model
        owner's endpoint (checked against the model hash either way); None if a direct task's
        model owner did not serve it before SUBMIT closes."""
        ctx, number, market = self.ctx, self.number, self.ctx.market
        if ctx.direct is None:
            return await on_chain(
                market.chain, market.model_bytes, ctx.task, number, self.model_hash
            )
        config = ctx.config
        give_up = config.share_duration * 2 + config.submit_duration
        # a public model's bytes: 4 a parameter, and a header (safetensors) well under 1 MiB
        limit = 4 * config.d + (1 << 20)
        try:
            return await ctx.direct.fetch_model(number, self.model_hash, limit, give_up)
        except ModelUnavailable as error:
            log.error("%s round %d: %s; skipping the round", ctx.account, number, error)
            ctx.observe("model_unavailable", round=number, error=str(error))
            return None

    async def _train(self) -> None:
        ctx, number = self.ctx, self.number
        model = await self._model()
        if model is None:
            return  # no model, no update: we skip the round
        ctx.observe("training", round=number)
        update, samples = await run_training(
            ctx.learner.train, model, number, limiter=ctx.train_limiter
        )
        seed = ctx.settings.rounding_seed
        entropy = int.from_bytes(ctx.randbytes(32), "big") if seed is None else [seed, number]
        rng = np.random.default_rng(entropy)
        # the task's weight cap, as the chain holds it: the model owner decodes with the same
        cap = ctx.config.sample_cap
        lanes = encode_weighted(update, samples, cap=cap, quant=ctx.quant, rng=rng)
        ctx.observe("trained", round=number, samples=samples)
        if ctx.settings.keep_plaintext:
            ctx.plaintext[number] = lanes
            buffer = io.BytesIO()
            np.save(buffer, lanes, allow_pickle=False)
            ctx.store.put("plaintext", str(number), buffer.getvalue())
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.inbox.send(Trained(lanes))  # (a round that is over has closed it)


# where a round stands on-chain, from one data owner's view of it
_BEFORE, _SHARE, _SETTLE, _SUBMIT, _DELIVERY, _UNMASK, _RESOLVED = range(7)
_PHASE_STAGE = {
    PHASE_SHARE: _SHARE,
    PHASE_SETTLE: _SETTLE,
    PHASE_SUBMIT: _SUBMIT,
    PHASE_DELIVERY: _DELIVERY,
    PHASE_UNMASK: _UNMASK,
}


def _stage(info: PhaseInfo, number: int) -> int:
    if info.round < number or info.phase in (PHASE_REGISTER, PHASE_DRAW):
        return _BEFORE
    if info.round > number:
        return _RESOLVED
    return _PHASE_STAGE.get(info.phase, _RESOLVED)


def _terminal(machine: RoundMachine) -> bool:
    return machine.state in (State.DONE, State.FAILED, State.ERROR)
