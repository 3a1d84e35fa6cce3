"""`omnilytics tasks` on anvil: a market's open tasks from chain data alone, each with its terms,
phase and deadline, and the model and data its published spec describes; a full task only with
--all; a market address that holds no market is one line and exit 1."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_utils import keccak

from actors.chain.anvil import AnvilNode
from actors.chain.market import Market, TaskConfig
from actors.chain.rpc_backend import RpcChain
from protocol.spec import canonical_bytes, parse_spec
from tests.actors.entry.conftest import DEV_ADDRESS, assert_one_line_error, run

pytestmark = pytest.mark.anvil

MNIST_SPEC = Path(__file__).resolve().parents[3] / "examples" / "mnist-cnn.toml"
REWARD = 10**15
TERMS = TaskConfig(
    model_hash=b"\x22" * 32,
    d=100,
    lane_bits=32,
    scale_bits=16,
    clip_norm_micro=1_000_000,
    sample_cap=700,
    rounds=2,
    max_dos=5,
    min_dos=3,
    group_size=3,
    threshold=2,
    reward_per_do=REWARD,
    bond=10**14,
)


@pytest.fixture(scope="module")
def market() -> Iterator[Market]:
    """A market with three tasks: one with the MNIST spec, one without a spec, one full."""
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        owner = chain.new_account(10**21)
        market = Market.deploy(chain, owner)
        spec = canonical_bytes(parse_spec(MNIST_SPEC.read_bytes()))
        market.create_task(replace(TERMS, spec_hash=keccak(spec)), owner, spec)
        market.create_task(TERMS, owner)
        full, _ = market.create_task(replace(TERMS, max_dos=2, min_dos=2, group_size=2), owner)
        for _ in range(2):
            member = chain.new_account(10**20)
            market.register(full, os.urandom(32), "127.0.0.1:1", member, TERMS.bond)
        yield market


def _network(name: str, market: Market, address: str) -> str:
    url = market.chain.url
    return f'[networks.{name}]\nurl = "{url}"\nchain_id = 31337\nmarket = "{address}"\n\n'


@pytest.fixture
def project(home: Path, market: Market, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", "250")
    Path("omnilytics.toml").write_text(
        _network("local", market, market.address)
        + _network("nocode", market, DEV_ADDRESS)
        + _network("court", market, market.court)
    )
    return Path.cwd()


def test_open_tasks_are_listed_with_their_terms_and_spec(project: Path) -> None:
    result = run("tasks", "--network", "local", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [t["task"] for t in listed] == [2, 1]  # newest first; task 3 is full
    without, mnist = listed
    for task in listed:
        assert task["phase"] == "REGISTER" and task["open"]
        assert task["seats_left"] == 5 and task["rounds"] == 2
        assert task["reward_per_do"] == REWARD and task["bond"] == 10**14
        assert task["deadline"] > task["now"]
    assert without["spec"] is None and without["spec_problem"] is None
    assert mnist["spec"]["layers"] == 10
    assert (mnist["spec"]["public_params"], mnist["spec"]["private_params"]) == (46_730, 650)
    assert mnist["spec"]["data"].startswith("image 1x28x28 float32")

    table = run("tasks", "--network", "local")
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    assert "10 layers, 46,730 public / 650 private params" in text
    assert "0.001 ETH" in text and "5/5" in text and "no spec" in text


def test_all_shows_the_full_task_too(project: Path) -> None:
    listed = json.loads(run("tasks", "--network", "local", "--all", "--json").stdout)
    full = listed[0]
    assert full["task"] == 3 and full["seats_left"] == 0 and not full["open"]


@pytest.mark.parametrize(
    ("network", "message"),
    [("nocode", "no contract at market"), ("court", "is not a DataMarket")],
)
def test_an_address_that_is_no_market_is_one_line(
    project: Path, network: str, message: str
) -> None:
    assert_one_line_error(run("tasks", "--network", network), f"network {network}", message)


def test_status_takes_the_network_too(project: Path) -> None:
    shown = run("status", "--network", "local")
    assert shown.exit_code == 0, shown.output
    assert "task 3 · REGISTER · round 1/2 · 2/2 data owners" in " ".join(shown.stdout.split())
    assert_one_line_error(run("status"), "--network NAME, or --rpc-url and --market")
