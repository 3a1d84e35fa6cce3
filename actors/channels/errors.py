"""The exceptions of the peer channels.

Every failure a remote peer can cause is a `ChannelError`, so a server drops that peer by catching
one type and keeps serving the others. Local misuse (a payload too large to send, a bad address)
raises the same tree where the cause is the channel's limits, and `ValueError` otherwise.
"""


class ChannelError(Exception):
    """Base of every channel failure; the connection it concerns is closed or unusable."""


class HandshakeError(ChannelError):
    """The Noise XX handshake failed: malformed message, wrong prologue (task), or EOF."""


class HandshakeTimeout(HandshakeError):
    """The peer did not finish the handshake within the configured time."""


class AuthenticationError(HandshakeError):
    """The peer's Noise static key is not the key registered on-chain for its address."""


class FrameTooLarge(ChannelError):
    """A length prefix (received) or a payload (to send) exceeds the configured frame limit."""


class MalformedFrame(ChannelError):
    """A frame is empty, truncated by EOF, or its content does not parse."""


class DecryptionError(MalformedFrame):
    """A transport frame failed Noise authentication: tampered, reordered or replayed."""


class ReadTimeout(ChannelError):
    """The peer sent no complete frame within the configured read timeout."""


class ChannelClosed(ChannelError):
    """The channel was closed, locally or by the peer at a frame boundary."""


class ConnectFailed(ChannelError):
    """The peer's endpoint could not be reached (refused, unreachable, reset while connecting)."""
