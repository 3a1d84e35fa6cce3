"""`submit_blobs` (docs/interfaces.md §3b) on anvil: titanoboa runs calls in a transaction
context without blob hashes, so BLOBHASH and everything behind it is tested on a real node.

Every rule of the blob path, positive and negative, with the contract's reason; the data-path
config rule itself is in test_create_task.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import boa
import pytest

from actors.chain import BoaChain, TransactionReverted
from actors.chain.anvil import AnvilNode
from actors.chain.base import BlobsUnsupported
from actors.chain.market import Market, TaskConfig
from actors.chain.rpc_backend import RpcChain
from protocol.blobs import blob_chunks, commitment, versioned_hash, words_to_blobs
from protocol.commitments import chunk_digest, published_model_digest
from protocol.constants import (
    BLOB_WORDS,
    DATA_PATH_BLOB,
    DATA_PATH_EVENT,
    STATUS_COMMITTED,
    STATUS_SUBMITTED,
)
from protocol.dealing import deal_round
from protocol.masks import MaskKeyPair

pytestmark = pytest.mark.anvil

MODEL = b"test_submit_blobs: the public model"
# 32-bit lanes: 5,000 words, two blobs (the second one partly filled)
D = 40_000
WORDS = 5_000


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture(scope="module")
def chain(node: AnvilNode) -> RpcChain:
    return RpcChain(node.url, dev=True)


@pytest.fixture(scope="module")
def market(chain: RpcChain) -> Market:
    return Market.deploy(chain, chain.new_account(10**22))


def open_submit(market: Market, data_path: int) -> tuple[int, list[str]]:
    """A task of two data owners in one group, in SUBMIT; returns (task, data owners)."""
    chain = market.chain
    owner = chain.new_account(10**21)
    config = TaskConfig(
        model_hash=published_model_digest(MODEL),
        d=D,
        lane_bits=32,
        scale_bits=16,
        clip_norm_micro=1_000_000,
        rounds=1,
        max_dos=2,
        min_dos=2,
        group_size=2,
        threshold=2,
        reward_per_do=10**15,
        data_path=data_path,
    )
    task, _ = market.create_task(config, owner)
    market.publish_model(task, 0, MODEL, owner)
    dos = [chain.new_account(10**20) for _ in range(2)]
    for do in dos:
        market.register(task, MaskKeyPair.generate(os.urandom).public, "127.0.0.1:9", do)
    market.close_registration(task, owner)
    members = [int(m, 16) for m in market.group_members(task, 0)]
    for do in dos:
        dealing = deal_round(task, 0, int(do, 16), members, 2, os.urandom)
        market.commit_shares(task, 0, dealing.keys.public, dealing.tree.root, dealing.points, do)
    market.advance(task, owner)  # SETTLE: nobody complains, so it closes at once
    for do in dos:
        market.settle(task, 0, 0, do)
    market.advance(task, owner)
    return task, dos


def random_words(count: int) -> list[int]:
    return [int.from_bytes(os.urandom(32), "big") for _ in range(count)]


def reason_of(call) -> str:
    with pytest.raises(TransactionReverted) as info:
        call()
    return info.value.reason


def test_blob_chunks_fold_versioned_hashes_and_complete_the_update(market: Market) -> None:
    task, (do, _) = open_submit(market, DATA_PATH_BLOB)
    words = random_words(WORDS)
    first, second = blob_chunks(words, blobs_per_tx=1)
    assert len(first) == BLOB_WORDS and len(second) == WORDS - BLOB_WORDS

    receipt = market.submit_blobs(task, 0, 0, first, do)
    hashes = [versioned_hash(commitment(b)) for b in words_to_blobs(first)]
    (event,) = [e for e in receipt.events if e.name == "UpdateBlobs"]
    assert event.args["blob_hashes"] == tuple(hashes)
    assert event.args["chunk_index"] == 0
    assert receipt.blob_gas_used == 2**17
    assert market.status(task, 0, do) == STATUS_COMMITTED  # not all words are in
    assert market.chunk_count(task, 0, do) == 1
    digest = chunk_digest(bytes(32), [int.from_bytes(h, "big") for h in hashes])
    assert market.update_digest(task, 0, do) == digest

    receipt = market.submit_blobs(task, 0, 1, second, do)
    hashes = [versioned_hash(commitment(b)) for b in words_to_blobs(second)]
    digest = chunk_digest(digest, [int.from_bytes(h, "big") for h in hashes])
    # the last blob is not full: the chunk counts as the words still missing
    assert market.words_received(task, 0, do) == WORDS
    assert market.status(task, 0, do) == STATUS_SUBMITTED
    assert market.update_digest(task, 0, do) == digest
    (done,) = [e for e in receipt.events if e.name == "UpdateSubmitted"]
    assert done.args["digest"] == digest


def test_blobs_are_read_back_from_the_node(market: Market) -> None:
    task, (do, _) = open_submit(market, DATA_PATH_BLOB)
    words = random_words(WORDS)
    market.submit_blob_update(task, 0, words, do)
    (submission,) = market.submissions(task, 0).values()
    (chunk,) = submission.chunks
    assert chunk.blobs == tuple(words_to_blobs(words))


def test_one_transaction_costs_the_same_whatever_its_blobs_carry(market: Market) -> None:
    task, (small, large) = open_submit(market, DATA_PATH_BLOB)
    one = market.submit_blobs(task, 0, 0, random_words(1), small)
    full = market.submit_blobs(task, 0, 0, random_words(BLOB_WORDS), large)
    # same storage writes, same hashing: only the blob's content differs
    assert one.gas_used == full.gas_used


def test_an_event_task_refuses_blobs(market: Market) -> None:
    task, (do, _) = open_submit(market, DATA_PATH_EVENT)
    words = random_words(10)
    reason = reason_of(lambda: market.submit_blobs(task, 0, 0, words, do))
    assert reason == "rounds: not a blob task"


def test_a_blob_task_still_takes_words_in_events(market: Market) -> None:
    task, (do, _) = open_submit(market, DATA_PATH_BLOB)
    market.submit_update(task, 0, random_words(WORDS), do)
    assert market.status(task, 0, do) == STATUS_SUBMITTED


def test_a_chunk_without_blobs_is_empty(market: Market) -> None:
    task, (do, _) = open_submit(market, DATA_PATH_BLOB)
    reason = reason_of(lambda: market._send("submit_blobs", [task, 0, 0], do))
    assert reason == "rounds: empty chunk"


def test_blob_chunks_go_in_order(market: Market) -> None:
    task, (do, _) = open_submit(market, DATA_PATH_BLOB)
    reason = reason_of(lambda: market.submit_blobs(task, 0, 1, random_words(10), do))
    assert reason == "rounds: wrong chunk index"


def test_a_complete_update_takes_no_more_blobs(market: Market) -> None:
    task, (do, _) = open_submit(market, DATA_PATH_BLOB)
    market.submit_blob_update(task, 0, random_words(WORDS), do)
    reason = reason_of(lambda: market.submit_blobs(task, 0, 1, random_words(10), do))
    assert reason == "rounds: already submitted"


def test_only_committed_members_submit_blobs(market: Market) -> None:
    task, _ = open_submit(market, DATA_PATH_BLOB)
    stranger = market.chain.new_account(10**20)
    reason = reason_of(lambda: market.submit_blobs(task, 0, 0, random_words(10), stranger))
    assert reason == "rounds: not committed"


def test_blobs_only_in_the_submit_phase(market: Market) -> None:
    task, (do, _) = open_submit(market, DATA_PATH_BLOB)
    reason = reason_of(lambda: market.submit_blobs(task, 1, 0, random_words(10), do))
    assert reason == "rounds: wrong round"
    market.chain.advance_time(3_601)
    reason = reason_of(lambda: market.submit_blobs(task, 0, 0, random_words(10), do))
    assert reason == "rounds: deadline passed"


def test_the_public_node_path_estimates_blob_transactions(node: AnvilNode) -> None:
    chain = RpcChain(node.url, dev=True, gas_strategy="estimate")
    market = Market.deploy(chain, chain.new_account(10**22))
    task, (do, _) = open_submit(market, DATA_PATH_BLOB)
    reason = reason_of(lambda: market.submit_blobs(task, 0, 1, random_words(10), do))
    assert reason == "rounds: wrong chunk index"
    market.submit_blob_update(task, 0, random_words(WORDS), do)
    assert market.status(task, 0, do) == STATUS_SUBMITTED


def test_the_embedded_chain_carries_no_blobs() -> None:
    with boa.env.anchor():
        chain = BoaChain()
        owner = chain.new_account(10**22)
        market = Market.deploy(chain, owner)
        with pytest.raises(BlobsUnsupported):
            market.submit_blobs(1, 0, 0, [1, 2, 3], owner)
