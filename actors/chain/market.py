"""The market contract as the actors use it: typed calls, views and event readers.

A thin facade over one `Chain` backend and one deployed `DataMarket`: every entry point of the
contract as a method (the caller passed as `sender`), the views an actor needs, and readers that
turn events into the plain values `protocol/` consumes (masked words, revealed shares, model
bytes), each record through `protocol.chain_data`'s strict decode step. Every receipt is kept,
so reports can sum gas per entry point.

A blob task's updates come back through a blob source (actors.chain.blob_sources): the node's
own blob store by default on a node, a beacon node when given one; the embedded chain has none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from eth_utils import keccak

from actors.chain.artifacts import COURT_SOURCE, DESK_SOURCE, MARKET_SOURCE
from actors.chain.base import Chain, Event, Receipt, TxRecord, calldata_words, post_chunks
from actors.chain.blob_sources import BlobSource, NodeBlobSource
from actors.chain.delivery import DeliveryClient
from actors.chain.rpc_backend import RpcChain
from protocol import chain_data
from protocol.blobs import MAX_BLOBS_PER_TX, blob_chunks, words_to_blobs
from protocol.chain_data import BlobChunk, RevealedShare, Submission
from protocol.commitments import (
    model_chunks,
    model_digest,
    published_model_digest,
    split_chunks,
)
from protocol.constants import (
    DATA_PATH_EVENT,
    MAX_CHUNK_WORDS,
    MAX_ENDPOINT,
    MAX_SPEC_BYTES,
    PHASE_DRAW,
    STATUS_SUBMITTED,
)
from protocol.encoding import QuantConfig
from protocol.errors import ConfigError, RemoteProtocolError
from protocol.spec import NO_SPEC_HASH

ETH = "0x0000000000000000000000000000000000000000"
# a cold credit write plus the group bookkeeping per submitter, with room to spare
_CREDIT_GAS = 40_000


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskConfig:
    """A task's configuration, field for field (and in the same order) the contract's
    `TaskConfig` struct. `sample_cap`: the most samples one data owner counts for in the secure
    sum; `spec_hash`: keccak256 of the spec bytes `create_task` publishes (none by default)."""

    model_hash: bytes
    spec_hash: bytes = NO_SPEC_HASH
    d: int
    lane_bits: int
    scale_bits: int
    clip_norm_micro: int
    sample_cap: int = 2_000
    rounds: int
    max_dos: int
    min_dos: int
    group_size: int
    threshold: int
    reward_per_do: int
    bond: int = 0
    token: str = ETH
    register_duration: int = 3_600
    share_duration: int = 3_600
    submit_duration: int = 3_600
    unmask_duration: int = 3_600
    data_path: int = DATA_PATH_EVENT

    @property
    def escrow(self) -> int:
        """What `create_task` must escrow: reward x max_dos x rounds."""
        return self.reward_per_do * self.max_dos * self.rounds

    @property
    def clip_norm(self) -> float:
        return self.clip_norm_micro / 1e6

    @property
    def quant(self) -> QuantConfig:
        """How the task's updates map into the ring (the one place a config makes one)."""
        return QuantConfig(self.lane_bits, self.scale_bits, self.clip_norm)

    @classmethod
    def from_chain(cls, values: Sequence[Any]) -> TaskConfig:
        names = [f.name for f in fields(cls)]
        return cls(**dict(zip(names, values, strict=True)))

    def as_args(self) -> tuple[Any, ...]:
        return astuple(self)


@dataclass(frozen=True, slots=True)
class PhaseInfo:
    phase: int
    round: int
    deadline: int


