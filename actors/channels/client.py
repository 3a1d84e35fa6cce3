"""Dialling peer channels: connect, handshake, and pin the responder to the address dialled."""

from __future__ import annotations

import trio

from .channel import DEFAULT_CONFIG, ChannelConfig, PeerChannel
from .errors import ConnectFailed
from .framing import FramedStream
from .handshake import handshake_deadline, initiate
from .identity import ChannelKeys, Registry, check_task, parse_address


async def _initiate_or_close(
    stream: trio.abc.Stream,
    my_keys: ChannelKeys,
    my_address: int | str,
    expected_peer_address: int | str,
    registry: Registry,
    task: int,
    config: ChannelConfig,
) -> PeerChannel:
    framed = FramedStream(stream)
    try:
        result = await initiate(
            framed,
            keys=my_keys,
            address=parse_address(my_address),
            expected_peer_address=parse_address(expected_peer_address),
            registry=registry,
            task=check_task(task),
        )
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return PeerChannel(framed, result, task=task, config=config)


async def open_channel_over_stream(
    stream: trio.abc.Stream,
    my_keys: ChannelKeys,
    my_address: int | str,
    expected_peer_address: int | str,
    registry: Registry,
    *,
    task: int,
    config: ChannelConfig = DEFAULT_CONFIG,
) -> PeerChannel:
    """Initiate a handshake on `stream` within `config.handshake_timeout`; close it on failure."""
    with handshake_deadline(config.handshake_timeout):
        return await _initiate_or_close(
            stream, my_keys, my_address, expected_peer_address, registry, task, config
        )


async def open_channel(
    host: str,
    port: int,
    my_keys: ChannelKeys,
    my_address: int | str,
    expected_peer_address: int | str,
    registry: Registry,
    *,
    task: int,
    config: ChannelConfig = DEFAULT_CONFIG,
) -> PeerChannel:
    """Dial the endpoint registered by `expected_peer_address` and authenticate it.

    Connecting counts against `config.handshake_timeout` too, so an unreachable or silent peer
    costs at most that long. Raises `ConnectFailed` if the endpoint cannot be reached.
    """
    with handshake_deadline(config.handshake_timeout):
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise ConnectFailed(f"could not connect to {host}:{port}: {exc}") from exc
        return await _initiate_or_close(
            stream, my_keys, my_address, expected_peer_address, registry, task, config
        )
