"""Calldata and logs from `ContractCodec` are byte for byte what web3's contract objects make."""

from typing import Any

import eth_abi
from eth_utils import event_abi_to_log_topic
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3

from actors.chain.artifacts import COURT_SOURCE, MARKET_SOURCE, artifact_for
from actors.chain.codec import ContractCodec
from protocol.encoding import PackedWords, words_bytes

ABI = artifact_for(MARKET_SOURCE).abi
CODEC = ContractCodec(ABI)
MARKET = Web3().eth.contract(abi=ABI)
ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

uint256 = st.integers(0, 2**256 - 1)
addresses = st.binary(min_size=20, max_size=20).map(Web3.to_checksum_address)
bytes32 = st.binary(min_size=32, max_size=32)


COURT_ABI = artifact_for(COURT_SOURCE).abi
COURT_CODEC = ContractCodec(COURT_ABI)
COURT = Web3().eth.contract(abi=COURT_ABI)


def _same_as_web3(function: str, args: list[Any], codec=CODEC, contract=MARKET) -> None:
    assert "0x" + codec.encode_call(function, args).hex() == contract.encode_abi(function, args)


@given(task=uint256, round=uint256, index=uint256, words=st.lists(uint256, max_size=50))
def test_submit_calldata(task: int, round: int, index: int, words: list[int]) -> None:
    _same_as_web3("submit", [task, round, index, words])


@given(index=uint256, words=st.lists(uint256, min_size=1, max_size=50))
def test_submit_calldata_of_packed_words_is_the_same(index: int, words: list[int]) -> None:
    packed = PackedWords(words_bytes(words))
    assert CODEC.encode_call("submit", [1, 2, index, packed]) == CODEC.encode_call(
        "submit", [1, 2, index, words]
    )


@given(
    task=uint256,
    reveals=st.lists(
        st.tuples(
            addresses,
            st.integers(0, 1),
            bytes32,
            bytes32,
            st.lists(bytes32, max_size=8),
            st.binary(max_size=384),
        ),
        max_size=5,
    ),
)
def test_unmask_calldata(task: int, reveals: list[tuple]) -> None:
    """The court's unmask: (dealer, kind, share, blind, proof, points) per reveal."""
    args = [task, 0, [(a, k, s, b, list(p), pts) for a, k, s, b, p, pts in reveals]]
    _same_as_web3("unmask", args, COURT_CODEC, COURT)


@given(key=bytes32, endpoint=st.text(max_size=40), owner=addresses, value=uint256)
def test_register_and_config_calldata(key: bytes, endpoint: str, owner: str, value: int) -> None:
    _same_as_web3("register", [7, key, endpoint])
    config = (
        key,
        key,
        value,
        32,
        16,
        1,
        1_000,
        1,
        10,
        5,
        5,
        3,
        10**15,
        0,
        owner,
        60,
        60,
        60,
        60,
        1,
    )
    _same_as_web3("create_task", [config, endpoint.encode()])


def _log(event: str, topics: list[bytes], data: bytes) -> dict[str, Any]:
    (abi,) = [e for e in ABI if e.get("type") == "event" and e["name"] == event]
    return {
        "address": ADDRESS.lower(),
        "topics": ["0x" + t.hex() for t in [event_abi_to_log_topic(abi), *topics]],
        "data": "0x" + data.hex(),
        "blockNumber": "0x5",
        "logIndex": "0x1",
        "transactionHash": "0x" + "ab" * 32,
    }


@given(do=addresses, index=uint256, words=st.lists(uint256, max_size=50))
def test_update_chunk_log(do: str, index: int, words: list[int]) -> None:
    topics = [eth_abi.encode(["uint256"], [v]) for v in (3, 0)]
    topics.append(eth_abi.encode(["address"], [do]))
    log = _log("UpdateChunk", topics, eth_abi.encode(["uint256", "uint256[]"], [index, words]))
    (event,) = CODEC.decode_logs(ADDRESS, [log])
    assert event.name == "UpdateChunk"
    assert event.args == {
        "task": 3,
        "round": 0,
        "do": do,
        "chunk_index": index,
        "words": tuple(words),
    }
    assert (event.block, event.log_index, event.tx_hash) == (5, 1, "0x" + "ab" * 32)


