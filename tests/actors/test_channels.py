"""Authenticated peer channels: Noise XX with static keys pinned on-chain.

Each test names the security property it checks. Handshakes over `memory_stream_pair` prove the
protocol; the TCP tests prove the server drops each kind of bad peer, logs it by its error's name,
and still serves an honest peer afterwards.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from actors.channels import (
    AuthenticationError,
    ChannelClosed,
    ChannelConfig,
    ChannelError,
    ChannelKeys,
    DecryptionError,
    FrameTooLarge,
    HandshakeError,
    HandshakeTimeout,
    MalformedFrame,
    PeerChannel,
    ReadTimeout,
    accept_channel_over_stream,
    open_channel,
    open_channel_over_stream,
    serve_channels,
    serve_peer,
)
from actors.channels.framing import FrameDecoder, encode_frame

# Wall-clock bound per test (pytest-timeout); trio deadlines below bound each wait as well.
pytestmark = pytest.mark.timeout(15)

TASK = 7
ALICE = 0xA11CE00000000000000000000000000000000001
BOB = 0xB0B0000000000000000000000000000000000002
CAROL = 0xCA20100000000000000000000000000000000003
EVE = 0xEEE0000000000000000000000000000000000004  # never registers

KEYS = {name: ChannelKeys.generate() for name in ("alice", "bob", "carol", "mallory", "eve")}
ON_CHAIN = {
    ALICE: KEYS["alice"].public_bytes,
    BOB: KEYS["bob"].public_bytes,
    CAROL: KEYS["carol"].public_bytes,
}

# Short enough that timeout tests on real sockets stay fast; long enough for two busy cores.
SERVER_CONFIG = ChannelConfig(max_frame=4096, handshake_timeout=1.0, read_timeout=1.0)


async def registry(address: int) -> bytes | None:
    """The on-chain registry as the chain client would answer it (one await per lookup)."""
    await trio.lowlevel.checkpoint()
    return ON_CHAIN.get(address)


class TapStream(trio.abc.Stream):
    """Passes bytes through and remembers each write, so a test can replay a frame verbatim."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.sent: list[bytes] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.append(bytes(data))
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def both(
    initiator: Callable[[], Awaitable[PeerChannel]],
    responder: Callable[[], Awaitable[PeerChannel]],
) -> tuple[PeerChannel | ChannelError, PeerChannel | ChannelError]:
    """Run both sides of a handshake; each side's outcome is its channel or its ChannelError."""
    outcome: dict[str, Any] = {}

    async def run(side: str, fn: Callable[[], Awaitable[PeerChannel]]) -> None:
        try:
            outcome[side] = await fn()
        except ChannelError as exc:
            outcome[side] = exc

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, "responder", responder)
            nursery.start_soon(run, "initiator", initiator)
    return outcome["initiator"], outcome["responder"]


async def memory_handshake(
    *,
    client: str = "alice",
    client_address: int | str = ALICE,
    dial: int | str = BOB,
    server: str = "bob",
    server_address: int | str = BOB,
    client_task: int = TASK,
    server_task: int = TASK,
    config: ChannelConfig = SERVER_CONFIG,
) -> tuple[PeerChannel | ChannelError, PeerChannel | ChannelError]:
    left, right = trio.testing.memory_stream_pair()
    return await both(
        lambda: open_channel_over_stream(
            left, KEYS[client], client_address, dial, registry, task=client_task, config=config
        ),
        lambda: accept_channel_over_stream(
            right, KEYS[server], server_address, registry, task=server_task, config=config
        ),
    )


# --- framing (sans-IO) ----------------------------------------------------------------------


