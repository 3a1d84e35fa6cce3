"""The chain interface every backend implements, and the values it returns.

Actors talk to contracts by function name and plain Python values; a backend turns that into
transactions (embedded EVM or JSON-RPC) and returns receipts with the gas used and the decoded
events. Values are normalised: addresses as checksummed strings, bytes as `bytes`, structs as
tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from protocol.encoding import PackedWords


class ChainError(Exception):
    """Base of every error a chain backend raises."""


class TransactionReverted(ChainError):
    """The contract refused a call; `reason` is its revert string ("module: rule")."""

    def __init__(self, function: str, reason: str) -> None:
        super().__init__(f"{function} reverted: {reason}")
        self.function = function
        self.reason = reason


class NodeUnavailable(ChainError):
    """The node did not answer (not started, crashed, or unreachable)."""


class BlobsUnsupported(ChainError):
    """The chain cannot carry EIP-4844 blobs (the embedded titanoboa EVM)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded contract event, ordered by (block, log_index)."""

    name: str
    args: Mapping[str, Any]
    block: int
    log_index: int
    tx_hash: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a mined transaction cost and emitted."""

    function: str
    tx_hash: str
    gas_used: int
    block: int
    timestamp: int
    seconds: float  # wall time from send to receipt
    events: Sequence[Event] = field(default=())  # in log order (a backend may decode lazily)
    blob_gas_used: int = 0  # EIP-4844 blob gas, charged apart from `gas_used`


@dataclass(frozen=True, slots=True)
class TxRecord:
    """A mined transaction to a contract, as any observer of the chain can read it."""

    function: str
    args: Mapping[str, Any]
    sender: str
    gas_used: int
    block: int
    success: bool


class Chain(Protocol):
    """One chain as the actors see it. Implemented by BoaChain and RpcChain."""

    name: str

    def new_account(self, funds_wei: int) -> str:
        """Create a funded account this chain object can sign for; return its address."""
        ...

    def deploy(self, source: Path, args: Sequence[Any], sender: str) -> str:
        """Compile (cached) and deploy a Vyper source; return the contract address."""
        ...

    def attach(self, source: Path, address: str) -> None:
        """Make a contract already deployed at `address` callable."""
        ...

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
        """Send a transaction and wait for its receipt; raise TransactionReverted on revert.

        `gas_extra` raises a node transaction's gas limit for calls whose cost can grow between
        estimate and inclusion (ignored by the embedded chain). `blobs` makes it an EIP-4844
        transaction carrying them (a chain that cannot raises BlobsUnsupported)."""
        ...

    def call(self, address: str, function: str, args: Sequence[Any] = ()) -> Any:
        """Read a view function."""
        ...

    def call_many(
        self, address: str, calls: Sequence[tuple[Any, ...]], *, clock: bool = False
    ) -> list[Any]:
        """Read several views (`(function, args)` each, or `(function, args, other)` for a view
        of another attached contract) at once, in order; with `clock`, the value of
        `timestamp()` follows them (a node answers all in one round trip)."""
        ...

    def events(
        self, address: str, name: str, from_block: int = 0, filters: Mapping[str, Any] | None = None
    ) -> list[Event]:
        """Every event `name` the contract emitted since `from_block`, in chain order."""
        ...

    def transactions(self, address: str, from_block: int = 0) -> list[TxRecord]:
        """Every mined transaction sent to `address` (gas reports from chain data alone)."""
        ...

    def balance(self, address: str) -> int: ...

    def timestamp(self) -> int:
        """The timestamp the next block will carry at the earliest (latest block's)."""
        ...

    def advance_time(self, seconds: int) -> None:
        """Move chain time forward (tests and demos drive deadlines with it)."""
        ...

    def block_number(self) -> int: ...

    def close(self) -> None: ...


def normalise(value: Any) -> Any:
    """Turn backend-specific return values into plain Python values.

    boa's `Address` is a checksummed `str` subclass and web3 returns checksummed strings, so
    `str()` is enough for addresses; `HexBytes` becomes `bytes`; lists and structs become tuples.
    """
    if isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list | tuple):
        return tuple(normalise(v) for v in value)
    return value


def calldata_words(words: Sequence[int]) -> Sequence[int]:
    """Words as a call sends them: packed words as their bytes, anything else as a list."""
    return words if isinstance(words, PackedWords) else list(words)


def post_chunks(
    post: Callable[[int, int, int, Any, str], Receipt],
    task: int,
    round: int,
    chunks: Sequence[Any],
    sender: str,
    start_chunk: int = 0,
) -> list[Receipt]:
    """A whole update, one transaction a chunk (`post(task, round, index, chunk, sender)`), from
    chunk `start_chunk` on: the event and blob routes, to the market or to the desk."""
    return [post(task, round, i, chunks[i], sender) for i in range(start_chunk, len(chunks))]
