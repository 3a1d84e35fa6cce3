"""A model owner's side of the direct path: the updates its data owners deliver, and the public
model it serves them (docs/interfaces.md §3c, §11).

`serve` handles one data owner's channel (authenticated against the key the data owner
registered with the task): a `ModelRequest` gets the round's model in parts; an update's parts
are assembled with the size the chain fixed (`protocol.direct.UpdateAssembler`), and the whole is
accepted only if its digest is the one that data owner committed on-chain. An accepted update is
kept (and stored, so a restarted model owner does not challenge what it had), and a frame that
breaks the rules drops the channel, never the model owner. What it lacks at DELIVERY it
challenges (`actors.roles.model_owner`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from actors.chain.aio import on_chain
from actors.chain.codec import checksum
from actors.chain.market import Market
from actors.channels import MalformedFrame, PeerChannel, ReadTimeout
from actors.roles.store import StateStore
from protocol.direct import (
    ModelRequest,
    StreamError,
    UpdateAssembler,
    UpdatePart,
    UpdateReply,
    decode_direct,
    encode_direct,
    model_parts,
)
from protocol.encoding import PackedWords
from protocol.errors import DecodeError

log = logging.getLogger("omnilytics.mo")

_NS = "mo-updates"  # the store's namespace: "round/do" -> an accepted update's bytes


class UpdateInbox:
    """The updates delivered to one model owner for one direct task, and the models it serves."""

    def __init__(
        self,
        market: Market,
        task: int,
        words: int,
        *,
        store: StateStore | None = None,
        observe: Callable[..., None] | None = None,
        on_update: Callable[[], None] | None = None,
    ) -> None:
        """`on_update` is called (in the trio thread) after each update accepted."""
        self.market, self.task, self.words, self.store = market, task, words, store
        self._observe = observe or (lambda *args, **kwargs: None)
        self._on_update = on_update or (lambda: None)
        self.models: dict[int, bytes] = {}  # round -> the public model bytes we serve
        self.accepted: dict[int, dict[int, PackedWords]] = {}  # round -> do -> update
        self.refused: dict[int, set[int]] = {}  # round -> data owners whose words mismatched
        self.current = 0  # the round whose updates we take (earlier ones are settled)
        if store is not None:
            for key, raw in store.items(_NS):
                round, do = key.split("/")
                self.accepted.setdefault(int(round), {})[int(do, 16)] = PackedWords(raw)

    def holds(self, round: int, do: int) -> bool:
        return do in self.accepted.get(round, {})

    def updates(self, round: int) -> dict[int, PackedWords]:
        return dict(self.accepted.get(round, {}))

    def forget(self, round: int) -> None:
        """Drop a round's updates once its aggregate is applied."""
        for do in self.accepted.pop(round, {}):
            if self.store is not None:
                self.store.delete(_NS, f"{round}/{do:040x}")
        self.refused.pop(round, None)

    async def serve(self, peer: int, channel: PeerChannel) -> None:
        """One data owner's channel: model requests and update streams, until it closes it or
        idles past the read timeout. A frame that breaks the rules drops the channel."""
        assembler: UpdateAssembler | None = None
        try:
            async for payload in channel:
                try:
                    message = decode_direct(payload)
                except DecodeError as error:
                    raise MalformedFrame(f"undecodable direct-path message: {error}") from None
                if message.task != self.task:
                    raise MalformedFrame(f"a message for task {message.task}")
                if isinstance(message, ModelRequest):
                    await self._serve_model(channel, message.round)
                elif isinstance(message, UpdatePart):
                    assembler = await self._take_part(peer, channel, assembler, message)
                else:
                    raise MalformedFrame(f"a {type(message).__name__} is not for a model owner")
        except ReadTimeout:
            return

    async def _serve_model(self, channel: PeerChannel, round: int) -> None:
        model = self.models.get(round)
        if model is None:
            raise MalformedFrame(f"no model for round {round} (yet)")
        for part in model_parts(self.task, round, model):
            await channel.send(encode_direct(part))

    async def _take_part(
        self,
        peer: int,
        channel: PeerChannel,
        assembler: UpdateAssembler | None,
        part: UpdatePart,
    ) -> UpdateAssembler | None:
        if part.round != self.current:
            raise MalformedFrame(f"an update for round {part.round}, not {self.current}")
        if part.index == 0:  # a fresh stream (a retry starts over)
            assembler = UpdateAssembler(self.task, part.round, self.words)
        if assembler is None:
            raise MalformedFrame(f"update part {part.index} of a stream never begun")
        try:
            words = assembler.feed(part)
        except StreamError as error:
            raise MalformedFrame(f"update stream: {error}") from None
        if words is None:
            return assembler
        reply = await self._judge(peer, part.round, words, assembler.digest)
        await channel.send(encode_direct(reply))
        return None

    async def _judge(self, peer: int, round: int, words: PackedWords, digest: bytes) -> Any:
        """Accept a whole update if it gives the digest `peer` committed on-chain."""
        address = checksum(peer)
        committed = await on_chain(self.market.chain, self._committed, round, address)
        if committed != digest:
            reason = "no commitment on-chain" if committed == bytes(32) else "digest mismatch"
            self.refused.setdefault(round, set()).add(peer)
            log.warning("round %d: update of %s refused: %s", round, address, reason)
            self._observe("update_refused", round=round, do=address, reason=reason)
            return UpdateReply(
                task=self.task, round=round, accepted=False, digest=digest, reason=reason
            )
        if not self.holds(round, peer):
            self.accepted.setdefault(round, {})[peer] = words
            self.refused.get(round, set()).discard(peer)
            if self.store is not None:
                self.store.put(_NS, f"{round}/{peer:040x}", words.data)
            self._observe("update_received", round=round, do=address, words=len(words))
            self._on_update()
        return UpdateReply(task=self.task, round=round, accepted=True, digest=digest)

    def _committed(self, round: int, address: str) -> bytes:
        return self.market.update_digest(self.task, round, address)
