"""EIP-1559 fees: read from the node (its suggested tip, else past rewards, else a floor; the base
fee from its fee history, else its gas price), overridden by the user, and a transaction left
pending replaced with the same nonce and higher fees."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3.exceptions import Web3RPCError

from actors.chain.anvil import AnvilNode
from actors.chain.fees import _FALLBACK_TIP, FeeOracle, FeeOverrides, Fees
from actors.chain.jsonrpc import quantity
from actors.chain.rpc_backend import RpcChain

PROBE = Path(__file__).with_name("Probe.vy")
GWEI = 10**9


def _fake_node(answers: dict[str, Any]) -> Any:
    """An rpc function that answers `answers` and says any other method does not exist."""

    def rpc(method: str, params: list[Any]) -> Any:
        if method not in answers:
            error = {"code": -32601, "message": f"the method {method} does not exist"}
            raise Web3RPCError(str(error), rpc_response={"error": error})
        return answers[method]

    return rpc


HISTORY = {"baseFeePerGas": ["0x10", hex(7 * GWEI)], "reward": [["0x5"], ["0x9"], ["0x7"]]}


def test_the_tip_is_the_nodes_suggestion_and_the_cap_twice_the_base_fee_plus_it() -> None:
    oracle = FeeOracle(
        _fake_node({"eth_feeHistory": HISTORY, "eth_maxPriorityFeePerGas": hex(3 * GWEI)})
    )
    assert oracle.current() == Fees(17 * GWEI, 3 * GWEI)


def test_without_a_suggestion_the_tip_is_the_median_past_reward() -> None:
    oracle = FeeOracle(_fake_node({"eth_feeHistory": HISTORY}))
    assert oracle.current() == Fees(14 * GWEI + 7, 7)
    assert oracle._has_suggestion is False  # not asked again


def test_without_a_fee_history_the_base_is_the_gas_price_and_the_tip_a_floor() -> None:
    oracle = FeeOracle(_fake_node({"eth_gasPrice": hex(5 * GWEI)}))
    assert oracle.current() == Fees(10 * GWEI + _FALLBACK_TIP, _FALLBACK_TIP)


def test_overrides_replace_what_the_node_says() -> None:
    node = _fake_node({"eth_feeHistory": HISTORY, "eth_maxPriorityFeePerGas": hex(3 * GWEI)})
    assert FeeOracle(node, FeeOverrides(priority_fee=GWEI)).current() == Fees(15 * GWEI, GWEI)
    # a cap below the suggested tip lowers the tip to it
    assert FeeOracle(node, FeeOverrides(max_fee=2 * GWEI)).current() == Fees(2 * GWEI, 2 * GWEI)


def test_a_bump_raises_both_fees_by_an_eighth_but_never_past_the_users_cap() -> None:
    node = _fake_node({"eth_feeHistory": HISTORY, "eth_maxPriorityFeePerGas": hex(1)})
    stuck = Fees(16 * GWEI, 8 * GWEI)
    assert FeeOracle(node).bumped(stuck) == Fees(18 * GWEI + 1, 9 * GWEI + 1)
    assert FeeOracle(node, FeeOverrides(max_fee=17 * GWEI)).bumped(stuck) is None


@pytest.fixture
def paused_node() -> Iterator[AnvilNode]:
    """anvil that mines only when told (a busy chain that leaves transactions pending)."""
    with AnvilNode() as node:
        RpcChain(node.url).request("evm_setAutomine", [False])
        yield node


@pytest.mark.anvil
def test_a_pending_transaction_is_replaced_with_the_same_nonce(paused_node: AnvilNode) -> None:
    chain = RpcChain(paused_node.url, dev=True)
    chain.fees.replace_after = 0.2
    sender = chain.new_account(10**20)
    sent: list[str] = []
    request = chain._transport.request

    def counting(method: str, params: list, timeout: float | None = None) -> dict:
        if method == "eth_sendRawTransaction":
            sent.append(params[0])
        return request(method, params, timeout)

    chain._transport.request = counting  # type: ignore[method-assign]
    first = chain.fees.current()  # what the first version is sent with
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(chain.deploy(PROBE, [], sender)))
    thread.start()
    deadline = time.monotonic() + 30
    while len(sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    chain.request("evm_mine", [])
    thread.join(30)
    assert len(sent) >= 2 and outcome, "no replacement was sent"
    block = chain.request("eth_getBlockByNumber", ["latest", True])
    (mined,) = block["transactions"]
    assert quantity(mined["nonce"]) == 0
    assert quantity(mined["maxPriorityFeePerGas"]) > first.priority_fee
    assert quantity(mined["maxFeePerGas"]) > first.max_fee
    receipt = chain.creations[outcome[0]]
    assert receipt.tx_hash == mined["hash"]