class Market(DeliveryClient):
    """One deployed DataMarket on one chain, with the SharesCourt and the DeliveryDesk it is
    bound to (the desk's calls: `DeliveryClient`); `blob_source` reads blob tasks' updates back
    (the node's own store when the chain is a node and none is given)."""

    def __init__(
        self,
        chain: Chain,
        address: str,
        *,
        source: Path = MARKET_SOURCE,
        blob_source: BlobSource | None = None,
    ) -> None:
        self.chain = chain
        self.address = address
        self.receipts: list[Receipt] = []
        if blob_source is None and isinstance(chain, RpcChain):
            blob_source = NodeBlobSource(chain)
        self.blob_source = blob_source
        chain.attach(source, address)
        self.court = chain.call(address, "COURT", ())
        chain.attach(COURT_SOURCE, self.court)
        self.desk = chain.call(address, "DESK", ())
        chain.attach(DESK_SOURCE, self.desk)

    @classmethod
    def deploy(
        cls,
        chain: Chain,
        sender: str,
        *,
        source: Path = MARKET_SOURCE,
        blob_source: BlobSource | None = None,
    ) -> Market:
        """Deploy a court and a desk, then the market that binds them (three transactions)."""
        court = chain.deploy(COURT_SOURCE, [], sender)
        desk = chain.deploy(DESK_SOURCE, [], sender)
        address = chain.deploy(source, [court, desk], sender)
        return cls(chain, address, source=source, blob_source=blob_source)

    # transactions

    def _send(
        self,
        function: str,
        args: Sequence[Any],
        sender: str,
        value: int = 0,
        gas_extra: int = 0,
        blobs: Sequence[bytes] = (),
        to: str | None = None,
    ) -> Receipt:
        receipt = self.chain.transact(
            to or self.address, function, args, sender, value, gas_extra, blobs=blobs
        )
        self.receipts.append(receipt)
        return receipt

    def create_task(
        self, config: TaskConfig, sender: str, spec: bytes = b""
    ) -> tuple[int, Receipt]:
        """Create a task escrowing its whole reward and publishing `spec` (the task spec's
        canonical bytes, keccak256 `config.spec_hash`); return its id. A spec over
        MAX_SPEC_BYTES is refused here: the market's ABI decoder would revert it with no
        reason."""
        if len(spec) > MAX_SPEC_BYTES:
            raise ConfigError(f"the spec is {len(spec)} bytes; the market takes {MAX_SPEC_BYTES}")
        value = config.escrow if config.token == ETH else 0
        receipt = self._send("create_task", [config.as_args(), spec], sender, value)
        (created,) = [e for e in receipt.events if e.name == "TaskCreated"]
        return created.args["task"], receipt

    def publish_model(self, task: int, round: int, data: bytes, sender: str) -> bytes:
        """Publish a round's model bytes in chunks; return their digest (the model hash)."""
        for chunk in model_chunks(data):
            self.publish_chunk(task, round, chunk, sender)
        return published_model_digest(data)

    def publish_chunk(self, task: int, round: int, chunk: bytes, sender: str) -> Receipt:
        """Publish the next chunk of a round's model bytes (`model_chunks` cuts them), at the
        desk."""
        return self._send("publish_model", [task, round, chunk], sender, to=self.desk)

    def publication(self, task: int, round: int) -> tuple[int, bytes]:
        """How far a round's model is published: its chunk count and running digest so far."""
        calls = [("model_chunks", (task, round)), ("model_digest", (task, round))]
        return tuple(self.chain.call_many(self.desk, calls))

    def register(
        self, task: int, channel_pk: bytes, endpoint: str, sender: str, bond: int = 0
    ) -> Receipt:
        """Join `task`. An endpoint over MAX_ENDPOINT UTF-8 bytes is refused here: the market's
        ABI decoder would revert it with no reason."""
        size = len(endpoint.encode())
        if size > MAX_ENDPOINT:
            raise ConfigError(f"endpoint is {size} bytes; the market takes at most {MAX_ENDPOINT}")
        return self._send("register", [task, channel_pk, endpoint], sender, bond)

    def advance(self, task: int, sender: str) -> Receipt:
        return self._send("advance", [task], sender)

    def close_registration(self, task: int, sender: str) -> Receipt:
        """Close REGISTER (it must be full or past its deadline) and draw the groups: DRAW, then
        the draw from the next block (a node mines one per transaction, as the embedded chain
        does). Returns the receipt of the last `advance`."""
        receipt = self.advance(task, sender)
        while self.phase(task).phase == PHASE_DRAW:
            receipt = self.advance(task, sender)
        return receipt

    def commit_shares(
        self, task: int, round: int, mask_pk: bytes, shares_root: bytes, points: bytes, sender: str
    ) -> Receipt:
        return self._send("commit_shares", [task, round, mask_pk, shares_root, points], sender)

    def settle(self, task: int, round: int, accused: int, sender: str, deposit: int = 0) -> Receipt:
        """File complaints (bit `p`: the member at group position `p`) with the court, with
        their deposit (`reward_per_do` each: `complaint_deposit`) as ETH for an ETH task."""
        value = deposit if self.config(task).token == ETH else 0
        return self._send("settle", [task, round, accused], sender, value, to=self.court)

    def complaint_deposit(self, task: int, complaints: int) -> int:
        """What `settle` costs for `complaints` complaints: `reward_per_do` each, paid to an
        answering dealer or refunded (`refund`) when the dealer never answers."""
        return complaints * self.config(task).reward_per_do

    def refund(self, task: int, round: int, dealer: str, holder: str, sender: str) -> Receipt:
        """Credit `holder` back the deposit of its complaint that `dealer` never answered."""
        return self._send("refund", [task, round, dealer, holder], sender, to=self.court)

    def answer(
        self,
        task: int,
        round: int,
        holder: str,
        shares: tuple[bytes, bytes, bytes, bytes],
        proofs: tuple[Sequence[bytes], Sequence[bytes]],
        points: bytes,
        sender: str,
    ) -> Receipt:
        """Settle `holder`'s complaint: its self-seed share and blind, mask-key share and blind,
        their proofs, and our points. The court then bars us from submitting this round."""
        args = [task, round, holder, list(shares), list(proofs[0]), list(proofs[1]), points]
        return self._send("answer", args, sender, to=self.court)

    def submit(
        self, task: int, round: int, chunk_index: int, words: Sequence[int], sender: str
    ) -> Receipt:
        return self._send("submit", [task, round, chunk_index, calldata_words(words)], sender)

    def submit_update(
        self,
        task: int,
        round: int,
        words: Sequence[int],
        sender: str,
        *,
        chunk_words: int = MAX_CHUNK_WORDS,
        start_chunk: int = 0,
    ) -> list[Receipt]:
        """Post a whole masked update in the fewest even chunks of at most `chunk_words` (as the
        round machine cuts them), from chunk `start_chunk` on."""
        chunks = split_chunks(words, chunk_words)
        return post_chunks(self.submit, task, round, chunks, sender, start_chunk)

    def submit_blobs(
        self, task: int, round: int, chunk_index: int, words: Sequence[int], sender: str
    ) -> Receipt:
        """Post a chunk of a blob task's update as the blobs carrying `words` (§3b): full blobs,
        except in the update's last chunk."""
        return self._send(
            "submit_blobs", [task, round, chunk_index], sender, blobs=words_to_blobs(words)
        )

    def submit_blob_update(
        self,
        task: int,
        round: int,
        words: Sequence[int],
        sender: str,
        *,
        blobs_per_tx: int = MAX_BLOBS_PER_TX,
        start_chunk: int = 0,
    ) -> list[Receipt]:
        """Post a blob task's whole update in transactions of `blobs_per_tx` blobs (the node's
        limit, 6 under Osaka), from chunk `start_chunk` on."""
        chunks = blob_chunks(words, blobs_per_tx)
        return post_chunks(self.submit_blobs, task, round, chunks, sender, start_chunk)

    def unmask(
        self,
        task: int,
        round: int,
        reveals: Sequence[tuple[str, int, bytes, bytes, Sequence[bytes], bytes]],
        sender: str,
    ) -> Receipt:
        """Reveal shares through the court: (dealer, kind, share, blind, proof, dealer's points)
        per committed member, in member order."""
        args = [
            (dealer, kind, share, blind, list(proof), points)
            for dealer, kind, share, blind, proof, points in reveals
        ]
        # the group's t-th message credits every submitter: room for that, whoever lands it
        extra = _CREDIT_GAS * len(args)
        return self._send("unmask", [task, round, args], sender, gas_extra=extra, to=self.court)

    def open_round(self, task: int, round: int, model_hash: bytes, sender: str) -> Receipt:
        return self._send("open_round", [task, round, model_hash], sender)

    def end_task(self, task: int, sender: str) -> Receipt:
        return self._send("end_task", [task], sender)

    def reclaim(self, task: int, sender: str) -> Receipt:
        return self._send("reclaim", [task], sender)

    def release_bond(self, task: int, do: str, sender: str) -> Receipt:
        return self._send("release_bond", [task, do], sender)

    def withdraw(self, sender: str, token: str = ETH) -> Receipt:
        return self._send("withdraw", [token], sender)

    def withdraw_court(self, sender: str, token: str = ETH) -> Receipt:
        """Withdraw what the court credited: complaint deposits paid to us or refunded."""
        return self._send("withdraw", [token], sender, to=self.court)

    # views

    def _view(self, function: str, *args: Any) -> Any:
        return self.chain.call(self.address, function, args)

    def views(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several views at once, by contract function name (one round trip to a node)."""
        return self.chain.call_many(self.address, calls)

    def poll(
        self, task: int, extra: Sequence[tuple[Any, ...]] = ()
    ) -> tuple[PhaseInfo, int, list[Any]]:
        """A task's phase, the chain's clock (`Chain.timestamp`) and the `extra` views, in one
        request: what a party polls while it waits for the next phase or a deadline, with what
        a stage needs on every poll riding along instead of costing a request of its own
        (`(function, args)`, or `(function, args, self.court)` for a view of the court)."""
        calls = [("task_phase_of", (task,)), *extra]
        values = self.chain.call_many(self.address, calls, clock=True)
        return PhaseInfo(*values[0]), values[-1], values[1:-1]

    def task_count(self) -> int:
        return self._view("task_count")

    def config(self, task: int) -> TaskConfig:
        return TaskConfig.from_chain(self._view("task_config", task))

    def owner(self, task: int) -> str:
        return self._view("task_owner", task)

    def phase(self, task: int) -> PhaseInfo:
        return PhaseInfo(*self._view("task_phase_of", task))

    def members(self, task: int) -> tuple[str, ...]:
        return self._view("members", task)

    def is_registered(self, task: int, do: str) -> bool:
        return self._view("is_registered", task, do)

    def channel_key(self, task: int, do: str) -> bytes:
        return self._view("channel_key", task, do)

    def endpoint(self, task: int, do: str) -> str:
        return self._view("endpoint", task, do)

    def group_count(self, task: int) -> int:
        return self._view("group_count", task)

    def group_of(self, task: int, do: str) -> int:
        return self._view("group_of", task, do)

    def group_members(self, task: int, group: int) -> tuple[str, ...]:
        return self._view("group_members", task, group)

    def status(self, task: int, round: int, do: str) -> int:
        return self._view("do_status", task, round, do)

    def mask_pk(self, task: int, round: int, do: str) -> bytes:
        return self._view("mask_pk", task, round, do)

    def shares_root(self, task: int, round: int, do: str) -> bytes:
        return self._view("shares_root", task, round, do)

    def points_digest(self, task: int, round: int, do: str) -> bytes:
        return self._view("points_digest", task, round, do)

    def settled(self, task: int, round: int, do: str) -> bool:
        return self.chain.call(self.court, "settled", (task, round, do))

    def round_settled(self, task: int, round: int) -> int:
        return self.chain.call(self.court, "round_settled", (task, round))

    def round_open_complaints(self, task: int, round: int) -> int:
        return self.chain.call(self.court, "round_open", (task, round))

    def open_against(self, task: int, round: int, dealer: str) -> int:
        return self.chain.call(self.court, "open_against", (task, round, dealer))

    def complaint_open(self, task: int, round: int, dealer: str, holder: str) -> bool:
        return self.chain.call(self.court, "complaint_open", (task, round, dealer, holder))

    def refunded(self, task: int, round: int, dealer: str, holder: str) -> bool:
        return self.chain.call(self.court, "refunded", (task, round, dealer, holder))

    def update_digest(self, task: int, round: int, do: str) -> bytes:
        return self._view("update_digest", task, round, do)

    def chunk_count(self, task: int, round: int, do: str) -> int:
        return self._view("chunk_count", task, round, do)

    def words_received(self, task: int, round: int, do: str) -> int:
        return self._view("words_received", task, round, do)

    def update_words(self, task: int) -> int:
        return self._view("update_words", task)

    def group_result(self, task: int, round: int, group: int) -> int:
        return self._view("group_result", task, round, group)

    def unmask_count(self, task: int, round: int, group: int) -> int:
        return self._view("unmask_count", task, round, group)

    def round_model_hash(self, task: int, round: int) -> bytes:
        return self._view("round_model_hash", task, round)

    def credits(self, account: str, token: str = ETH) -> int:
        return self._view("credits", token, account)

    def court_credits(self, account: str, token: str = ETH) -> int:
        return self.chain.call(self.court, "credits", (token, account))

    def is_credited(self, task: int, round: int, do: str) -> bool:
        return self._view("is_credited", task, round, do)

    def bond_of(self, task: int, do: str) -> int:
        return self._view("bond_of", task, do)

    def member_count(self, task: int) -> int:
        return self._view("member_count", task)

    def round_committed(self, task: int, round: int) -> int:
        return self._view("round_committed", task, round)

    def round_submitted(self, task: int, round: int) -> int:
        return self._view("round_submitted", task, round)

    def round_exposed(self, task: int, round: int) -> int:
        return self._view("round_exposed", task, round)

    def exposed(self, task: int, round: int, do: str) -> bool:
        return self._view("exposed", task, round, do)

    def reclaimable(self, task: int) -> int:
        return self._view("reclaimable", task)

    def escrow_remaining(self, task: int) -> int:
        return self._view("escrow_remaining", task)

    # event readers (everything below needs nothing but chain data)

    def model_bytes(self, task: int, round: int, expected: bytes | None = None) -> bytes:
        """A round's public model bytes, checked against the round's on-chain model hash
        (`expected`: that hash as the caller read it already)."""
        events = self.chain.events(self.desk, "ModelChunk", filters={"task": task, "round": round})
        chunks = sorted((e.args["index"], e.args["data"]) for e in events)
        digest = bytes(32)
        for _, data in chunks:
            digest = model_digest(digest, data)
        if expected is None:
            expected = self.round_model_hash(task, round)
        if expected == bytes(32) and round == 0:
            expected = self.config(task).model_hash  # round 0 before it opens
        if digest != expected:
            raise RemoteProtocolError("published model bytes do not match the round's model hash")
        return b"".join(data for _, data in chunks)

    def task_spec(self, task: int, expected: bytes | None = None) -> bytes:
        """A task's spec bytes from its `TaskSpec` event, checked against the config's
        `spec_hash` (`expected`: that hash as the caller read it already); empty for a task
        without a spec."""
        events = self.chain.events(self.address, "TaskSpec", filters={"task": task})
        if len(events) != 1:
            raise RemoteProtocolError(f"task {task} has {len(events)} TaskSpec events, not one")
        spec = events[0].args["spec"]
        if expected is None:
            expected = self.config(task).spec_hash
        if keccak(spec) != expected:
            raise RemoteProtocolError("published spec bytes do not match the task's spec_hash")
        return spec

    def submissions(self, task: int, round: int) -> dict[int, Submission]:
        """Every masked update of a round as its chunks and on-chain digest: words from
        `UpdateChunk`, blobs (from the blob source) behind `UpdateBlobs`.

        Only data owners with a complete update (status SUBMITTED or later) are listed; each is
        decoded by `protocol.chain_data.submission` (`ChainDataError` for chunks the contract
        cannot have accepted); recovery checks the blobs against their versioned hashes and the
        chunks against the digest.
        """
        where = {"task": task, "round": round}
        words = self.chain.events(self.address, "UpdateChunk", filters=where)
        blobs = self.chain.events(self.address, "UpdateBlobs", filters=where)
        complete = {
            do: self.status(task, round, do) >= STATUS_SUBMITTED
            for do in {e.args["do"] for e in (*words, *blobs)}
        }
        by_do: dict[str, list[tuple[int, tuple[int, ...] | BlobChunk]]] = defaultdict(list)
        for event in words:
            by_do[event.args["do"]].append((event.args["chunk_index"], event.args["words"]))
        for event in blobs:
            if not complete[event.args["do"]]:
                continue  # fetch no blob of an update that is not in any aggregate
            by_do[event.args["do"]].append((event.args["chunk_index"], self._blob_chunk(event)))
        return {
            chain_data.address(do): chain_data.submission(
                do, chunks, self.update_digest(task, round, do)
            )
            for do, chunks in by_do.items()
            if complete[do]
        }

    def _blob_chunk(self, event: Event) -> BlobChunk:
        """An `UpdateBlobs` chunk with the blobs the blob source has for it."""
        hashes = tuple(event.args["blob_hashes"])
        if self.blob_source is None:
            return BlobChunk(hashes=hashes, blobs=(None,) * len(hashes))
        return BlobChunk(hashes, tuple(self.blob_source.blobs(event.tx_hash, event.block, hashes)))

    def revealed_shares(self, task: int, round: int) -> list[RevealedShare]:
        """Every share revealed in a round's unmask messages (the court's `ShareRevealed`)."""
        events = self.chain.events(
            self.court, "ShareRevealed", filters={"task": task, "round": round}
        )
        return [
            chain_data.revealed_share(
                dealer=e.args["dealer"],
                holder=e.args["holder"],
                kind=e.args["kind"],
                share=e.args["share"],
                blind=e.args["blind"],
            )
            for e in events
        ]

    def complaints(self, task: int, round: int) -> list[tuple[str, str]]:
        """Every (dealer, holder) complaint filed in a round (from the court's `Complaint`)."""
        events = self.chain.events(self.court, "Complaint", filters={"task": task, "round": round})
        return [(e.args["dealer"], e.args["holder"]) for e in events]

    def answers(self, task: int, round: int) -> list[dict[str, Any]]:
        """Every answered complaint of a round: dealer, holder, both shares with their blinds,
        and their proofs."""
        events = self.chain.events(
            self.court, "ComplaintAnswered", filters={"task": task, "round": round}
        )
        return [dict(e.args) for e in events]

    def dealt_points(self, task: int, round: int) -> dict[str, bytes]:
        """Each committed dealer's Pedersen commitments (from `SharesCommitted`)."""
        events = self.chain.events(
            self.address, "SharesCommitted", filters={"task": task, "round": round}
        )
        return {e.args["do"]: e.args["points"] for e in events}

    def transactions(self, from_block: int = 0) -> list[TxRecord]:
        """Every mined transaction to the market, its court and its desk, in block order."""
        txs = self.chain.transactions(self.address, from_block)
        txs += self.chain.transactions(self.court, from_block)
        txs += self.chain.transactions(self.desk, from_block)
        return sorted(txs, key=lambda tx: tx.block)

    def gas_by_function(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for receipt in self.receipts:
            totals[receipt.function] += receipt.gas_used
        return dict(totals)