@given(owner=addresses, token=addresses, key=bytes32)
def test_task_created_log_struct_with_address(owner: str, token: str, key: bytes) -> None:
    (abi,) = [e for e in ABI if e.get("type") == "event" and e["name"] == "TaskCreated"]
    (config_abi,) = [i for i in abi["inputs"] if not i["indexed"]]
    config_type = "(" + ",".join(c["type"] for c in config_abi["components"]) + ")"
    config = (key, key, 5, 32, 16, 1, 1_000, 1, 10, 5, 5, 3, 10**15, 0, token, 60, 60, 60, 60, 0)
    topics = [eth_abi.encode(["uint256"], [4]), eth_abi.encode(["address"], [owner])]
    data = eth_abi.encode([config_type], [config])
    (event,) = CODEC.decode_logs(ADDRESS, [_log("TaskCreated", topics, data)])
    assert event.args == {"task": 4, "owner": owner, "config": config}


@given(do=addresses, index=uint256, hashes=st.lists(bytes32, max_size=16))
def test_update_blobs_log(do: str, index: int, hashes: list[bytes]) -> None:
    topics = [eth_abi.encode(["uint256"], [v]) for v in (3, 0)]
    topics.append(eth_abi.encode(["address"], [do]))
    log = _log("UpdateBlobs", topics, eth_abi.encode(["uint256", "bytes32[]"], [index, hashes]))
    (event,) = CODEC.decode_logs(ADDRESS, [log])
    assert event.args == {
        "task": 3,
        "round": 0,
        "do": do,
        "chunk_index": index,
        "blob_hashes": tuple(hashes),
    }


def test_logs_of_other_contracts_are_skipped() -> None:
    log = _log("UpdateChunk", [], b"")
    log["address"] = "0x" + "00" * 20
    assert CODEC.decode_logs(ADDRESS, [log]) == []


@given(members=st.lists(addresses, max_size=6), phase=st.tuples(uint256, uint256, uint256))
def test_view_results_as_web3_returns_them(members: list[str], phase: tuple) -> None:
    encoded = eth_abi.encode(["address[]"], [members])
    assert CODEC.decode_result("members", encoded) == tuple(members)
    encoded = eth_abi.encode(["uint256", "uint256", "uint256"], list(phase))
    assert CODEC.decode_result("task_phase_of", encoded) == phase
    assert CODEC.decode_result("task_count", eth_abi.encode(["uint256"], [3])) == 3


one_word = st.one_of(
    st.tuples(st.just("uint256"), uint256),
    st.tuples(st.just("uint8"), st.integers(0, 255)),
    st.tuples(st.just("uint64"), st.integers(0, 2**64 - 1)),
    st.tuples(st.just("address"), addresses),
    st.tuples(st.just("bool"), st.booleans()),
    st.tuples(st.just("bytes32"), bytes32),
)


@given(values=st.lists(one_word, min_size=1, max_size=5))
def test_one_word_types_are_coded_as_eth_abi_codes_them(values: list[tuple[str, Any]]) -> None:
    from eth_abi.grammar import parse

    from actors.chain.codec import _decode, _encode

    types = [t for t, _ in values]
    args = [v for _, v in values]
    data = _encode(types, args)
    assert data == eth_abi.encode(types, args)
    expected = [v.lower() if isinstance(v, str) else v for v in eth_abi.decode(types, data)]
    assert _decode([(t, parse(t)) for t in types], data) == expected


def test_bad_one_word_values_are_refused() -> None:
    import pytest
    from eth_abi.exceptions import EncodingError

    from actors.chain.base import ChainError
    from actors.chain.codec import _decode, _encode

    for abi_type, value in [("uint8", 256), ("uint256", -1), ("address", "0x12"), ("bool", 2)]:
        with pytest.raises(EncodingError):  # left to eth_abi, which names it
            _encode([abi_type], [value])
    from eth_abi.grammar import parse

    for abi_type, word in [("uint8", 256), ("bool", 2), ("address", 1 << 160)]:
        with pytest.raises(ChainError):
            _decode([(abi_type, parse(abi_type))], word.to_bytes(32, "big"))
