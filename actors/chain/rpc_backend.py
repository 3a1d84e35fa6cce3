"""A real node over JSON-RPC (anvil, a testnet, ...) through web3.py.

Transactions are signed locally with private keys the process holds (from the environment or
created for a local dev node). Gas figures are the receipts' `gasUsed`: these are the ones to quote.

Two gas strategies (`gas_strategy`):
- `"estimate"` (the default on a public node): each call is estimated first, which surfaces the
  contract's revert reason as a named `TransactionReverted` without paying for a failed
  transaction; the limit is the estimate plus a margin.
- `"cap"` (the default on an automining dev node, `dev=True`): no estimate; every transaction
  carries the block's gas limit (EIP-7825's 2**24 if the node refuses more; anvil 1.7 does not).
  Only gas used is charged, so this costs nothing extra on a dev node that mines each transaction
  in a block of its own, and saves a full execution per transaction. A
  transaction that reverts is mined (status 0) and replayed as a call in its parent block to
  name the contract's reason, so callers see the same `TransactionReverted`. The fees are read
  once and re-read only when the node refuses a transaction.

Either way calldata is encoded once (`ContractCodec`), eth_account signs on libsecp256k1
(coincurve), the receipt is polled at once and then with a backoff (an automining node has it
ready), and the block timestamp is read from the receipt when the node includes it (anvil
does), else from the block. EIP-7966's `eth_sendRawTransactionSync` (receipt in the answer) is
not used: on anvil 1.7.1, concurrent senders left transactions unmined in its pool until its
30 s timeout.

Blobs (`transact(..., blobs=...)`): an EIP-4844 type-3 transaction in the EIP-7594 (Osaka)
network wrapper (actors.chain.blob_tx). The blob fee cap is twice the node's blob base fee, read
like the other fees.

Fees (`fees`, actors.chain.fees): EIP-1559 fees the node suggests, or the user's overrides; a
transaction a node that mines by itself leaves pending for `fees.replace_after` seconds is
replaced with the same nonce and higher fees.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import Web3RPCError

from actors.chain.artifacts import Artifact, artifact_for
from actors.chain.base import (
    BlobsUnsupported,
    ChainError,
    Event,
    NodeUnavailable,
    Receipt,
    TransactionReverted,
    TxRecord,
    normalise,
)
from actors.chain.blob_tx import Sidecar, sign
from actors.chain.codec import ContractCodec
from actors.chain.fees import FeeOracle, Fees
from actors.chain.jsonrpc import (
    METHOD_NOT_FOUND,
    JsonRpc,
    Mined,
    ReceiptEvents,
    call_error,
    call_revert_reason,
    quantity,
    raw_call,
)
from actors.chain.jsonrpc import mined as mined_receipt

# A transaction's gas limit is its estimate plus a margin: the state can change between the
# estimate and inclusion (another DO's unmask makes ours the one that pays the whole group).
# Only gas used is charged, so a generous limit costs nothing.
_GAS_MARGIN = 1.25
_GAS_SLACK = 50_000
# EIP-7825 (Osaka): a node enforcing it refuses a transaction asking for more gas than this
_TX_GAS_CAP = 2**24
GAS_STRATEGIES = ("estimate", "cap")
# receipt polling: first poll at once, then backing off to this interval
_POLL_FIRST = 0.001
_POLL_MAX = 0.1
_RECEIPT_TIMEOUT = 120.0
# anvil's automine can leave a ready transaction pending (foundry-rs/foundry#10122: one round of
# 40 data owners in three hung here): after this long without a receipt, mine a block for it
_AUTOMINE_NUDGE = 1.0
# how long an eth_sendRawTransactionSync may wait for its receipt before the client polls
_SYNC_SEND_TIMEOUT = _AUTOMINE_NUDGE
# the namespaces of dev nodes' cheat methods (automine, balances), asked in this order
_DEV_NAMESPACES = ("anvil", "hardhat")


class RpcChain:
    """A JSON-RPC node. `dev=True` enables a dev node's cheat methods (balances, anvil's or
    hardhat's, whichever the node answers; time travel) and, on an automining node and unless
    `gas_strategy` says otherwise, sends without estimating (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        dev: bool = False,
        funder_key: str | None = None,
        gas_strategy: str | None = None,
    ) -> None:
        self.url = url
        self.dev = dev
        if gas_strategy is not None and gas_strategy not in GAS_STRATEGIES:
            raise ValueError(f"gas_strategy must be one of {GAS_STRATEGIES}")
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 120}))
        self._transport = JsonRpc(url, timeout=120)
        try:
            self.chain_id = self.w3.eth.chain_id
        except (requests.RequestException, Web3RPCError) as error:
            raise NodeUnavailable(f"no JSON-RPC node at {url}: {error}") from None
        # An automining dev node mines a transaction as it arrives, in a block of its own, so a
        # transaction may ask for the whole block's gas. With interval mining, many transactions
        # share a block, so they keep estimating.
        self._dev_namespace: str | None = None  # which cheat methods the node has
        automine = self._automining()
        # a dev node by the cheat methods it answered (reports name the node they ran on)
        self.name = (self._dev_namespace or "rpc") if dev else "rpc"
        self.gas_strategy = gas_strategy or ("cap" if automine else "estimate")
        self._automine = automine
        self._sync_send = True  # until the node says it has no eth_sendRawTransactionSync
        self._accounts: dict[str, LocalAccount] = {}
        self._nonces: dict[str, int] = {}
        # one send at a time per account (its nonces in order); accounts do not wait for each
        # other (the demo's data owners share one client)
        self._send_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._artifacts: dict[str, Artifact] = {}
        # the receipt of each contract this client deployed, by address (deployment records)
        self.creations: dict[str, Receipt] = {}
        self._codecs: dict[str, ContractCodec] = {}
        self.fees = FeeOracle(self._rpc)
        self._max_blob_fee: int | None = None
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
        address = self.add_account(Account.create().key.hex())
        self._nonces[address] = 0  # a fresh key has sent nothing: no need to ask the node
        if funds_wei:
            self.fund(address, funds_wei)
        return address

    def fund(self, address: str, funds_wei: int) -> None:
        """Fund `address`: anvil's setBalance on a dev node, else a transfer from the funder."""
        if self.dev:
            if self._dev_namespace is None:
                raise ChainError(f"the node at {self.url} has no setBalance method to fund with")
            self._rpc(f"{self._dev_namespace}_setBalance", [address, hex(funds_wei)])
            return
        if self._funder is None:
            raise ChainError("no funder account: set OMNILYTICS_PRIVATE_KEY to fund new accounts")
        self._send(self._funder, {"to": address, "value": funds_wei, "gas": 21_000}, "fund")

    def deploy(self, source: Path, args: Sequence[Any], sender: str) -> str:
        artifact = artifact_for(source)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx = factory.constructor(*args).build_transaction({"from": sender, "nonce": 0})
        tx = {key: tx[key] for key in ("data", "value", "gas") if key in tx}
        started = time.perf_counter()
        mined = self._send(sender, tx, "deploy")
        address = Web3.to_checksum_address(mined.contract_address)
        self._attach(address, artifact)
        self.creations[address] = Receipt(
            function="deploy",
            tx_hash=mined.tx_hash,
            gas_used=mined.gas_used,
            block=mined.block,
            timestamp=mined.timestamp or 0,
            seconds=time.perf_counter() - started,
        )
        return address

    def attach(self, source: Path, address: str) -> None:
        self._attach(Web3.to_checksum_address(address), artifact_for(source))

    def _attach(self, address: str, artifact: Artifact) -> None:
        self._artifacts[address] = artifact
        self._codecs[address] = ContractCodec(artifact.abi)

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
        blobs: Sequence[bytes] = (),
    ) -> Receipt:
        started = time.perf_counter()
        if address not in self._codecs:
            address = Web3.to_checksum_address(address)
        codec = self._codecs[address]
        tx = {"to": address, "data": codec.encode_call(function, args), "value": value}
        sidecar = Sidecar.of(blobs) if blobs else None
        if sidecar is not None:
            tx["blobVersionedHashes"] = list(sidecar.hashes)
        if self.gas_strategy == "estimate":
            gas = self._estimate(function, {"from": sender, **tx})
            tx["gas"] = min(int(gas * _GAS_MARGIN) + _GAS_SLACK + gas_extra, self.block_gas_limit)
        else:
            tx["gas"] = self.block_gas_limit
        mined = self._send(sender, tx, function, sidecar)
        timestamp = mined.timestamp
        if timestamp is None:  # a node whose receipts do not carry their block's timestamp
            timestamp = self.w3.eth.get_block(mined.block)["timestamp"]
        return Receipt(
            function=function,
            tx_hash=mined.tx_hash,
            gas_used=mined.gas_used,
            block=mined.block,
            timestamp=timestamp,
            seconds=time.perf_counter() - started,
            events=ReceiptEvents(codec, address, mined.logs),
            blob_gas_used=mined.blob_gas_used,
        )

    def _automining(self) -> bool:
        """Whether the node mines each transaction as it arrives (anvil's or hardhat's
        automine). Any node is asked, in each dev namespace (`_DEV_NAMESPACES`): the one that
        answers is the one whose cheat methods `fund` uses; a node with neither (a public
        node) answers with errors, and does not automine."""
        for namespace in _DEV_NAMESPACES:
            try:
                automine = self._rpc(f"{namespace}_getAutomine", [])
            except (Web3RPCError, NodeUnavailable):
                continue
            self._dev_namespace = namespace
            return automine is True
        return False

    def _estimate(self, function: str, call: Mapping[str, Any]) -> int:
        """Gas a call needs; its revert as TransactionReverted. Raw JSON-RPC: web3's estimate
        took 3.0 ms of CPU a call against anvil (its middleware validates and asks the chain id
        each time), this 0.15 ms; and web3 has no formatter for `blobVersionedHashes`."""
        try:
            return quantity(self._rpc("eth_estimateGas", [raw_call(call)]))
        except Web3RPCError as error:
            reason = call_revert_reason(error)
            if reason is None:
                raise ChainError(f"{function}: the node did not estimate: {error}") from None
            raise TransactionReverted(function, reason) from None

    def request(self, method: str, params: list[Any]) -> Any:
        """One raw JSON-RPC request (blob sources use the node's own blob methods)."""
        return self._rpc(method, params)

    def block_timestamp(self, number: int) -> int:
        """The timestamp of block `number`."""
        return quantity(self._rpc("eth_getBlockByNumber", [hex(number), False])["timestamp"])

    def _rpc(self, method: str, params: list[Any], timeout: float | None = None) -> Any:
        """One raw JSON-RPC request (no web3 formatting); the node's errors as Web3RPCError, an
        unreachable node (or no answer within `timeout`) as NodeUnavailable (callers may wait
        and retry)."""
        try:
            response = self._transport.request(method, params, timeout)
        except requests.RequestException as error:
            raise NodeUnavailable(f"{method}: node at {self.url} unreachable: {error}") from None
        if "error" in response:
            raise Web3RPCError(str(response["error"]), rpc_response=response)
        return response.get("result")

    def _fees(self, refresh: bool) -> Fees:
        """The transaction's fees (estimate: read for every transaction; cap: read once, then
        only after a refusal, base fees move at most 12.5% a block)."""
        return self.fees.current(refresh or self.gas_strategy == "estimate")

    def _blob_fee_cap(self, refresh: bool) -> int:
        """maxFeePerBlobGas: twice the node's blob base fee, read as `_fees` reads the others."""
        if refresh or self._max_blob_fee is None or self.gas_strategy == "estimate":
            self._max_blob_fee = 2 * int(self._rpc("eth_blobBaseFee", []), 16) + 1
        return self._max_blob_fee

    def _send(
        self, sender: str, tx: dict[str, Any], what: str, sidecar: Sidecar | None = None
    ) -> Mined:
        """Sign with the account's next nonce, send, and wait for the receipt.

        An account's sends run one at a time (nonces in order; see `_send_locks`); waiting for a
        receipt by polling happens outside the lock. With a sidecar, a type-3 transaction
        carrying it."""
        fields = {"chainId": self.chain_id, **tx}
        account = self._accounts[sender]
        with self._locks_lock:
            lock = self._send_locks.setdefault(sender, threading.Lock())
        with lock:
            for attempt in (0, 1):
                nonce = self._nonces.get(sender)
                if nonce is None:
                    nonce = int(self._rpc("eth_getTransactionCount", [sender, "pending"]), 16)
                fields["nonce"] = nonce
                fields.update(self._fees(attempt > 0).fields())
                if sidecar is not None:
                    fields["maxFeePerBlobGas"] = self._blob_fee_cap(attempt > 0)
                raw, tx_hash = sign(account, fields, sidecar)
                pushed = time.monotonic()
                try:
                    receipt = self._push(raw, tx_hash, sync=sidecar is None)
                except Web3RPCError as error:
                    # hardhat answers the send of a transaction it automined and that reverted
                    # with an error: if the node has its receipt, it is mined, not refused
                    receipt = self._rpc("eth_getTransactionReceipt", [tx_hash])
                    if receipt is not None:
                        self._nonces[sender] = nonce + 1
                        break
                    self._nonces.pop(sender, None)  # re-read the nonce next time
                    if attempt == 0 and self.gas_strategy == "cap":
                        # a stale fee cap or nonce, or a node enforcing EIP-7825's per-transaction
                        # gas cap: read both again and respect the cap, once
                        fields["gas"] = min(fields["gas"], _TX_GAS_CAP)
                        continue
                    if sidecar is not None:
                        raise BlobsUnsupported(
                            f"{what}: the node at {self.url} refused a blob transaction "
                            f"(EIP-7594 wrapper): {error}"
                        ) from None
                    raise ChainError(f"{what}: node refused the transaction: {error}") from None
                self._nonces[sender] = nonce + 1
                break
        if receipt is not None:
            mined = mined_receipt(receipt)
        else:
            try:
                mined = self._wait_receipt(
                    tx_hash, time.monotonic() - pushed, self._replacer(account, fields, sidecar)
                )
            except ChainError:
                self._nonces.pop(sender, None)  # it may never have landed: read the nonce again
                raise
        if not mined.success:
            raise TransactionReverted(what, self._replay_reason(sender, fields, mined))
        return mined

    def _replacer(
        self, account: LocalAccount, fields: dict[str, Any], sidecar: Sidecar | None
    ) -> Callable[[], str | None]:
        """What replaces the pending transaction `fields`: the same nonce with bumped fees,
        sent; its hash, or None if the fees may not rise (a `--max-fee` reached). A blob
        transaction's blob fee rises too."""

        def replace() -> str | None:
            stuck = Fees(fields["maxFeePerGas"], fields["maxPriorityFeePerGas"])
            fees = self.fees.bumped(stuck)
            if fees is None:
                return None
            fields.update(fees.fields())
            if sidecar is not None:
                fields["maxFeePerBlobGas"] = max(
                    fields["maxFeePerBlobGas"] * 9 // 8 + 1, self._blob_fee_cap(True)
                )
            raw, tx_hash = sign(account, fields, sidecar)
            try:
                self._rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
            except Web3RPCError:
                return None  # mined meanwhile, or refused: the first one is still awaited
            return tx_hash

        return replace

    def _push(self, raw: bytes, tx_hash: str, sync: bool) -> Mapping[str, Any] | None:
        """Send a signed transaction; its receipt too when the node gives it in the same reply.

        An automining node includes a transaction as it arrives, and one that speaks EIP-7966
        (`eth_sendRawTransactionSync`, anvil does) answers with its receipt: one round trip where
        sending and polling took two. A node without the method is asked once, then sent to as
        usual. anvil takes no timeout argument and waits 30 s for a transaction its automine
        left pending (see `_AUTOMINE_NUDGE`), so the client stops waiting after
        `_SYNC_SEND_TIMEOUT` itself and polls for the receipt (None; the wait so far counts
        toward the nudge). An error means a refusal if the node does not know the transaction:
        it is raised as the plain send's would be. Blob transactions are sent plainly (`sync`
        False): anvil checks their KZG proofs before it answers, which can outlast the timeout.
        """
        payload = ["0x" + raw.hex()]
        if not (sync and self._automine and self._sync_send):
            self._rpc("eth_sendRawTransaction", payload)
            return None
        try:
            return self._rpc("eth_sendRawTransactionSync", payload, _SYNC_SEND_TIMEOUT)
        except Web3RPCError as error:
            response = error.rpc_response or {}
            if response.get("error", {}).get("code") in METHOD_NOT_FOUND:
                self._sync_send = False
                self._rpc("eth_sendRawTransaction", payload)
                return None
            if self._rpc("eth_getTransactionByHash", [tx_hash]) is None:
                raise
        except NodeUnavailable:
            pass  # no answer in time: the node has it or is down, and polling tells which
        return None

    def _wait_receipt(
        self,
        tx_hash: str,
        waited: float = 0.0,
        replace: Callable[[], str | None] | None = None,
    ) -> Mined:
        """Poll for a receipt; on an automining node, mine a block for a transaction still
        pending after `_AUTOMINE_NUDGE` (of which `waited` seconds have passed already); on
        another, `replace` it after `fees.replace_after` seconds pending, and again after as
        long (the receipt of whichever version is mined ends the wait)."""
        started = time.monotonic()
        deadline, nudge = started + _RECEIPT_TIMEOUT, started + _AUTOMINE_NUDGE - waited
        stuck_at = started + self.fees.replace_after - waited
        hashes, delay = [tx_hash], _POLL_FIRST
        while (raw := self._receipt(hashes)) is None:
            now = time.monotonic()
            if now > deadline:
                raise ChainError(f"no receipt for {tx_hash} after {_RECEIPT_TIMEOUT:.0f} s")
            if self._automine and now > nudge:
                self._rpc("evm_mine", [])
                nudge = now + _AUTOMINE_NUDGE
            if replace is not None and not self._automine and now > stuck_at:
                replacement = replace()
                if replacement is not None:
                    hashes.append(replacement)
                    deadline = now + _RECEIPT_TIMEOUT
                stuck_at = now + self.fees.replace_after
            time.sleep(delay)
            delay = min(2 * delay, _POLL_MAX)
        return mined_receipt(raw)

    def _receipt(self, hashes: Sequence[str]) -> Mapping[str, Any] | None:
        """The receipt of the newest of a transaction's versions that is mined, if any."""
        for tx_hash in reversed(hashes):
            raw = self._rpc("eth_getTransactionReceipt", [tx_hash])
            if raw is not None:
                return raw
        return None

    def _replay_reason(self, sender: str, tx: Mapping[str, Any], mined: Mined) -> str:
        """Why a mined transaction failed: replay it as a call in its block's parent state."""
        call: dict[str, Any] = {"from": sender, "value": tx.get("value", 0)}
        if "to" in tx:
            call["to"] = tx["to"]
        if tx.get("data"):
            call["data"] = "0x" + bytes(tx["data"]).hex()
        if "blobVersionedHashes" in tx:
            call["blobVersionedHashes"] = tx["blobVersionedHashes"]
        try:
            self._rpc("eth_call", [raw_call(call), hex(mined.block - 1)])
        except Web3RPCError as error:
            return call_revert_reason(error) or str(error)
        if mined.gas_used >= tx["gas"]:
            return f"out of gas (limit {tx['gas']})"
        return "reverted on chain (no reason returned)"

    def call(self, address: str, function: str, args: Sequence[Any] = ()) -> Any:
        if address not in self._codecs:
            address = Web3.to_checksum_address(address)
        codec = self._codecs[address]
        call = {"to": address, "data": "0x" + codec.encode_call(function, args).hex()}
        try:
            result = self._rpc("eth_call", [call, "latest"])
        except Web3RPCError as error:
            raise call_error(function, error.rpc_response or {}) from None
        return codec.decode_result(function, bytes.fromhex(result[2:]))

    def call_many(
        self, address: str, calls: Sequence[tuple[Any, ...]], *, clock: bool = False
    ) -> list[Any]:
        """Several views (a call's third element: another attached contract), and with `clock`
        the chain's `timestamp()` after them, in one JSON-RPC batch: one round trip to the
        node, where a data owner's polls used to make one each."""
        batch: list[tuple[str, list[Any]]] = []
        codecs = []
        for call in calls:
            to = call[2] if len(call) > 2 else address
            if to not in self._codecs:
                to = Web3.to_checksum_address(to)
            codec = self._codecs[to]
            codecs.append(codec)
            data = "0x" + codec.encode_call(call[0], call[1]).hex()
            batch.append(("eth_call", [{"to": to, "data": data}, "latest"]))
        if clock:
            batch.append(("eth_getBlockByNumber", ["latest", False]))
        if not batch:
            return []
        try:
            responses = self._transport.batch(batch)
        except requests.RequestException as error:
            raise NodeUnavailable(f"batch: node at {self.url} unreachable: {error}") from None
        if not isinstance(responses, list) or len(responses) != len(batch):
            raise ChainError(f"the node refused a batch of {len(batch)} requests: {responses}")
        results = []
        for call, codec, response in zip(calls, codecs, responses[: len(calls)], strict=True):
            if "error" in response:
                raise call_error(call[0], response)
            results.append(codec.decode_result(call[0], bytes.fromhex(response["result"][2:])))
        if clock:
            block = responses[-1]
            if "error" in block:
                raise ChainError(f"eth_getBlockByNumber failed: {block['error']}")
            results.append(max(quantity(block["result"]["timestamp"]), int(time.time())))
        return results

    def events(
        self, address: str, name: str, from_block: int = 0, filters: Mapping[str, Any] | None = None
    ) -> list[Event]:
        address = Web3.to_checksum_address(address)
        codec = self._codecs[address]
        filters = dict(filters or {})
        query = {
            "address": address,
            "fromBlock": hex(from_block),
            "toBlock": "latest",
            "topics": codec.topics(name, filters),
        }
        events = [
            event
            for event in codec.decode_logs(address, self._rpc("eth_getLogs", [query]))
            if all(_same(event.args[key], value) for key, value in filters.items())
        ]
        return sorted(events, key=lambda e: (e.block, e.log_index))

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
        """The earliest timestamp a transaction sent now can carry: the latest block's, or the
        wall clock if later (an automining node mines no block while nothing is sent, so its
        latest block's time stands still, and deadlines would never seem to pass)."""
        # raw: a data owner reads the clock on every poll, web3's block formatting is not free
        latest = quantity(self._rpc("eth_getBlockByNumber", ["latest", False])["timestamp"])
        return max(latest, int(time.time()))

    def advance_time(self, seconds: int) -> None:
        if not self.dev:
            raise ChainError("time travel needs a dev node (anvil); a public chain keeps time")
        # an exact target, not evm_increaseTime: anvil's own clock can run up to a second behind
        # the wall clock that timestamp() reads, and the mined block then falls a second short
        target = self.timestamp() + seconds
        self.w3.provider.make_request("evm_setNextBlockTimestamp", [target])
        self.w3.provider.make_request("evm_mine", [])

    def block_number(self) -> int:
        return quantity(self._rpc("eth_blockNumber", []))

    def close(self) -> None:
        """Nothing to release: HTTP sessions close with the process."""


def _same(value: Any, wanted: Any) -> bool:
    """A filter match; addresses compare whatever their case (the node matched their topics)."""
    if isinstance(value, str) and isinstance(wanted, str):
        return value.lower() == wanted.lower()
    return value == wanted
