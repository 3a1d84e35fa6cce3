"""The chain interface behaves the same on the embedded EVM, on a real anvil node and on
Hardhat's node."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_utils import keccak

from actors.chain import BoaChain, Chain, TransactionReverted
from actors.chain.anvil import AnvilNode
from actors.chain.base import BlobsUnsupported, NodeUnavailable
from actors.chain.blob_sources import NodeBlobSource
from actors.chain.fees import Fees
from actors.chain.hardhat import HardhatNode, hardhat_binary
from actors.chain.market import Market, TaskConfig
from actors.chain.rpc_backend import RpcChain
from protocol.spec import canonical_bytes, parse_spec

PROBE = Path(__file__).with_name("Probe.vy")
MNIST_SPEC = Path(__file__).resolve().parents[3] / "examples" / "mnist-cnn.toml"


@pytest.fixture(scope="module")
def anvil_node() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture(scope="module")
def hardhat_node() -> Iterator[HardhatNode]:
    if hardhat_binary() is None:
        pytest.skip("hardhat is not installed (just setup)")
    with HardhatNode() as node:
        yield node


@pytest.fixture(params=["boa", "boa-cached", "anvil", "anvil-estimate", "hardhat"])
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    if request.param.startswith("boa"):
        import boa

        with boa.env.anchor():
            yield BoaChain(cache_views=request.param == "boa-cached")
    elif request.param == "hardhat":
        yield RpcChain(request.getfixturevalue("hardhat_node").url, dev=True)
    else:
        # "anvil" sends without estimating (the dev default); "anvil-estimate" as on a public node
        strategy = "estimate" if request.param == "anvil-estimate" else None
        yield RpcChain(request.getfixturevalue("anvil_node").url, dev=True, gas_strategy=strategy)


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


def test_view_revert_reason_is_named(chain: Chain, probe: tuple[str, str]) -> None:
    _, address = probe
    assert chain.call(address, "checked", [7]) == 7
    with pytest.raises(TransactionReverted) as info:
        chain.call(address, "checked", [0])
    assert info.value.reason == "probe: zero"


def test_call_many_reads_views_and_the_clock_at_once(chain: Chain, probe: tuple[str, str]) -> None:
    sender, address = probe
    chain.transact(address, "bump", [4, []], sender)
    calls = [("count", ()), ("total_of", ([1, 2],)), ("checked", (9,))]
    assert chain.call_many(address, calls) == [4, 3, 9]
    *values, now = chain.call_many(address, [("count", ())], clock=True)
    assert values == [4]
    assert now <= chain.timestamp() <= now + 2
    assert chain.call_many(address, []) == []
    with pytest.raises(TransactionReverted) as info:
        chain.call_many(address, [("count", ()), ("checked", (0,))])
    assert info.value.reason == "probe: zero"


def test_call_many_reads_views_of_another_contract_in_the_same_batch(
    chain: Chain, probe: tuple[str, str]
) -> None:
    sender, address = probe
    other = chain.deploy(PROBE, [], sender)
    chain.transact(address, "bump", [4, []], sender)
    chain.transact(other, "bump", [7, []], sender)
    calls = [("count", ()), ("count", (), other), ("checked", (5,), other)]
    *values, now = chain.call_many(address, calls, clock=True)
    assert values == [4, 7, 5]
    assert now <= chain.timestamp() <= now + 2
    with pytest.raises(TransactionReverted) as info:
        chain.call_many(address, [("count", ()), ("checked", (0,), other)])
    assert info.value.reason == "probe: zero"


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


def test_task_spec_bytes_come_back_from_the_event(chain: Chain) -> None:
    """The market's TaskSpec event (a module's event, `Bytes` data) read and checked through
    `Market.task_spec`, the same on every backend."""
    owner = chain.new_account(10**21)
    market = Market.deploy(chain, owner)
    spec = canonical_bytes(parse_spec(MNIST_SPEC.read_bytes()))
    config = TaskConfig(
        model_hash=b"\x22" * 32,
        spec_hash=keccak(spec),
        d=100,
        lane_bits=32,
        scale_bits=16,
        clip_norm_micro=1_000_000,
        sample_cap=700,
        rounds=1,
        max_dos=2,
        min_dos=2,
        group_size=2,
        threshold=2,
        reward_per_do=10**12,
    )
    task, _ = market.create_task(config, owner, spec)
    assert market.config(task) == config
    assert market.task_spec(task) == spec
    with pytest.raises(TransactionReverted) as info:
        market.create_task(config, owner, spec[:-1])
    assert info.value.reason == "rounds: spec hash mismatch"


def test_reverted_transaction_without_estimate_is_mined_and_named(
    anvil_node: AnvilNode,
) -> None:
    chain = RpcChain(anvil_node.url, dev=True)
    assert chain.gas_strategy == "cap"
    sender = chain.new_account(10**20)
    address = chain.deploy(PROBE, [], sender)
    before = chain.block_number()
    with pytest.raises(TransactionReverted) as info:
        chain.transact(address, "bump", [0, [5]], sender)
    assert info.value.reason == "probe: zero bump"
    # the failed transaction was mined (no estimate stopped it): it used a nonce, and the
    # next one from the same account still goes through
    assert chain.block_number() == before + 1
    receipt = chain.transact(address, "bump", [2, []], sender)
    assert receipt.block == before + 2
    assert chain.call(address, "count") == 2


def test_stale_fee_cap_is_read_again_after_a_refusal(anvil_node: AnvilNode) -> None:
    chain = RpcChain(anvil_node.url, dev=True)
    sender = chain.new_account(10**20)
    address = chain.deploy(PROBE, [], sender)
    chain.fees.current()  # read once (the cap strategy keeps it)
    chain.fees._cached = Fees(1, 1)  # below any base fee: the node refuses, the client reads again
    receipt = chain.transact(address, "bump", [1, []], sender)
    assert receipt.gas_used > 21_000
    assert chain.fees.current(refresh=False).max_fee > 1


def _count_methods(chain: RpcChain) -> list[str]:
    """Record the JSON-RPC methods the client sends (single requests)."""
    sent: list[str] = []
    request = chain._transport.request

    def counting(method: str, params: list, timeout: float | None = None) -> dict:
        sent.append(method)
        return request(method, params, timeout)

    chain._transport.request = counting  # type: ignore[method-assign]
    return sent


def test_automining_node_answers_a_send_with_its_receipt(anvil_node: AnvilNode) -> None:
    chain = RpcChain(anvil_node.url, dev=True)
    sender = chain.new_account(10**20)
    address = chain.deploy(PROBE, [], sender)
    sent = _count_methods(chain)
    receipt = chain.transact(address, "bump", [3, [7]], sender)
    # EIP-7966: one round trip, no receipt polling
    assert sent == ["eth_sendRawTransactionSync"]
    assert [e.args["words"] for e in receipt.events] == [(7,)]
    with pytest.raises(TransactionReverted) as info:  # a mined revert still gets its reason
        chain.transact(address, "bump", [0, []], sender)
    assert info.value.reason == "probe: zero bump"


def test_a_node_without_the_sync_send_is_asked_once(anvil_node: AnvilNode) -> None:
    chain = RpcChain(anvil_node.url, dev=True)
    sender = chain.new_account(10**20)
    address = chain.deploy(PROBE, [], sender)
    request = chain._transport.request
    sent: list[str] = []

    def without_sync(method: str, params: list, timeout: float | None = None) -> dict:
        sent.append(method)
        if method == "eth_sendRawTransactionSync":
            return {"jsonrpc": "2.0", "id": 0, "error": {"code": -32601, "message": "nope"}}
        return request(method, params, timeout)

    chain._transport.request = without_sync  # type: ignore[method-assign]
    chain.transact(address, "bump", [1, []], sender)
    assert sent[:2] == ["eth_sendRawTransactionSync", "eth_sendRawTransaction"]
    sent.clear()
    chain.transact(address, "bump", [2, []], sender)
    assert sent[0] == "eth_sendRawTransaction"  # then polling, as with any other node
    assert set(sent[1:]) == {"eth_getTransactionReceipt"}
    assert chain.call(address, "count") == 3


def test_a_sync_send_that_times_out_after_acceptance_polls_for_the_receipt(
    anvil_node: AnvilNode,
) -> None:
    chain = RpcChain(anvil_node.url, dev=True)
    sender = chain.new_account(10**20)
    address = chain.deploy(PROBE, [], sender)
    request = chain._transport.request

    def accepted_then_timeout(method: str, params: list, timeout: float | None = None) -> dict:
        if method == "eth_sendRawTransactionSync":
            request("eth_sendRawTransaction", params)  # the node took it...
            return {"jsonrpc": "2.0", "id": 0, "error": {"code": 4, "message": "timeout"}}
        return request(method, params, timeout)

    chain._transport.request = accepted_then_timeout  # type: ignore[method-assign]
    receipt = chain.transact(address, "bump", [5, []], sender)  # ...so it is not sent again
    assert receipt.gas_used > 21_000
    assert chain.call(address, "count") == 5
    assert chain._sync_send  # a timeout says nothing about the method


def test_a_transaction_automine_left_pending_is_mined_by_a_nudge() -> None:
    # anvil's automine can leave a transaction pending (foundry-rs/foundry#10122), and its
    # eth_sendRawTransactionSync then waits 30 s: the client gives up on the reply after a
    # second, finds the transaction known, and mines a block for it
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        sender = chain.new_account(10**20)
        address = chain.deploy(PROBE, [], sender)
        chain._rpc("evm_setAutomine", [False])  # what the bug looks like from outside
        started = time.monotonic()
        receipt = chain.transact(address, "bump", [6, []], sender)
        assert time.monotonic() - started < 10
        assert receipt.gas_used > 21_000
        assert chain.call(address, "count") == 6


# anvil's first default dev account (the public "test test ... junk" mnemonic), its funder
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_an_automining_node_is_recognised_without_dev(anvil_node: AnvilNode) -> None:
    # a swarm's actors connect without cheat methods, and still send as to an automining node
    chain = RpcChain(anvil_node.url, funder_key=ANVIL_DEV_KEY)
    assert chain.gas_strategy == "cap" and chain._automine
    sender = chain.new_account(10**19)
    address = chain.deploy(PROBE, [], sender)
    sent = _count_methods(chain)
    chain.transact(address, "bump", [2, []], sender)
    assert sent == ["eth_sendRawTransactionSync"]


def test_public_node_path_estimates(anvil_node: AnvilNode) -> None:
    # as on a public node: no cheat methods (dev), estimates before sending
    chain = RpcChain(anvil_node.url, funder_key=ANVIL_DEV_KEY, gas_strategy="estimate")
    assert chain.gas_strategy == "estimate"
    sender = chain.new_account(10**19)  # a transfer from the funder, not a cheat method
    assert chain.balance(sender) == 10**19
    address = chain.deploy(PROBE, [], sender)
    before = chain.block_number()
    with pytest.raises(TransactionReverted) as info:
        chain.transact(address, "bump", [0, []], sender)
    assert info.value.reason == "probe: zero bump"
    assert chain.block_number() == before  # refused by the estimate: nothing was sent
    receipt = chain.transact(address, "bump", [4, [1]], sender)
    assert receipt.block == before + 1
    assert [e.args["words"] for e in receipt.events] == [(1,)]
    with pytest.raises(ValueError, match="gas_strategy"):
        RpcChain(anvil_node.url, gas_strategy="guess")


def test_interval_mining_dev_node_estimates_and_polls() -> None:
    # transactions share blocks here: none may ask for the whole block's gas
    with AnvilNode(block_time=0.2) as node:
        chain = RpcChain(node.url, dev=True)
        assert chain.gas_strategy == "estimate"
        sender = chain.new_account(10**20)
        address = chain.deploy(PROBE, [], sender)
        receipt = chain.transact(address, "bump", [3, [4]], sender)
        assert [e.args["by"] for e in receipt.events] == [3]
        assert chain.call(address, "count") == 3


def test_node_clock_moves_while_nothing_is_mined() -> None:
    """An automining node mines no block while idle; deadlines must still pass."""
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
        before = chain.timestamp()
        time.sleep(2.1)
        assert chain.timestamp() >= before + 2


def test_an_unreachable_node_is_named() -> None:
    with AnvilNode() as node:
        chain = RpcChain(node.url, dev=True)
    with pytest.raises(NodeUnavailable, match="unreachable"):
        chain.timestamp()


def test_hardhat_has_no_blob_path_and_says_so(hardhat_node: HardhatNode) -> None:
    """Hardhat refuses an EIP-7594 blob transaction and keeps no blob store: both are named as
    BlobsUnsupported (found by asking the node), so a blob task fails with a reason."""
    chain = RpcChain(hardhat_node.url, dev=True)
    sender = chain.new_account(10**20)
    probe = chain.deploy(PROBE, [], sender)
    with pytest.raises(BlobsUnsupported, match="refused a blob transaction"):
        chain.transact(probe, "bump", [1, []], sender, blobs=[bytes(131_072)])
    with pytest.raises(BlobsUnsupported, match="keeps no blobs"):
        NodeBlobSource(chain).blobs("0x" + "00" * 32, 1, [bytes(32)])
    assert chain.transact(probe, "bump", [1, []], sender).gas_used > 21_000  # nonce intact


def test_cached_views_run_the_evm_once_per_state_and_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's embedded chain answers a view asked again from the same state and block
    without running the EVM; a transaction, a new account or a clock that moved is a new state."""
    import boa

    with boa.env.anchor():
        chain = BoaChain(cache_views=True)
        owner = chain.new_account(10**20)
        address = chain.deploy(PROBE, [], owner)
        runs = []
        execute = boa.Env.execute_code
        monkeypatch.setattr(
            boa.Env, "execute_code", lambda *a, **k: runs.append(1) or execute(*a, **k)
        )
        assert [chain.call(address, "count") for _ in range(3)] == [0, 0, 0]
        assert len(runs) == 1
        chain.transact(address, "bump", [2, []], owner)
        runs.clear()
        assert chain.call(address, "count") == chain.call(address, "count") == 2
        assert len(runs) == 1
        chain.advance_time(5)
        assert chain.call(address, "count") == 2
        assert len(runs) == 2
        assert chain.call(address, "total_of", [[1, 2]]) == 3  # a list: not cached, still asked
