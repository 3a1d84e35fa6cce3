"""Accepting peer channels: one handshake, under a deadline, per accepted connection.

`serve_channels` listens on TCP and hands every authenticated peer to `handler`; a peer that fails
the handshake, fails authentication, or misbehaves later (any `ChannelError`) is logged under its
error's name and dropped, and the server goes on serving the others. Exceptions that are not
channel errors (a bug in the handler, a failing chain client) are not the peer's fault and
propagate, as structured concurrency wants.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from .channel import DEFAULT_CONFIG, ChannelConfig, PeerChannel
from .errors import ChannelError
from .framing import FramedStream
from .handshake import handshake_deadline, respond
from .identity import ChannelKeys, Registry, check_task, parse_address

logger = logging.getLogger("omnilytics.channels")

Handler = Callable[[int, PeerChannel], Awaitable[None]]
"""Serves one authenticated peer, given (peer address, channel); the channel closes on return."""


def describe_peer(stream: trio.abc.Stream) -> str:
    """A printable remote end for logs: `host:port` for sockets, the type name otherwise."""
    if isinstance(stream, trio.SocketStream):
        try:
            host, port, *_ = stream.socket.getpeername()
        except OSError:
            return "<disconnected socket>"
        return f"{host}:{port}"
    return type(stream).__name__


async def accept_channel_over_stream(
    stream: trio.abc.Stream,
    my_keys: ChannelKeys,
    my_address: int | str,
    registry: Registry,
    *,
    task: int,
    config: ChannelConfig = DEFAULT_CONFIG,
) -> PeerChannel:
    """Answer a handshake on `stream` within `config.handshake_timeout`; close it on failure."""
    framed = FramedStream(stream)
    try:
        with handshake_deadline(config.handshake_timeout):
            result = await respond(
                framed,
                keys=my_keys,
                address=parse_address(my_address),
                registry=registry,
                task=check_task(task),
            )
    except BaseException:
        # HandshakeTimeout included: the deadline's cancellation has already ended `respond`.
        await trio.aclose_forcefully(stream)
        raise
    return PeerChannel(framed, result, task=task, config=config)


async def serve_peer(
    stream: trio.abc.Stream,
    my_keys: ChannelKeys,
    my_address: int | str,
    registry: Registry,
    handler: Handler,
    *,
    task: int,
    config: ChannelConfig = DEFAULT_CONFIG,
) -> None:
    """Serve one connection: authenticate, run `handler`, close. Peer faults are logged, not
    raised, so one bad peer never takes the server down."""
    remote = describe_peer(stream)
    try:
        channel = await accept_channel_over_stream(
            stream, my_keys, my_address, registry, task=task, config=config
        )
    except ChannelError as exc:
        logger.warning("dropped %s during handshake: %s: %s", remote, type(exc).__name__, exc)
        return
    async with channel:
        try:
            await handler(channel.peer_address, channel)
        except ChannelError as exc:
            logger.warning(
                "dropped %s (%#042x): %s: %s",
                remote,
                channel.peer_address,
                type(exc).__name__,
                exc,
            )


async def bind_listeners(host: str, port: int) -> tuple[list[trio.SocketListener], int]:
    """Bind `host:port` (0: any free port) for `serve_channels`; the listeners and the port."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    ports = {listener.socket.getsockname()[1] for listener in listeners}
    if len(ports) != 1:
        for listener in listeners:
            await listener.aclose()
        raise ValueError(f"{host!r} bound several ports {sorted(ports)}; give an IP literal")
    return listeners, ports.pop()


async def serve_channels(
    host: str,
    port: int,
    my_keys: ChannelKeys,
    my_address: int | str,
    registry: Registry,
    handler: Handler,
    *,
    task: int,
    config: ChannelConfig = DEFAULT_CONFIG,
    listeners: list[trio.SocketListener] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on `host:port` until cancelled; start with `nursery.start`, which returns the bound
    port (useful with port 0). Beyond `config.max_connections` open connections, new ones are
    closed at once. `host` should be an IP literal: a name resolving to several
    addresses would bind several sockets, and with port 0 each to a different port.
    `listeners` from `bind_listeners` serve a port bound earlier (dialers wait in its backlog)."""
    address = parse_address(my_address)
    check_task(task)
    if listeners is None:
        listeners, bound_port = await bind_listeners(host, port)
    else:
        bound_port = listeners[0].socket.getsockname()[1]
    # Each connection holds at most about two frames of buffer; capping the connections bounds
    # what a flood of unauthenticated dialers can make this server hold.
    connections = trio.CapacityLimiter(config.max_connections)

    async def serve_connection(stream: trio.SocketStream) -> None:
        try:
            connections.acquire_nowait()
        except trio.WouldBlock:
            logger.warning(
                "dropped %s: ServerBusy: %d connections open",
                describe_peer(stream),
                config.max_connections,
            )
            await trio.aclose_forcefully(stream)
            return
        try:
            await serve_peer(stream, my_keys, address, registry, handler, task=task, config=config)
        finally:
            connections.release()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, serve_connection, listeners)
        logger.info("serving task %d channels on %s:%d", task, host, bound_port)
        task_status.started(bound_port)