@given(
    frames=st.lists(st.binary(min_size=1, max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
)
def test_frame_decoder_reassembles_frames_however_the_bytes_are_split(
    frames: list[bytes], cuts: list[int]
) -> None:
    wire = b"".join(encode_frame(frame, 300) for frame in frames)
    decoder = FrameDecoder()
    decoded = []
    bounds = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
    for start, end in itertools.pairwise(bounds):
        decoder.feed(wire[start:end])
        while (frame := decoder.next_frame(300)) is not None:
            decoded.append(frame)
    assert decoded == frames
    assert decoder.buffered == 0


def test_frame_decoder_refuses_a_bad_prefix_before_buffering_its_body() -> None:
    decoder = FrameDecoder()
    decoder.feed(((1 << 32) - 1).to_bytes(4, "big"))
    with pytest.raises(FrameTooLarge):
        decoder.next_frame(65535)
    empty = FrameDecoder()
    empty.feed(b"\x00\x00\x00\x00")
    with pytest.raises(MalformedFrame):
        empty.next_frame(65535)


# --- handshake and identity over memory streams ---------------------------------------------


async def test_happy_path_over_memory_streams_authenticates_both_sides() -> None:
    client, server = await memory_handshake()
    assert isinstance(client, PeerChannel) and isinstance(server, PeerChannel)
    assert client.peer_address == BOB and server.peer_address == ALICE
    assert client.peer_static_key == KEYS["bob"].public_bytes
    assert server.peer_static_key == KEYS["alice"].public_bytes
    assert client.handshake_hash == server.handshake_hash
    with trio.fail_after(5):
        await client.send(b"share for bob")
        assert await server.receive() == b"share for bob"
        await server.send(b"ack")
        assert await client.receive() == b"ack"
        largest = bytes(range(256)) * (SERVER_CONFIG.max_payload // 256) + b"x" * (
            SERVER_CONFIG.max_payload % 256
        )
        await client.send(largest)
        assert await server.receive() == largest
        await client.aclose()
        # The peer's close at a frame boundary ends iteration cleanly.
        assert [payload async for payload in server] == []
        assert server.closed


async def test_addresses_may_be_hex_strings() -> None:
    client, server = await memory_handshake(
        client_address=f"{ALICE:#x}", dial=f"{BOB:#X}"[2:], server_address=f"{BOB:#x}"
    )
    assert isinstance(client, PeerChannel) and isinstance(server, PeerChannel)
    assert (client.peer_address, server.peer_address) == (BOB, ALICE)
    await client.aclose()
    await server.aclose()


async def test_responder_rejects_a_static_key_not_registered_for_the_claimed_address() -> None:
    # Mallory claims Alice's address with her own key: the responder pins Alice's on-chain key.
    client, server = await memory_handshake(client="mallory", client_address=ALICE)
    assert isinstance(server, AuthenticationError)
    assert "not the key registered" in str(server)
    # The initiator finished its side, but the responder hung up: nothing ever gets through.
    assert isinstance(client, PeerChannel)
    with trio.fail_after(5), pytest.raises(ChannelClosed):
        await client.receive()


async def test_initiator_rejects_an_impostor_at_the_dialled_endpoint() -> None:
    # Mallory answers at Bob's endpoint claiming to be Bob: the initiator pins Bob's key, and
    # refuses before sending message 3, so Mallory never even learns who dialled.
    client, server = await memory_handshake(server="mallory", server_address=BOB)
    assert isinstance(client, AuthenticationError)
    assert "not the key registered" in str(client)
    assert isinstance(server, HandshakeError)
    assert "connection ended" in str(server)


async def test_initiator_rejects_an_endpoint_speaking_for_another_address() -> None:
    # Carol is honest and registered, but she is not whom Alice dialled.
    client, server = await memory_handshake(server="carol", server_address=CAROL, dial=BOB)
    assert isinstance(client, AuthenticationError)
    assert "speaks for" in str(client)
    assert isinstance(server, HandshakeError)


async def test_unregistered_address_is_rejected() -> None:
    client, server = await memory_handshake(client="eve", client_address=EVE)
    assert isinstance(server, AuthenticationError)
    assert "no channel key registered" in str(server)
    assert isinstance(client, PeerChannel)
    await client.aclose()


async def test_zero_bytes32_registration_counts_as_unregistered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A contract answers an unknown address with bytes32(0); it must never pin anything.
    monkeypatch.setitem(ON_CHAIN, EVE, bytes(32))
    client, server = await memory_handshake(client="eve", client_address=EVE)
    assert isinstance(server, AuthenticationError)
    assert isinstance(client, PeerChannel)
    await client.aclose()


async def test_handshake_of_another_task_fails_on_both_sides() -> None:
    # The task is in the Noise prologue: the first MAC (message 2) fails at the initiator.
    client, server = await memory_handshake(client_task=TASK + 1)
    assert isinstance(client, HandshakeError)
    assert "wrong task" in str(client)
    assert isinstance(server, HandshakeError)


async def test_a_recorded_session_cannot_be_replayed() -> None:
    # Record Alice's handshake bytes, then play them to a fresh responder: its new ephemeral key
    # makes the recorded message 3 fail, so an eavesdropper cannot pose as Alice.
    left, right = trio.testing.memory_stream_pair()
    tap = TapStream(left)
    client, server = await both(
        lambda: open_channel_over_stream(tap, KEYS["alice"], ALICE, BOB, registry, task=TASK),
        lambda: accept_channel_over_stream(right, KEYS["bob"], BOB, registry, task=TASK),
    )
    assert isinstance(client, PeerChannel) and isinstance(server, PeerChannel)
    recorded = tap.sent
    assert len(recorded) == 2  # messages 1 and 3

    attacker, victim = trio.testing.memory_stream_pair()

    async def replay() -> PeerChannel:
        for message in recorded:
            await attacker.send_all(message)
        await attacker.receive_some()  # wait for the responder to give up
        raise ChannelClosed("replayer done")

    _, outcome = await both(
        replay, lambda: accept_channel_over_stream(victim, KEYS["bob"], BOB, registry, task=TASK)
    )
    assert isinstance(outcome, HandshakeError)
    await client.aclose()
    await server.aclose()


async def test_garbage_first_message_is_a_handshake_error() -> None:
    for garbage in (b"\x01" * 10, b"\x02" * 100):
        left, right = trio.testing.memory_stream_pair()
        with trio.fail_after(5):
            await left.send_all(encode_frame(garbage, 256))
            with pytest.raises(HandshakeError):
                await accept_channel_over_stream(right, KEYS["bob"], BOB, registry, task=TASK)


# --- transport frames -----------------------------------------------------------------------


async def test_a_replayed_frame_is_rejected_and_the_peer_dropped() -> None:
    left, right = trio.testing.memory_stream_pair()
    tap = TapStream(left)
    client, server = await both(
        lambda: open_channel_over_stream(tap, KEYS["alice"], ALICE, BOB, registry, task=TASK),
        lambda: accept_channel_over_stream(right, KEYS["bob"], BOB, registry, task=TASK),
    )
    assert isinstance(client, PeerChannel) and isinstance(server, PeerChannel)
    with trio.fail_after(5):
        await client.send(b"pay bob 1 share")
        assert await server.receive() == b"pay bob 1 share"
        await left.send_all(tap.sent[-1])  # the same ciphertext frame again
        with pytest.raises(DecryptionError):
            await server.receive()
        assert server.closed
        with pytest.raises(ChannelClosed):
            await client.receive()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        pytest.param((1 << 31).to_bytes(4, "big"), FrameTooLarge, id="oversized-prefix"),
        pytest.param(encode_frame(b"\x00" * 64, 64), DecryptionError, id="garbage-frame"),
        pytest.param(b"\x00\x00\x00\x00", MalformedFrame, id="empty-frame"),
    ],
)
async def test_bad_transport_frames_drop_the_peer(raw: bytes, error: type[ChannelError]) -> None:
    left, right = trio.testing.memory_stream_pair()
    client, server = await both(
        lambda: open_channel_over_stream(left, KEYS["alice"], ALICE, BOB, registry, task=TASK),
        lambda: accept_channel_over_stream(right, KEYS["bob"], BOB, registry, task=TASK),
    )
    assert isinstance(client, PeerChannel) and isinstance(server, PeerChannel)
    with trio.fail_after(5):
        await left.send_all(raw)
        with pytest.raises(error):
            await server.receive()
        assert server.closed
    await client.aclose()


