"""The data owner actor: registers, deals shares over authenticated channels, trains, submits its
masked update, unmasks, and collects its pay.

The protocol rules live in `protocol.round.RoundMachine`; this actor only translates between the
world and that machine: chain phases and views become events, and the machine's actions become
transactions and channel messages. Every machine step that sends something is persisted
(snapshot plus what was fed) before its actions run (one that sends nothing, with the next), and
a batch redone after a restart checks the chain first, so a killed and restarted data owner
resumes without dealing fresh secrets or posting anything twice.
"""

from __future__ import annotations

import functools
import io
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import numpy as np
import trio
from eth_utils import to_checksum_address

from actors.background import run_training
from actors.chain.aio import on_chain
from actors.chain.base import NodeUnavailable, TransactionReverted
from actors.chain.watch import Polled, Watch, watch
from actors.channels import (
    ChannelError,
    ChannelKeys,
    MalformedFrame,
    PeerChannel,
    ReadTimeout,
    open_channel,
    serve_channels,
)
from actors.market import ETH, Market, PhaseInfo, TaskConfig
from actors.store import StateStore
from protocol import bn254
from protocol.blobs import blob_chunks
from protocol.chain_data import answered_delivery, member_commitment
from protocol.constants import (
    DATA_PATH_BLOB,
    GROUP_FAILED,
    GROUP_FINALIZED,
    GROUP_PENDING,
    MAX_CHUNK_WORDS,
    PHASE_CANCELLED,
    PHASE_DRAW,
    PHASE_ENDED,
    PHASE_REGISTER,
    PHASE_SETTLE,
    PHASE_SHARE,
    PHASE_SUBMIT,
    PHASE_UNMASK,
    STATUS_COMMITTED,
    STATUS_SUBMITTED,
    STATUS_UNMASKED,
)
from protocol.encoding import QuantConfig
from protocol.errors import DecodeError
from protocol.messages import ShareAck, ShareDelivery, decode, encode
from protocol.round import (
    Action,
    ComplaintsAgainstUs,
    GroupFailed,
    GroupFinalized,
    LocalUpdateReady,
    MemberCommitment,
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
from protocol.terms import JoinPolicy, check_terms
from protocol.weighting import encode_weighted

log = logging.getLogger("omnilytics.do")

Observer = Callable[..., None]
# deliveries held for a round this data owner has not opened yet (one per group peer suffices)
_MAX_EARLY = 128
# machine actions that reach the world: a step that emits one is persisted before it runs
_OUTWARD = (SendShares, PostCommitment, PostSettle, PostAnswer, PostChunk, PostUnmask)
# A wait for news hands its latest poll back after this long even when nothing changed (the
# rounds' bookkeeping runs then, as on every poll before; news and due times come first).
_WATCH_HEARTBEAT = 2.0


class Learner(Protocol):
    """A data owner's local training: the round's public model bytes in, an update out."""

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        """Train on the private data; return (update = new - old public vector, sample count)."""
        ...


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
    sample_cap: int = 2_000  # the task's weight cap: one DO counts at most this many samples
    # A delivery a peer has not acknowledged is offered again after share_retry seconds, then
    # after twice as long each time, up to share_retry_max: a peer still busy (training, say)
    # is not asked for a fresh Noise handshake on every poll.
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


class _Progress(msgspec.Struct):
    """What this data owner already fed its round machine (persisted with the snapshot)."""

    fed: list[str] = msgspec.field(default_factory=list)


@dataclass
class _Round:
    number: int
    machine: RoundMachine
    progress: _Progress
    members: tuple[str, ...]
    acked: set[str] = field(default_factory=set)
    blamed: set[int] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)  # holders whose complaints we settled
    chunks_done: int = 0  # our update's chunks on-chain when this batch of chunks began
    # per peer: failed deliveries so far, and when (trio clock) to offer ours again
    failed_sends: dict[str, int] = field(default_factory=dict)
    retry_at: dict[str, float] = field(default_factory=dict)
    # SETTLE: waiting for late deliveries until this chain time (then we settle without them)
    settle_until: int | None = None
    update_saved: bool = False  # the machine's update is in the store (it is written once)
    before_unmask: tuple[int, int] | None = None  # our status, our group's result at UNMASK
    commitments_read: dict[str, MemberCommitment] | None = None  # by member, as last read

    @property
    def members_int(self) -> list[int]:
        return [int(m, 16) for m in self.members]


class DroppedOut(Exception):
    """Raised inside the actor when its injected fault says to vanish (tests, demos)."""


