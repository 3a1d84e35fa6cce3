"""A contract's calldata and logs, encoded and decoded straight from its ABI with eth_abi.

web3's contract objects validate and normalize every argument element by element, once to
estimate and once more to build the transaction, and decode a receipt by trying every event of
the ABI on every log: for a 2,921-word masked chunk that was ~0.3 s of client time per
transaction. Here a call is encoded once, a log is matched to its event by topic, and the one
large value type of the market, `uint256[]` (masked words), is packed and unpacked directly.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import eth_abi
from eth_abi.grammar import ABIType, TupleType, parse
from eth_utils import to_checksum_address
from eth_utils.abi import collapse_if_tuple, event_abi_to_log_topic, function_abi_to_4byte_selector

from actors.chain.base import ChainError, Event, normalise
from protocol.encoding import words_bytes
from protocol.errors import EncodingError

_WORDS = "uint256[]"
_WORD = 32
_MAX_WORD = 1 << 256


@dataclass(frozen=True, slots=True)
class _Function:
    selector: bytes
    types: tuple[str, ...]
    outputs: tuple[tuple[str, ABIType], ...]


@dataclass(frozen=True, slots=True)
class _EventAbi:
    name: str
    # (argument name, canonical type, parsed type, indexed) in declaration order
    inputs: tuple[tuple[str, str, ABIType, bool], ...]


class ContractCodec:
    """Encoder of one contract's calls and decoder of its logs."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self._functions: dict[str, _Function] = {}
        self._events: dict[bytes, _EventAbi] = {}
        for item in abi:
            if item.get("type") == "function":
                types = tuple(collapse_if_tuple(dict(i)) for i in item["inputs"])
                outputs = tuple(
                    (t, parse(t)) for t in (collapse_if_tuple(dict(o)) for o in item["outputs"])
                )
                self._functions[item["name"]] = _Function(
                    function_abi_to_4byte_selector(dict(item)), types, outputs
                )
            elif item.get("type") == "event" and not item.get("anonymous"):
                inputs = []
                for i in item["inputs"]:
                    abi_type = collapse_if_tuple(dict(i))
                    inputs.append((i["name"], abi_type, parse(abi_type), bool(i["indexed"])))
                self._events[event_abi_to_log_topic(dict(item))] = _EventAbi(
                    item["name"], tuple(inputs)
                )

    def encode_call(self, function: str, args: Sequence[Any]) -> bytes:
        """Selector and ABI-encoded arguments of a call to `function`."""
        spec = self._functions[function]
        if len(args) != len(spec.types):
            raise ChainError(f"{function} takes {len(spec.types)} arguments, got {len(args)}")
        return spec.selector + _encode(spec.types, args)

    def decode_result(self, function: str, data: bytes) -> Any:
        """A call's return data as web3 returns it: one value, a tuple of several, or None."""
        outputs = self._functions[function].outputs
        values = [
            normalise(_checksummed(parsed, value))
            for (_, parsed), value in zip(outputs, _decode(outputs, data), strict=True)
        ]
        if not values:
            return None
        return values[0] if len(values) == 1 else tuple(values)

    def topics(self, event: str, filters: Mapping[str, Any]) -> list[str | None]:
        """eth_getLogs topics selecting `event` with the given indexed argument values (an
        argument left out matches anything); filters on other arguments are for the caller."""
        (topic, spec) = next((t, e) for t, e in self._events.items() if e.name == event)
        topics: list[str | None] = ["0x" + topic.hex()]
        for name, abi_type, parsed, indexed in spec.inputs:
            if not indexed:
                continue
            value = filters.get(name)
            if value is None or parsed.is_dynamic:
                topics.append(None)
            else:
                topics.append("0x" + eth_abi.encode([abi_type], [value]).hex())
        while topics[-1] is None:
            topics.pop()
        return topics

    def decode_logs(self, address: str, logs: Iterable[Mapping[str, Any]]) -> list[Event]:
        """The contract's events among a receipt's raw JSON-RPC logs, in log order."""
        events = []
        for log in logs:
            topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
            spec = self._events.get(topics[0]) if topics else None
            if spec is None or log["address"].lower() != address.lower():
                continue
            events.append(
                Event(
                    name=spec.name,
                    args=_decode_event(spec, topics[1:], bytes.fromhex(log["data"][2:])),
                    block=int(log["blockNumber"], 16),
                    log_index=int(log["logIndex"], 16),
                    tx_hash=log["transactionHash"],
                )
            )
        return sorted(events, key=lambda e: e.log_index)


