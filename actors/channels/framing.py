"""Length-prefixed frames over a byte stream.

A frame is a 4-byte big-endian length followed by that many bytes: a Noise handshake message or a
Noise transport message. `FrameDecoder` is the sans-IO part (bytes in, frames out, limits checked
as soon as a prefix is complete, before its body is buffered); `FramedStream` drives it over a trio
stream and turns transport failures into channel errors.
"""

from __future__ import annotations

import trio

from .errors import ChannelClosed, FrameTooLarge, MalformedFrame

PREFIX_LEN = 4
# The Noise specification caps every message at 65535 bytes, so no frame body may exceed it.
NOISE_MAX_MESSAGE = 65535
# Bytes asked of the stream per read; the decoder's buffer is bounded by this plus one frame.
RECEIVE_CHUNK = 65536


def encode_frame(body: bytes, max_frame: int) -> bytes:
    if not body:
        raise MalformedFrame("refusing to send an empty frame")
    if len(body) > max_frame:
        raise FrameTooLarge(f"frame of {len(body)} bytes exceeds the limit of {max_frame}")
    return len(body).to_bytes(PREFIX_LEN, "big") + body


class FrameDecoder:
    """Splits received bytes into frames; raises as soon as a prefix announces a bad length."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self, max_frame: int) -> bytes | None:
        """The next complete frame, or None if more bytes are needed."""
        if len(self._buffer) < PREFIX_LEN:
            return None
        length = int.from_bytes(self._buffer[:PREFIX_LEN], "big")
        if length == 0:
            # No Noise message is empty; an empty frame can only be garbage.
            raise MalformedFrame("empty frame")
        if length > max_frame:
            raise FrameTooLarge(f"length prefix {length} exceeds the limit of {max_frame}")
        end = PREFIX_LEN + length
        if len(self._buffer) < end:
            return None
        frame = bytes(self._buffer[PREFIX_LEN:end])
        del self._buffer[:end]
        return frame


class FramedStream:
    """A trio stream read and written one frame at a time. Not safe for concurrent writers:
    the owner (`PeerChannel`) serialises writes."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._decoder = FrameDecoder()

    async def read_frame(self, max_frame: int) -> bytes:
        """The next frame. Cancel-safe: bytes already read stay buffered for the next call."""
        while True:
            frame = self._decoder.next_frame(max_frame)
            if frame is not None:
                return frame
            try:
                data = await self.stream.receive_some(RECEIVE_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ChannelClosed(f"connection lost while reading: {exc!r}") from exc
            if not data:
                if self._decoder.buffered:
                    raise MalformedFrame(f"EOF inside a frame ({self._decoder.buffered} bytes)")
                raise ChannelClosed("peer closed the connection")
            self._decoder.feed(data)

    async def write_frame(self, body: bytes, max_frame: int) -> None:
        data = encode_frame(body, max_frame)
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ChannelClosed(f"connection lost while writing: {exc!r}") from exc
