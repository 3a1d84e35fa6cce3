"""Who a channel endpoint is: its Noise static key pair, its chain address, its task.

A data owner registers `ChannelKeys.public_bytes` on-chain as the bytes32 `channel_pk` of
`register(task, channel_pk, endpoint)`; peers look it up through a `Registry` callable and pin it.
This module also owns the bytes both sides must agree on before any key is trusted: the Noise
prologue (which binds the task) and the identity message (which binds the chain address).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from .errors import HandshakeError

KEY_LEN = 32
ADDRESS_LEN = 20
TASK_LEN = 32
# The identity message is fixed-size binary: nothing to parse, nothing optional to confuse.
IDENTITY_LEN = ADDRESS_LEN + TASK_LEN

PROLOGUE_TAG = b"omnilytics/channel/v1"

Registry = Callable[[int], Awaitable[bytes | None]]
"""Given a chain address, the bytes32 channel key registered for it in this task, or None."""


@dataclass(frozen=True, slots=True)
class ChannelKeys:
    """A Noise static key pair (X25519). The private half never appears in `repr`."""

    private_bytes: bytes = field(repr=False)
    public_bytes: bytes

    @classmethod
    def generate(cls) -> ChannelKeys:
        return cls.from_private_bytes(
            X25519PrivateKey.generate().private_bytes(
                Encoding.Raw, PrivateFormat.Raw, NoEncryption()
            )
        )

    @classmethod
    def from_private_bytes(cls, private_bytes: bytes) -> ChannelKeys:
        if len(private_bytes) != KEY_LEN:
            raise ValueError(f"an X25519 private key is {KEY_LEN} bytes, got {len(private_bytes)}")
        public = X25519PrivateKey.from_private_bytes(private_bytes).public_key()
        return cls(bytes(private_bytes), public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def parse_address(address: int | str) -> int:
    """A chain address as the 160-bit integer the interfaces compare (docs/interfaces.md §1)."""
    value = int(address, 16) if isinstance(address, str) else address
    if not 0 < value < 1 << (8 * ADDRESS_LEN):
        raise ValueError(f"not a non-zero 160-bit address: {address!r}")
    return value


def check_task(task: int) -> int:
    if not 0 < task < 1 << (8 * TASK_LEN):
        raise ValueError(f"a task id is a non-zero uint256, got {task!r}")
    return task


def prologue(task: int) -> bytes:
    """The Noise prologue: a handshake between endpoints of different tasks fails its first MAC.

    Rounds are not bound here: an endpoint is registered once per task and serves every round, and
    fresh ephemeral keys on both sides already make each session unique; messages carry their round.
    """
    return PROLOGUE_TAG + check_task(task).to_bytes(TASK_LEN, "big")


def encode_identity(address: int, task: int) -> bytes:
    return parse_address(address).to_bytes(ADDRESS_LEN, "big") + check_task(task).to_bytes(
        TASK_LEN, "big"
    )


def decode_identity(data: bytes) -> tuple[int, int]:
    """(address, task) from an identity message; `HandshakeError` unless exactly well-formed."""
    if len(data) != IDENTITY_LEN:
        raise HandshakeError(f"identity message is {len(data)} bytes, expected {IDENTITY_LEN}")
    address = int.from_bytes(data[:ADDRESS_LEN], "big")
    task = int.from_bytes(data[ADDRESS_LEN:], "big")
    if address == 0 or task == 0:
        raise HandshakeError("identity message with a zero address or task")
    return address, task
