"""JSON-RPC on the wire: a lean HTTP/1.1 client, receipts as the chain client reads them, and
the contract's revert reason out of a node's error answer."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import eth_abi
import requests
from web3.exceptions import Web3RPCError

from actors.chain.base import ChainError, Event, TransactionReverted
from actors.chain.codec import ContractCodec

# a method the node does not have: JSON-RPC's code, and hardhat's "method not supported"
METHOD_NOT_FOUND = (-32601, -32004)
_ERROR_STRING = "0x08c379a0"  # selector of Error(string), a revert reason's ABI prefix
# a transaction, which is never sent twice, goes on a fresh connection if the thread's has been
# idle this long: a node may close idle keep-alive connections (hardhat's Node.js server after
# 5 s), and one closed as the transaction is written leaves it unknown whether it arrived
_KEEP_ALIVE_TRUST = 2.0


class JsonRpc:
    """A lean JSON-RPC client: HTTP/1.1 keep-alive, one connection per thread.

    web3's provider (requests, middleware) spends about 0.9 ms of CPU per request, this about
    0.1 ms (both against anvil, measured here); that CPU holds the GIL, which many actors in one
    process share. Used for raw requests and batches; web3 keeps everything else.
    """

    def __init__(self, url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        self._connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self._host, self._port = parts.hostname, parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._local = threading.local()
        self._ids = itertools.count(1)

    def request(
        self, method: str, params: list[Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """One request; `timeout` (seconds) bounds this one's wait for the answer instead of
        the client's (on timeout the connection is dropped: requests.ConnectionError)."""
        return self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params},
            timeout,
        )

    def batch(self, requests_: Sequence[tuple[str, list[Any]]]) -> Any:
        """The responses of a batch, in request order (or the node's one error object)."""
        payload = [
            {"jsonrpc": "2.0", "id": index, "method": method, "params": params}
            for index, (method, params) in enumerate(requests_)
        ]
        answer = self._post(payload)
        if isinstance(answer, list):
            answer.sort(key=lambda response: response.get("id", -1))
        return answer

    def _post(self, payload: Any, timeout: float | None = None) -> Any:
        body = json.dumps(payload).encode()
        # a request that never reached the node may be sent again on a fresh connection (the
        # node closed an idle one); a transaction is not, it may have been received
        calls = payload if isinstance(payload, list) else [payload]
        resend = not any(c["method"].startswith("eth_sendRawTransaction") for c in calls)
        for attempt in (0, 1):
            connection = getattr(self._local, "connection", None)
            if connection is not None and not resend:
                idle = time.monotonic() - self._local.used
                if idle > _KEEP_ALIVE_TRUST:  # the node may be closing it: send on a fresh one
                    connection.close()
                    connection = None
            if connection is None:
                connection = self._connection_class(self._host, self._port, timeout=self._timeout)
                self._local.connection = connection
            self._local.used = time.monotonic()
            try:
                connection.request("POST", self._path, body, {"Content-Type": "application/json"})
                if connection.sock is not None:
                    connection.sock.settimeout(timeout or self._timeout)
                response = connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError) as error:
                connection.close()
                self._local.connection = None
                if (
                    attempt == 0
                    and resend
                    and isinstance(
                        error,
                        http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError,
                    )
                ):
                    continue
                raise requests.ConnectionError(str(error)) from None
            if response.status != 200:
                raise requests.ConnectionError(f"HTTP {response.status}: {data[:200]!r}")
            return json.loads(data)
        raise AssertionError("unreachable")


class ReceiptEvents(Sequence[Event]):
    """A receipt's events, decoded on first use: most callers never look, and a submission's
    receipt carries its whole chunk back (4,096 words took 1 ms to decode)."""

    def __init__(self, codec: ContractCodec, address: str, logs: Sequence[Mapping[str, Any]]):
        self._codec, self._address, self._logs = codec, address, logs
        self._events: tuple[Event, ...] | None = None

    def _decoded(self) -> tuple[Event, ...]:
        if self._events is None:
            self._events = tuple(self._codec.decode_logs(self._address, self._logs))
        return self._events

    def __getitem__(self, index: Any) -> Any:
        return self._decoded()[index]

    def __len__(self) -> int:
        return len(self._decoded())

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __hash__(self) -> int:
        return hash(self._decoded())

    def __repr__(self) -> str:
        return repr(self._decoded())


@dataclass(frozen=True, slots=True)
class Mined:
    """The fields of a JSON-RPC receipt the client uses, parsed."""

    tx_hash: str
    success: bool
    gas_used: int
    block: int
    timestamp: int | None
    sender: str
    contract_address: str | None
    logs: tuple[Mapping[str, Any], ...]
    blob_gas_used: int


def mined(raw: Mapping[str, Any]) -> Mined:
    stamp = raw.get("blockTimestamp")
    return Mined(
        tx_hash=raw["transactionHash"],
        success=quantity(raw["status"]) == 1,
        gas_used=quantity(raw["gasUsed"]),
        block=quantity(raw["blockNumber"]),
        timestamp=quantity(stamp) if stamp is not None else None,
        sender=raw["from"],
        contract_address=raw.get("contractAddress"),
        logs=tuple(raw["logs"]),
        blob_gas_used=quantity(raw.get("blobGasUsed") or 0),
    )


def quantity(value: int | str) -> int:
    """A JSON-RPC quantity: hex by the spec (anvil 1.7 sends `blockTimestamp` as a number)."""
    return value if isinstance(value, int) else int(value, 16)


def call_error(function: str, response: Mapping[str, Any]) -> ChainError:
    """What a failed eth_call raises: the contract's reason as TransactionReverted, anything
    else (the node did not answer the call) as ChainError."""
    body = response.get("error") or {}
    message = str(body.get("message", ""))
    data = body.get("data")
    if isinstance(data, dict):  # hardhat nests the revert data: {"message": ..., "data": "0x.."}
        data = data.get("data")
    if isinstance(data, str) and data.startswith(_ERROR_STRING):
        reason = str(eth_abi.decode(["string"], bytes.fromhex(data[len(_ERROR_STRING) :]))[0])
        return TransactionReverted(function, reason)
    if body.get("code") == 3 or message.startswith("execution reverted"):
        reason = message.removeprefix("execution reverted").removeprefix(": ") or "reverted"
        return TransactionReverted(function, reason)
    return ChainError(f"{function}: the node did not answer the call: {body}")


def call_revert_reason(error: Web3RPCError) -> str | None:
    """The contract's reason from a raw eth_call error, or None if it is no revert."""
    refused = call_error("", error.rpc_response or {})
    return refused.reason if isinstance(refused, TransactionReverted) else None


def raw_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """A call object for raw JSON-RPC: quantities and bytes as hex strings."""
    raw: dict[str, Any] = {}
    for key, value in call.items():
        if isinstance(value, bool | int):
            raw[key] = hex(value)
        elif isinstance(value, bytes | bytearray):
            raw[key] = "0x" + bytes(value).hex()
        elif key == "blobVersionedHashes":
            raw[key] = ["0x" + bytes(h).hex() for h in value]
        else:
            raw[key] = value
    return raw
