"""The strangers test (issue 16): parties who share no file and no parent process run a market
on one node, each only through the command line, as people on different machines would.

- A node runs (anvil; or Hardhat's node); a faucet funds the accounts people make (on a dev
  node, its balance method: what a testnet faucet does).
- A deployer, in a directory of its own with its own per-user directory ($OMNILYTICS_HOME),
  imports its key into a keystore and runs `omnilytics deploy`; it publishes the market address.
- A model owner makes its own account, writes its own omnilytics.toml naming that market, and
  runs `omnilytics task create` with a spec and its own validation files.
- Each data owner makes its own account and config, holds only its own data folder, reads
  `omnilytics tasks`, and runs `omnilytics join` on the open task.
- Two rounds complete; every data owner withdraws and prints what it earned (the reward of two
  rounds), and the model owner exports its model with `omnilytics task model`.

What they do share is the install: the project's code and its compiled contracts (the cache
of actors.chain.artifacts, which a cold compile fills in 10-20 s of CPU on a busy machine).
Loopback, and (slow-marked, where root permits) with the model owner and every data owner in a
network namespace of its own on one bridge with the node (tests/integration/test_netns.py's
hosts). The default suite runs two data owners on anvil (52 s of CPU; 117 s of wall
time on 2 cores at a load average of 8); three and five on anvil and five on Hardhat's node are
slow-marked (`just test-slow`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from actors.chain import artifacts
from actors.chain.anvil import AnvilNode
from actors.chain.hardhat import HardhatNode, hardhat_binary
from actors.chain.node_process import NodeProcess
from actors.chain.rpc_backend import RpcChain
from actors.learning import spec_model as sm
from tests.actors.entry.conftest import DEV_KEY
from tests.integration.test_netns import Hosts

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "breast-cancer-mlp.toml"
REWARD = 10**15  # the spec's reward_wei per data owner per round
BOND = 10**14
PASSWORD = "a stranger's own password\n"
FAUCET = 10**20


@dataclass
class Person:
    """One party: a directory of its own (its working directory), its own per-user directory
    and password file; it runs commands as separate processes."""

    name: str
    root: Path
    cache: Path  # the install's compiled contracts (actors.chain.artifacts)
    host: list[str] = field(default_factory=list)  # `ip netns exec NS`: a host of its own

    def __post_init__(self) -> None:
        (self.root / "home").mkdir(parents=True)
        (self.root / "password").write_text(PASSWORD)

    @property
    def env(self) -> dict[str, str]:
        # nothing inherited but PATH, the interpreter's import path and the install's compiled
        # contracts: no key, no home, no config
        return {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            "OMNILYTICS_HOME": str(self.root / "home"),
            "HOME": str(self.root),
            "XDG_CACHE_HOME": str(self.cache),
            "COLUMNS": "200",
            "PYTHONUNBUFFERED": "1",  # the task id is read while the model owner runs
        }

    def command(self, *args: str) -> list[str]:
        return [*self.host, sys.executable, "-m", "actors.entry.cli", *args]

    def run(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{self.name}: {' '.join(args)}\n{done.stderr}"
        return done.stdout

    def start(self, *args: str) -> subprocess.Popen:
        log = (self.root / "out.log").open("w")
        return subprocess.Popen(
            self.command(*args), cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=log
        )

    def password(self) -> list[str]:
        return ["--password-file", str(self.root / "password")]

    def configure(self, url: str, market: str | None = None) -> None:
        table = f'[networks.local]\nurl = "{url}"\nchain_id = 31337\n'
        if market is not None:
            table += f'market = "{market}"\n'
        (self.root / "omnilytics.toml").write_text(table)

    def new_account(self) -> str:
        return self.run("account", "new", self.name, *self.password()).strip()


def _spec(dos: int, path: Path) -> Path:
    """The breast-cancer spec for `dos` data owners in one group: two rounds, a bond, and a
    registration that closes as soon as the seats are taken."""
    text = SPEC.read_text()
    market = text[text.index("[market]") :]
    threshold = dos // 2 + 1
    ours = (
        f"[market]\nrounds = 2\nmax_dos = {dos}\nmin_dos = {dos}\ngroup_size = {dos}\n"
        f"threshold = {threshold}\nreward_wei = {REWARD}\nbond_wei = {BOND}\nclip_norm = 8.0\n"
        "register_duration = 600\n"
    )
    path.write_text(text.replace(market, ours))
    return path


def _node(kind: str) -> NodeProcess:
    if kind == "hardhat":
        if hardhat_binary() is None:
            pytest.skip("hardhat is not installed (just setup)")
        return HardhatNode()
    return AnvilNode()


def _restart_when_shares_flow(node: AnvilNode, owner: Person, state: Path) -> AnvilNode:
    """Once round 1's share phase opened, stop the node (it dumps its state) and start it again
    on the same port from that state, after a pause the parties must wait out."""
    log = owner.root / "state" / "actor.log"
    deadline = time.monotonic() + 300
    while "phase round=0 phase=3" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "round 1 never reached its share phase"
        time.sleep(0.2)
    node.stop()
    time.sleep(3)
    args = ("--load-state", str(state), "--dump-state", str(state))
    return AnvilNode(port=node.port, extra_args=args)


def _strangers(
    kind: str, dos: int, tmp_path: Path, *, restart: bool = False, hosts: Hosts | None = None
) -> None:
    """With `hosts`, the node listens on a bridge and the model owner and each data owner run
    in a network namespace of their own (data owner i in namespace i, the model owner in the
    last), reaching the node and each other only over that link."""
    with ExitStack() as stack:
        state = tmp_path / "node-state.json"
        if restart:
            node = stack.enter_context(AnvilNode(extra_args=("--dump-state", str(state))))
        elif hosts is not None:
            node = stack.enter_context(AnvilNode(host=hosts.node_address))
        else:
            node = stack.enter_context(_node(kind))
        faucet = RpcChain(node.url, dev=True)
        processes: list[subprocess.Popen] = []

        @stack.callback
        def _stop() -> None:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()

        cache = artifacts.cache_dir().parents[1]  # this install's, kept between runs
        # the deployer: the node's funded dev key, imported into its keystore
        deployer = Person("deployer", tmp_path / "deployer", cache)
        (deployer.root / "dev.key").write_text(DEV_KEY + "\n")
        deployer.run("account", "import", "deployer", "--key-file", "dev.key", *deployer.password())
        deployer.configure(node.url)
        deploy = ["deploy", "--network", "local", "--account", "deployer", *deployer.password()]
        market = deployer.run(*deploy).strip()
        assert re.fullmatch(r"0x[0-9a-fA-F]{40}", market)

        # the data: one generator run (the project's script), each part handed to its owner
        shared = tmp_path / "generated"
        generate = [sys.executable, "-m", "actors.learning.examples", "breast-cancer-mlp"]
        generate += [str(shared), "--dos", str(dos), "--per-do", "60", "--owner", "40"]
        subprocess.run([*generate, "--test", "100"], check=True, cwd=ROOT, capture_output=True)

        owner = Person("model-owner", tmp_path / "model-owner", cache)
        if hosts is not None:
            owner.host = hosts.run_prefix(dos)
        for part in ("owner", "test"):
            (shared / part).rename(owner.root / part)
        spec = _spec(dos, owner.root / "task.toml")
        faucet.fund(owner.new_account(), FAUCET)
        owner.configure(node.url, market)
        create = ["task", "create", str(spec), "--validation", "owner/data.csv"]
        create += ["--test", "test/data.csv", "--network", "local", "--account", owner.name]
        create += [*owner.password(), "--state-dir", "state"]
        owner_process = owner.start(*create)
        processes.append(owner_process)

        # the data owners come on their own, at once: each makes its account and config while
        # the model owner starts, then reads the open tasks and joins
        def prepare(i: int) -> tuple[Person, str]:
            person = Person(f"do-{i}", tmp_path / f"data-owner-{i}", cache)
            if hosts is not None:
                person.host = hosts.run_prefix(i)
            (shared / f"do-{i}").rename(person.root / "data")
            address = person.new_account()
            faucet.fund(address, FAUCET)
            person.configure(node.url, market)
            return person, address

        def join(person: Person, i: int) -> subprocess.Popen:
            listed = json.loads(person.run("tasks", "--network", "local", "--json"))
            assert [t["task"] for t in listed if t["open"]] == [task]
            assert listed[0]["spec"]["data"].startswith("tabular 30 float32")
            args = ["join", str(task), "--data", "data/data.csv", "--network", "local"]
            args += ["--account", person.name, *person.password(), "--state-dir", "state"]
            if hosts is not None:  # the channel endpoint it registers: its own address
                args += ["--host", hosts.address(i)]
            return person.start(*args)

        with ThreadPoolExecutor(dos) as pool:
            prepared = list(pool.map(prepare, range(dos)))
            task = int(owner_process.stdout.readline())
            started = list(pool.map(join, [person for person, _ in prepared], range(dos)))
        processes.extend(started)
        joiners = {
            address: (person, process)
            for (person, address), process in zip(prepared, started, strict=True)
        }

        if restart:
            stack.enter_context(_restart_when_shares_flow(node, owner, state))
        assert owner_process.wait(timeout=600) == 0, (owner.root / "out.log").read_text()
        for address, (person, process) in joiners.items():
            out, _ = process.communicate(timeout=120)
            log = (person.root / "out.log").read_text()
            assert process.returncode == 0, log
            earned = f"{2 * REWARD / 10**18:f}".rstrip("0")
            assert f"bond of {BOND / 10**18:f}".rstrip("0") in out.decode()
            assert f"{earned} ETH earned" in out.decode(), out.decode() + log
            assert "Traceback" not in log
            if restart:  # it saw the node go, and carried on
                assert "the node does not answer" in log, log
            assert faucet.balance(address) > FAUCET - 10**17  # paid back what it staked

        exported = owner.root / "model.safetensors"
        owner.run("task", "model", str(task), "--state-dir", "state", "--out", str(exported))
        loaded_spec, _ = sm.load_exported(exported.read_bytes())
        assert loaded_spec.market.rounds == 2 and loaded_spec.market.max_dos == dos


@pytest.mark.anvil
def test_two_strangers_run_a_market_on_anvil(tmp_path: Path) -> None:
    """The default suite's variant: the whole walk with two data owners."""
    _strangers("anvil", 2, tmp_path)


@pytest.mark.slow
@pytest.mark.anvil
def test_a_node_restarted_mid_round_loses_no_data_owners_round(tmp_path: Path) -> None:
    """anvil stopped once round 1's shares flow and started again from its dumped state: the
    parties wait for it, resume from their state directories, and both rounds pay everyone."""
    _strangers("anvil", 3, tmp_path, restart=True)


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.anvil
def test_strangers_on_hosts_of_their_own(tmp_path: Path) -> None:
    """Where root permits: the model owner and three data owners in network namespaces of
    their own, on one bridge with the node."""
    hosts = Hosts(4)
    try:
        hosts.create()
    except OSError as error:
        hosts.remove()
        pytest.skip(f"no network namespaces here: {error}")
    try:
        _strangers("anvil", 3, tmp_path, hosts=hosts)
    finally:
        assert hosts.remove() == []


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.parametrize(("kind", "dos"), [("anvil", 3), ("anvil", 5), ("hardhat", 5)])
def test_strangers_run_a_market(kind: str, dos: int, tmp_path: Path) -> None:
    _strangers(kind, dos, tmp_path)
