"""Channel attacks in a real round: while SHARE is open, an attacker dials a data owner's
registered endpoint (a) with its own Noise key under the address of that data owner's group peer,
(b) under the model owner's address, which has no channel key in the task, (c) announcing a
frame longer than any handshake message, (d) with handshake messages of random bytes and (e) an
empty frame. The data owner drops each connection and logs it under its error's name; the round
completes with exact aggregates and every data owner paid.

The channel tests (test_channels.py) prove the server's checks with a dict for a registry; here
the keys are the ones the data owners registered on-chain and the server is the actor's own."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import boa
import numpy as np
import pytest
import trio
from eth_utils import to_checksum_address

from actors.chain.market import Market
from actors.channels import ChannelError, ChannelKeys, open_channel_over_stream
from actors.channels.framing import FramedStream
from actors.roles.data_owner import DataOwner
from actors.roles.round_actions import RoundActions
from protocol.constants import PHASE_SHARE
from protocol.round import PostCommitment
from tests.actors.test_round_e2e import REWARD, run_market

# every attack, what the data owner's server must log for it
EXPECTED = {
    "wrong key": "AuthenticationError: static key {attacker_key} is not the key registered for "
    "{claimed}",
    "unregistered": "AuthenticationError: address {claimed} has no channel key registered",
    "oversized": "FrameTooLarge: length prefix 1048576 exceeds the limit of 256",
    "garbage": "HandshakeError: bad handshake message",
    "empty frame": "MalformedFrame: empty frame",
}


async def until_closed(stream: trio.SocketStream) -> None:
    """Read until the other side hangs up (EOF, or a reset when it closed with bytes unread)."""
    try:
        while await stream.receive_some():
            pass
    except trio.BrokenResourceError:
        pass


class Attacker:
    """Dials one data owner's endpoint, once per attack; remembers each connection's local end
    (what the data owner logs it as) and what it claimed."""

    def __init__(self, market: Market, task: int, victim: str) -> None:
        self.market, self.task, self.victim = market, task, victim
        host, port = market.endpoint(task, victim).rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.connections: dict[str, str] = {}  # attack -> local "host:port"
        self.claims: dict[str, dict[str, str]] = {}  # attack -> the fields of its log line
        self.outcomes: dict[str, str] = {}  # attack -> what the attacker saw

    async def registry(self, address: int) -> bytes | None:
        # the attacker authenticates the data owner it dials with the key on-chain, as a peer does
        return self.market.channel_key(self.task, to_checksum_address(f"{address:#042x}"))

    async def connect(self, attack: str) -> trio.SocketStream:
        stream = await trio.open_tcp_stream(self.host, self.port)
        host, port = stream.socket.getsockname()[:2]
        self.connections[attack] = f"{host}:{port}"
        return stream

    async def impersonate(self, attack: str, claimed: str) -> None:
        """A complete handshake on the attacker's side, claiming `claimed` with a key of its own;
        then a payload, and a wait for the data owner's answer."""
        keys = ChannelKeys.generate()
        self.claims[attack] = {"attacker_key": keys.public_bytes.hex(), "claimed": claimed.lower()}
        stream = await self.connect(attack)
        channel = await open_channel_over_stream(
            stream, keys, claimed, self.victim, self.registry, task=self.task
        )
        try:
            await channel.send(b"a share delivery, forged")
            await channel.receive()
            self.outcomes[attack] = "answered"
        except ChannelError as error:
            self.outcomes[attack] = type(error).__name__
        finally:
            await channel.aclose()

    async def send_raw(self, attack: str, data: bytes) -> None:
        stream = await self.connect(attack)
        await stream.send_all(data)
        await until_closed(stream)
        self.outcomes[attack] = "closed"
        await stream.aclose()

    async def garbage_handshake(self) -> None:
        """Any 32 bytes pass for an ephemeral key: the data owner answers them; then 64 bytes of
        noise for the last handshake message."""
        stream = await self.connect("garbage")
        framed = FramedStream(stream)
        await framed.write_frame(os.urandom(32), 256)
        await framed.read_frame(256)
        await framed.write_frame(os.urandom(64), 256)
        await until_closed(stream)
        self.outcomes["garbage"] = "closed"
        await stream.aclose()

    async def run(self, peer: str, stranger: str) -> None:
        with trio.fail_after(20):
            await self.impersonate("wrong key", peer)
            await self.impersonate("unregistered", stranger)
            await self.send_raw("oversized", (1 << 20).to_bytes(4, "big") + os.urandom(1024))
            await self.garbage_handshake()
            await self.send_raw("empty frame", bytes(4) + os.urandom(60))


class AttackingBeforeCommit(RoundActions):
    async def _perform_one(self, action, batch, resumed) -> None:
        if isinstance(action, PostCommitment) and AttackedGroup.attacker is None:
            market, task, me = self.ctx.market, self.ctx.task, self.ctx.account
            victim = next(m for m in self.members if m != me)
            attacker = AttackedGroup.attacker = Attacker(market, task, victim)
            before = market.phase(task).phase
            await attacker.run(peer=me, stranger=market.owner(task))
            AttackedGroup.phases = (before, market.phase(task).phase)
        await super()._perform_one(action, batch, resumed)


class AttackedGroup(DataOwner):
    """An honest data owner that, about to commit its shares, lets an attacker loose on the first
    other member of its group. SHARE cannot close early before that commitment, so every attack
    happens in SHARE, while the group's real deliveries are under way."""

    attacker: Attacker | None = None
    phases: tuple[int, int] | None = None  # the task's phase before and after the attacks
    actions_type = AttackingBeforeCommit


async def test_attacks_on_a_data_owners_endpoint_are_dropped_and_the_round_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    AttackedGroup.attacker = AttackedGroup.phases = None
    caplog.set_level(logging.WARNING, logger="omnilytics.channels")
    with boa.env.anchor(), trio.fail_after(120):
        _, market, mo, dos, reports, _ = await run_market(
            tmp_path, {}, kinds={0: AttackedGroup}, share_duration=60
        )
        attacker = AttackedGroup.attacker
        assert attacker is not None
        assert AttackedGroup.phases == (PHASE_SHARE, PHASE_SHARE)

        # the impostors' handshakes completed on their side; the data owner hung up all the same
        assert attacker.outcomes == {
            "wrong key": "ChannelClosed",
            "unregistered": "ChannelClosed",
            "oversized": "closed",
            "garbage": "closed",
            "empty frame": "closed",
        }
        drops = [r.getMessage() for r in caplog.records if r.name == "omnilytics.channels"]
        for attack, expected in EXPECTED.items():
            line = f"dropped {attacker.connections[attack]} during handshake: " + expected.format(
                **attacker.claims.get(attack, {})
            )
            assert [d for d in drops if d.startswith(line)], (attack, line, drops)
        assert len(drops) == len(EXPECTED)  # nobody else was dropped: the honest peers got through

        # the victim still served its group: nobody complained, both groups' sums are exact
        (report,) = reports
        task = mo.task
        assert market.complaints(task, 0) == []
        assert report.finalized_groups == 2
        for group in range(market.group_count(task)):
            members = market.group_members(task, group)
            expected = sum(do.plaintext[0] for do in dos if do.account in members)
            np.testing.assert_array_equal(report.aggregates[group], expected)
        assert all(do.withdrawn_wei == REWARD for do in dos)
