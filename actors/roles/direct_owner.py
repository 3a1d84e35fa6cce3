"""The model owner's part in a direct task (docs/interfaces.md §3c, §11): its channel endpoint
and delivery terms, the models it serves, and DELIVERY.

`start` serves the data owners' channels (`actors.roles.update_inbox`) and, in REGISTER, sets
the task's delivery terms: the channel key and the endpoint data owners dial, and the challenge
fee. SUBMIT closes early only once every submitter's words are in. At DELIVERY the model owner
challenges each committed data owner whose words it lacks, paying the fee each time, and closes
DELIVERY as soon as no challenge is open; `advance` then excludes whoever did not answer.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import trio

from actors.chain.aio import on_chain
from actors.chain.base import TransactionReverted
from actors.chain.blocks import Wakeup
from actors.chain.codec import checksum
from actors.chain.market import Market
from actors.channels import ChannelKeys, bind_listeners, serve_channels
from actors.roles.store import StateStore
from actors.roles.update_inbox import UpdateInbox
from protocol.constants import PHASE_DELIVERY, PHASE_REGISTER, Challenge
from protocol.encoding import PackedWords

log = logging.getLogger("omnilytics.mo")


class DirectOwner:
    """One model owner's endpoint and DELIVERY for one direct task."""

    def __init__(
        self,
        market: Market,
        account: str,
        task: int,
        words: int,
        fee: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        store: StateStore | None = None,
        poll_interval: float = 0.05,
        observe: Callable[..., None] | None = None,
        wakeup: Wakeup | None = None,
    ) -> None:
        """`wakeup`: the model owner's bell, rung by each update we accept (its wait for the
        last one ends then), and our wait in DELIVERY ends when it rings."""
        self.market, self.account, self.task, self.fee = market, account, task, fee
        self.host, self.port, self.store, self.poll_interval = host, port, store, poll_interval
        self._observe = observe or (lambda *args, **kwargs: None)
        self.keys = self._load_keys()
        self._wakeup = wakeup or Wakeup()
        self.inbox = UpdateInbox(
            market, task, words, store=store, observe=self._observe, on_update=self._wakeup.ring
        )
        self._peer_keys: dict[int, bytes] = {}
        self._listeners: list[trio.SocketListener] | None = None

    def _chain(self, fn: Callable[..., Any], *args: Any) -> Any:
        return on_chain(self.market.chain, fn, *args)

    def _load_keys(self) -> ChannelKeys:
        raw = None if self.store is None else self.store.get("mo-identity", "channel_key")
        if raw is not None:
            return ChannelKeys.from_private_bytes(raw)
        keys = ChannelKeys.generate()
        if self.store is not None:
            self.store.put("mo-identity", "channel_key", keys.private_bytes)
        return keys

    async def _registry(self, address: int) -> bytes | None:
        if address not in self._peer_keys:
            key = await self._chain(self.market.channel_key, self.task, checksum(address))
            if key == bytes(32):
                return None  # not registered (yet)
            self._peer_keys[address] = key
        return self._peer_keys[address]

    async def open(self) -> None:
        """Bind our endpoint (a restarted model owner binds the port it registered) and set the
        delivery terms if they are still unset: data owners dial the endpoint once they
        register, and it is served from `serve` on (they wait in its backlog until then)."""
        saved = None if self.store is None else self.store.get("mo-identity", "port")
        port = int(saved) if saved else self.port
        self._listeners, port = await bind_listeners(self.host, port)
        if self.store is not None:
            self.store.put("mo-identity", "port", str(port).encode())
        terms = await self._chain(self.market.delivery_terms, self.task)
        if terms.fee != 0:
            return
        if (await self._chain(self.market.phase, self.task)).phase != PHASE_REGISTER:
            return  # too late: the task cancels in DRAW without terms
        endpoint = f"{self.host}:{port}"
        await self._chain(
            self.market.set_delivery_terms,
            self.task,
            self.keys.public_bytes,
            endpoint,
            self.fee,
            self.account,
        )
        self._observe("delivery_terms", endpoint=endpoint, fee=self.fee)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED):
        """Serve the data owners' channels on the endpoint `open` bound, until cancelled."""
        if self._listeners is None:
            await self.open()
        serve = functools.partial(serve_channels, task=self.task, listeners=self._listeners)
        me = int(self.account, 16)
        async with trio.open_nursery() as nursery:
            await nursery.start(
                serve, self.host, 0, self.keys, me, self._registry, self.inbox.serve
            )
            task_status.started()

    def serve_model(self, round: int, model: bytes) -> None:
        """Serve `model` as round `round`'s, and take that round's updates from now on."""
        self.inbox.models[round] = model
        self.inbox.current = max(self.inbox.current, round)

    def updates(self, round: int) -> dict[int, PackedWords]:
        return self.inbox.updates(round)

    def delivered_all(self, submitted: int, round: int) -> bool:
        """Whether we hold the words of every one of the round's `submitted` data owners."""
        return len(self.inbox.updates(round)) >= submitted

    async def run_delivery(self, round: int) -> None:
        """DELIVERY: challenge each committed update we lack, close DELIVERY once no
        challenge is open, and advance the task past it."""
        await self._challenge_missing(round)
        while True:
            info, now, (open_, done) = await self._chain(self._poll, round)
            if (info.phase, info.round) != (PHASE_DELIVERY, round):
                return
            try:
                if open_ == 0 and not done:
                    await self._chain(self.market.close_delivery, self.task, round, self.account)
                    done = True
                if done or now >= info.deadline:
                    await self._chain(self.market.advance, self.task, self.account)
                    continue
            except TransactionReverted as error:
                log.info("DELIVERY of round %d not over yet: %s", round, error.reason)
            await self._wakeup.wait(self.poll_interval)

    def _poll(self, round: int) -> tuple[Any, int, list[Any]]:
        desk = self.market.desk
        calls = [
            ("round_open", (self.task, round), desk),
            ("delivery_done", (self.task, round), desk),
        ]
        return self.market.poll(self.task, calls)

    async def _challenge_missing(self, round: int) -> None:
        committed = await self._chain(self.market.committed_updates, self.task, round)
        for do in committed:
            if self.inbox.holds(round, int(do, 16)):
                continue
            state = await self._chain(self.market.challenge_state, self.task, round, do)
            if state != Challenge.NONE:
                continue  # challenged before a restart
            try:
                await self._chain(self.market.challenge, self.task, round, do, self.account)
            except TransactionReverted as error:
                # its words went on-chain meanwhile, or DELIVERY is closing
                log.info("no challenge of %s: %s", do, error.reason)
                continue
            why = "refused" if int(do, 16) in self.inbox.refused.get(round, ()) else "missing"
            log.warning("round %d: challenged %s (%s delivery)", round, do, why)
            self._observe("challenged", round=round, do=do, why=why, fee=self.fee)
