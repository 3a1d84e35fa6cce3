"""Authenticated peer channels between data owners: Noise XX over trio TCP.

Each data owner's Noise static key is registered on-chain (`register(task, channel_pk, endpoint)`);
a channel exists only between two endpoints whose static keys match the keys registered for their
addresses in the same task. Payloads are opaque bytes; the message layer gives them a schema.

    port = await nursery.start(serve_channels, "127.0.0.1", 0, keys, address, registry, handler,
                               task=task)  # handler(peer_address, channel)
    async with await open_channel(host, port, keys, address, peer, registry, task=task) as ch:
        await ch.send(payload)
"""

from .channel import ChannelConfig, PeerChannel
from .client import open_channel, open_channel_over_stream
from .errors import (
    AuthenticationError,
    ChannelClosed,
    ChannelError,
    ConnectFailed,
    DecryptionError,
    FrameTooLarge,
    HandshakeError,
    HandshakeTimeout,
    MalformedFrame,
    ReadTimeout,
)
from .identity import ChannelKeys, Registry, parse_address
from .server import (
    Handler,
    accept_channel_over_stream,
    bind_listeners,
    serve_channels,
    serve_peer,
)

__all__ = [
    "AuthenticationError",
    "ChannelClosed",
    "ChannelConfig",
    "ChannelError",
    "ChannelKeys",
    "ConnectFailed",
    "DecryptionError",
    "FrameTooLarge",
    "Handler",
    "HandshakeError",
    "HandshakeTimeout",
    "MalformedFrame",
    "PeerChannel",
    "ReadTimeout",
    "Registry",
    "accept_channel_over_stream",
    "bind_listeners",
    "open_channel",
    "open_channel_over_stream",
    "parse_address",
    "serve_channels",
    "serve_peer",
]
