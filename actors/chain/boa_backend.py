"""The embedded chain: titanoboa's in-process EVM.

No server, instant blocks. Used by the demo, the tests and the console. Every transaction goes
through `transact`, which keeps the decoded events in a log of its own, so `events()` can answer
like a node's `eth_getLogs`. Its gas figures come from py-evm with warm storage between calls:
use them for logic, never for gas claims (those come from anvil receipts).

It carries no blobs: titanoboa runs every call in a transaction context without blob hashes
(its BLOBHASH has nothing to read), so blob tasks need a node (anvil).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import boa
from boa.contracts.base_evm_contract import BoaError
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer
from eth_utils import keccak

from actors.chain import boa_precompiles
from actors.chain.base import (
    BlobsUnsupported,
    Event,
    Receipt,
    TransactionReverted,
    TxRecord,
    normalise,
)
from protocol.encoding import PackedWords


@cache
def _deployer(source: Path, mtime_ns: int) -> VyperDeployer:
    # keyed by mtime so an edited source recompiles within one process
    return boa.load_partial(str(source))


def deployer_for(source: Path) -> VyperDeployer:
    """Compile `source` once per process (and again only if the file changed)."""
    source = source.resolve()
    return _deployer(source, source.stat().st_mtime_ns)


def revert_reason(error: BoaError) -> str:
    """The revert string of a failed boa call ("module: rule"), or the VM error."""
    frame = error.stack_trace.last_frame if error.stack_trace else None
    reason = getattr(frame, "pretty_vm_reason", None)
    return str(reason) if reason else str(error).splitlines()[0]


class BoaChain:
    """The embedded titanoboa chain. One instance wraps one `boa.Env`."""

    name = "boa"

    def __init__(
        self,
        env: boa.Env | None = None,
        *,
        realtime: bool = False,
        rate: float = 1.0,
        cache_views: bool = False,
    ) -> None:
        self.env = env or boa.env
        boa_precompiles.install()  # ECMUL on integers: the court's share checks, 4 ms -> 0.1 ms
        self._contracts: dict[str, VyperContract] = {}
        self._log: list[tuple[str, Event]] = []  # (emitting contract, event)
        self._txs: list[tuple[str, TxRecord]] = []
        self._tx_count = 0
        # realtime: block time follows the wall clock, so phase deadlines hold in real seconds
        # as on a node with automine; otherwise time moves only with advance_time (tests).
        # rate: chain seconds per wall second (tests run 30 s phases, the contract's floor,
        # in a few wall seconds)
        self._rate = rate
        self._realtime_origin: tuple[float, int] | None = None
        if realtime:
            self._realtime_origin = (time.monotonic(), self.env.evm.patch.timestamp)
        # cache_views: a view's answer is kept until the state or the block changes, so the
        # same view asked again (ten data owners polling one task's phase) does not run the EVM
        # again. Only for an env that nothing but this object changes (the demo's): a
        # transaction sent to the env behind its back would leave stale answers.
        self._views: dict[tuple[Any, ...], Any] | None = {} if cache_views else None
        self._views_at: tuple[int, int] = (-1, -1)
        self._block_listeners: list[Callable[[], None]] = []

    def _sync_clock(self) -> None:
        if self._realtime_origin is None:
            return
        started, origin = self._realtime_origin
        now = origin + int((time.monotonic() - started) * self._rate)
        if now > self.env.evm.patch.timestamp:
            self.env.evm.patch.timestamp = now

    # accounts and contracts

    def new_account(self, funds_wei: int) -> str:
        address = str(self.env.generate_address())
        self._state_changed()
        self.env.set_balance(address, funds_wei)
        return address

    def deploy(self, source: Path, args: Sequence[Any], sender: str) -> str:
        self._state_changed()
        with boa.swap_env(self.env):
            contract = deployer_for(source).deploy(*args, sender=sender)
        address = str(contract.address)
        self._contracts[address] = contract
        return address

    def attach(self, source: Path, address: str) -> None:
        with boa.swap_env(self.env):
            self._contracts[str(address)] = deployer_for(source).at(address)

    def contract(self, address: str) -> VyperContract:
        """The boa contract object (for the console)."""
        return self._contracts[str(address)]

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
        if blobs:
            raise BlobsUnsupported("the embedded chain cannot carry blobs: use a node (anvil)")
        contract = self._contracts[str(address)]
        self._sync_clock()
        # boa's encoder takes plain lists for arrays
        args = [list(a) if isinstance(a, PackedWords) else a for a in args]
        started = time.perf_counter()
        try:
            getattr(contract, function)(*args, sender=sender, value=value)
        except BoaError as error:
            raise TransactionReverted(function, revert_reason(error)) from None
        finally:
            self._state_changed()
        computation = contract._computation
        self._tx_count += 1
        tx_hash = f"boa-{self._tx_count}"
        block = self.env.evm.patch.block_number
        events = tuple(
            self._record(entry, block, tx_hash) for entry in contract.get_logs(computation)
        )
        receipt = Receipt(
            function=function,
            tx_hash=tx_hash,
            gas_used=computation.get_gas_used(),
            block=block,
            timestamp=self.env.evm.patch.timestamp,
            seconds=time.perf_counter() - started,
            events=events,
        )
        names = [arg.name for arg in getattr(contract, function).func_t.arguments]
        record = TxRecord(
            function=function,
            args=dict(zip(names, (normalise(a) for a in args), strict=True)),
            sender=str(sender),
            gas_used=receipt.gas_used,
            block=block,
            success=True,
        )
        self._txs.append((str(address), record))
        # one transaction per block, like a node with automine; each block gets a hash of its
        # own (BLOCKHASH reads the last 256), so the group draw varies from block to block
        patch = self.env.evm.patch
        patch.prev_hashes = [keccak(b"boa block %d" % block), *list(patch.prev_hashes)[:255]]
        patch.block_number += 1
        self._new_block()
        return receipt

    def _record(self, entry: Any, block: int, tx_hash: str) -> Event:
        fields = entry._asdict()
        emitter = str(fields.pop("address", ""))
        event = Event(
            name=type(entry).__name__,
            args={key: normalise(value) for key, value in fields.items()},
            block=block,
            log_index=len(self._log),
            tx_hash=tx_hash,
        )
        self._log.append((emitter.lower(), event))
        return event

    def call(self, address: str, function: str, args: Sequence[Any] = ()) -> Any:
        contract = self._contracts[str(address)]
        self._sync_clock()
        views = self._views
        if views is not None:
            patch = self.env.evm.patch
            block = (patch.block_number, patch.timestamp)
            if block != self._views_at:
                views.clear()
                self._views_at = block
            key = (str(address), function, *args)
            try:
                if key in views:
                    return views[key]
            except TypeError:  # an unhashable argument (a list): asked as it is
                views = None
        try:
            value = normalise(getattr(contract, function)(*args))
        except BoaError as error:
            raise TransactionReverted(function, revert_reason(error)) from None
        if views is not None:
            views[key] = value  # (normalised: tuples, ints, bytes, str; nothing a caller alters)
        return value

    def _state_changed(self) -> None:
        if self._views is not None:
            self._views.clear()

    def call_many(
        self, address: str, calls: Sequence[tuple[Any, ...]], *, clock: bool = False
    ) -> list[Any]:
        results = [self.call(c[2] if len(c) > 2 else address, c[0], c[1]) for c in calls]
        return [*results, self.timestamp()] if clock else results

    def events(
        self, address: str, name: str, from_block: int = 0, filters: Mapping[str, Any] | None = None
    ) -> list[Event]:
        wanted = {key: normalise(value) for key, value in (filters or {}).items()}
        where = str(address).lower()
        return [
            event
            for emitter, event in self._log
            if emitter == where
            and event.name == name
            and event.block >= from_block
            and all(event.args.get(key) == value for key, value in wanted.items())
        ]

    def transactions(self, address: str, from_block: int = 0) -> list[TxRecord]:
        return [tx for to, tx in self._txs if to == str(address) and tx.block >= from_block]

    def balance(self, address: str) -> int:
        return self.env.get_balance(address)

    # time

    def timestamp(self) -> int:
        self._sync_clock()
        return self.env.evm.patch.timestamp

    def advance_time(self, seconds: int) -> None:
        self._state_changed()
        self._sync_clock()
        self.env.time_travel(seconds=seconds, block_delta=max(1, seconds))
        if self._realtime_origin is not None:
            started, origin = self._realtime_origin
            self._realtime_origin = (started, origin + seconds)
        self._new_block()

    def on_block(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every new block (a transaction, a time travel), in the thread
        that made it: a node's new-heads subscription, for the parties of this process."""
        self._block_listeners.append(listener)

    def _new_block(self) -> None:
        for listener in self._block_listeners:
            listener()

    def block_number(self) -> int:
        return self.env.evm.patch.block_number

    def close(self) -> None:
        self._contracts.clear()
