"""Blob sources: anvil's own blob store, and a beacon node's blob sidecars served by a small
fake Beacon API over real HTTP (there is no beacon node here), both reading back blobs that a
real type-3 transaction carried on anvil."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from actors.chain.anvil import AnvilNode
from actors.chain.blob_sources import BeaconBlobSource, NodeBlobSource
from actors.chain.market import Market
from actors.chain.rpc_backend import RpcChain
from protocol.blobs import commitment, versioned_hash, words_to_blobs
from protocol.recovery import BlobChunk
from tests.contracts.unitary.test_submit_blobs import open_submit, random_words

pytestmark = pytest.mark.anvil

GENESIS_TIME = 0
SECONDS_PER_SLOT = 12


class FakeBeacon(BaseHTTPRequestHandler):
    """The three Beacon API routes a blob source reads; sidecars are served per slot."""

    sidecars: ClassVar[dict[int, list[dict]]] = {}
    requested: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requested.append(self.path)
        if self.path == "/eth/v1/beacon/genesis":
            body = {"data": {"genesis_time": str(GENESIS_TIME)}}
        elif self.path == "/eth/v1/config/spec":
            body = {"data": {"SECONDS_PER_SLOT": str(SECONDS_PER_SLOT)}}
        elif self.path.startswith("/eth/v1/beacon/blob_sidecars/"):
            slot = int(self.path.rsplit("/", 1)[1])
            if slot not in self.sidecars:
                self.send_error(404)
                return
            body = {"data": self.sidecars[slot]}
        else:
            self.send_error(400)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def beacon() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeBeacon)
    FakeBeacon.sidecars.clear()
    FakeBeacon.requested.clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def chain() -> Iterator[RpcChain]:
    with AnvilNode() as node:
        yield RpcChain(node.url, dev=True)


def sidecar(index: int, blob: bytes) -> dict:
    return {
        "index": str(index),
        "blob": "0x" + blob.hex(),
        "kzg_commitment": "0x" + commitment(blob).hex(),
        "kzg_proof": "0x" + bytes(48).hex(),
    }


def test_node_source_returns_a_transactions_blobs_in_order(chain: RpcChain) -> None:
    market = Market.deploy(chain, chain.new_account(10**22))
    task, (do, _) = open_submit(market, 1)
    words = random_words(5_000)
    (receipt,) = market.submit_blob_update(task, 0, words, do)
    blobs = words_to_blobs(words)
    hashes = [versioned_hash(commitment(b)) for b in blobs]
    source = NodeBlobSource(chain)
    assert source.blobs(receipt.tx_hash, receipt.block, hashes) == blobs
    # a transaction the node has no list for: blob by blob, None where it has none
    unknown = "0x" + "00" * 32
    assert source.blobs(unknown, receipt.block, [hashes[1], b"\x01" * 32]) == [blobs[1], None]


def test_beacon_source_reads_sidecars_of_the_blocks_slot(chain: RpcChain, beacon: str) -> None:
    market = Market.deploy(chain, chain.new_account(10**22))
    task, (do, _) = open_submit(market, 1)
    words = random_words(5_000)
    (receipt,) = market.submit_blob_update(task, 0, words, do)
    blobs = words_to_blobs(words)
    slot = (chain.block_timestamp(receipt.block) - GENESIS_TIME) // SECONDS_PER_SLOT
    other = words_to_blobs([1, 2, 3])[0]
    # the slot's sidecars in another order, with another transaction's blob among them
    FakeBeacon.sidecars[slot] = [sidecar(0, other), sidecar(1, blobs[1]), sidecar(2, blobs[0])]
    source = BeaconBlobSource(beacon, chain)
    hashes = [versioned_hash(commitment(b)) for b in blobs]
    assert source.blobs(receipt.tx_hash, receipt.block, hashes) == blobs
    assert f"/eth/v1/beacon/blob_sidecars/{slot}" in FakeBeacon.requested

    # the market reads a blob task's updates through it
    reader = Market(chain, market.address, blob_source=source)
    (submission,) = reader.submissions(task, 0).values()
    assert submission.chunks == (BlobChunk(hashes=tuple(hashes), blobs=tuple(blobs)),)

    # a slot the beacon node has nothing for (pruned): no blobs, recovery calls it missing
    FakeBeacon.sidecars.clear()
    assert source.blobs(receipt.tx_hash, receipt.block, hashes) == [None, None]
