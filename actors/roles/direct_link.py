"""A data owner's link to its model owner on a direct task (docs/interfaces.md §3c, §11).

The model owner registered a channel key and an endpoint with the task (the desk's terms). Over
a channel authenticated by that key, a data owner fetches each round's public model, checked
against the round's model hash, and delivers its masked update once it committed the update's
digest on-chain: `offer` streams it in bounded parts (`protocol.direct`) until the model owner
accepts it or the round withdraws it, with the back-off of share deliveries. A model owner that
refuses, or never answers, gets no second chance to hide that: it must challenge, and the data
owner answers on-chain (`actors.roles.round_actions`).

One channel carries every exchange, round after round, as a dealer's channel to a peer does
(`actors.roles.deliveries`): a Noise handshake for every model fetch and every delivery cost
the demo's ten data owners 100-200 ms at the start of each round, where the model's fetch holds
up the training. An exchange that fails, or is cancelled halfway, drops the channel; one the
model owner closed since (it idled past its read timeout) is dialled afresh, once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from actors.chain.aio import on_chain
from actors.chain.delivery import DeliveryTerms
from actors.chain.market import Market
from actors.channels import ChannelError, ChannelKeys, PeerChannel, Registry, open_channel
from actors.roles.deliveries import DeliverySettings
from actors.roles.offers import Offers
from protocol.direct import (
    PART_WORDS,
    ModelAssembler,
    ModelPart,
    ModelRequest,
    StreamError,
    UpdateReply,
    decode_direct,
    encode_direct,
    update_parts,
)
from protocol.encoding import PackedWords
from protocol.errors import DecodeError

log = logging.getLogger("omnilytics.direct")

T = TypeVar("T")

# Seconds an exchange may take beyond `ack_timeout` per part of 2,000 words each way: a
# 10 MB update is 160 parts.
_PER_PART = 0.05


class ModelUnavailable(Exception):
    """The model owner's endpoint did not serve the round's model in time."""


class DirectLink:
    """One data owner's channel to the model owner of one direct task."""

    def __init__(
        self,
        *,
        market: Market,
        task: int,
        me: int,
        keys: ChannelKeys,
        registry: Registry,
        settings: DeliverySettings,
        observe: Callable[..., None],
    ) -> None:
        self.market, self.task, self.me, self.keys = market, task, me, keys
        self._registry, self.settings, self._observe = registry, settings, observe
        self.owner: int | None = None
        self.terms: DeliveryTerms | None = None
        self._offers = Offers("DirectLink")
        self._lock = trio.Lock()  # one exchange at a time with the model owner
        self._channel: PeerChannel | None = None  # the open one, kept between exchanges

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the offers' tasks until cancelled; then close the channel."""
        try:
            await self._offers.run(task_status=task_status)
        finally:
            await self._drop_channel()

    async def wait_for_terms(self, until: Callable[[], Awaitable[bool]]) -> DeliveryTerms:
        """The model owner's delivery terms, once it set them (polled while `until` says to
        go on: registration is open)."""
        wait = self.settings.share_retry
        while True:
            owner, terms = await on_chain(self.market.chain, self._read_terms)
            if terms.fee:
                self.owner, self.terms = int(owner, 16), terms
                return terms
            if not await until():
                raise ModelUnavailable("the model owner set no delivery terms in REGISTER")
            await trio.sleep(wait)
            wait = min(2 * wait, self.settings.share_retry_max)

    def _read_terms(self) -> tuple[str, DeliveryTerms]:
        return self.market.owner(self.task), self.market.delivery_terms(self.task)

    async def owner_key(self) -> bytes | None:
        """The channel key the model owner registered (for the channel's registry)."""
        if self.terms is None:
            owner, terms = await on_chain(self.market.chain, self._read_terms)
            if not terms.fee:
                return None
            self.owner, self.terms = int(owner, 16), terms
        return self.terms.channel_key

    async def _dial(self) -> PeerChannel:
        if self.terms is None or self.owner is None:
            await self.owner_key()
        if self.terms is None or self.owner is None:
            raise ModelUnavailable("the model owner set no delivery terms")
        host, port = self.terms.endpoint.rsplit(":", 1)
        return await open_channel(
            host, int(port), self.keys, self.me, self.owner, self._registry, task=self.task
        )

    # -- the round's model -----------------------------------------------------------------

    async def fetch_model(
        self, round: int, model_hash: bytes, max_bytes: int, give_up: float
    ) -> bytes:
        """The round's public model from the model owner's endpoint, checked against
        `model_hash`; retried with back-off for `give_up` seconds, then `ModelUnavailable`."""
        wait, last = self.settings.share_retry, "no answer"
        with trio.move_on_after(give_up):
            while True:
                try:
                    async with self._lock:
                        return await self._fetch(round, model_hash, max_bytes)
                except (ChannelError, DecodeError, StreamError, OSError, ValueError) as error:
                    last = f"{type(error).__name__}: {error}"
                    log.info("round %d model not fetched yet: %s", round, last)
                except trio.TooSlowError:
                    last = "timed out"
                await trio.sleep(wait)
                wait = min(2 * wait, self.settings.share_retry_max)
        raise ModelUnavailable(f"round {round}'s model: {last}")

    async def _fetch(self, round: int, model_hash: bytes, max_bytes: int) -> bytes:
        parts = -(-max_bytes // (PART_WORDS * 32))

        async def exchange(channel: PeerChannel) -> bytes:
            await channel.send(encode_direct(ModelRequest(task=self.task, round=round)))
            assembler = ModelAssembler(self.task, round, model_hash, max_bytes)
            while True:
                message = decode_direct(await channel.receive())
                if not isinstance(message, ModelPart):
                    raise StreamError(f"a {type(message).__name__} for a model request")
                model = assembler.feed(message)
                if model is not None:
                    return model

        return await self._exchange(exchange, self.settings.ack_timeout + _PER_PART * parts)

    async def _exchange(self, exchange: Callable[[PeerChannel], Awaitable[T]], limit: float) -> T:
        """`exchange` over the open channel, or a new one; within `limit` seconds. A failure
        on the open channel is tried once more on a fresh one (the model owner may have closed
        it); any failure, or a cancellation, drops the channel (frames may be left in it). The
        caller holds `_lock`."""
        with trio.fail_after(limit):
            for fresh in (False, True) if self._channel is not None else (True,):
                try:
                    if fresh:
                        self._channel = await self._dial()
                    assert self._channel is not None
                    return await exchange(self._channel)
                except (ChannelError, OSError) as error:
                    await self._drop_channel()
                    if fresh:
                        raise
                    log.info("channel to the model owner lost (%r); dialling again", error)
                except BaseException:
                    await self._drop_channel()
                    raise
        raise AssertionError("unreachable: the fresh try returns or raises")

    async def _drop_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await trio.aclose_forcefully(channel)

    # -- our update --------------------------------------------------------------------------

    def offer(self, round: int, words: PackedWords, report: trio.MemorySendChannel[Any]) -> None:
        """Deliver round `round`'s update until the model owner accepts it or `withdraw`
        (`report`, the round driver's inbox, is closed after it)."""
        self._offers.start(round, self._offer, report, words)

    def withdraw(self, round: int) -> None:
        """Stop offering round `round`'s update (DELIVERY closed: the chain decided)."""
        self._offers.withdraw(round)

    async def _offer(
        self, round: int, report: trio.MemorySendChannel[Any], words: PackedWords
    ) -> None:
        tries = 0
        while not await self._deliver(round, words):
            wait = self.settings.share_retry * 2**tries
            tries += 1
            await trio.sleep(min(wait, self.settings.share_retry_max))
        self._observe("delivered", round=round, words=len(words), tries=tries + 1)

    async def _deliver(self, round: int, words: PackedWords) -> bool:
        """One try: stream the update and read the verdict. True once accepted."""
        limit = self.settings.ack_timeout + 2 * _PER_PART * -(-len(words) // PART_WORDS)

        async def exchange(channel: PeerChannel) -> Any:
            for part in update_parts(self.task, round, words):
                await channel.send(encode_direct(part))
            return decode_direct(await channel.receive())

        try:
            async with self._lock:
                reply = await self._exchange(exchange, limit)
        except (ChannelError, DecodeError, ModelUnavailable, OSError, ValueError) as error:
            log.info("round %d update not delivered yet: %r", round, error)
            return False
        except trio.TooSlowError:
            log.info("round %d update not delivered yet: timed out", round)
            return False
        if not isinstance(reply, UpdateReply) or (reply.task, reply.round) != (self.task, round):
            log.warning("round %d: the model owner answered %r", round, reply)
            return False
        if not reply.accepted:
            # our words give our digest; a model owner that says otherwise must challenge us
            log.warning("round %d: the model owner refused our update: %s", round, reply.reason)
            self._observe("delivery_refused", round=round, reason=reply.reason)
            return False
        return True
