"""`just console`'s namespace, built as the console builds it (without starting IPython): on the
embedded chain, on a fresh anvil node where it deploys a court and a market, and attached to a
market already on a node; its helpers read a task back."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boa
import pytest
from boa.contracts.base_evm_contract import BoaError, StackTrace
from eth_account import Account
from rich.console import Console

from actors.chain.anvil import AnvilNode
from actors.chain.market import Market
from actors.chain.rpc_backend import RpcChain
from actors.entry import console as console_module
from actors.entry.processes import KEY_ENV
from tests.actors.chain.test_backends import ANVIL_DEV_KEY


@pytest.fixture
def screen() -> Console:
    """A console writing to memory, wide enough that no address is folded."""
    return Console(file=io.StringIO(), width=200)


def printed(console: Console) -> str:
    """What `console` printed since last asked, whitespace collapsed (titles wrap)."""
    text = console.file.getvalue()
    console.file.seek(0)
    console.file.truncate()
    return " ".join(text.split())


@pytest.fixture(autouse=True)
def own_boa_env() -> Iterator[None]:
    """Each test's namespace sets boa's global env (embedded, or network mode): restore it."""
    with boa.swap_env(boa.Env()):
        yield


@pytest.fixture
def anvil_node() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


def register_two(names: dict[str, Any], task: int) -> list[str]:
    """Two data owners register in `task` (as their actors would: a channel key, an endpoint)."""
    market, chain = names["market"], names["chain"]
    dos = [chain.new_account(10**19) for _ in range(2)]
    for i, do in enumerate(dos):
        market.register(task, bytes([i + 1]) * 32, f"127.0.0.1:{9000 + i}", do)
    return dos


def check_helpers(names: dict[str, Any], screen: Console, tasks_before: int) -> None:
    """example_task(), status() and gas() on a new task, and the boa contract agrees."""
    task = names["example_task"]()
    assert task == tasks_before + 1
    assert names["dm"].task_count() == task  # boa's view of the market: the same contract
    dos = register_two(names, task)

    names["status"](task)
    shown = printed(screen)
    assert f"task {task} · REGISTER · round 1/1 · 2/4 data owners · deadline in" in shown
    assert f"task {task - 1} ·" not in shown  # one task asked for, one shown

    names["gas"]()
    shown = printed(screen)
    txs = names["market"].transactions()
    for entry in ("create_task", "register"):
        used = sum(tx.gas_used for tx in txs if tx.function == entry)
        assert used > 0
        assert f"{entry} │ {used:,}" in shown
    assert sum(1 for tx in txs if tx.function == "register") >= len(dos)


def test_embedded_namespace_deploys_a_market_and_its_helpers_work(screen: Console) -> None:
    names = console_module.namespace(console=screen)
    assert names["chain"].name == "boa"
    assert names["market"].court != "0x" + "00" * 20  # deployed with its court
    assert str(boa.env.eoa) == names["owner"]  # `dm.f()` in the console sends as the owner
    check_helpers(names, screen, tasks_before=0)


@pytest.mark.anvil
@pytest.mark.filterwarnings("ignore:local fork did not match node")  # see console.main
def test_fresh_anvil_gets_a_court_and_market_and_the_warm_up_runs(
    anvil_node: AnvilNode, screen: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    warmed: list[str] = []
    real_warm_up = console_module.warm_up

    def spy(contract: Any, rpc: Any, attempts: int = 5) -> None:
        warmed.append(str(contract.address))
        real_warm_up(contract, rpc, attempts)

    monkeypatch.setattr(console_module, "warm_up", spy)
    names = console_module.namespace(anvil_node.url, console=screen)
    market = names["market"]
    assert names["chain"].name == "anvil"  # no key: a dev node, a throwaway funded account
    assert warmed == [market.address]
    assert names["dm"].COURT() == market.court
    assert names["chain"].balance(names["owner"]) > 0
    check_helpers(names, screen, tasks_before=0)


@pytest.mark.anvil
@pytest.mark.filterwarnings("ignore:local fork did not match node")  # see console.main
def test_console_attaches_to_a_market_already_on_the_node(
    anvil_node: AnvilNode, screen: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    # someone deployed a market and created a task before the console started
    chain = RpcChain(anvil_node.url, dev=True)
    deployer = chain.new_account(10**21)
    existing = Market.deploy(chain, deployer)
    existing.create_task(
        console_module.TaskConfig(
            model_hash=b"\x22" * 32,
            d=1_000,
            lane_bits=32,
            scale_bits=16,
            clip_norm_micro=4_000_000,
            rounds=2,
            max_dos=3,
            min_dos=2,
            group_size=2,
            threshold=2,
            reward_per_do=10**15,
        ),
        deployer,
    )
    blocks = chain.block_number()

    monkeypatch.setenv(KEY_ENV, ANVIL_DEV_KEY)  # the console signs as the key's account
    names = console_module.namespace(anvil_node.url, existing.address, console=screen)
    assert names["market"].address == existing.address
    assert names["chain"].block_number() == blocks  # attaching sent nothing
    assert names["owner"] == Account.from_key(ANVIL_DEV_KEY).address
    assert names["chain"].name == "rpc"

    names["status"]()
    assert "task 1 · REGISTER · round 1/2 · 0/3 data owners" in printed(screen)
    names["gas"]()
    assert "create_task" in printed(screen)  # the transactions before the console started

    check_helpers(names, screen, tasks_before=1)
    names["status"]()
    shown = printed(screen)
    assert shown.index("task 2 ·") < shown.index("task 1 ·")  # every task, newest first


class FreshNodeContract:
    """A contract whose first calls fail as boa's do on a fresh anvil."""

    def __init__(self, failures: int, message: str = "<Unknown contract 0xabc>") -> None:
        self.failures, self.message, self.calls = failures, message, 0

    def task_count(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise BoaError("", StackTrace([self.message]))
        return 0


class MiningRpc:
    def __init__(self) -> None:
        self.mined = 0

    def fetch(self, method: str, params: list[Any]) -> None:
        assert method == "evm_mine"
        self.mined += 1


def test_warm_up_mines_until_the_contract_is_known() -> None:
    contract, rpc = FreshNodeContract(failures=2), MiningRpc()
    console_module.warm_up(contract, rpc)
    assert (contract.calls, rpc.mined) == (3, 2)


@pytest.mark.parametrize(
    ("failures", "message"), [(9, "<Unknown contract 0xabc>"), (1, "execution reverted")]
)
def test_warm_up_gives_up_and_passes_other_errors_on(failures: int, message: str) -> None:
    contract, rpc = FreshNodeContract(failures, message), MiningRpc()
    with pytest.raises(BoaError):
        console_module.warm_up(contract, rpc)
    assert contract.calls == (5 if failures == 9 else 1)
