"""Share deliveries between a data owner and its group peers, over authenticated channels.

`Deliveries` owns the channels to peers, their acknowledgements and the back-off of re-offers.
Outgoing, `offer` hands it a round's deliveries: it sends each, and offers the ones a peer has
not acknowledged again after `share_retry` seconds, then twice as long each time up to
`share_retry_max`, until `withdraw` (a peer still busy, training say, is not asked for a fresh
Noise handshake on every poll). Incoming, `serve` reads a peer's deliveries and hands each to
the round's driver as a `ShareIn`; the acknowledgement goes back only once the driver has fed
and persisted it. It reports `Acknowledged` to the driver and never touches a round machine or
the store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from actors.channels import (
    ChannelError,
    ChannelKeys,
    MalformedFrame,
    PeerChannel,
    ReadTimeout,
    open_channel,
)
from actors.roles.offers import Offers
from protocol.errors import DecodeError
from protocol.messages import ShareAck, ShareDelivery, decode, encode
from protocol.round import SendShares

log = logging.getLogger("omnilytics.deliveries")


@dataclass(frozen=True, slots=True)
class ShareIn:
    """A peer's delivery for the driver to feed; `done` is sent once it is fed and persisted
    (then the dealer gets its acknowledgement)."""

    sender: int
    delivery: ShareDelivery
    done: trio.MemorySendChannel[None]


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """Peer `peer` acknowledged our delivery of round `round`."""

    round: int
    peer: int


@dataclass(frozen=True, slots=True)
class Offered:
    """Every peer had a first try at our deliveries of round `round`: a dealer that commits
    afterwards has tried to deliver (its commitment waits for this)."""

    round: int


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    share_retry: float = 0.2
    share_retry_max: float = 2.0
    ack_timeout: float = 5.0
    # a delivery for a round we have not opened yet waits this long for it to open (a peer
    # may open the round a moment before us), then the frame is refused and the dealer retries
    early_wait: float = 2.0


# `Route(round, wait)`: the round's inbox once its driver runs (waiting at most `wait` seconds
# for it), ROUND_OVER for a round this data owner finished (a late delivery is acknowledged and
# dropped), or None (never opened in time: the frame is refused)
ROUND_OVER = "over"
Route = Callable[[int, float], Awaitable["trio.MemorySendChannel[Any] | str | None"]]
Registry = Callable[[int], Awaitable[bytes | None]]
Endpoint = Callable[[int], Awaitable[str]]


class Deliveries:
    """The share transport of one data owner in one task."""

    def __init__(
        self,
        *,
        task: int,
        me: int,
        keys: ChannelKeys,
        registry: Registry,
        endpoint: Endpoint,
        route: Route,
        settings: DeliverySettings,
    ) -> None:
        self.task, self.me, self.keys = task, me, keys
        self._registry, self._endpoint, self._route = registry, endpoint, route
        self.settings = settings
        self._channels: dict[int, PeerChannel] = {}  # open channels to peers, by address
        self._locks: dict[int, trio.Lock] = {}  # one exchange at a time on a peer's channel
        self._offers = Offers("Deliveries")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the offers' tasks until cancelled; then close every channel."""
        try:
            await self._offers.run(task_status=task_status)
        finally:
            with trio.CancelScope(shield=True):  # we are being cancelled: close them anyway
                for peer in list(self._channels):
                    await self._drop_channel(peer)

    # -- outgoing ----------------------------------------------------------------------------

    def offer(
        self, round: int, actions: list[SendShares], report: trio.MemorySendChannel[Any]
    ) -> None:
        """Deliver `actions` (a round's deliveries) until each is acknowledged or the round is
        withdrawn; each acknowledgement is reported on `report`."""
        self._offers.start(round, self._offer_until_acked, report, actions)

    def withdraw(self, round: int) -> None:
        """Stop offering round `round`'s deliveries (UNMASK opened: nobody needs them)."""
        self._offers.withdraw(round)

    async def _offer_until_acked(
        self, round: int, report: trio.MemorySendChannel[Any], actions: list[SendShares]
    ) -> None:
        """Each peer's delivery in a task of its own, all at once; `Offered` goes to the driver
        once every peer had its first try (acknowledged or not)."""
        left = len(actions)

        async def tried() -> None:
            nonlocal left
            left -= 1
            if left == 0:
                await report.send(Offered(round))

        async with trio.open_nursery() as nursery:
            for action in actions:
                nursery.start_soon(self._offer_one, round, action, report, tried)
            if not actions:
                await report.send(Offered(round))

    async def _offer_one(
        self,
        round: int,
        action: SendShares,
        report: trio.MemorySendChannel[Any],
        tried: Callable[[], Awaitable[None]],
    ) -> None:
        tries = 0
        while True:
            acked = await self._send(action)
            if tries == 0:
                await tried()
            if acked:
                await report.send(Acknowledged(round, action.to))
                return
            wait = min(self.settings.share_retry * 2**tries, self.settings.share_retry_max)
            tries += 1
            await trio.sleep(wait)

    async def _send(self, action: SendShares) -> bool:
        """Offer one delivery; True once the peer acknowledged it. A channel that carried an
        earlier delivery is used again (a peer serves every frame of a connection); one the
        peer closed since is dropped and dialled afresh, once."""
        peer = action.to
        lock = self._locks.setdefault(peer, trio.Lock())
        async with lock:
            for fresh in (False, True) if peer in self._channels else (True,):
                try:
                    reply = await self._exchange(action, fresh)
                except (ChannelError, DecodeError, OSError, trio.TooSlowError, ValueError) as error:
                    await self._drop_channel(peer)
                    if fresh:
                        log.info("share to %#x not delivered yet: %r", peer, error)
                    continue
                return (
                    isinstance(reply, ShareAck) and reply.shares_root == action.delivery.shares_root
                )
        return False

    async def _exchange(self, action: SendShares, fresh: bool) -> Any:
        """Send one delivery and read the peer's reply, over a new channel or the open one."""
        with trio.fail_after(self.settings.ack_timeout):
            if fresh:
                host, port = (await self._endpoint(action.to)).rsplit(":", 1)
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

    # -- incoming ----------------------------------------------------------------------------

    async def serve(self, peer: int, channel: PeerChannel) -> None:
        """Serve a peer's deliveries, as many as it sends over this channel (a dealer keeps its
        channel for the next round); one left idle past the read timeout is closed quietly. A
        frame that is not a delivery for this task, or for a round that does not open in
        time, drops the channel (the server keeps running)."""
        try:
            async for payload in channel:
                await self._receive(peer, channel, payload)
        except ReadTimeout:
            return

    async def _receive(self, peer: int, channel: PeerChannel, payload: bytes) -> None:
        try:
            message = decode(payload)
        except DecodeError as error:
            raise MalformedFrame(f"undecodable share message: {error}") from None
        if not isinstance(message, ShareDelivery) or message.task != self.task:
            raise MalformedFrame("only share deliveries for this task are accepted")
        inbox = await self._route(message.round, self.settings.early_wait)
        if inbox is None:
            raise MalformedFrame("share delivery for a round that is not open")
        if inbox != ROUND_OVER:
            done_send, done = trio.open_memory_channel[None](1)
            try:
                await inbox.send(ShareIn(peer, message, done_send))
                async with done:
                    await done.receive()
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.EndOfChannel):
                # the driver ended before it fed this one: refused, the dealer offers it again
                raise MalformedFrame("share delivery for a round that just ended") from None
        ack = ShareAck(
            task=message.task,
            round=message.round,
            dealer=message.dealer,
            holder=message.holder,
            shares_root=message.shares_root,
        )
        await channel.send(encode(ack))