async def test_eof_inside_a_frame_is_malformed() -> None:
    left, right = trio.testing.memory_stream_pair()
    client, server = await both(
        lambda: open_channel_over_stream(left, KEYS["alice"], ALICE, BOB, registry, task=TASK),
        lambda: accept_channel_over_stream(right, KEYS["bob"], BOB, registry, task=TASK),
    )
    assert isinstance(client, PeerChannel) and isinstance(server, PeerChannel)
    with trio.fail_after(5):
        await left.send_all(b"\x00\x00\x01\x00" + b"half a frame")
        await left.aclose()
        with pytest.raises(MalformedFrame, match="EOF inside a frame"):
            await server.receive()


async def test_oversized_payload_is_refused_locally_and_the_channel_stays_usable() -> None:
    client, server = await memory_handshake()
    assert isinstance(client, PeerChannel) and isinstance(server, PeerChannel)
    with trio.fail_after(5):
        with pytest.raises(FrameTooLarge):
            await client.send(b"x" * (SERVER_CONFIG.max_payload + 1))
        await client.send(b"still here")
        assert await server.receive() == b"still here"
    await client.aclose()
    await server.aclose()


async def test_concurrent_senders_are_serialised_and_one_receiver_at_a_time() -> None:
    client, server = await memory_handshake()
    assert isinstance(client, PeerChannel) and isinstance(server, PeerChannel)
    received: list[bytes] = []

    async def send_many(tag: bytes) -> None:
        for i in range(40):
            await client.send(tag + i.to_bytes(2, "big"))

    async def drain() -> None:
        for _ in range(80):
            received.append(await server.receive())

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await server.receive()
            nursery.start_soon(send_many, b"a")
            nursery.start_soon(send_many, b"b")
    # Every frame decrypted: nonces went out in the order frames hit the wire.
    expected = [tag + i.to_bytes(2, "big") for tag in (b"a", b"b") for i in range(40)]
    assert sorted(received) == sorted(expected)
    await client.aclose()
    await server.aclose()


