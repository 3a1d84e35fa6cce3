"""Strict schemas for what DOs send each other over an authenticated peer channel.

This module owns the channel message types (frozen msgspec Structs, tagged by a ``type`` field),
their size limits, and the one pair of functions that turn them into msgpack frames and back.
Decoding never trusts the peer: a frame above ``MAX_FRAME_BYTES``, bytes that are not msgpack,
an unknown message type, a field of the wrong size and a missing or unknown field each raise
``DecodeError`` with its own ``reason``; nothing else escapes ``decode``.

msgpack has no integers above 64 bits, so 160-bit addresses travel as 20 big-endian bytes and
``task``/``round`` as integers below ``2**63`` (tasks count from 1, rounds from 0; neither
gets near that bound).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from protocol.constants import KIND_MASK_KEY, KIND_SELF_SEED, MAX_PROOF, MAX_THRESHOLD, SECRET_BYTES
from protocol.errors import DecodeError, DecodeReason, LocalProtocolError

# The largest delivery, about 5 KB: 2 x 32 Pedersen points of 64 bytes, two shares and two
# blinds, two full proofs.
MAX_FRAME_BYTES = 8192
POINT_BYTES = 64

# msgspec bounds integers to the int64 range; task and round never come near 2**63.
TaskNumber = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Address = Annotated[bytes, msgspec.Meta(min_length=20, max_length=20)]
Bytes32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Proof = Annotated[tuple[Bytes32, ...], msgspec.Meta(max_length=MAX_PROOF)]
Share = Annotated[bytes, msgspec.Meta(min_length=SECRET_BYTES, max_length=SECRET_BYTES)]
# Pedersen commitments of both secrets' polynomials: 2 t points, t in [2, MAX_THRESHOLD].
Points = Annotated[
    bytes, msgspec.Meta(min_length=4 * POINT_BYTES, max_length=2 * MAX_THRESHOLD * POINT_BYTES)
]


def address_bytes(addr: int) -> bytes:
    """A 160-bit address as the 20 big-endian bytes a message carries."""
    if not isinstance(addr, int) or not 0 <= addr < 1 << 160:
        raise LocalProtocolError(f"not a 160-bit address: {addr!r}")
    return addr.to_bytes(20, "big")


def address_int(raw: bytes) -> int:
    """The 160-bit integer of a 20-byte address field (addresses compare as integers, §1)."""
    return int.from_bytes(raw, "big")


class _Message(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", kw_only=True
):
    """Common base: every channel message names its task and round."""

    task: TaskNumber
    round: TaskNumber


class ShareDelivery(_Message, tag="share_delivery"):
    """A dealer's two shares for one holder, with their blinds and what the holder needs to
    check them.

    ``seed_proof``/``key_proof`` are the Merkle proofs of the holder's two leaves (share and
    blind of one kind each) under ``shares_root`` (the root the dealer commits on-chain); the
    holder verifies them on receipt and posts one of them when it unmasks. ``points`` are the
    dealer's Pedersen commitments (``t`` points of the self-seed polynomials, then ``t`` of the
    mask-key ones; their digest is on-chain): the holder checks that both shares and blinds lie
    on the committed polynomials.
    """

    dealer: Address
    holder: Address
    seed_share: Share
    seed_blind: Share
    key_share: Share
    key_blind: Share
    mask_public: Bytes32
    shares_root: Bytes32
    seed_proof: Proof
    key_proof: Proof
    points: Points

    def proof(self, kind: int) -> tuple[bytes, ...]:
        """The proof that goes with the share of ``kind``."""
        if kind == KIND_SELF_SEED:
            return self.seed_proof
        if kind == KIND_MASK_KEY:
            return self.key_proof
        raise LocalProtocolError(f"unknown secret kind {kind!r}")

    def share(self, kind: int) -> bytes:
        """The share of ``kind`` (self-mask seed or mask secret key)."""
        if kind == KIND_SELF_SEED:
            return self.seed_share
        if kind == KIND_MASK_KEY:
            return self.key_share
        raise LocalProtocolError(f"unknown secret kind {kind!r}")

    def blind(self, kind: int) -> bytes:
        """The Pedersen blind that goes with the share of ``kind``."""
        if kind == KIND_SELF_SEED:
            return self.seed_blind
        if kind == KIND_MASK_KEY:
            return self.key_blind
        raise LocalProtocolError(f"unknown secret kind {kind!r}")

    def polynomial(self, kind: int) -> bytes:
        """The Pedersen commitments of the polynomial behind the share of ``kind``."""
        half = len(self.points) // 2
        if kind == KIND_SELF_SEED:
            return self.points[:half]
        if kind == KIND_MASK_KEY:
            return self.points[half:]
        raise LocalProtocolError(f"unknown secret kind {kind!r}")


class ShareAck(_Message, tag="share_ack"):
    """A holder confirms that a dealer's shares verified against ``shares_root``."""

    dealer: Address
    holder: Address
    shares_root: Bytes32


