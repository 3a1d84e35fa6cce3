"""Data owners on separate hosts: each data owner process runs in a network namespace of its own
(its own stack and address, on one bridge with the node), talks to the chain and to its peers only
over that link, and one of them is cut off (its link set down) after it committed its shares. The
round completes without it: its peers reveal its mask key, the aggregate recovered from chain data
is exact over the survivors, and the survivors are paid.

The test creates every namespace, veth pair and the bridge itself, in a private /24 of
10.213.0.0/16 that no interface of this machine uses, and removes them all afterwards. It skips
where that is not permitted (no `ip`, no CAP_NET_ADMIN, no namespaces).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from actors.chain.anvil import AnvilNode, anvil_binary
from actors.chain.rpc_backend import RpcChain
from actors.entry.scenario import Scenario
from actors.entry.swarm import Swarm
from protocol.constants import (
    GROUP_FINALIZED,
    KIND_MASK_KEY,
    PHASE_ENDED,
    STATUS_COMMITTED,
    STATUS_UNMASKED,
)

# ~2-3 minutes (it waits out a 45 s SUBMIT on a 1 s block clock): `just test-slow`
pytestmark = [pytest.mark.netns, pytest.mark.anvil, pytest.mark.slow]

DOS = 4


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


def _free_subnet() -> str:
    """A 10.213.x.0/24 that no interface here uses (x from our pid, so parallel runs differ)."""
    used = _ip("-4", "-o", "addr", "show").stdout
    start = os.getpid() % 254
    for step in range(254):
        prefix = f"10.213.{(start + step) % 254 + 1}"
        if f" {prefix}." not in used:
            return prefix
    pytest.skip("every 10.213.x.0/24 is in use on this machine")


@dataclass
class Hosts:
    """A bridge on this machine (where the node listens) and one namespace per data owner."""

    count: int
    tag: str = field(default_factory=lambda: f"omx{os.getpid() % 100_000}")
    prefix: str = field(default_factory=_free_subnet)
    made: list[tuple[str, ...]] = field(default_factory=list)  # undo commands, in order made

    @property
    def bridge(self) -> str:
        return f"{self.tag}b"

    @property
    def node_address(self) -> str:
        return f"{self.prefix}.1"

    def namespace(self, i: int) -> str:
        return f"{self.tag}n{i}"

    def link(self, i: int) -> str:
        """The host side of data owner i's veth: setting it down cuts that host off."""
        return f"{self.tag}v{i}"

    def address(self, i: int) -> str:
        return f"{self.prefix}.{10 + i}"

    def run_prefix(self, i: int) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(i)]

    def _must(self, *args: str, undo: tuple[str, ...] | None = None) -> None:
        done = _ip(*args)
        if done.returncode != 0:
            raise OSError(f"ip {' '.join(args)}: {done.stderr.strip()}")
        if undo is not None:
            self.made.append(undo)

    def create(self) -> None:
        self._must("link", "add", self.bridge, "type", "bridge", undo=("link", "del", self.bridge))
        self._must("addr", "add", f"{self.node_address}/24", "dev", self.bridge)
        self._must("link", "set", self.bridge, "up")
        for i in range(self.count):
            ns, host_end, ns_end = self.namespace(i), self.link(i), f"{self.tag}p{i}"
            self._must("netns", "add", ns, undo=("netns", "del", ns))
            veth = ("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            self._must(*veth, undo=("link", "del", host_end))
            self._must("link", "set", ns_end, "netns", ns)
            self._must("link", "set", host_end, "master", self.bridge)
            self._must("link", "set", host_end, "up")
            self._must("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", ns_end)
            self._must("-n", ns, "link", "set", ns_end, "up")
            self._must("-n", ns, "link", "set", "lo", "up")

    def remove(self) -> list[str]:
        """Undo everything made, newest first (a veth before its namespace: deleting one end
        deletes the pair at once); returns what is left over."""
        for undo in reversed(self.made):
            _ip(*undo)
        self.made.clear()
        links = _ip("-o", "link", "show").stdout
        spaces = _ip("netns", "list").stdout
        return [name for name in (links + spaces).split() if name.startswith(self.tag)]

    def cut_off(self, i: int) -> None:
        self._must("link", "set", self.link(i), "down")


def _reachable(hosts: Hosts, i: int, address: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=2)"
    done = subprocess.run(
        [*hosts.run_prefix(i), sys.executable, "-c", probe], capture_output=True, timeout=20
    )
    return done.returncode == 0


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if shutil.which("ip") is None:
        pytest.skip("needs `ip` (iproute2) to create network namespaces")
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_NET_ADMIN) to create network namespaces")
    if anvil_binary() is None:
        pytest.skip("anvil not found: run `just setup`")
    made = Hosts(DOS)
    try:
        made.create()
    except OSError as error:
        left = made.remove()
        pytest.skip(f"network namespaces not permitted here: {error} (left over: {left})")
    try:
        yield made
    finally:
        left = made.remove()
        assert not left, f"interfaces or namespaces left behind: {left}"