class DataOwner:
    """One data owner taking part in one task until it ends."""

    def __init__(
        self,
        market: Market,
        account: str,
        task: int,
        learner: Learner,
        store: StateStore,
        *,
        settings: DataOwnerSettings | None = None,
        randbytes: Callable[[int], bytes] = secrets.token_bytes,
        observe: Observer | None = None,
        train_limiter: trio.CapacityLimiter | None = None,
    ) -> None:
        self.market = market
        self.train_limiter = train_limiter
        self.account = account
        self.me = int(account, 16)
        self.task = task
        self.learner = learner
        self.store = store
        self.settings = settings or DataOwnerSettings()
        self.randbytes = randbytes
        self._observe = observe or (lambda *args, **kwargs: None)
        self.keys = self._load_keys()
        self.config: TaskConfig | None = None
        self.rounds: dict[int, _Round] = {}
        self._early: list[tuple[int, ShareDelivery]] = []  # deliveries before our round opened
        self._updates: dict[int, trio.MemoryReceiveChannel[np.ndarray]] = {}
        # read once: fixed on-chain once set (a group when registration closes, a peer's channel
        # key and endpoint when it registers)
        self._group: int | None = None
        self._peer_keys: dict[int, bytes] = {}
        self._endpoints: dict[str, str] = {}
        self._wake = trio.Event()  # set by local work that wants the chain looked at now
        self._watching: trio.CancelScope | None = None  # a wait for news in a worker thread
        # polls wait in a worker thread where the chain client may be called from one
        chain = market.chain
        self._threaded_polls = chain.name != "boa" and getattr(chain, "latency", None) is None
        # the last poll processed: its views, phase info and values (a watch's baseline)
        self._seen_poll: tuple[list[tuple[Any, ...]], PhaseInfo, list[Any]] | None = None
        self._channels: dict[int, PeerChannel] = {}  # open channels to peers, by address
        # what the last poll read beside the phase: the chain's clock, and the views a live
        # round needs on every poll of its stage (`_poll_views`), by (view, round)
        self._now = 0
        self._polled: dict[tuple[str, int], Any] = {}
        self.withdrawn_wei = 0
        self.court_wei = 0  # withdrawn from the court: complaint deposits paid or refunded to us
        self.plaintext: dict[int, np.ndarray] = {}  # round -> submitted lanes (keep_plaintext)
        for key, raw in store.items("plaintext"):
            self.plaintext[int(key)] = np.load(io.BytesIO(raw), allow_pickle=False)

    # -- small helpers -------------------------------------------------------------------

    def _chain(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return on_chain(self.market.chain, fn, *args, **kwargs)

    def observe(self, what: str, **fields: Any) -> None:
        self._observe("do", self.account, what, **fields)

    def _check_drop(self, round: int, step: str) -> None:
        if self.settings.drop_at == (round, step):
            self.observe("dropped", round=round, step=step)
            raise DroppedOut(f"{self.account} drops out before {step} of round {round}")

    def _load_keys(self) -> ChannelKeys:
        raw = self.store.get("identity", "channel_key")
        if raw is None:
            keys = ChannelKeys.generate()
            self.store.put("identity", "channel_key", keys.private_bytes)
            return keys
        return ChannelKeys.from_private_bytes(raw)

    async def _registry(self, address: int) -> bytes | None:
        if address in self._peer_keys:
            return self._peer_keys[address]
        key = await self._chain(self.market.channel_key, self.task, _checksum(address))
        if key == bytes(32):
            return None  # not registered (yet): ask again next time
        self._peer_keys[address] = key
        return key

    async def _endpoint(self, peer: str) -> str:
        if peer not in self._endpoints:
            self._endpoints[peer] = await self._chain(self.market.endpoint, self.task, peer)
        return self._endpoints[peer]

    # -- the actor -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Register (once), then follow the task round by round until it is over."""
        self.config = await self._chain(self.market.config, self.task)
        if not await self._chain(self.market.is_registered, self.task, self.account):
            # before any bond is staked: a phase we cannot act in, or a bond out of proportion,
            # is refused here (HostileTerms names the term)
            check_terms(self.config, self.settings.join)
        # the Pedersen checks' fixed-base tables: built at start-up, not in the middle of a round
        await trio.to_thread.run_sync(bn254.warm)
        try:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(self._serve)
                await self._register(port)
                task_status.started()
                try:
                    await self._follow_task(nursery)
                except DroppedOut:
                    nursery.cancel_scope.cancel()
                    return
                await self._collect()
                nursery.cancel_scope.cancel()
        finally:
            for peer in list(self._channels):
                await self._drop_channel(peer)

    async def _serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED):
        saved = self.store.get("identity", "port")
        port = int(saved) if saved else self.settings.port
        await serve_channels(
            self.settings.host,
            port,
            self.keys,
            self.me,
            self._registry,
            self._handle_peer,
            task=self.task,
            task_status=task_status,
        )

    async def _register(self, port: int) -> None:
        self.store.put("identity", "port", str(port).encode())
        if await self._chain(self.market.is_registered, self.task, self.account):
            return
        endpoint = f"{self.settings.host}:{port}"
        await self._chain(
            self.market.register,
            self.task,
            self.keys.public_bytes,
            endpoint,
            self.account,
            self.config.bond,
        )
        self.observe("registered", endpoint=endpoint)

    async def _follow_task(self, nursery: trio.Nursery) -> None:
        interval, seen, news = self.settings.poll_interval, None, None
        ceiling = max(self.settings.poll_max, self.settings.poll_interval)
        while True:
            try:
                info = await self._follow_step(nursery, news)
                if info is None:
                    return
                if (info.phase, info.round) == seen:
                    interval = min(2 * interval, ceiling)
                else:
                    interval, seen = self.settings.poll_interval, (info.phase, info.round)
                news = await self._wait_for_news(info, interval, ceiling)
            except NodeUnavailable as error:
                # the node is down or unreachable: wait for it, our state is safe in the store
                log.error("%s: %s; retrying", self.account, error)
                self.observe("node_unavailable", error=str(error))
                news = None
                await trio.sleep(max(1.0, self.settings.poll_interval))
                continue
            if self._wake.is_set():
                self._wake = trio.Event()
                interval = self.settings.poll_interval

    def _wake_up(self) -> None:
        """Have the chain read now, not at the next poll (local work that needs it)."""
        self._wake.set()
        if self._watching is not None:
            self._watching.cancel()

    async def _wait_for_news(
        self, info: PhaseInfo, interval: float, ceiling: float
    ) -> tuple[list[tuple[Any, ...]], Polled] | None:
        """Wait until the chain has news for us (`actors.chain.watch`): the poll that brought
        it, with the views it read; None when woken (or on the embedded chain, after one
        interval), and the caller polls itself."""
        if not self._threaded_polls:
            with trio.move_on_after(interval):
                await self._wake.wait()
            return None
        wanted = self._poll_views()
        seen = self._seen_poll
        plan = Watch(
            baseline=(seen[1], seen[2]) if seen is not None and seen[0] == wanted else None,
            chain_due=self._chain_due(info),
            interval=interval,
            ceiling=ceiling,
            timeout=self._retry_wait(info),
        )
        poll = functools.partial(self.market.poll, self.task, _poll_calls(wanted))
        stop, polled = threading.Event(), None
        with trio.CancelScope() as scope:
            self._watching = scope
            if self._wake.is_set():
                scope.cancel()
            try:
                polled = await trio.to_thread.run_sync(
                    watch, poll, plan, stop, abandon_on_cancel=True
                )
            finally:
                stop.set()
                self._watching = None
        return None if polled is None else (wanted, polled)

    def _chain_due(self, info: PhaseInfo) -> int | None:
        """The chain time at which a poll is news even if nothing changed: our nudge of a
        phase past its deadline (`_nudge`), the end of a wait for late deliveries (`_settle`)."""
        settling = [self.rounds[n].settle_until for n in self._live_rounds()]
        due = [until for until in settling if until is not None]
        if info.phase not in (PHASE_ENDED, PHASE_CANCELLED):
            due.append(info.deadline + self.settings.advance_grace)
        return min(due, default=None)

    def _retry_wait(self, info: PhaseInfo) -> float:
        """Seconds until we owe a peer another offer of its shares (`_resend_shares`), at most
        the heartbeat."""
        wait = _WATCH_HEARTBEAT
        now = trio.current_time()
        for number in self._live_rounds():
            rnd = self.rounds[number]
            if not _SHARE <= _stage(info, number) <= _SUBMIT:
                continue
            if rnd.machine.state not in (State.SHARED, State.SUBMITTED):
                continue
            for peer in (_checksum(m) for m in rnd.members_int if m != self.me):
                if peer not in rnd.acked:
                    wait = min(wait, max(0.0, rnd.retry_at.get(peer, 0.0) - now))
        return wait

    async def _follow_step(
        self, nursery: trio.Nursery, news: tuple[list[tuple[Any, ...]], Polled] | None = None
    ) -> PhaseInfo | None:
        """One look at the chain (a poll of ours, or the news a wait brought): the task's phase,
        or None once the task is over for us."""
        if news is None:
            wanted = self._poll_views()
            polled = await self._chain(self.market.poll, self.task, _poll_calls(wanted))
        else:
            wanted, polled = news
        info, now, values = polled
        self._seen_poll = (wanted, info, values)
        self._now = now
        self._polled = {
            (view, number): value for (view, number, *_), value in zip(wanted, values, strict=True)
        }
        if info.phase in (PHASE_ENDED, PHASE_CANCELLED) and not self._live_rounds():
            return None
        if info.phase not in (PHASE_REGISTER, PHASE_DRAW):
            if info.round not in self.rounds and self._takes_part(info):
                await self._open_round(info.round, nursery)
            for number in sorted(self._live_rounds()):
                await self._step_round(self.rounds[number], info)
            exposed = self.rounds.get(info.round)
            if (
                exposed is not None
                and "exposed" in exposed.progress.fed
                and _stage(info, info.round) == _SETTLE
            ):
                # out of the round, but later complaints of this SETTLE still want answers
                await self._answer_complaints(exposed)
        await self._nudge(info, now)
        return info

    async def _nudge(self, info: Any, now: int) -> None:
        """Advance a phase whose deadline passed a grace period ago (anyone may)."""
        if info.phase in (PHASE_ENDED, PHASE_CANCELLED):
            return
        if now < info.deadline + self.settings.advance_grace:
            return
        try:
            await self._chain(self.market.advance, self.task, self.account)
        except TransactionReverted as error:
            # another party advanced it first, or the phase is not over after all
            log.info("%s: advance not possible: %s", self.account, error.reason)
            return
        self.observe("advanced", phase=info.phase, round=info.round)

    def _poll_views(self) -> list[tuple[Any, ...]]:
        """Views to read with the phase, `(view, round, args[, contract])`: a round that
        unmasked waits for its group's result; one that dealt and has not seen the standing
        commitments (SHARE, SETTLE) watches for complaints against us (a view of the court)."""
        views: list[tuple[Any, ...]] = []
        for number in self._live_rounds():
            fed = self.rounds[number].progress.fed
            if "unmask" in fed and self._group is not None:
                views.append(("group_result", number, (self.task, number, self._group)))
            elif "share" in fed and "commitments" not in fed:
                args = (self.task, number, self.account)
                views.append(("open_against", number, args, self.market.court))
        return views

    def _live_rounds(self) -> list[int]:
        return [n for n, r in self.rounds.items() if not _finished(r.machine)]

    def _takes_part(self, info: Any) -> bool:
        # A round we find already past SHARE on a fresh start is one we cannot join any more.
        stored = self.store.get("round", f"{info.round}/machine")
        return stored is not None or info.phase == PHASE_SHARE

    async def _open_round(self, number: int, nursery: trio.Nursery) -> None:
        self.observe("opening", round=number)
        stored = self.store.get("round", f"{number}/machine")
        members, model_hash = await self._chain(self._round_facts, number)
        if stored is not None:
            update = self.store.get("round", f"{number}/update")
            machine = RoundMachine.restore(stored, self.randbytes, update=update)
            progress = msgspec.msgpack.decode(
                self.store.get("round", f"{number}/progress") or b"\x80", type=_Progress
            )
        else:
            machine, progress = RoundMachine(self.randbytes), _Progress()
        rnd = _Round(number, machine, progress, members)
        rnd.update_saved = machine.update_bytes is not None
        if "opened" not in progress.fed:
            config = self.config
            await self._feed(
                rnd,
                "opened",
                RoundOpened(
                    task=self.task,
                    round=number,
                    members=tuple(int(m, 16) for m in members),
                    threshold=config.threshold,
                    me=self.me,
                    model_hash=model_hash,
                    quant=_quant(config),
                    d=config.d,
                    chunk_words=self.settings.chunk_words,
                ),
            )
        # only an opened machine is visible to the peer handler: a delivery that arrives
        # while we are still reading the chain waits in `_early`
        self.rounds[number] = rnd
        if stored is not None:
            await self._resume(rnd)
        for sender, delivery in [e for e in self._early if e[1].round == number]:
            await self._deliver(rnd, sender, delivery)
        self._early = [e for e in self._early if e[1].round != number]
        if "update" not in progress.fed:
            send, receive = trio.open_memory_channel[np.ndarray](1)
            self._updates[number] = receive
            nursery.start_soon(self._train, number, model_hash, send)

    async def _resume(self, rnd: _Round) -> None:
        """After a restart: redo what the last persisted step decided (each action checks the
        chain first, so what already landed is not posted twice)."""
        machine = rnd.machine
        self.observe("resumed", round=rnd.number, state=str(machine.state))
        redo: list[Action] = []
        if machine.state is State.SHARED and (commitment := machine.commitment()) is not None:
            redo.append(commitment)
            if (settlement := machine.settlement()) is not None:
                redo.append(settlement)
        elif machine.state is State.SUBMITTED:
            redo.extend(machine.chunks())
        elif machine.state is State.UNMASKED and (unmask := machine.unmask()) is not None:
            redo.append(unmask)
        await self._perform(rnd, redo, resumed=True)

    def _round_facts(self, number: int) -> tuple[tuple[str, ...], bytes]:
        """A round's group members and model hash; the first time, also every member's channel
        key and endpoint (the share deliveries need them), all in one more request."""
        members, model_hash = self.market.views(
            [
                ("group_members", (self.task, self._my_group())),
                ("round_model_hash", (self.task, number)),
            ]
        )
        peers = [m for m in members if m not in self._endpoints]
        values = self.market.views(
            [(view, (self.task, m)) for m in peers for view in ("channel_key", "endpoint")]
        )
        for member, key, endpoint in zip(peers, values[0::2], values[1::2], strict=True):
            if key != bytes(32):
                self._peer_keys[int(member, 16)] = key
                self._endpoints[member] = endpoint
        return members, model_hash

    def _my_group(self) -> int:
        # fixed when registration closes, before any round opens
        if self._group is None:
            self._group = self.market.group_of(self.task, self.account)
        return self._group

    async def _train(
        self, number: int, model_hash: bytes, send: trio.MemorySendChannel[np.ndarray]
    ) -> None:
        async with send:
            model = await self._chain(self.market.model_bytes, self.task, number, model_hash)
            self.observe("training", round=number)
            update, samples = await run_training(
                self.learner.train, model, number, limiter=self.train_limiter
            )
            rng = np.random.default_rng(int.from_bytes(self.randbytes(32), "big"))
            lanes = encode_weighted(
                update,
                samples,
                cap=self.settings.sample_cap,
                quant=_quant(self.config),
                rng=rng,
            )
            self.observe("trained", round=number, samples=samples)
            if self.settings.keep_plaintext:
                self.plaintext[number] = lanes
                buffer = io.BytesIO()
                np.save(buffer, lanes, allow_pickle=False)
                self.store.put("plaintext", str(number), buffer.getvalue())
            await send.send(lanes)
            self._wake_up()  # the update waits for the next poll: make it now

    async def _step_round(self, rnd: _Round, info: Any) -> None:
        """Feed the machine every chain fact about its round it has not seen yet, in order."""
        number, fed = rnd.number, rnd.progress.fed
        stage = _stage(info, number)
        if stage < _SHARE:
            return
        if "share" not in fed:
            self._check_drop(number, "share")
            await self._feed(rnd, "share", SharePhaseOpened())
        if "update" not in fed and number in self._updates:
            try:
                lanes = self._updates[number].receive_nowait()
            except trio.WouldBlock:
                pass
            else:
                await self._feed(rnd, "update", LocalUpdateReady(update=lanes))
        if _finished(rnd.machine):
            return
        if stage == _SHARE:
            await self._resend_shares(rnd)
            return
        if stage == _SETTLE:
            await self._resend_shares(rnd)
            await self._settle(rnd, info)
            return
        if "commitments" not in fed:
            # shares a dealer published to answer our complaint count like delivered ones
            await self._take_answers(rnd)
            await self._feed(rnd, "commitments", await self._chain(self._commitments, number))
        if "submit" not in fed and not _finished(rnd.machine):
            self._check_drop(number, "submit")
            deadline = info.deadline if stage == _SUBMIT else 0
            await self._feed(rnd, "submit", SubmitPhaseOpened(deadline=deadline))
        if stage == _SUBMIT:
            # a peer that restarted after committing may still lack our shares: it needs them
            # to unmask, so keep offering them until UNMASK opens
            await self._resend_shares(rnd)
        if stage == _SUBMIT or _finished(rnd.machine):
            return
        if "unmask" not in fed:
            self._check_drop(number, "unmask")
            submitted, rnd.before_unmask = await self._chain(self._submitted_and_result, number)
            await self._feed(rnd, "unmask", UnmaskPhaseOpened(submitted=submitted))
        if _finished(rnd.machine):
            return
        result = self._polled.pop(("group_result", number), None)
        if result is None:
            result = await self._chain(self._group_result, number)
        if result == GROUP_FINALIZED:
            credited = await self._chain(self._submitted, number)
            await self._feed(rnd, "result", GroupFinalized(credited=credited))
        elif result == GROUP_FAILED:
            await self._feed(rnd, "result", GroupFailed(reason="the group failed on-chain"))

    # The two readers below batch their views into one request: they run once the phase that
    # writes what they read (SHARE, SUBMIT) is closed, so the values cannot move between them.

    def _commitments(self, number: int) -> SharesCommittedOnChain:
        """The round's standing commitments. A commitment is written in SHARE and never changes;
        SETTLE can only take one back (its dealer left a complaint unanswered). So once SETTLE
        read them in full, a later read asks for the statuses alone."""
        rnd = self.rounds[number]
        members, known = rnd.members, rnd.commitments_read
        if known is not None:
            statuses = self.market.views([("do_status", (self.task, number, m)) for m in members])
            standing = [
                m for m, status in zip(members, statuses, strict=True) if status >= STATUS_COMMITTED
            ]
            if all(m in known for m in standing):
                return SharesCommittedOnChain(commitments=tuple(known[m] for m in standing))
        views = ("do_status", "mask_pk", "shares_root", "points_digest")
        values = self.market.views([(v, (self.task, number, m)) for m in members for v in views])
        read = {
            member: member_commitment(member, pk, root, points)
            for member, (status, pk, root, points) in zip(members, _quads(values), strict=True)
            if status >= STATUS_COMMITTED
        }
        rnd.commitments_read = read
        return SharesCommittedOnChain(commitments=tuple(read.values()))

    # -- SETTLE: complaints about dealt shares ----------------------------------------------

    async def _settle(self, rnd: _Round, info: Any) -> None:
        """File our complaints once every committed dealer's shares are in, or when the court's
        cut-off (half of SETTLE) comes near; then answer complaints against us, and take the
        shares dealers published for ours."""
        number = rnd.number
        if "settle" not in rnd.progress.fed and rnd.machine.state is State.SHARED:
            onchain = await self._chain(self._commitments, number)
            held = rnd.machine.dealers_held
            waiting = [c.member for c in onchain.commitments if c.member not in held]
            half = self.config.share_duration // 2
            cutoff = info.deadline - half
            rnd.settle_until = cutoff - max(2, half // 4)
            if waiting and self._now < rnd.settle_until:
                return  # late deliveries may still come over the channels
            rnd.settle_until = None
            await self._feed(rnd, "settle", SettleDue(commitments=onchain.commitments))
        await self._answer_complaints(rnd)
        await self._take_answers(rnd)

    async def _answer_complaints(self, rnd: _Round) -> None:
        """Answer every open complaint against us. Answering makes shares of our secrets public,
        so the machine first sits the round out (the market would refuse our update anyway); we
        keep answering later complaints of the same SETTLE: each answer keeps our bond and
        earns the complainer's deposit."""
        number = rnd.number
        # a view riding along with every poll; the complaint events only when some are open
        # against us
        against = self._polled.pop(("open_against", number), None)
        if against is None:
            against = await self._chain(self.market.open_against, self.task, number, self.account)
        if not against:
            return
        complaints = await self._chain(self.market.complaints, self.task, number)
        holders = []
        for dealer, holder in complaints:
            if dealer.lower() != self.account.lower() or holder in rnd.answered:
                continue
            if await self._chain(
                self.market.complaint_open, self.task, number, self.account, holder
            ):
                holders.append(holder)
            else:
                rnd.answered.add(holder)
        if not holders:
            return
        if rnd.machine.state is State.SHARED:
            event = ComplaintsAgainstUs(holders=tuple(int(h, 16) for h in holders))
            await self._feed(rnd, "exposed", event)
            return
        for holder in holders:
            answer = rnd.machine.answer(int(holder, 16))
            if answer is not None:
                await self._perform(rnd, [answer])

    async def _post_answer(self, rnd: _Round, answer: PostAnswer) -> None:
        number, holder = rnd.number, _checksum(answer.holder)
        if holder in rnd.answered:
            return
        try:
            await self._chain(
                self.market.answer,
                self.task,
                number,
                holder,
                (answer.seed_share, answer.seed_blind, answer.key_share, answer.key_blind),
                (answer.seed_proof, answer.key_proof),
                answer.points,
                self.account,
            )
        except TransactionReverted as refused:
            log.error("%s round %d: answer refused: %s", self.account, number, refused)
            self.observe("refused", round=number, reason=refused.reason)
            return
        rnd.answered.add(holder)
        self.observe("answered", round=number, holder=holder)

    async def _take_answers(self, rnd: _Round) -> None:
        """Feed the machine, as deliveries, the shares our accused dealers published on-chain."""
        settlement = rnd.machine.settlement()
        if settlement is None:
            return
        owed = [d for d in settlement.accused if d not in rnd.machine.dealers_held]
        if not owed:
            return
        number = rnd.number
        answers = await self._chain(self.market.answers, self.task, number)
        mine = [
            a
            for a in answers
            if a["holder"].lower() == self.account.lower() and int(a["dealer"], 16) in owed
        ]
        if not mine:
            return
        points = await self._chain(self.market.dealt_points, self.task, number)
        for a in mine:
            dealer = a["dealer"]
            delivery = answered_delivery(
                self.task,
                number,
                dealer=dealer,
                holder=self.account,
                seed_share=a["seed_share"],
                seed_blind=a["seed_blind"],
                key_share=a["key_share"],
                key_blind=a["key_blind"],
                seed_proof=a["seed_proof"],
                key_proof=a["key_proof"],
                mask_public=await self._chain(self.market.mask_pk, self.task, number, dealer),
                shares_root=await self._chain(self.market.shares_root, self.task, number, dealer),
                points=points[dealer],
            )
            self.observe("answer_received", round=number, dealer=dealer)
            await self._deliver(rnd, int(dealer, 16), delivery)

    def _submitted(self, number: int) -> tuple[int, ...]:
        members = self.rounds[number].members
        statuses = self.market.views([("do_status", (self.task, number, m)) for m in members])
        return _submitters(members, statuses)

    def _submitted_and_result(self, number: int) -> tuple[tuple[int, ...], tuple[int, int]]:
        """Who submitted, with our status and our group's result (what `_unmask` checks), in
        one request as UNMASK opens."""
        members = self.rounds[number].members
        values = self.market.views(
            [
                *[("do_status", (self.task, number, m)) for m in members],
                ("group_result", (self.task, number, self._my_group())),
            ]
        )
        statuses, result = values[:-1], values[-1]
        mine = [m.lower() for m in members].index(self.account.lower())
        return _submitters(members, statuses), (statuses[mine], result)

    def _group_result(self, number: int) -> int:
        return self.market.group_result(self.task, number, self._my_group())

    def _status_and_result(self, number: int) -> tuple[int, int]:
        """Our status and our group's result in one request (before unmasking)."""
        status, result = self.market.views(
            [
                ("do_status", (self.task, number, self.account)),
                ("group_result", (self.task, number, self._my_group())),
            ]
        )
        return status, result

    # -- feeding the machine and performing its actions -------------------------------------

    async def _feed(self, rnd: _Round, step: str, event: Any) -> None:
        actions = rnd.machine.send(event)
        if step not in rnd.progress.fed:
            rnd.progress.fed.append(step)
        # Write-ahead: a step is persisted before any of its actions reaches the world. A step
        # that sends nothing (the round opened, the update is ready, the commitments are read,
        # the group is paid) is persisted with the next one; after a crash it is fed again
        # from the same chain facts or a fresh training run. (A share delivery is always
        # persisted: the acknowledgement the dealer gets is the world's.)
        if any(isinstance(action, _OUTWARD) for action in actions):
            self._save(rnd)
        self._log_problems(rnd)
        await self._perform(rnd, actions)

    def _log_problems(self, rnd: _Round) -> None:
        machine, where = rnd.machine, f"{self.account} round {rnd.number}"
        if machine.state is State.ERROR:
            log.error("%s: protocol error: %s", where, machine.failure)
        for peer, error in machine.peer_errors.items():
            if peer not in rnd.blamed:
                rnd.blamed.add(peer)
                log.warning("%s: peer %s misbehaved: %r", where, _checksum(peer), error)
                self.observe("peer_error", round=rnd.number, peer=_checksum(peer), error=str(error))

    def _save(self, rnd: _Round) -> None:
        # machine and progress in one transaction: a crash leaves both old or both new. The
        # update (the bulk of a snapshot, fixed once in) is written once, with the first
        # snapshot that has it: rewriting it on every save cost half a round's step time.
        items = {
            f"{rnd.number}/machine": rnd.machine.snapshot(update=False),
            f"{rnd.number}/progress": msgspec.msgpack.encode(rnd.progress),
        }
        update = rnd.machine.update_bytes
        if update is not None and not rnd.update_saved:
            items[f"{rnd.number}/update"] = update
        self.store.put_many("round", items)
        rnd.update_saved = update is not None

    async def _perform(self, rnd: _Round, actions: list[Action], *, resumed: bool = False) -> None:
        """Carry out the machine's actions in order. A transaction the market refuses (we were
        too late, say) ends this batch: the chain's next facts tell the machine we missed out.

        The machine emits each posting once, and it is persisted before it is performed, so
        only a batch redone after a restart (`resumed`) may find its transactions on-chain
        already: only then are they looked up first."""
        try:
            for action in actions:
                await self._perform_one(rnd, action, actions, resumed)
        except TransactionReverted as refused:
            log.error("%s round %d: %s", self.account, rnd.number, refused)
            self.observe("refused", round=rnd.number, reason=refused.reason)

    async def _perform_one(
        self, rnd: _Round, action: Action, batch: list[Action], resumed: bool
    ) -> None:
        number = rnd.number
        if isinstance(action, SendShares):
            await self._send_share(rnd, action)
        elif isinstance(action, PostCommitment):
            if not resumed or (
                await self._chain(self.market.status, self.task, number, self.account)
                < STATUS_COMMITTED
            ):
                await self._chain(
                    self.market.commit_shares,
                    self.task,
                    number,
                    action.mask_public,
                    action.shares_root,
                    action.points,
                    self.account,
                )
                self.observe("committed", round=number)
        elif isinstance(action, PostSettle):
            if not resumed or not await self._chain(
                self.market.settled, self.task, number, self.account
            ):
                accused = sum(1 << rnd.members_int.index(d) for d in action.accused)
                # each complaint carries a deposit: paid to a dealer that answers it, refunded
                # (`_collect`) when the dealer does not
                deposit = len(action.accused) * self.config.reward_per_do
                await self._chain(
                    self.market.settle, self.task, number, accused, self.account, deposit
                )
                self.observe("settled", round=number, accused=len(action.accused))
        elif isinstance(action, PostChunk):
            chunks = [a for a in batch if isinstance(a, PostChunk)]
            if self.config.data_path == DATA_PATH_BLOB:
                if action is chunks[0]:
                    await self._post_blobs(number, chunks, resumed)
                if action is chunks[-1]:
                    self.observe("submitted", round=number)
                return
            if action is chunks[0]:  # chunks on-chain already (before a restart) are skipped
                rnd.chunks_done = (
                    await self._chain(self.market.chunk_count, self.task, number, self.account)
                    if resumed
                    else 0
                )
            if action.chunk_index >= rnd.chunks_done:
                self._check_drop(number, f"chunk{action.chunk_index}")
                await self._chain(
                    self.market.submit,
                    self.task,
                    number,
                    action.chunk_index,
                    action.words,
                    self.account,
                )
                self.observe("chunk", round=number, index=action.chunk_index)
            if action is chunks[-1]:
                self.observe("submitted", round=number)
        elif isinstance(action, PostUnmask):
            await self._unmask(rnd, action, resumed)
        elif isinstance(action, PostAnswer):
            await self._post_answer(rnd, action)
        else:
            self.observe(type(action).__name__.lower(), round=number)

    async def _post_blobs(self, number: int, chunks: list[PostChunk], resumed: bool) -> None:
        """A blob task's update: the machine's words again, cut into transactions of full
        blobs (docs/interfaces.md §3b); chunks already on-chain (before a restart) are skipped."""
        words = [w for chunk in chunks for w in chunk.words]
        done = (
            await self._chain(self.market.chunk_count, self.task, number, self.account)
            if resumed
            else 0
        )
        for index, chunk in enumerate(blob_chunks(words)):
            if index < done:
                continue
            self._check_drop(number, f"chunk{index}")
            await self._chain(
                self.market.submit_blobs, self.task, number, index, chunk, self.account
            )
            self.observe("chunk", round=number, index=index)

    async def _unmask(self, rnd: _Round, action: PostUnmask, resumed: bool) -> None:
        number = rnd.number
        if resumed or rnd.before_unmask is None:
            status, result = await self._chain(self._status_and_result, number)
        else:  # read with the statuses as UNMASK opened, just before the machine chose these
            (status, result), rnd.before_unmask = rnd.before_unmask, None
        if status >= STATUS_UNMASKED or result != GROUP_PENDING:
            return
        reveals = [
            (_checksum(r.dealer), r.kind, r.share, r.blind, r.proof, r.points)
            for r in action.reveals
        ]
        try:
            await self._chain(self.market.unmask, self.task, number, reveals, self.account)
        except TransactionReverted as error:
            # the group's t-th message may have landed just before ours: nothing is lost
            if await self._chain(self._group_result, number) == GROUP_PENDING:
                raise
            log.info("%s: unmask not needed any more (%s)", self.account, error.reason)
            return
        self.observe("unmasked", round=number)

    # -- shares over the peer channels ------------------------------------------------------

    async def _send_share(self, rnd: _Round, action: SendShares) -> None:
        peer = _checksum(action.to)
        if peer in rnd.acked:
            return
        # A channel that carried an earlier round's delivery is used again (a peer serves every
        # frame of a connection); one the peer closed since is dropped and dialled afresh, once.
        for fresh in (False, True) if action.to in self._channels else (True,):
            try:
                reply = await self._exchange(peer, action, fresh)
            except (ChannelError, DecodeError, OSError, trio.TooSlowError, ValueError) as error:
                await self._drop_channel(action.to)
                if fresh:
                    log.info("%s: share to %s not delivered yet: %r", self.account, peer, error)
                continue
            if isinstance(reply, ShareAck) and reply.shares_root == action.delivery.shares_root:
                rnd.acked.add(peer)
            break
        if peer not in rnd.acked:
            failed = rnd.failed_sends.get(peer, 0)
            rnd.failed_sends[peer] = failed + 1
            wait = min(self.settings.share_retry * 2**failed, self.settings.share_retry_max)
            rnd.retry_at[peer] = trio.current_time() + wait

    async def _exchange(self, peer: str, action: SendShares, fresh: bool) -> Any:
        """Send one delivery and read the peer's reply, over a new channel or the open one."""
        with trio.fail_after(self.settings.ack_timeout):
            if fresh:
                host, port = (await self._endpoint(peer)).rsplit(":", 1)
                self._channels[action.to] = await open_channel(
                    host, int(port), self.keys, self.me, action.to, self._registry, task=self.task
                )
            channel = self._channels[action.to]
            await channel.send(encode(action.delivery))
            return decode(await channel.receive())

    async def _drop_channel(self, peer: int) -> None:
        channel = self._channels.pop(peer, None)
        if channel is not None:
            await trio.aclose_forcefully(channel)

    async def _resend_shares(self, rnd: _Round) -> None:
        """Retry deliveries peers have not acknowledged (they may have started late, or restarted
        and lost what we sent before)."""
        if rnd.machine.state not in (State.SHARED, State.SUBMITTED):
            return
        if len(rnd.acked) >= len(rnd.members) - 1:
            return  # every peer has ours (checked on every poll: no deliveries rebuilt)
        now = trio.current_time()
        for action in rnd.machine.deliveries():
            peer = _checksum(action.to)
            if peer not in rnd.acked and now >= rnd.retry_at.get(peer, 0.0):
                await self._send_share(rnd, action)

    async def _handle_peer(self, peer: int, channel: PeerChannel) -> None:
        """Serve a peer's deliveries, as many as it sends over this channel (a dealer keeps its
        channel for the next round); one left idle past the read timeout is closed quietly."""
        try:
            await self._serve_deliveries(channel)
        except ReadTimeout:
            return

    async def _serve_deliveries(self, channel: PeerChannel) -> None:
        peer = channel.peer_address
        async for payload in channel:
            try:
                message = decode(payload)
            except DecodeError as error:
                raise MalformedFrame(f"undecodable share message: {error}") from None
            if not isinstance(message, ShareDelivery) or message.task != self.task:
                raise MalformedFrame("only share deliveries for this task are accepted")
            rnd = self.rounds.get(message.round)
            if rnd is None:
                # a peer may open the round a moment before us; keep a bounded number of
                # deliveries until our machine exists, and only for the round that can be next
                if len(self._early) >= _MAX_EARLY or message.round > self._next_round():
                    raise MalformedFrame("share delivery for a round that is not open")
                self._early.append((peer, message))
            else:
                await self._deliver(rnd, peer, message)
                if rnd.settle_until is not None:
                    self._wake_up()  # SETTLE waits for deliveries: maybe this was the last
            ack = ShareAck(
                task=message.task,
                round=message.round,
                dealer=message.dealer,
                holder=message.holder,
                shares_root=message.shares_root,
            )
            await channel.send(encode(ack))

    def _next_round(self) -> int:
        return max(self.rounds, default=-1) + 1

    async def _deliver(self, rnd: _Round, peer: int, delivery: ShareDelivery) -> None:
        if _finished(rnd.machine):
            return
        actions = rnd.machine.send(ShareReceived(sender=peer, delivery=delivery))
        self._save(rnd)
        self._log_problems(rnd)
        await self._perform(rnd, actions)

    # -- after the task ---------------------------------------------------------------------

    async def _collect(self) -> None:
        """Withdraw what the market credited us, and our bond once the task is over; take back
        the deposits of our complaints no dealer answered, and withdraw what the court credited
        us (those refunds, and complainers' deposits for complaints we answered)."""
        token = self.config.token
        reads = [("bond_of", (self.task, self.account)), ("credits", (token, self.account))]
        bond, owed = await self._chain(self.market.views, reads)
        if bond:
            # the bond comes back as credits (or goes to the model owner): read them again
            await self._chain(self.market.release_bond, self.task, self.account, self.account)
            owed = await self._chain(self.market.credits, self.account, token)
        if owed:
            await self._chain(self.market.withdraw, self.account, token)
            self.withdrawn_wei += owed
            self.observe("withdrew", amount=owed, token=token if token != ETH else "ETH")
        await self._refund_complaints()
        court = await self._chain(self.market.court_credits, self.account, token)
        if court:
            await self._chain(self.market.withdraw_court, self.account, token)
            self.court_wei += court
            self.observe("withdrew_court", amount=court)

    async def _refund_complaints(self) -> None:
        for number, rnd in self.rounds.items():
            settlement = rnd.machine.settlement()
            for dealer in () if settlement is None else settlement.accused:
                dealer = _checksum(dealer)
                still = await self._chain(
                    self.market.complaint_open, self.task, number, dealer, self.account
                )
                if still and not await self._chain(
                    self.market.refunded, self.task, number, dealer, self.account
                ):
                    await self._chain(
                        self.market.refund, self.task, number, dealer, self.account, self.account
                    )


# where a round stands on-chain, from one data owner's view of it
_BEFORE, _SHARE, _SETTLE, _SUBMIT, _UNMASK, _RESOLVED = range(6)
_PHASE_STAGE = {
    PHASE_SHARE: _SHARE,
    PHASE_SETTLE: _SETTLE,
    PHASE_SUBMIT: _SUBMIT,
    PHASE_UNMASK: _UNMASK,
}


def _stage(info: Any, number: int) -> int:
    if info.round < number or info.phase in (PHASE_REGISTER, PHASE_DRAW):
        return _BEFORE
    if info.round > number:
        return _RESOLVED
    return _PHASE_STAGE.get(info.phase, _RESOLVED)


def _poll_calls(wanted: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """`Market.poll`'s extra calls for `_poll_views`' `(view, round, args[, contract])`."""
    return [(view, *call) for view, _, *call in wanted]


def _finished(machine: RoundMachine) -> bool:
    return machine.state in (State.DONE, State.FAILED, State.ERROR)


def _submitters(members: Sequence[str], statuses: Sequence[int]) -> tuple[int, ...]:
    """The members whose status says they submitted, as addresses."""
    return tuple(
        int(member, 16)
        for member, status in zip(members, statuses, strict=True)
        if status >= STATUS_SUBMITTED
    )


def _quads(values: list[Any]) -> list[tuple[Any, Any, Any, Any]]:
    return list(zip(values[0::4], values[1::4], values[2::4], values[3::4], strict=True))


def _quant(config: TaskConfig) -> QuantConfig:
    return QuantConfig(
        lane_bits=config.lane_bits, scale_bits=config.scale_bits, clip_norm=config.clip_norm
    )


# cached: a keccak per call, and a data owner checksums every peer on every poll while it
# re-offers unacknowledged shares (a profile of the demo on anvil found this its largest cost);
# bounded, since an unauthenticated handshake names the address it claims
@functools.lru_cache(maxsize=1024)
def _checksum(address: int) -> str:
    return to_checksum_address(address.to_bytes(20, "big"))
