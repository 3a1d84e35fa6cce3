"""The data owner actor: registers, follows the task round by round, and collects its pay.

It is three tasks and a transport: the chain watcher (this module) polls the task and hands
each live round's driver its `ChainNews`; each round's driver (`actors.roles.round_driver`) is the
only feeder of that round's `RoundMachine` and has its actions performed
(`actors.roles.round_actions`); `actors.roles.deliveries` carries the shares between peers and hands
incoming ones to the drivers. Every step that sends something is persisted before its actions
run, so a killed and restarted data owner resumes without dealing fresh secrets or posting
anything twice (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import trio

from actors.chain.aio import on_chain
from actors.chain.base import NodeUnavailable, TransactionReverted
from actors.chain.blocks import Wakeup, ring_on_blocks
from actors.chain.codec import checksum
from actors.chain.market import ETH, Market, PhaseInfo
from actors.chain.watch import Polled, Watch, watch
from actors.channels import ChannelKeys, serve_channels
from actors.roles.deliveries import ROUND_OVER, Deliveries, DeliverySettings
from actors.roles.direct_link import DirectLink
from actors.roles.round_actions import RoundActions
from actors.roles.round_driver import (
    ChainNews,
    DataOwnerSettings,
    DriverContext,
    DroppedOut,
    RoundDriver,
)
from actors.roles.store import StateStore
from protocol import bn254
from protocol.constants import (
    DATA_PATH_DIRECT,
    PHASE_CANCELLED,
    PHASE_DRAW,
    PHASE_ENDED,
    PHASE_REGISTER,
    PHASE_SHARE,
)
from protocol.terms import check_challenge_fee, check_terms

__all__ = ["DataOwner", "DataOwnerSettings", "DroppedOut", "Learner"]

log = logging.getLogger("omnilytics.do")

Observer = Callable[..., None]
# A wait for news hands its latest poll back after this long even when nothing changed.
_WATCH_HEARTBEAT = 2.0


class Learner(Protocol):
    """A data owner's local training: the round's public model bytes in, an update out."""

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        """Train on the private data; return (update = new - old public vector, sample count)."""
        ...


class DataOwner:
    """One data owner taking part in one task until it ends."""

    # the share transport and the chain side of a round (tests and attack demos subclass them)
    deliveries_type: type[Deliveries] = Deliveries
    actions_type: type[RoundActions] = RoundActions
    direct_type: type[DirectLink] = DirectLink

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
        self.config = None
        self.rounds: dict[int, RoundDriver] = {}
        self._opening: dict[int, trio.Event] = {}  # rounds a delivery waits for
        # fixed on-chain once set: a peer's channel key and endpoint when it registers
        self._peer_keys: dict[int, bytes] = {}
        self._endpoints: dict[int, str] = {}
        # polls wait in a worker thread where the chain client may be called from one
        chain = market.chain
        self._threaded_polls = chain.name != "boa" and getattr(chain, "latency", None) is None
        # the embedded chain rings it at each block: a wait for news ends then
        self._wakeup = Wakeup()
        ring_on_blocks(chain, self._wakeup)
        self._seen_poll: tuple[list[Any], PhaseInfo, list[Any]] | None = None
        self.withdrawn_wei = 0
        self.court_wei = 0  # withdrawn from the court: complaint deposits paid or refunded to us
        self.desk_wei = 0  # withdrawn from the desk: challenge fees we earned
        self.plaintext: dict[int, np.ndarray] = {}  # round -> submitted lanes (keep_plaintext)
        for key, raw in store.items("plaintext"):
            self.plaintext[int(key)] = np.load(io.BytesIO(raw), allow_pickle=False)
        s = self.settings
        self.deliveries = self.deliveries_type(
            task=task,
            me=self.me,
            keys=self.keys,
            registry=self._registry,
            endpoint=self._endpoint,
            route=self._route,
            settings=DeliverySettings(s.share_retry, s.share_retry_max, s.ack_timeout),
        )
        # a direct task's link to the model owner (its model, our updates)
        self.direct = self.direct_type(
            market=market,
            task=task,
            me=self.me,
            keys=self.keys,
            registry=self._registry,
            settings=DeliverySettings(s.share_retry, s.share_retry_max, s.ack_timeout),
            observe=self.observe,
        )
        self._ctx: DriverContext | None = None

    def observe(self, what: str, **fields: Any) -> None:
        self._observe("do", self.account, what, **fields)

    def _chain(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return on_chain(self.market.chain, fn, *args, **kwargs)

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
        if address == self.direct.owner:  # the model owner of a direct task
            return await self.direct.owner_key()
        key = await self._chain(self.market.channel_key, self.task, checksum(address))
        if key == bytes(32):
            return None  # not registered (yet): ask again next time
        self._peer_keys[address] = key
        return key

    async def _endpoint(self, peer: int) -> str:
        if peer not in self._endpoints:
            self._endpoints[peer] = await self._chain(
                self.market.endpoint, self.task, checksum(peer)
            )
        return self._endpoints[peer]

    async def _route(self, round: int, wait: float) -> Any:
        """The inbox of round `round`'s driver for a peer's delivery, waiting (at most `wait`
        seconds) for a round that may open any moment now: a peer may open it just before us."""
        if round not in self.rounds and round == max(self.rounds, default=-1) + 1:
            opening = self._opening.setdefault(round, trio.Event())
            with trio.move_on_after(wait):
                await opening.wait()
        driver = self.rounds.get(round)
        if driver is None:
            return None
        return ROUND_OVER if driver.finished else driver.inbox

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
                await nursery.start(self.deliveries.run)
                port = await nursery.start(self._serve)
                if self.config.data_path == DATA_PATH_DIRECT:
                    await nursery.start(self.direct.run)
                    # the model owner's channel key and endpoint, before we commit to the task
                    terms = await self.direct.wait_for_terms(self._registration_open)
                    if not await self._chain(self.market.is_registered, self.task, self.account):
                        check_challenge_fee(terms.fee, self.settings.join)
                await self._register(port)
                task_status.started()
                await self._follow_task(nursery)
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # a round's driver ran into its injected fault: the data owner vanishes
            _, rest = group.split(DroppedOut)
            if rest is not None:
                raise rest from None
            return
        await self._collect()

    async def _serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED):
        saved = self.store.get("identity", "port")
        port = int(saved) if saved else self.settings.port
        await serve_channels(
            self.settings.host,
            port,
            self.keys,
            self.me,
            self._registry,
            self.deliveries.serve,
            task=self.task,
            task_status=task_status,
        )

    async def _registration_open(self) -> bool:
        info = await self._chain(self.market.phase, self.task)
        return info.phase == PHASE_REGISTER

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

    # -- the chain watcher ---------------------------------------------------------------

    async def _follow_task(self, nursery: trio.Nursery) -> None:
        """Poll the task until it is over for us, handing each live round its news."""
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

    def _live(self) -> list[RoundDriver]:
        return [d for _, d in sorted(self.rounds.items()) if not d.finished]

    def _watch_views(self) -> list[tuple[int, str, tuple[Any, ...]]]:
        """`(round, name, call)` for every view a live round wants with each poll."""
        return [(d.number, name, call) for d in self._live() for name, call in d.watch_views()]

    async def _wait_for_news(
        self, info: PhaseInfo, interval: float, ceiling: float
    ) -> tuple[list[Any], Polled] | None:
        """Wait until the chain has news for us (`actors.chain.watch`): the poll that brought
        it, with the views it read; None on the embedded chain after its next block or one
        interval, whichever comes first (the caller polls itself: `actors.chain.blocks`)."""
        if not self._threaded_polls:
            await self._wakeup.wait(interval)
            return None
        wanted = self._watch_views()
        seen = self._seen_poll
        due = [d for d in (driver.due() for driver in self._live()) if d is not None]
        if info.phase not in (PHASE_ENDED, PHASE_CANCELLED):
            due.append(info.deadline + self.settings.advance_grace)
        plan = Watch(
            baseline=(seen[1], seen[2]) if seen is not None and seen[0] == wanted else None,
            chain_due=min(due, default=None),
            interval=interval,
            ceiling=ceiling,
            timeout=_WATCH_HEARTBEAT,
        )
        poll = functools.partial(self.market.poll, self.task, [c for _, _, c in wanted])
        stop = threading.Event()
        try:
            polled = await trio.to_thread.run_sync(watch, poll, plan, stop, abandon_on_cancel=True)
        finally:
            stop.set()
        return None if polled is None else (wanted, polled)

    async def _follow_step(
        self, nursery: trio.Nursery, news: tuple[list[Any], Polled] | None = None
    ) -> PhaseInfo | None:
        """One look at the chain (a poll of ours, or the news a wait brought): hand it to every
        live round; the task's phase, or None once the task is over for us."""
        if news is None:
            wanted = self._watch_views()
            polled = await self._chain(self.market.poll, self.task, [c for _, _, c in wanted])
        else:
            wanted, polled = news
        info, now, values = polled
        self._seen_poll = (wanted, info, values)
        if info.phase in (PHASE_ENDED, PHASE_CANCELLED) and not self._live():
            return None
        if info.phase not in (PHASE_REGISTER, PHASE_DRAW):
            if info.round not in self.rounds and self._takes_part(info):
                await self._open_round(info.round, nursery)
            by_round: dict[int, dict[str, Any]] = {}
            for (number, name, _), value in zip(wanted, values, strict=True):
                by_round.setdefault(number, {})[name] = value
            for driver in self._live():
                news = ChainNews(info, now, by_round.get(driver.number, {}))
                # (a round that finished meanwhile has closed its inbox)
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await driver.inbox.send(news)
        await self._nudge(info, now)
        return info

    async def _nudge(self, info: PhaseInfo, now: int) -> None:
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

    def _takes_part(self, info: PhaseInfo) -> bool:
        # A round we find already past SHARE on a fresh start is one we cannot join any more.
        stored = self.store.get("round", f"{info.round}/machine")
        return stored is not None or info.phase == PHASE_SHARE

    async def _context(self) -> DriverContext:
        if self._ctx is None:
            # our group is fixed when registration closes, before any round opens
            group = await self._chain(self.market.group_of, self.task, self.account)
            self._ctx = DriverContext(
                market=self.market,
                account=self.account,
                task=self.task,
                config=self.config,
                group=group,
                store=self.store,
                settings=self.settings,
                deliveries=self.deliveries,
                observe=self.observe,
                learner=self.learner,
                train_limiter=self.train_limiter,
                randbytes=self.randbytes,
                plaintext=self.plaintext,
                actions_type=self.actions_type,
                direct=self.direct if self.config.data_path == DATA_PATH_DIRECT else None,
            )
        return self._ctx

    async def _open_round(self, number: int, nursery: trio.Nursery) -> None:
        """Start round `number`'s driver (from the store after a restart); deliveries that
        arrived for it meanwhile are handed over once it is open."""
        self.observe("opening", round=number)
        ctx = await self._context()
        members, model_hash = await self._chain(self._round_facts, ctx.group, number)
        stored = self.store.get("round", f"{number}/machine")
        driver = RoundDriver(ctx, number, members, model_hash, stored)
        await nursery.start(driver.run)
        self.rounds[number] = driver
        if (opening := self._opening.pop(number, None)) is not None:
            opening.set()

    def _round_facts(self, group: int, number: int) -> tuple[tuple[str, ...], bytes]:
        """A round's group members and model hash; the first time, also every member's channel
        key and endpoint (the share deliveries need them), all in one more request."""
        members, model_hash = self.market.views(
            [("group_members", (self.task, group)), ("round_model_hash", (self.task, number))]
        )
        peers = [m for m in members if int(m, 16) not in self._endpoints]
        values = self.market.views(
            [(view, (self.task, m)) for m in peers for view in ("channel_key", "endpoint")]
        )
        for member, key, endpoint in zip(peers, values[0::2], values[1::2], strict=True):
            if key != bytes(32):
                self._peer_keys[int(member, 16)] = key
                self._endpoints[int(member, 16)] = endpoint
        return members, model_hash

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
        for driver in self.rounds.values():
            await driver.actions.refund_complaints()
        court = await self._chain(self.market.court_credits, self.account, token)
        if court:
            await self._chain(self.market.withdraw_court, self.account, token)
            self.court_wei += court
            self.observe("withdrew_court", amount=court)
        if self.config.data_path == DATA_PATH_DIRECT:
            # challenge fees we earned by answering on-chain
            fees = await self._chain(self.market.desk_credits, self.account, token)
            if fees:
                await self._chain(self.market.withdraw_desk, self.account, token)
                self.desk_wei += fees
                self.observe("withdrew_fees", amount=fees)
