"""`omnilytics join` (and `withdraw`) on a named network refuse, before staking anything, what a
stranger gets wrong or finds: a wrong password, a missing account, an unknown network, a node
with another chain id or none at all, an address that holds no market, a task that does not
exist, is over, is full or closed its registration, data that does not fit the task's schema,
fees that are not numbers. Each is one line naming the value, exit 1, no traceback, and no
transaction sent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_utils import keccak

from actors.chain.anvil import AnvilNode
from actors.chain.market import Market, TaskConfig
from actors.chain.rpc_backend import RpcChain
from actors.entry import networks
from actors.learning.examples import write_example
from protocol.constants import Phase
from protocol.spec import canonical_bytes, infer_shapes, parse_spec
from tests.actors.entry.conftest import (
    DEV_ADDRESS,
    DEV_KEY,
    assert_one_line_error,
    import_dev_account,
    run,
)

pytestmark = pytest.mark.anvil

SPEC = parse_spec(
    (Path(__file__).resolve().parents[3] / "examples" / "breast-cancer-mlp.toml").read_bytes()
)


def _config(**overrides: object) -> TaskConfig:
    """The config a model owner creates for the breast-cancer spec (what join checks it by)."""
    m = SPEC.market
    fields = {
        "model_hash": b"\x11" * 32,
        "spec_hash": keccak(canonical_bytes(SPEC)),
        "d": infer_shapes(SPEC).public_params + 1,
        "lane_bits": m.lane_bits,
        "scale_bits": m.scale_bits,
        "clip_norm_micro": round(m.clip_norm * 1e6),
        "sample_cap": SPEC.data.max_samples,
        "rounds": m.rounds,
        "max_dos": m.max_dos,
        "min_dos": m.min_dos,
        "group_size": m.group_size,
        "threshold": m.threshold,
        "reward_per_do": m.reward_wei,
        "bond": m.bond_wei,
        "register_duration": m.register_duration,
        "share_duration": m.share_duration,
        "submit_duration": m.submit_duration,
        "unmask_duration": m.unmask_duration,
    }
    return TaskConfig(**(fields | overrides))


@dataclass(frozen=True)
class Tasks:
    market: Market
    open: int
    full: int
    cancelled: int
    closed: int


@pytest.fixture(scope="module")
def tasks() -> Iterator[Tasks]:
    """An open task, a full one, a cancelled one and one whose registration deadline passed."""
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        owner = chain.new_account(10**21)
        market = Market.deploy(chain, owner)
        spec = canonical_bytes(SPEC)
        full, _ = market.create_task(_config(max_dos=2, min_dos=2, group_size=2), owner, spec)
        for _ in range(2):
            member = chain.new_account(10**20)
            market.register(full, os.urandom(32), "127.0.0.1:1", member, SPEC.market.bond_wei)
        cancelled, _ = market.create_task(_config(register_duration=30), owner, spec)
        closed, _ = market.create_task(_config(register_duration=30), owner, spec)
        chain.advance_time(40)
        for _ in range(3):  # too few registered: the task is cancelled
            if market.phase(cancelled).phase == Phase.CANCELLED:
                break
            market.advance(cancelled, owner)
        assert market.phase(cancelled).phase == Phase.CANCELLED
        opened, _ = market.create_task(_config(), owner, spec)
        yield Tasks(market, opened, full, cancelled, closed)


def _table(name: str, market: Market, address: str, chain_id: int = 31337) -> str:
    return (
        f'[networks.{name}]\nurl = "{market.chain.url}"\nchain_id = {chain_id}\n'
        f'market = "{address}"\ndefault_account = "dev"\n\n'
    )


@pytest.fixture
def project(home: Path, tasks: Tasks, password_file: Path, tmp_path: Path) -> Path:
    import_dev_account(password_file, tmp_path)
    market = tasks.market
    Path("omnilytics.toml").write_text(
        _table("local", market, market.address)
        + _table("wrong", market, market.address, chain_id=5)
        + _table("nocode", market, DEV_ADDRESS)
        + _table("court", market, market.court)
        + _table("live", market, market.address)
        + "live = true\n\n"
        + '[networks.down]\nurl = "http://127.0.0.1:9"\nchain_id = 31337\n'
    )
    data = tmp_path / "data.csv"
    data.write_text("mean_radius,diagnosis\n1.0,0\n")
    return tmp_path


def _join(task: int, project: Path, *extra: str, network: str = "local") -> list[str]:
    password = ["--password-file", str(project / "password")]
    data = ["--data", str(project / "data.csv")]
    return ["join", str(task), *data, "--network", network, *password, *extra]


@pytest.mark.parametrize(
    ("network", "extra", "message"),
    [
        ("nope", [], "unknown network 'nope': known: court, down, live, local, nocode, wrong"),
        ("wrong", [], "network wrong: the node at http"),
        ("nocode", [], f"network nocode: no contract at market {DEV_ADDRESS}"),
        ("court", [], "is not a DataMarket"),
        ("local", ["--account", "ghost"], "no account 'ghost'"),
        ("local", ["--max-fee", "cheap"], "--max-fee 'cheap': not a number of gwei"),
        ("local", ["--max-fee", "1", "--priority-fee", "2"], "--priority-fee 2 gwei is above"),
        ("local", ["--priority-fee", "0.0000000001"], "at most 9 decimals"),
    ],
)
def test_a_bad_network_account_or_fee_is_one_line(
    project: Path, tasks: Tasks, network: str, extra: list[str], message: str
) -> None:
    result = run(*_join(tasks.open, project, *extra, network=network))
    assert_one_line_error(result, "refusing to join", message)


def test_a_chain_id_mismatch_names_both_ids(project: Path, tasks: Tasks) -> None:
    result = run(*_join(tasks.open, project, network="wrong"))
    assert_one_line_error(result, "has chain id 31337, the config says 5")


def test_an_unreachable_node_is_asked_again_then_named(
    project: Path, tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(networks, "_RETRY_PAUSE", 0.01)
    result = run(*_join(tasks.open, project, network="down"))
    assert_one_line_error(result, "no JSON-RPC node answers at http://127.0.0.1:9 (3 tries)")


def test_a_wrong_password_is_one_line(project: Path, tasks: Tasks) -> None:
    (project / "password").write_text("not it\n")
    assert_one_line_error(run(*_join(tasks.open, project)), "wrong password for account 'dev'")


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("missing", "task 99 does not exist (the market has 4 tasks)"),
        ("full", "is full: 2 of 2 data owners registered"),
        ("cancelled", "is past registration: it is in phase CANCELLED"),
        ("closed", "registration closed at"),
    ],
)
def test_a_task_without_a_seat_is_refused_before_staking(
    project: Path, tasks: Tasks, which: str, message: str
) -> None:
    task = 99 if which == "missing" else getattr(tasks, which)
    nonce = tasks.market.chain.w3.eth.get_transaction_count(DEV_ADDRESS)
    assert_one_line_error(run(*_join(task, project)), f"task {task}", message)
    assert tasks.market.chain.w3.eth.get_transaction_count(DEV_ADDRESS) == nonce


def test_data_that_does_not_fit_the_schema_is_refused_before_staking(
    project: Path, tasks: Tasks
) -> None:
    nonce = tasks.market.chain.w3.eth.get_transaction_count(DEV_ADDRESS)
    result = run(*_join(tasks.open, project))
    assert_one_line_error(result, f"task {tasks.open}: data", "missing column 'mean_texture'")
    assert tasks.market.chain.w3.eth.get_transaction_count(DEV_ADDRESS) == nonce


@pytest.mark.parametrize("answer", ["n\n", None])
def test_a_live_network_stakes_a_bond_only_when_confirmed(
    project: Path, tasks: Tasks, answer: str | None
) -> None:
    files = project / "files"
    layout = write_example("breast-cancer-mlp", files, dos=1, per_do=30, owner=5, test=5)
    args = _join(tasks.open, project, network="live")
    args[args.index("--data") + 1] = str(layout.data_owners[0])
    nonce = tasks.market.chain.w3.eth.get_transaction_count(DEV_ADDRESS)
    result = run(*args, input=answer)
    assert_one_line_error(result, "not confirmed on live network live", "--yes")
    assert "join task" in result.stderr and "staking a bond of" in result.stderr
    assert tasks.market.chain.w3.eth.get_transaction_count(DEV_ADDRESS) == nonce


def test_withdraw_collects_what_the_market_credits(project: Path, tasks: Tasks) -> None:
    """The escrow of a task nobody joined (credited back when it is cancelled) is withdrawn."""
    market, chain = tasks.market, tasks.market.chain
    chain.add_account(DEV_KEY)
    task, _ = market.create_task(_config(register_duration=30), DEV_ADDRESS, canonical_bytes(SPEC))
    chain.advance_time(40)
    while market.phase(task).phase != Phase.CANCELLED:
        market.advance(task, DEV_ADDRESS)
    escrow = market.credits(DEV_ADDRESS)
    assert escrow == _config().escrow == 12 * 10**15  # 6 seats, 2 rounds, 0.001 ETH
    password = ["--password-file", str(project / "password")]
    result = run("withdraw", "--network", "local", *password)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"withdrew 0.012 ETH to {DEV_ADDRESS}"
    assert market.credits(DEV_ADDRESS) == 0


def test_withdraw_of_a_running_tasks_bond_is_one_line(project: Path, tasks: Tasks) -> None:
    password = ["--password-file", str(project / "password")]
    result = run("withdraw", "--network", "nocode", *password)
    assert_one_line_error(result, "withdraw", "no contract at market")
    nothing = run("withdraw", "--network", "local", *password)
    assert nothing.exit_code == 0, nothing.output
    assert nothing.stdout.strip() == f"withdrew 0 ETH to {DEV_ADDRESS}"