def _encode(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """ABI head/tail encoding of top-level arguments; `uint256[]` packed directly."""
    heads: list[bytes | None] = []
    tails: list[bytes] = []
    for abi_type, value in zip(types, values, strict=True):
        if abi_type == _WORDS:
            heads.append(None)
            tails.append(_pack_words(value))
        elif parse(abi_type).is_dynamic:
            heads.append(None)
            tails.append(eth_abi.encode([abi_type], [value])[_WORD:])  # drop its own offset
        else:
            word = _encode_word(abi_type, value)
            heads.append(word if word is not None else eth_abi.encode([abi_type], [value]))
    offset = sum(_WORD if h is None else len(h) for h in heads)
    head_parts, pending = [], iter(tails)
    for head in heads:
        if head is None:
            head_parts.append(offset.to_bytes(_WORD, "big"))
            offset += len(next(pending))
        else:
            head_parts.append(head)
    return b"".join(head_parts) + b"".join(tails)


# One-word static types, coded here directly: eth_abi's general path took ~0.1 ms a value,
# and a data owner's every read carries a few (task, round, address) and returns one.
_UINT_BITS = {f"uint{bits}": bits for bits in range(8, 257, 8)}
_WORD_TYPES = frozenset([*_UINT_BITS, "address", "bool", "bytes32"])


def _encode_word(abi_type: str, value: Any) -> bytes | None:
    """The word of a one-word static value, or None for a type left to eth_abi (which also
    names what is wrong with a bad value: anything unexpected here goes there)."""
    bits = _UINT_BITS.get(abi_type)
    if bits is not None:
        if type(value) is int and 0 <= value < 1 << bits:
            return value.to_bytes(_WORD, "big")
        return None
    if abi_type == "address":
        if isinstance(value, str) and len(value) == 42 and value[:2] in ("0x", "0X"):
            try:
                return bytes(12) + bytes.fromhex(value[2:])
            except ValueError:
                return None
        return None
    if abi_type == "bool":
        return (1 if value else 0).to_bytes(_WORD, "big") if type(value) is bool else None
    if abi_type == "bytes32":
        return bytes(value) if isinstance(value, bytes) and len(value) == _WORD else None
    return None


def _decode_word(abi_type: str, word: memoryview) -> Any:
    value = int.from_bytes(word, "big")
    bits = _UINT_BITS.get(abi_type)
    if bits is not None:
        if value >> bits:
            raise ChainError(f"a {abi_type} value does not fit its type")
        return value
    if abi_type == "address":
        if value >> 160:
            raise ChainError("an address word with non-zero padding")
        return "0x" + bytes(word[12:]).hex()
    if abi_type == "bool":
        if value > 1:
            raise ChainError("a bool word that is neither 0 nor 1")
        return value == 1
    return bytes(word)  # bytes32


def _pack_words(words: Sequence[int]) -> bytes:
    try:
        body = words_bytes(words)  # packed words are their body's bytes already
    except EncodingError as error:
        raise ChainError(f"uint256[] values: {error}") from None
    return len(words).to_bytes(_WORD, "big") + body


def _decode_event(spec: _EventAbi, topics: list[bytes], data: bytes) -> dict[str, Any]:
    body = [(t, p) for _, t, p, indexed in spec.inputs if not indexed]
    decoded = iter(_decode(body, data))
    topic_iter = iter(topics)
    args = {}
    for name, abi_type, parsed, indexed in spec.inputs:
        if indexed:
            topic = next(topic_iter)
            # a dynamic indexed value is only its hash: kept as those 32 bytes (as web3 does)
            value = topic if parsed.is_dynamic else eth_abi.decode([abi_type], topic)[0]
        else:
            value = next(decoded)
        # masked words are already a tuple of ints: no element-wise walk for them
        args[name] = value if abi_type == _WORDS else normalise(_checksummed(parsed, value))
    return args


def _decode(types: Sequence[tuple[str, ABIType]], data: bytes) -> list[Any]:
    """Decode top-level values; `uint256[]` unpacked directly, the rest through eth_abi."""
    if all(t != _WORDS for t, _ in types):
        if len(data) == _WORD * len(types) and all(t in _WORD_TYPES for t, _ in types):
            view = memoryview(data)
            return [
                _decode_word(t, view[i * _WORD : (i + 1) * _WORD]) for i, (t, _) in enumerate(types)
            ]
        return list(eth_abi.decode([t for t, _ in types], data))
    values, position = [], 0
    for abi_type, parsed in types:
        if parsed.is_dynamic:
            start = int.from_bytes(data[position : position + _WORD], "big")
            if abi_type == _WORDS:
                count = int.from_bytes(data[start : start + _WORD], "big")
                first = start + _WORD
                view = memoryview(data)
                values.append(
                    tuple(
                        [
                            int.from_bytes(view[i : i + _WORD], "big")
                            for i in range(first, first + count * _WORD, _WORD)
                        ]
                    )
                )
            else:
                framed = _WORD.to_bytes(_WORD, "big") + data[start:]
                values.append(eth_abi.decode([abi_type], framed)[0])
            position += _WORD
        else:
            size = _static_size(parsed)
            values.append(eth_abi.decode([abi_type], data[position : position + size])[0])
            position += size
    return values


def _static_size(parsed: ABIType) -> int:
    if isinstance(parsed, TupleType):
        size = sum(_static_size(c) for c in parsed.components)
    else:
        size = _WORD
    for dims in parsed.arrlist or ():
        size *= dims[0]
    return size


def _checksummed(parsed: ABIType, value: Any) -> Any:
    """Addresses (anywhere in a value) as checksummed strings, as web3 returns them."""
    if "address" not in parsed.to_type_str():
        return value
    if parsed.is_array:
        return tuple(_checksummed(parsed.item_type, v) for v in value)
    if isinstance(parsed, TupleType):
        return tuple(_checksummed(c, v) for c, v in zip(parsed.components, value, strict=True))
    return _checksum(value)


@functools.lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    # EIP-55 hashes the address (keccak): a market's few addresses come back in every read
    return to_checksum_address(address)


@functools.lru_cache(maxsize=1024)
def checksum(address: int) -> str:
    """A 160-bit address as its EIP-55 text. Cached: a keccak per call (a profile of the demo on
    anvil found checksumming its largest cost); bounded, since an unauthenticated handshake
    names the address it claims."""
    return to_checksum_address(address.to_bytes(20, "big"))