async def test_aclose_is_idempotent_and_a_closed_channel_refuses_io() -> None:
    client, server = await memory_handshake()
    assert isinstance(client, PeerChannel) and isinstance(server, PeerChannel)
    async with client:
        pass
    await client.aclose()
    await client.aclose()
    assert client.closed
    with pytest.raises(ChannelClosed):
        await client.send(b"late")
    with pytest.raises(ChannelClosed):
        await client.receive()
    with pytest.raises(ChannelClosed), trio.fail_after(5):
        await server.receive()
    await server.aclose()
    await server.aclose()


# --- deadlines (virtual time) ---------------------------------------------------------------


async def test_a_peer_that_never_finishes_the_handshake_is_dropped_after_the_timeout(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    config = ChannelConfig(handshake_timeout=30.0)
    left, right = trio.testing.memory_stream_pair()
    start = trio.current_time()

    async def never_called(peer: int, channel: PeerChannel) -> None:
        raise AssertionError("a stalled peer reached the handler")

    with caplog.at_level(logging.WARNING, logger="omnilytics.channels"):
        await left.send_all(encode_frame(b"\x09" * 32, 256))  # message 1, then silence
        await serve_peer(right, KEYS["bob"], BOB, registry, never_called, task=TASK, config=config)
    assert trio.current_time() - start == pytest.approx(30.0)
    assert "HandshakeTimeout" in caplog.text
    # The server side hung up: after message 2, the stalled peer sees the connection end.
    while await left.receive_some():
        pass


async def test_initiator_gives_up_on_a_silent_responder(
    autojump_clock: trio.testing.MockClock,
) -> None:
    left, _right = trio.testing.memory_stream_pair()
    with pytest.raises(HandshakeTimeout):
        await open_channel_over_stream(
            left, KEYS["alice"], ALICE, BOB, registry, task=TASK, config=ChannelConfig()
        )
    assert trio.current_time() == pytest.approx(ChannelConfig().handshake_timeout)


async def test_a_silent_authenticated_peer_is_dropped_after_the_read_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, server = await memory_handshake(config=ChannelConfig(read_timeout=45.0))
    assert isinstance(client, PeerChannel) and isinstance(server, PeerChannel)
    start = trio.current_time()
    with pytest.raises(ReadTimeout):
        await server.receive()
    assert trio.current_time() - start == pytest.approx(45.0)
    assert server.closed
    await client.aclose()


# --- the TCP server keeps serving honest peers after every rejection --------------------------


@pytest.fixture
def drops() -> Iterator[list[logging.LogRecord]]:
    """The server's drop records, as they are logged."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("omnilytics.channels")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


async def wait_for_drop(records: list[logging.LogRecord], error: str) -> None:
    with trio.fail_after(5):
        while not any(error in record.getMessage() for record in records):
            await trio.sleep(0.01)


async def echo(peer: int, channel: PeerChannel) -> None:
    async for payload in channel:
        await channel.send(peer.to_bytes(20, "big") + payload)


async def honest_exchange(port: int, who: str = "alice", address: int = ALICE) -> None:
    with trio.fail_after(5):
        async with await open_channel(
            "127.0.0.1", port, KEYS[who], address, BOB, registry, task=TASK
        ) as channel:
            for payload in (b"one", b"two" * 500):
                await channel.send(payload)
                assert await channel.receive() == address.to_bytes(20, "big") + payload


async def test_happy_path_over_tcp() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            # Keyword arguments reach a task through partial, as everywhere in trio.
            port = await nursery.start(
                partial(serve_channels, "127.0.0.1", 0, KEYS["bob"], BOB, registry, echo, task=TASK)
            )
            assert port != 0
            async with trio.open_nursery() as clients:
                clients.start_soon(honest_exchange, port, "alice", ALICE)
                clients.start_soon(honest_exchange, port, "carol", CAROL)
            nursery.cancel_scope.cancel()


async def raw_connection(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def wait_for_hangup(stream: trio.abc.Stream) -> None:
    with trio.fail_after(5):
        try:
            while await stream.receive_some():
                pass
        except trio.BrokenResourceError:
            pass
        await stream.aclose()


async def attack_wrong_key(port: int) -> None:
    channel = await open_channel(
        "127.0.0.1", port, KEYS["mallory"], ALICE, BOB, registry, task=TASK
    )
    with pytest.raises(ChannelClosed):
        await channel.receive()


async def attack_unregistered(port: int) -> None:
    channel = await open_channel("127.0.0.1", port, KEYS["eve"], EVE, BOB, registry, task=TASK)
    with pytest.raises(ChannelClosed):
        await channel.receive()


async def attack_other_task(port: int) -> None:
    with pytest.raises(HandshakeError):
        await open_channel("127.0.0.1", port, KEYS["alice"], ALICE, BOB, registry, task=TASK + 1)


async def attack_oversized_prefix(port: int) -> None:
    stream = await raw_connection(port)
    await stream.send_all(((1 << 32) - 1).to_bytes(4, "big"))
    await wait_for_hangup(stream)


async def attack_garbage_handshake(port: int) -> None:
    stream = await raw_connection(port)
    await stream.send_all(encode_frame(b"\xff" * 200, 256))
    await wait_for_hangup(stream)


async def attack_stall_in_handshake(port: int) -> None:
    stream = await raw_connection(port)
    await wait_for_hangup(stream)


async def rogue_alice(port: int) -> tuple[PeerChannel, TapStream]:
    """Alice, registered and authenticated, about to misbehave on the raw socket."""
    tap = TapStream(await raw_connection(port))
    channel = await open_channel_over_stream(tap, KEYS["alice"], ALICE, BOB, registry, task=TASK)
    return channel, tap


async def attack_replay(port: int) -> None:
    channel, tap = await rogue_alice(port)
    await channel.send(b"once")
    assert await channel.receive() == ALICE.to_bytes(20, "big") + b"once"
    await tap.inner.send_all(tap.sent[-1])
    await wait_for_hangup(tap.inner)


async def attack_oversized_frame(port: int) -> None:
    _, tap = await rogue_alice(port)
    await tap.inner.send_all((SERVER_CONFIG.max_frame + 1).to_bytes(4, "big"))
    await wait_for_hangup(tap.inner)


async def attack_garbage_frame(port: int) -> None:
    _, tap = await rogue_alice(port)
    await tap.inner.send_all(encode_frame(b"\x13" * 100, 4096))
    await wait_for_hangup(tap.inner)


async def attack_silence_after_handshake(port: int) -> None:
    _, tap = await rogue_alice(port)
    await wait_for_hangup(tap.inner)


@pytest.mark.parametrize(
    ("attack", "error"),
    [
        (attack_wrong_key, "AuthenticationError"),
        (attack_unregistered, "AuthenticationError"),
        (attack_other_task, "HandshakeError"),
        (attack_oversized_prefix, "FrameTooLarge"),
        (attack_garbage_handshake, "HandshakeError"),
        (attack_stall_in_handshake, "HandshakeTimeout"),
        (attack_replay, "DecryptionError"),
        (attack_oversized_frame, "FrameTooLarge"),
        (attack_garbage_frame, "DecryptionError"),
        (attack_silence_after_handshake, "ReadTimeout"),
    ],
    ids=lambda value: value.__name__.removeprefix("attack_") if callable(value) else None,
)
async def test_server_drops_a_bad_peer_and_keeps_serving_honest_ones(
    attack: Callable[[int], Awaitable[None]], error: str, drops: list[logging.LogRecord]
) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                partial(
                    serve_channels,
                    "127.0.0.1",
                    0,
                    KEYS["bob"],
                    BOB,
                    registry,
                    echo,
                    task=TASK,
                    config=SERVER_CONFIG,
                )
            )
            await honest_exchange(port)
            await attack(port)
            await wait_for_drop(drops, error)
            await honest_exchange(port)
            await honest_exchange(port, "carol", CAROL)
            nursery.cancel_scope.cancel()
    assert any(error in record.getMessage() for record in drops)


async def test_connections_beyond_the_cap_are_closed_at_once(
    drops: list[logging.LogRecord],
) -> None:
    config = ChannelConfig(handshake_timeout=1.0, read_timeout=1.0, max_connections=1)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            serve = partial(
                serve_channels,
                "127.0.0.1",
                0,
                KEYS["bob"],
                BOB,
                registry,
                echo,
                task=TASK,
                config=config,
            )
            port = await nursery.start(serve)
            staller = await raw_connection(port)
            # Message 2 coming back proves the server is holding the staller's slot.
            await staller.send_all(encode_frame(KEYS["eve"].public_bytes, 256))
            assert await staller.receive_some()
            await wait_for_hangup(await raw_connection(port))
            assert "ServerBusy" in drops[-1].getMessage()
            # Once the staller times out its slot is free again for an honest peer.
            await wait_for_hangup(staller)
            await wait_for_drop(drops, "HandshakeTimeout")
            await honest_exchange(port)
            nursery.cancel_scope.cancel()


async def test_connecting_to_a_closed_port_is_a_channel_error() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    with trio.fail_after(5), pytest.raises(ChannelError):
        await open_channel("127.0.0.1", port, KEYS["alice"], ALICE, BOB, registry, task=TASK)


# --- composition with the message layer -------------------------------------------------------


async def test_a_share_delivery_travels_through_a_channel(drops: list[logging.LogRecord]) -> None:
    messages = pytest.importorskip("protocol.messages")
    from protocol.errors import DecodeError

    delivered: list[Any] = []

    async def holder(peer: int, channel: PeerChannel) -> None:
        # The message layer owns the schema; a payload that does not decode is the peer's fault,
        # so it becomes a ChannelError and the server drops that peer.
        try:
            message = messages.decode(await channel.receive())
        except DecodeError as exc:
            raise MalformedFrame(f"undecodable message: {exc}") from exc
        # The channel authenticated the dealer; a delivery must not speak for anyone else.
        if messages.address_int(message.dealer) != peer:
            raise MalformedFrame("share delivery names another dealer")
        delivered.append(message)
        ack = messages.ShareAck(
            task=message.task,
            round=message.round,
            dealer=message.dealer,
            holder=message.holder,
            shares_root=message.shares_root,
        )
        await channel.send(messages.encode(ack))

    delivery = messages.ShareDelivery(
        task=TASK,
        round=0,
        dealer=messages.address_bytes(ALICE),
        holder=messages.address_bytes(BOB),
        seed_share=b"\x11" * 32,
        seed_blind=b"\x12" * 32,
        key_share=b"\x22" * 32,
        key_blind=b"\x23" * 32,
        mask_public=b"\x33" * 32,
        shares_root=b"\x44" * 32,
        seed_proof=(b"\x55" * 32,),
        key_proof=(b"\x66" * 32, b"\x77" * 32),
        points=b"\x88" * 4096,  # the largest a delivery carries: 2 x 32 points
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                partial(
                    serve_channels, "127.0.0.1", 0, KEYS["bob"], BOB, registry, holder, task=TASK
                )
            )
            # Carol, authenticated as Carol, tries to deliver shares in Alice's name.
            async with await open_channel(
                "127.0.0.1", port, KEYS["carol"], CAROL, BOB, registry, task=TASK
            ) as carol:
                await carol.send(messages.encode(delivery))
                with pytest.raises(ChannelClosed):
                    await carol.receive()
            async with await open_channel(
                "127.0.0.1", port, KEYS["carol"], CAROL, BOB, registry, task=TASK
            ) as carol:
                await carol.send(b"\xc1 not msgpack")
                with pytest.raises(ChannelClosed):
                    await carol.receive()
            async with await open_channel(
                "127.0.0.1", port, KEYS["alice"], ALICE, BOB, registry, task=TASK
            ) as alice:
                await alice.send(messages.encode(delivery))
                ack = messages.decode(await alice.receive())
            nursery.cancel_scope.cancel()
    assert delivered == [delivery]
    assert isinstance(ack, messages.ShareAck) and ack.shares_root == delivery.shares_root
    reasons = [record.getMessage() for record in drops]
    assert sum("MalformedFrame" in reason for reason in reasons) == 2
