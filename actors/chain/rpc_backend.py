"""A real node over JSON-RPC (anvil, a testnet, ...) through web3.py.

Transactions are signed locally with private keys the process holds (from the environment or
created for a local dev node). Before sending, each call is estimated, which surfaces the
contract's revert reason as a named `TransactionReverted` without paying for a failed
transaction. Gas figures are the receipts' `gasUsed`: these are the ones to quote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD

from actors.chain.artifacts import Artifact, artifact_for
from actors.chain.base import (
    ChainError,
    Event,
    NodeUnavailable,
    Receipt,
    TransactionReverted,
    TxRecord,
    normalise,
)

# A transaction's gas limit is its estimate plus a margin: the state can change between the
# estimate and inclusion (another DO's unmask makes ours the one that pays the whole group).
# Only gas used is charged, so a generous limit costs nothing.
_GAS_MARGIN = 1.25
_GAS_SLACK = 50_000


class RpcChain:
    """A JSON-RPC node. `dev=True` enables anvil's cheat methods (balances, time travel)."""

    def __init__(self, url: str, *, dev: bool = False, funder_key: str | None = None) -> None:
        self.name = "anvil" if dev else "rpc"
        self.url = url
        self.dev = dev
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 120}))
        try:
            self.chain_id = self.w3.eth.chain_id
        except (requests.RequestException, Web3RPCError) as error:
            raise NodeUnavailable(f"no JSON-RPC node at {url}: {error}") from None
        self._accounts: dict[str, LocalAccount] = {}
        self._nonces: dict[str, int] = {}
        self._lock = threading.Lock()
        self._artifacts: dict[str, Artifact] = {}
        self._funder = self.add_account(funder_key) if funder_key else None
        self.block_gas_limit = self.w3.eth.get_block("latest")["gasLimit"]

    # accounts and contracts

    def add_account(self, private_key: str) -> str:
        """Sign for the account of `private_key`; return its address."""
        account = Account.from_key(private_key)
        self._accounts[account.address] = account
        return account.address

    def private_key(self, address: str) -> str:
        """The hex private key of an account this chain signs for (handed to child processes)."""
        return self._accounts[address].key.hex()

    def new_account(self, funds_wei: int) -> str:
        account = Account.create()
        self._accounts[account.address] = account
        if funds_wei:
            self.fund(account.address, funds_wei)
        return account.address

    def fund(self, address: str, funds_wei: int) -> None:
        """Fund `address`: anvil's setBalance on a dev node, else a transfer from the funder."""
        if self.dev:
            self.w3.provider.make_request("anvil_setBalance", [address, hex(funds_wei)])
            return
        if self._funder is None:
            raise ChainError("no funder account: set OMNILYTICS_PRIVATE_KEY to fund new accounts")
        self._send(self._funder, {"to": address, "value": funds_wei, "gas": 21_000}, "fund")

    def deploy(self, source: Path, args: Sequence[Any], sender: str) -> str:
        artifact = artifact_for(source)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx = factory.constructor(*args).build_transaction({"from": sender, "nonce": 0})
        receipt = self._send(self._accounts[sender], tx, "deploy")
        address = receipt["contractAddress"]
        self._artifacts[address] = artifact
        return address

    def attach(self, source: Path, address: str) -> None:
        self._artifacts[Web3.to_checksum_address(address)] = artifact_for(source)

    def _contract(self, address: str) -> Any:
        address = Web3.to_checksum_address(address)
        return self.w3.eth.contract(address=address, abi=self._artifacts[address].abi)

    # transactions and reads

    def transact(
        self,
        address: str,
        function: str,
        args: Sequence[Any],
        sender: str,
        value: int = 0,
        gas_extra: int = 0,
    ) -> Receipt:
        started = time.perf_counter()
        call = self._contract(address).functions[function](*args)
        try:
            gas = call.estimate_gas({"from": sender, "value": value})
        except ContractLogicError as error:
            raise TransactionReverted(function, _reason(error)) from None
        tx = call.build_transaction(
            {
                "from": sender,
                "value": value,
                "gas": min(int(gas * _GAS_MARGIN) + _GAS_SLACK + gas_extra, self.block_gas_limit),
                "nonce": 0,
            }
        )
        raw = self._send(self._accounts[sender], tx, function)
        block = self.w3.eth.get_block(raw["blockNumber"])
        events = tuple(self._decode_receipt_events(address, raw))
        return Receipt(
            function=function,
            tx_hash=raw["transactionHash"].to_0x_hex(),
            gas_used=raw["gasUsed"],
            block=raw["blockNumber"],
            timestamp=block["timestamp"],
            seconds=time.perf_counter() - started,
            events=events,
        )

    def _send(self, account: LocalAccount, tx: dict[str, Any], what: str) -> Any:
        """Sign with the account's next nonce, send, and wait for the receipt."""
        tx = dict(tx)
        tx.setdefault("chainId", self.chain_id)
        if "maxFeePerGas" not in tx and "gasPrice" not in tx:
            tx["maxPriorityFeePerGas"] = 1
            tx["maxFeePerGas"] = 2 * self.w3.eth.gas_price + 1
        with self._lock:
            nonce = self._nonces.get(account.address)
            if nonce is None:
                nonce = self.w3.eth.get_transaction_count(account.address, "pending")
            tx["nonce"] = nonce
            signed = account.sign_transaction(tx)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Web3RPCError as error:
                self._nonces.pop(account.address, None)  # re-read the nonce next time
                raise ChainError(f"{what}: node refused the transaction: {error}") from None
            self._nonces[account.address] = nonce + 1
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.005)
        if receipt["status"] != 1:
            raise TransactionReverted(what, self._replay_reason(tx, receipt))
        return receipt

    def _replay_reason(self, tx: dict[str, Any], receipt: Any) -> str:
        """Why a mined transaction failed: replay it as a call in its block's parent state."""
        call = {key: tx[key] for key in ("from", "to", "data", "value") if key in tx}
        if "from" not in call:
            call["from"] = receipt["from"]
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)
        except ContractLogicError as error:
            return _reason(error)
        if receipt["gasUsed"] >= tx["gas"]:
            return f"out of gas (limit {tx['gas']})"
        return "reverted on chain (no reason returned)"

    def _decode_receipt_events(self, address: str, receipt: Any) -> list[Event]:
        contract = self._contract(address)
        decoded = []
        for abi in contract.abi:
            if abi.get("type") != "event":
                continue
            for log in contract.events[abi["name"]]().process_receipt(receipt, errors=DISCARD):
                decoded.append(_event(log))
        return sorted(decoded, key=lambda e: e.log_index)

    def call(self, address: str, function: str, args: Sequence[Any] = ()) -> Any:
        try:
            return normalise(self._contract(address).functions[function](*args).call())
        except ContractLogicError as error:
            raise TransactionReverted(function, _reason(error)) from None

    def events(
        self, address: str, name: str, from_block: int = 0, filters: Mapping[str, Any] | None = None
    ) -> list[Event]:
        logs = (
            self._contract(address)
            .events[name]
            .get_logs(from_block=from_block, argument_filters=dict(filters) if filters else None)
        )
        return sorted((_event(log) for log in logs), key=lambda e: (e.block, e.log_index))

    def transactions(self, address: str, from_block: int = 0) -> list[TxRecord]:
        contract = self._contract(address)
        records = []
        for number in range(from_block, self.w3.eth.block_number + 1):
            block = self.w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                if tx["to"] != contract.address:
                    continue
                function, args = contract.decode_function_input(tx["input"])
                receipt = self.w3.eth.get_transaction_receipt(tx["hash"])
                records.append(
                    TxRecord(
                        function=function.fn_name,
                        args={key: normalise(value) for key, value in args.items()},
                        sender=tx["from"],
                        gas_used=receipt["gasUsed"],
                        block=number,
                        success=receipt["status"] == 1,
                    )
                )
        return records

    def balance(self, address: str) -> int:
        return self.w3.eth.get_balance(Web3.to_checksum_address(address))

    # time

    def timestamp(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def advance_time(self, seconds: int) -> None:
        if not self.dev:
            raise ChainError("time travel needs a dev node (anvil); a public chain keeps time")
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])

    def block_number(self) -> int:
        return self.w3.eth.block_number

    def close(self) -> None:
        """Nothing to release: HTTP sessions close with the process."""


def _event(log: Any) -> Event:
    return Event(
        name=log["event"],
        args={key: normalise(value) for key, value in log["args"].items()},
        block=log["blockNumber"],
        log_index=log["logIndex"],
        tx_hash=log["transactionHash"].to_0x_hex(),
    )


def _reason(error: ContractLogicError) -> str:
    message = str(error.message if getattr(error, "message", None) else error)
    prefix = "execution reverted: "
    return message[len(prefix) :] if message.startswith(prefix) else message
