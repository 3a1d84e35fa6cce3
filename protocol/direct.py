"""The direct data path's channel messages and streams (docs/interfaces.md §3c, §11).

On a direct task a data owner commits its masked update's digest on-chain and streams the words
to the model owner over their authenticated channel; the model owner checks them against the
committed digest and replies. The round's public model travels the other way: its digest is
the round's model hash on-chain, and its bytes are served by the model owner (any mirror would
do: the digest decides).

This module owns those messages (a msgspec ``Codec`` of their own: a part fills most of a Noise
message), the cutting of an update or a model into parts, and the assemblers that take a stream
in: bounded by the size the chain fixes before the first byte arrives, parts strictly in order,
the update's digest folded chunk by chunk as its words arrive (no second pass, no second copy),
the model's checked once whole. Sans-IO: bytes in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import msgspec

from protocol.commitments import (
    ZERO_DIGEST,
    chunk_digest,
    chunk_sizes,
    published_model_digest,
)
from protocol.encoding import PackedWords
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.messages import Bytes32, Codec, TaskNumber

_WORD_BYTES = 32
# Payload bytes of one part: 2,000 words of an update, within one Noise message (65,535 bytes
# with its 16-byte tag) with room for the envelope.
PART_BYTES = 64_000
PART_WORDS = PART_BYTES // _WORD_BYTES
MAX_DIRECT_FRAME = 65_519
MAX_REASON = 200

Count = Annotated[int, msgspec.Meta(ge=0, le=2**40)]
PartData = Annotated[bytes, msgspec.Meta(min_length=1, max_length=PART_BYTES)]
Reason = Annotated[str, msgspec.Meta(max_length=MAX_REASON)]


class _Direct(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", kw_only=True
):
    task: TaskNumber
    round: TaskNumber


class UpdatePart(_Direct, tag="update_part"):
    """Part ``index`` of a data owner's masked update of ``words`` words (the task's
    ``update_words``): its next words, 32 big-endian bytes each."""

    index: Count
    words: Count
    data: PartData


class UpdateReply(_Direct, tag="update_reply"):
    """The model owner's verdict on a whole update: ``accepted`` once its words give the digest
    the data owner committed on-chain (``digest``: what the words gave); otherwise ``reason``."""

    accepted: bool
    digest: Bytes32
    reason: Reason = ""


class ModelRequest(_Direct, tag="model_request"):
    """Ask for the round's public model."""


class ModelPart(_Direct, tag="model_part"):
    """Part ``index`` of the round's public model of ``size`` bytes."""

    index: Count
    size: Count
    data: PartData


DirectMessage = UpdatePart | UpdateReply | ModelRequest | ModelPart
DIRECT = Codec((UpdatePart, UpdateReply, ModelRequest, ModelPart), MAX_DIRECT_FRAME)


def encode_direct(msg: DirectMessage) -> bytes:
    return DIRECT.encode(msg)


def decode_direct(data: bytes) -> DirectMessage:
    """A direct-path frame from a peer, or ``DecodeError`` naming why not."""
    return DIRECT.decode(data)  # type: ignore[return-value]


class StreamError(RemoteProtocolError):
    """A stream that breaks its rules: a part out of order, of the wrong task, round or size,
    more than announced, or a whole that does not give its digest."""


def update_parts(task: int, round: int, words: PackedWords) -> Iterator[UpdatePart]:
    """An update as the parts a data owner streams, in order (slices of its bytes)."""
    if not isinstance(words, PackedWords) or not len(words):
        raise LocalProtocolError("an update is non-empty PackedWords")
    data, count = memoryview(words.data), len(words)
    for index, start in enumerate(range(0, len(data), PART_BYTES)):
        part = bytes(data[start : start + PART_BYTES])
        yield UpdatePart(task=task, round=round, index=index, words=count, data=part)