def _cut_after_commit(swarm: Swarm, hosts: Hosts, timeout: float) -> int:
    """Cut off the first data owner seen committed. SUBMIT opens only after the last of the four
    commitments and an `advance`, so polling every 50 ms catches the first one well before it
    could submit (the test checks that it did not)."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = {i: swarm.market.status(swarm.task, 0, swarm.account_of(i)) for i in range(DOS)}
        committed = [i for i, s in statuses.items() if s >= STATUS_COMMITTED]
        if committed:
            victim = committed[0]
            hosts.cut_off(victim)
            return victim
        assert time.monotonic() < deadline, "no data owner committed its shares in time"
        time.sleep(0.05)


def test_round_completes_without_a_data_owner_cut_off_after_committing(
    hosts: Hosts, tmp_path: Path
) -> None:
    scenario = Scenario(
        dos=DOS,
        rounds=1,
        group_size=DOS,
        threshold=DOS - 1,
        do_samples=200,
        test_limit=1_000,
        submit_duration=45,  # the survivors wait out the one who never submits
    )
    # Blocks every second, as on a real chain: an automining node's clock stands still while no
    # transaction comes, and the survivors wait for the SUBMIT deadline to pass on-chain.
    with AnvilNode(host=hosts.node_address, block_time=1) as node:
        # each namespace is a host of its own: the node is there only through the bridge
        assert _reachable(hosts, 0, hosts.node_address, node.port)
        assert not _reachable(hosts, 0, "127.0.0.1", node.port)
        swarm = Swarm(
            scenario,
            RpcChain(node.url, dev=True),
            tmp_path,
            do_hosts={i: hosts.address(i) for i in range(DOS)},
            do_prefixes={i: hosts.run_prefix(i) for i in range(DOS)},
        )
        cut_process = None
        try:
            swarm.start(timeout=120)
            victim = _cut_after_commit(swarm, hosts, timeout=120)
            # The launcher no longer sees the host it cut off; its process stays alive, stranded.
            cut_process = swarm.dos.pop(victim)
            swarm.wait(timeout=240)  # SETTLE waits out the one cut off: it never settles
            report = swarm.report()
            market, task = swarm.market, swarm.task
            endpoints = {i: market.endpoint(task, swarm.account_of(i)) for i in range(DOS)}
            statuses = {i: market.status(task, 0, swarm.account_of(i)) for i in range(DOS)}
            credited = {i: market.is_credited(task, 0, swarm.account_of(i)) for i in range(DOS)}
            phase, result = market.phase(task).phase, market.group_result(task, 0, 0)
            reveals = market.revealed_shares(task, 0)
        finally:
            swarm.stop()
            if cut_process is not None:
                cut_process.kill()
                cut_process.wait()
    survivors = [i for i in range(DOS) if i != victim]
    victim_address = int(swarm.account_of(victim), 16)
    assert all(endpoints[i].startswith(f"{hosts.address(i)}:") for i in range(DOS)), endpoints
    assert statuses[victim] == STATUS_COMMITTED  # committed its shares, never submitted
    assert all(statuses[i] == STATUS_UNMASKED for i in survivors)
    assert phase == PHASE_ENDED and result == GROUP_FINALIZED
    # every survivor revealed its share of the victim's mask key (its pairwise masks cancel)
    holders = {r.holder for r in reveals if r.dealer == victim_address and r.kind == KIND_MASK_KEY}
    assert holders == {int(swarm.account_of(i), 16) for i in survivors}
    assert report.aggregate_exact is True  # exact over the survivors' plaintext updates
    assert not credited[victim] and all(credited[i] for i in survivors)
    reward = scenario.plan().reward_per_do
    assert report.withdrawn_wei == {swarm.account_of(i): reward for i in survivors}
    assert report.accuracy_after[0] > report.accuracy_before[0]