Message = ShareDelivery | ShareAck


class _Envelope(msgspec.Struct):
    """Only the tag, read first so an unknown type gets its own reason."""

    type: str


_envelope_decoder = msgspec.msgpack.Decoder(_Envelope)
_encoder = msgspec.msgpack.Encoder()


class Codec:
    """Frames of one set of channel message types: msgpack, at most ``max_bytes`` a frame,
    every field's bounds checked on decode (and on encode, against our own output)."""

    def __init__(self, types: tuple[type[msgspec.Struct], ...], max_bytes: int) -> None:
        self.types, self.max_bytes = types, max_bytes
        self._tags = frozenset(cls.__struct_config__.tag for cls in types)
        union = types[0]
        for cls in types[1:]:
            union = union | cls  # type: ignore[assignment]
        self._decoder = msgspec.msgpack.Decoder(union)

    def encode(self, msg: msgspec.Struct) -> bytes:
        """One msgpack frame for ``msg``; refuses messages that would not decode on the other
        side."""
        if not isinstance(msg, self.types):
            raise LocalProtocolError(f"not a channel message: {type(msg).__name__}")
        frame = _encoder.encode(msg)
        if len(frame) > self.max_bytes:
            raise LocalProtocolError(f"frame of {len(frame)} bytes exceeds {self.max_bytes}")
        # Constraints (sizes, ranges) are checked on decode only; check our own output the same way.
        try:
            self._decoder.decode(frame)
        except msgspec.ValidationError as exc:
            raise LocalProtocolError(f"invalid {type(msg).__name__}: {exc}") from exc
        return frame

    def decode(self, data: bytes) -> msgspec.Struct:
        """Parse one frame from a peer into a message, or raise ``DecodeError`` naming the
        reason."""
        if len(data) > self.max_bytes:
            raise DecodeError(DecodeReason.TOO_LARGE, f"{len(data)} > {self.max_bytes} bytes")
        try:
            tag = _envelope_decoder.decode(data).type
        except msgspec.ValidationError as exc:
            # valid msgpack, but not a map with a string "type"
            raise DecodeError(DecodeReason.SCHEMA, str(exc)) from exc
        except (msgspec.DecodeError, RecursionError, ValueError) as exc:
            # Besides its own DecodeError, msgspec raises RecursionError for deeply nested
            # containers and UnicodeDecodeError (a ValueError) for a str that is not UTF-8.
            raise DecodeError(DecodeReason.MALFORMED, str(exc)) from exc
        if tag not in self._tags:
            raise DecodeError(DecodeReason.UNKNOWN_TYPE, repr(tag[:40]))
        try:
            return self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            text = str(exc)
            # msgspec words a violated constraint "Expected `bytes` of length >= 32" or
            # "Expected `int` >= 0"; everything else (missing, unknown, wrong type) is schema.
            if "of length" in text:
                reason = DecodeReason.FIELD_SIZE
            elif text.startswith("Expected `int` "):
                reason = DecodeReason.FIELD_RANGE
            else:
                reason = DecodeReason.SCHEMA
            raise DecodeError(reason, text) from exc
        except (msgspec.DecodeError, RecursionError, ValueError) as exc:
            raise DecodeError(DecodeReason.MALFORMED, str(exc)) from exc


_SHARES = Codec((ShareDelivery, ShareAck), MAX_FRAME_BYTES)


def encode(msg: Message) -> bytes:
    """One msgpack frame for a share message; refuses one that would not decode."""
    return _SHARES.encode(msg)


def decode(data: bytes) -> Message:
    """Parse one share-message frame from a peer, or raise ``DecodeError`` naming the reason."""
    return _SHARES.decode(data)  # type: ignore[return-value]
