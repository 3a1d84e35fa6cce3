"""The Noise XX handshake and the on-chain pinning of both sides' static keys.

Messages (each one frame):

    -> e
    <- e, ee, s, es   payload: responder identity (address, task), encrypted
    -> s, se          payload: initiator identity (address, task), encrypted

The prologue binds the task, so a handshake with an endpoint of another task fails at the first
MAC. Each side then asks the registry for the key registered under the address the other side
claims (the initiator: the address it dialled) and refuses a peer whose Noise static key differs
or whose address has none. The initiator checks the responder before sending message 3, so an
impostor responder never learns who dialled it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import trio
from cryptography.exceptions import InvalidTag
from noise.connection import Keypair, NoiseConnection
from noise.exceptions import (
    NoiseHandshakeError,
    NoiseInvalidMessage,
    NoiseMaxNonceError,
    NoiseValueError,
)

from .errors import AuthenticationError, ChannelClosed, HandshakeError, HandshakeTimeout
from .framing import FramedStream
from .identity import (
    KEY_LEN,
    ChannelKeys,
    Registry,
    decode_identity,
    encode_identity,
    prologue,
)

NOISE_PROTOCOL = b"Noise_XX_25519_ChaChaPoly_SHA256"
# Handshake messages are at most 32 + 48 + 16 + 52 bytes; a larger frame is not a handshake.
HANDSHAKE_MAX_FRAME = 256

# noiseprotocol's exceptions share no base class, and bad curve points or tags surface as the
# underlying library's ValueError / InvalidTag. All of them mean: this peer's bytes are bad.
NOISE_FAILURES: tuple[type[Exception], ...] = (
    NoiseHandshakeError,
    NoiseInvalidMessage,
    NoiseMaxNonceError,
    NoiseValueError,
    InvalidTag,
    ValueError,
)


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    """A finished, authenticated handshake: transport ciphers and who is on the other side."""

    noise: NoiseConnection
    peer_address: int
    peer_static_key: bytes
    handshake_hash: bytes


class _NoiseHandshake:
    """One side of the XX handshake, keeping what noiseprotocol discards when it finishes."""

    def __init__(self, keys: ChannelKeys, task: int, *, initiator: bool) -> None:
        self.noise = NoiseConnection.from_name(NOISE_PROTOCOL)
        if initiator:
            self.noise.set_as_initiator()
        else:
            self.noise.set_as_responder()
        self.noise.set_keypair_from_private_bytes(Keypair.STATIC, keys.private_bytes)
        self.noise.set_prologue(prologue(task))
        self.noise.start_handshake()
        # noiseprotocol 0.3.1 deletes its handshake state once the last message is processed;
        # this reference keeps the remote static key readable afterwards.
        self._state = self.noise.noise_protocol.handshake_state

    def write(self, payload: bytes = b"") -> bytes:
        try:
            return bytes(self.noise.write_message(payload))
        except NOISE_FAILURES as exc:
            raise HandshakeError(f"cannot write handshake message: {exc!r}") from exc

    def read(self, message: bytes) -> bytes:
        try:
            return bytes(self.noise.read_message(message))
        except NOISE_FAILURES as exc:
            # The usual cause of a failing MAC here is a prologue mismatch: another task.
            raise HandshakeError(f"bad handshake message (wrong task?): {exc!r}") from exc

    @property
    def remote_static(self) -> bytes:
        return bytes(self._state.rs.public_bytes)

    def result(self, peer_address: int) -> HandshakeResult:
        return HandshakeResult(
            noise=self.noise,
            peer_address=peer_address,
            peer_static_key=self.remote_static,
            handshake_hash=bytes(self.noise.get_handshake_hash()),
        )


@contextmanager
def handshake_deadline(timeout: float) -> Iterator[None]:
    """Fail the enclosed handshake with `HandshakeTimeout` after `timeout` seconds, so a peer
    that connects and stalls holds a connection slot for a bounded time only."""
    try:
        with trio.fail_after(timeout):
            yield
    except trio.TooSlowError:
        raise HandshakeTimeout(f"no complete handshake within {timeout} s") from None


async def _read(framed: FramedStream) -> bytes:
    try:
        return await framed.read_frame(HANDSHAKE_MAX_FRAME)
    except ChannelClosed as exc:
        raise HandshakeError(f"connection ended during the handshake: {exc}") from exc


async def _write(framed: FramedStream, message: bytes) -> None:
    try:
        await framed.write_frame(message, HANDSHAKE_MAX_FRAME)
    except ChannelClosed as exc:
        raise HandshakeError(f"connection ended during the handshake: {exc}") from exc


async def authenticate(registry: Registry, address: int, remote_static: bytes) -> None:
    """Refuse `remote_static` unless it is the key registered on-chain for `address`."""
    registered = await registry(address)
    # A contract reports "nothing registered" as a zero bytes32, which is no usable key either.
    if registered is None or not any(registered):
        raise AuthenticationError(f"address {address:#042x} has no channel key registered")
    if len(registered) != KEY_LEN or not hmac.compare_digest(bytes(registered), remote_static):
        raise AuthenticationError(
            f"static key {remote_static.hex()} is not the key registered for {address:#042x}"
        )


def _check_peer_task(peer_task: int, task: int) -> None:
    # Unreachable with a matching prologue; checked anyway so the identity stands on its own.
    if peer_task != task:
        raise AuthenticationError(f"peer speaks for task {peer_task}, this channel is task {task}")


async def initiate(
    framed: FramedStream,
    *,
    keys: ChannelKeys,
    address: int,
    expected_peer_address: int,
    registry: Registry,
    task: int,
) -> HandshakeResult:
    """Run the initiator's side; the responder must prove it holds `expected_peer_address`'s key."""
    hs = _NoiseHandshake(keys, task, initiator=True)
    await _write(framed, hs.write())
    peer_address, peer_task = decode_identity(hs.read(await _read(framed)))
    _check_peer_task(peer_task, task)
    if peer_address != expected_peer_address:
        raise AuthenticationError(
            f"dialled {expected_peer_address:#042x}, "
            f"but the endpoint speaks for {peer_address:#042x}"
        )
    await authenticate(registry, expected_peer_address, hs.remote_static)
    await _write(framed, hs.write(encode_identity(address, task)))
    return hs.result(peer_address)


async def respond(
    framed: FramedStream,
    *,
    keys: ChannelKeys,
    address: int,
    registry: Registry,
    task: int,
) -> HandshakeResult:
    """Run the responder's side; the initiator must prove it holds its claimed address's key."""
    hs = _NoiseHandshake(keys, task, initiator=False)
    if hs.read(await _read(framed)):
        raise HandshakeError("unexpected payload in the first handshake message")
    await _write(framed, hs.write(encode_identity(address, task)))
    peer_address, peer_task = decode_identity(hs.read(await _read(framed)))
    _check_peer_task(peer_task, task)
    await authenticate(registry, peer_address, hs.remote_static)
    return hs.result(peer_address)
