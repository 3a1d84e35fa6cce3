"""Where an aggregator reads blob data back: the execution node or a beacon node.

A blob is not EVM state: the chain keeps only its versioned hash (`UpdateBlobs`), and consensus
clients keep the blob itself for a limited window (4096 epochs, about 18 days, on mainnet).
- `NodeBlobSource`: anvil's `anvil_getBlobsByTransactionHash` (`anvil_getBlobByHash` for a
  transaction it has no list for). The default on a dev node; a node without them (hardhat)
  raises BlobsUnsupported.
- `BeaconBlobSource`: a beacon node's standard blob sidecars,
  `GET /eth/v1/beacon/blob_sidecars/{slot}`, the slot found from the execution block's timestamp
  and the beacon chain's genesis time and slot length. For public networks.

Sources are not trusted: they return what they have (None where they have nothing), and
recovery checks every blob against the versioned hash the chain recorded before using it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import requests
from web3.exceptions import Web3RPCError

from actors.chain.base import BlobsUnsupported, ChainError
from actors.chain.rpc_backend import METHOD_NOT_FOUND, RpcChain
from protocol.blobs import versioned_hash

_TIMEOUT = 30.0


class BlobSource(Protocol):
    """Fetches the blobs a transaction carried."""

    def blobs(self, tx_hash: str, block: int, hashes: Sequence[bytes]) -> list[bytes | None]:
        """The blobs with these versioned hashes, carried by `tx_hash` mined in `block`, in the
        order of `hashes`; None for a blob the source does not have."""
        ...


def _hex_bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


class NodeBlobSource:
    """The execution node's own blob store (anvil keeps every blob it mined)."""

    def __init__(self, chain: RpcChain) -> None:
        self.chain = chain

    def blobs(self, tx_hash: str, block: int, hashes: Sequence[bytes]) -> list[bytes | None]:
        try:
            listed = self.chain.request("anvil_getBlobsByTransactionHash", [tx_hash]) or []
        except Web3RPCError as error:
            if (error.rpc_response or {}).get("error", {}).get("code") in METHOD_NOT_FOUND:
                raise BlobsUnsupported(
                    f"the node at {self.chain.url} keeps no blobs to read back (it has no "
                    "anvil_getBlobsByTransactionHash): read them from a beacon node (--beacon-url)"
                ) from None
            raise
        if len(listed) == len(hashes):
            return [_hex_bytes(b) for b in listed]
        found: list[bytes | None] = []
        for wanted in hashes:
            blob = self.chain.request("anvil_getBlobByHash", ["0x" + wanted.hex()])
            found.append(_hex_bytes(blob) if blob else None)
        return found


class BeaconBlobSource:
    """A beacon node's blob sidecars (Beacon API), matched to versioned hashes by commitment.

    `chain` gives execution block timestamps; the slot of a block is
    `(timestamp - genesis_time) // SECONDS_PER_SLOT`.
    """

    def __init__(self, url: str, chain: RpcChain, session: requests.Session | None = None):
        self.url = url.rstrip("/")
        self.chain = chain
        self._http = session or requests.Session()
        self._genesis: tuple[int, int] | None = None

    def _get(self, path: str) -> dict:
        try:
            response = self._http.get(self.url + path, timeout=_TIMEOUT)
        except requests.RequestException as error:
            raise ChainError(f"beacon node at {self.url} unreachable: {error}") from None
        if response.status_code == 404:
            return {"data": []}
        if not response.ok:
            raise ChainError(f"beacon node: GET {path} answered {response.status_code}")
        return response.json()

    def slot_of(self, block: int) -> int:
        """The beacon slot whose execution payload is `block`."""
        if self._genesis is None:
            genesis = int(self._get("/eth/v1/beacon/genesis")["data"]["genesis_time"])
            seconds = int(self._get("/eth/v1/config/spec")["data"]["SECONDS_PER_SLOT"])
            self._genesis = (genesis, seconds)
        genesis, seconds = self._genesis
        return (self.chain.block_timestamp(block) - genesis) // seconds

    def blobs(self, tx_hash: str, block: int, hashes: Sequence[bytes]) -> list[bytes | None]:
        sidecars = self._get(f"/eth/v1/beacon/blob_sidecars/{self.slot_of(block)}")["data"]
        by_hash = {
            versioned_hash(_hex_bytes(s["kzg_commitment"])): _hex_bytes(s["blob"]) for s in sidecars
        }
        return [by_hash.get(bytes(h)) for h in hashes]


def blob_source(chain: RpcChain, beacon_url: str | None = None) -> BlobSource:
    """The beacon node at `beacon_url` if given, else the node's own blob store."""
    if beacon_url:
        return BeaconBlobSource(beacon_url, chain)
    return NodeBlobSource(chain)
