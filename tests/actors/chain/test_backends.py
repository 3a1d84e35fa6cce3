"""The chain interface behaves the same on the embedded EVM and on a real anvil node."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.chain import BoaChain, Chain, TransactionReverted
from actors.chain.anvil import AnvilNode
from actors.chain.rpc_backend import RpcChain

PROBE = Path(__file__).with_name("Probe.vy")


@pytest.fixture(scope="module")
def anvil_node() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture(params=["boa", "anvil"])
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    if request.param == "boa":
        import boa

        with boa.env.anchor():
            yield BoaChain()
    else:
        yield RpcChain(request.getfixturevalue("anvil_node").url, dev=True)


@pytest.fixture
def probe(chain: Chain) -> tuple[str, str]:
    owner = chain.new_account(10**20)
    return owner, chain.deploy(PROBE, [], owner)


def test_transact_returns_gas_and_decoded_events(chain: Chain, probe: tuple[str, str]) -> None:
    sender, address = probe
    receipt = chain.transact(address, "bump", [3, [1, 2, 2**256 - 1]], sender)
    assert receipt.gas_used > 21_000
    (event,) = receipt.events
    assert event.name == "Bumped"
    assert event.args == {"who": sender, "by": 3, "words": (1, 2, 2**256 - 1)}
    assert chain.call(address, "count") == 3


def test_revert_reason_is_named_and_state_unchanged(chain: Chain, probe: tuple[str, str]) -> None:
    sender, address = probe
    with pytest.raises(TransactionReverted) as info:
        chain.transact(address, "bump", [0, []], sender)
    assert info.value.reason == "probe: zero bump"
    assert chain.call(address, "count") == 0


def test_events_filter_by_indexed_argument_and_block(chain: Chain, probe: tuple[str, str]) -> None:
    alice, address = probe
    bob = chain.new_account(10**20)
    first = chain.transact(address, "bump", [1, []], alice)
    chain.transact(address, "bump", [2, [7]], bob)
    chain.transact(address, "bump", [4, []], alice)
    assert [e.args["by"] for e in chain.events(address, "Bumped")] == [1, 2, 4]
    assert [e.args["by"] for e in chain.events(address, "Bumped", filters={"who": alice})] == [1, 4]
    later = chain.events(address, "Bumped", from_block=first.block + 1)
    assert [e.args["by"] for e in later] == [2, 4]


def test_value_and_balance(chain: Chain, probe: tuple[str, str]) -> None:
    sender, address = probe
    chain.transact(address, "bump", [1, []], sender, value=12345)
    assert chain.balance(address) == 12345


def test_views_take_arrays(chain: Chain, probe: tuple[str, str]) -> None:
    _, address = probe
    assert chain.call(address, "total_of", [[5, 6, 7]]) == 18


def test_advance_time_moves_block_timestamp(chain: Chain, probe: tuple[str, str]) -> None:
    sender, address = probe
    before = chain.timestamp()
    chain.advance_time(3_600)
    receipt = chain.transact(address, "bump", [1, []], sender)
    assert receipt.timestamp >= before + 3_600


def test_transactions_are_read_back_with_gas_and_arguments(
    chain: Chain, probe: tuple[str, str]
) -> None:
    sender, address = probe
    first = chain.transact(address, "bump", [2, [9, 8]], sender)
    second = chain.transact(address, "bump", [5, []], sender)
    records = chain.transactions(address, from_block=first.block)
    assert [(r.function, r.args["by"], r.gas_used) for r in records] == [
        ("bump", 2, first.gas_used),
        ("bump", 5, second.gas_used),
    ]
    assert records[0].args["words"] == (9, 8)
    assert all(r.success and r.sender == sender for r in records)
