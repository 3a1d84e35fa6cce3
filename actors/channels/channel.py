"""An authenticated, encrypted channel to one peer: bytes in, bytes out.

`PeerChannel` sits on a finished handshake. Each payload travels as one Noise transport message in
one frame; Noise's per-direction nonces make a replayed, reordered or tampered frame fail
decryption. Any failure caused by the peer closes the connection: a session that lost its frame
boundary or nonce sequence cannot be trusted again. Payloads are opaque here; the message layer
(msgspec schemas) encodes and decodes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import trio

from .errors import ChannelClosed, ChannelError, DecryptionError, FrameTooLarge, ReadTimeout
from .framing import NOISE_MAX_MESSAGE, FramedStream
from .handshake import HANDSHAKE_MAX_FRAME, NOISE_FAILURES, HandshakeResult

# ChaChaPoly's authentication tag, added to every transport message.
TAG_LEN = 16


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """Limits of a channel. `max_frame` counts ciphertext bytes (payload + 16-byte tag)."""

    max_frame: int = NOISE_MAX_MESSAGE
    handshake_timeout: float = 10.0
    # None waits for ever; a finite value drops a peer that goes silent mid-conversation.
    read_timeout: float | None = 60.0
    # Concurrent connections a server holds, authenticated or not (a group has at most 128).
    max_connections: int = 256

    def __post_init__(self) -> None:
        if not HANDSHAKE_MAX_FRAME <= self.max_frame <= NOISE_MAX_MESSAGE:
            raise ValueError(
                f"max_frame must be in [{HANDSHAKE_MAX_FRAME}, {NOISE_MAX_MESSAGE}], "
                f"got {self.max_frame}"
            )
        if not self.handshake_timeout > 0:
            raise ValueError("handshake_timeout must be positive")
        if self.read_timeout is not None and not self.read_timeout > 0:
            raise ValueError("read_timeout must be positive or None")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")

    @property
    def max_payload(self) -> int:
        return self.max_frame - TAG_LEN


DEFAULT_CONFIG = ChannelConfig()


class PeerChannel(trio.abc.AsyncResource):
    """A channel to the peer `peer_address`, whose static key matched its on-chain registration.

    One task may receive at a time (a second concurrent receiver gets `trio.BusyResourceError`);
    any number may send, one frame at a time under a lock so nonces go out in order.
    """

    def __init__(
        self, framed: FramedStream, handshake: HandshakeResult, *, task: int, config: ChannelConfig
    ) -> None:
        self._framed = framed
        self._noise = handshake.noise
        self.peer_address: int = handshake.peer_address
        self.peer_static_key: bytes = handshake.peer_static_key
        # Equal on both ends and unique per session: usable to bind application data to it.
        self.handshake_hash: bytes = handshake.handshake_hash
        self.task = task
        self.config = config
        self._send_lock = trio.Lock()
        self._receiving = False
        self._closed = False
        self._peer_eof = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, payload: bytes) -> None:
        """Encrypt and send one payload of at most `config.max_payload` bytes."""
        if len(payload) > self.config.max_payload:
            # Local misuse: nothing was written, so the channel stays usable.
            raise FrameTooLarge(
                f"payload of {len(payload)} bytes exceeds the limit of {self.config.max_payload}"
            )
        async with self._send_lock:
            if self._closed:
                raise ChannelClosed("channel is closed")
            frame = self._noise.encrypt(bytes(payload))
            try:
                await self._framed.write_frame(frame, self.config.max_frame)
            except BaseException:
                # A write cut short (error or cancellation) leaves the peer mid-frame: unusable.
                await self._abort()
                raise

    async def receive(self) -> bytes:
        """The next payload. Raises `ChannelClosed` once the peer has closed the connection, and
        any other `ChannelError` after dropping a misbehaving or silent peer."""
        if self._closed:
            raise ChannelClosed("channel is closed")
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this channel")
        self._receiving = True
        try:
            frame = await self._read_frame()
            try:
                return self._noise.decrypt(frame)
            except NOISE_FAILURES as exc:
                raise DecryptionError(
                    f"frame from {self.peer_address:#042x} failed authentication "
                    "(tampered, reordered or replayed)"
                ) from exc
        except ChannelError:
            await self._abort()
            raise
        finally:
            self._receiving = False

    async def _read_frame(self) -> bytes:
        timeout = math.inf if self.config.read_timeout is None else self.config.read_timeout
        with trio.move_on_after(timeout):
            try:
                return await self._framed.read_frame(self.config.max_frame)
            except ChannelClosed:
                self._peer_eof = True
                raise
        raise ReadTimeout(f"no frame from {self.peer_address:#042x} within {timeout} s")

    def __aiter__(self) -> PeerChannel:
        return self

    async def __anext__(self) -> bytes:
        """Iterate payloads until the peer closes the connection at a frame boundary."""
        try:
            return await self.receive()
        except ChannelClosed:
            if self._peer_eof:
                raise StopAsyncIteration from None
            raise

    async def _abort(self) -> None:
        self._closed = True
        await trio.aclose_forcefully(self._framed.stream)

    async def aclose(self) -> None:
        """Close the connection. Idempotent; a second call only checkpoints."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        await self._framed.stream.aclose()