def model_parts(task: int, round: int, model: bytes) -> Iterator[ModelPart]:
    """A public model as the parts its server streams, in order."""
    if not model:
        raise LocalProtocolError("a public model has at least one byte")
    view = memoryview(model)
    for index, start in enumerate(range(0, len(model), PART_BYTES)):
        part = bytes(view[start : start + PART_BYTES])
        yield ModelPart(task=task, round=round, index=index, size=len(model), data=part)


class UpdateAssembler:
    """One data owner's update as its parts arrive: ``words`` words (fixed on-chain before the
    first part), in order, its digest folded one contract chunk at a time
    (``protocol.commitments.direct_digest``)."""

    def __init__(self, task: int, round: int, words: int) -> None:
        if words < 1:
            raise LocalProtocolError("an update has at least one word")
        self.task, self.round, self.words = task, round, words
        self._data = bytearray()
        self._sizes = chunk_sizes(words)
        self._chunk = 0  # chunks folded so far
        self._folded = 0  # words folded so far
        self._next = 0  # the part expected next
        self.digest = ZERO_DIGEST

    @property
    def received(self) -> int:
        """Words received so far."""
        return len(self._data) // _WORD_BYTES

    @property
    def complete(self) -> bool:
        return self._folded == self.words

    def feed(self, part: UpdatePart) -> PackedWords | None:
        """Take the next part; the whole update once its last word is in (then ``digest`` is
        its digest), else None. ``StreamError`` for a part that breaks the stream."""
        if (part.task, part.round) != (self.task, self.round):
            raise StreamError(f"a part of task {part.task} round {part.round} in this stream")
        if part.words != self.words:
            raise StreamError(f"an update of {part.words} words; the task's have {self.words}")
        if part.index != self._next or self.complete:
            raise StreamError(f"part {part.index} where part {self._next} was due")
        if len(part.data) % _WORD_BYTES:
            raise StreamError(f"a part of {len(part.data)} bytes, not whole words")
        if self.received + len(part.data) // _WORD_BYTES > self.words:
            raise StreamError(f"more than the {self.words} words announced")
        if len(part.data) != PART_BYTES and self.received + len(part.data) // 32 != self.words:
            raise StreamError(f"a short part ({len(part.data)} bytes) before the last")
        self._data += part.data
        self._next += 1
        while self._chunk < len(self._sizes):
            end = self._folded + self._sizes[self._chunk]
            if end > self.received:
                break
            chunk = bytes(self._data[self._folded * _WORD_BYTES : end * _WORD_BYTES])
            self.digest = chunk_digest(self.digest, PackedWords(chunk))
            self._chunk, self._folded = self._chunk + 1, end
        return PackedWords(bytes(self._data)) if self.complete else None


class ModelAssembler:
    """A round's public model as its parts arrive, at most ``max_bytes``; checked whole against
    the round's model hash."""

    def __init__(self, task: int, round: int, model_hash: bytes, max_bytes: int) -> None:
        self.task, self.round, self.model_hash, self.max_bytes = task, round, model_hash, max_bytes
        self._data = bytearray()
        self._next = 0
        self._size: int | None = None

    def feed(self, part: ModelPart) -> bytes | None:
        """Take the next part; the model once whole and matching its hash, else None."""
        if (part.task, part.round) != (self.task, self.round):
            raise StreamError(f"a model part of task {part.task} round {part.round}")
        if self._size is None:
            if not 1 <= part.size <= self.max_bytes:
                raise StreamError(f"a model of {part.size} bytes (at most {self.max_bytes})")
            self._size = part.size
        if part.size != self._size or part.index != self._next:
            raise StreamError(f"model part {part.index} of {part.size} bytes out of order")
        if len(self._data) + len(part.data) > self._size:
            raise StreamError(f"more than the {self._size} model bytes announced")
        self._data += part.data
        self._next += 1
        if len(self._data) < self._size:
            return None
        model = bytes(self._data)
        if published_model_digest(model) != self.model_hash:
            raise StreamError("the model's bytes do not give the round's model hash")
        return model
