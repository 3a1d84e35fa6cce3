"""The data owner's state machine for one (task, round): events in, actions out, no I/O.

This module owns a DO's rules for a round (DESIGN.md §3, ``docs/interfaces.md`` §4–§6): when to deal
and commit shares, which peer shares to accept, whom to mask against, when to submit, and which
single share of each peer to reveal. The actor feeds it chain phase changes, peer messages, clock
ticks and the locally trained update, and performs the actions it returns, in order.

States::

    REGISTERED --SharePhaseOpened--> SHARED (--SettleDue: complaints--> SHARED)
    SHARED --ComplaintsAgainstUs: answers--> FAILED (our answered shares are public: sit out)
    SHARED --(commitments, update, submit phase)--> SUBMITTED
    SUBMITTED --UnmaskPhaseOpened--> UNMASKED --GroupFinalized--> DONE
    any live state --GroupFailed / missed phase / chain says we are out--> FAILED
    any state --an event not in TRANSITIONS, or a protocol error--> ERROR

``TRANSITIONS`` is the whole table: the event types each state accepts, the handler, and the states
the handler may lead to. An event absent from the table raises ``LocalProtocolError``; chain
data that contradicts itself raises ``RemoteProtocolError`` (``protocol.chain_data``'s
``ChainDataError`` with a named reason for commitments and submitters that do not fit the group);
either way the machine moves to ``ERROR`` and keeps nothing of the failed event (handlers work on
a copy, committed on success).
A *peer* that misbehaves (a share that fails its commitment, a relayed or conflicting delivery) does
not stop the machine: the error is recorded in ``peer_errors`` against that peer.

Verifiable shares: every delivery carries the dealer's Pedersen commitments and a blind per
share, and both shares must lie on the committed polynomials with their blinds
(``protocol.shamir.verify_share``) besides proving against the dealt root. During SETTLE the actor
sends ``SettleDue`` with the chain's commitments and a cut-off; the machine answers with
``PostSettle`` naming every committed dealer it holds no valid shares from (its complaints), at
once if it holds everyone's, else when the last late delivery arrives or a ``DeadlineTick``
reaches the cut-off. The actor tells the machine
of complaints against us with ``ComplaintsAgainstUs``: it answers each (``PostAnswer``, the
holder's shares and blinds as dealt) and fails the round, because the court bars an answered
dealer from submitting (its answered shares are public; its peers reveal its mask key, never its
seed). The holder gets the answered shares back from chain data as an ordinary
``ShareReceived`` from that dealer, checked in full.

The one rule no sequence of events can break: for each dealer the machine reveals at most one
secret kind — the self-mask seed share of a member that submitted, or the mask-key share of one
that committed and did not submit — and it reveals nothing when fewer than ``t`` members submitted.

Progress: ``waiting()`` says what the machine needs next (the chain facts, in order, and the local
update) and the chain time at which a ``DeadlineTick`` matters. It is the one record of how far a
round got: an actor keeps none of its own, and a restored machine says what is owed.

Persistence: ``snapshot()`` is a msgspec msgpack record of everything the machine knows (its
secrets, the shares it dealt and holds, progress and the reveal ledger). An actor must persist it
after ``send`` returns and *before* performing the actions, then after a crash resume with
``RoundMachine.restore`` and redo the actions of the last event (``deliveries()``, ``commitment()``,
``chunks()`` rebuild them); the contract and peers treat repeats as no-ops or reject them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from protocol.chain_data import (
    ChainDataError,
    ChainDataReason,
    MemberCommitment,
    check_commitments,
    check_submitters,
)
from protocol.commitments import share_leaf, split_chunks, verify_proof
from protocol.constants import (
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    MAX_CHUNK_WORDS,
    MAX_GROUP,
    SECRET_KINDS,
)
from protocol.dealing import deal_round
from protocol.encoding import QuantConfig, check_headroom, pack_lanes
from protocol.errors import (
    CommitmentError,
    KeyAgreementError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from protocol.masks import MaskKeyPair, mask_update, pairwise_seed
from protocol.messages import ShareDelivery, address_bytes, address_int
from protocol.shamir import commitment_digest, verify_share

RandBytes = Callable[[int], bytes]
SNAPSHOT_VERSION: Final = 4  # 3: Pedersen blinds in deliveries; 4: settle wait, exposed


class State(StrEnum):
    """Where a DO stands in one round."""

    REGISTERED = "registered"  # registered for the task; waiting for the share phase
    SHARED = "shared"  # dealt and committed shares; collecting peers' shares, awaiting submit
    SUBMITTED = "submitted"  # masked update posted; waiting for the unmask phase
    UNMASKED = "unmasked"  # one share per committed member revealed; waiting for the result
    DONE = "done"  # the group finalized with our update in it (we are credited)
    FAILED = "failed"  # the round ended without our update in an aggregate
    ERROR = "error"  # a protocol error; the machine accepts nothing more


TERMINAL: Final = frozenset({State.DONE, State.FAILED, State.ERROR})


class Fact(StrEnum):
    """What a machine can be waiting for: a chain fact (the event that carries it), or the
    local update."""

    SHARE_PHASE = "share phase"  # SharePhaseOpened
    SETTLE = "settle"  # SettleDue: the standing commitments while SETTLE is open
    COMMITMENTS = "commitments"  # SharesCommittedOnChain: once SHARE and SETTLE closed
    SUBMIT_PHASE = "submit phase"  # SubmitPhaseOpened
    UPDATE = "local update"  # LocalUpdateReady (from the trainer, not the chain)
    UNMASK_PHASE = "unmask phase"  # UnmaskPhaseOpened: who submitted
    RESULT = "group result"  # GroupFinalized or GroupFailed


@dataclass(frozen=True, slots=True)
class Waiting:
    """What the machine needs next, in the order to feed it, and the chain time at which a
    ``DeadlineTick`` matters (None: no deadline of its own). An actor restored from a
    snapshot reads this instead of keeping its own record of what it fed."""

    facts: tuple[Fact, ...]
    deadline: int | None = None


# ---------------------------------------------------------------------------------------------
# Events (in)


@dataclass(frozen=True, slots=True)
class RoundOpened:
    """The round's fixed parameters, known once registration closed and groups are drawn."""

    task: int
    round: int
    members: tuple[int, ...]  # the group's member list, in on-chain order
    threshold: int
    me: int
    model_hash: bytes  # the public model this round trains (the update must be computed on it)
    quant: QuantConfig
    d: int
    chunk_words: int = MAX_CHUNK_WORDS


@dataclass(frozen=True, slots=True)
class SharePhaseOpened:
    """The chain entered SHARE: deal and commit now."""


@dataclass(frozen=True, slots=True)
class ShareReceived:
    """A decoded ``ShareDelivery`` that arrived on the authenticated channel of ``sender``."""

    sender: int
    delivery: ShareDelivery


@dataclass(frozen=True, slots=True)
class SettleDue:
    """In SETTLE: every member committed so far, as the chain holds it. The machine files its
    complaints at once if it holds every committed dealer's shares or ``cutoff`` is None;
    otherwise it waits for late deliveries until a ``DeadlineTick`` reaches ``cutoff`` (chain
    time; the court takes complaints only in SETTLE's first half)."""

    commitments: tuple[MemberCommitment, ...]
    cutoff: int | None = None


@dataclass(frozen=True, slots=True)
class ComplaintsAgainstUs:
    """In SETTLE, the holders whose complaints against us are open on the court, in the order
    to answer them."""

    holders: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SharesCommittedOnChain:
    """At SHARE close: every group member that committed, with its mask key and shares root."""

    commitments: tuple[MemberCommitment, ...]


@dataclass(frozen=True, slots=True, eq=False)
class LocalUpdateReady:
    """The trained update as ``d`` ring lanes (``protocol.weighting.encode_weighted`` clips,
    weights and quantizes it: the one path from floats to lanes)."""

    update: npt.NDArray[np.generic]


@dataclass(frozen=True, slots=True)
class SubmitPhaseOpened:
    """The chain entered SUBMIT; ``deadline`` is when it may be closed (chain time)."""

    deadline: int


@dataclass(frozen=True, slots=True)
class UnmaskPhaseOpened:
    """At SUBMIT close: the members whose submissions are complete on-chain."""

    submitted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GroupFinalized:
    """The group's ``t``-th unmask message landed; ``credited`` are its submitters."""

    credited: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GroupFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class DeadlineTick:
    """The chain's clock (block timestamp) reached ``now``: sent when it passes the machine's
    ``waiting().deadline`` (the end of a wait for late deliveries, the submit deadline)."""

    now: int


Event = (
    RoundOpened
    | SharePhaseOpened
    | ShareReceived
    | SettleDue
    | ComplaintsAgainstUs
    | SharesCommittedOnChain
    | LocalUpdateReady
    | SubmitPhaseOpened
    | UnmaskPhaseOpened
    | GroupFinalized
    | GroupFailed
    | DeadlineTick
)
EVENT_TYPES: Final = Event.__args__


# ---------------------------------------------------------------------------------------------
# Actions (out)


@dataclass(frozen=True, slots=True)
class SendShares:
    """Send ``delivery`` to group member ``to`` over its authenticated channel."""

    to: int
    delivery: ShareDelivery


@dataclass(frozen=True, slots=True)
class PostCommitment:
    """Call ``commit_shares(task, round, mask_public, shares_root, points)``."""

    mask_public: bytes
    shares_root: bytes
    points: bytes


@dataclass(frozen=True, slots=True)
class PostSettle:
    """Call the court's ``settle(task, round, accused)``: complaints against these dealers."""

    accused: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PostAnswer:
    """Call the court's ``answer(task, round, holder, [seed_share, seed_blind, key_share,
    key_blind], seed_proof, key_proof, points)``: publish ``holder``'s two shares and blinds to
    settle its complaint."""

    holder: int
    seed_share: bytes
    seed_blind: bytes
    key_share: bytes
    key_blind: bytes
    seed_proof: tuple[bytes, ...]
    key_proof: tuple[bytes, ...]
    points: bytes


@dataclass(frozen=True, slots=True)
class PostChunk:
    """Call ``submit(task, round, chunk_index, words)``; chunks go in index order."""

    chunk_index: int
    words: Sequence[int]  # the packed words (`PackedWords`: their calldata bytes)


@dataclass(frozen=True, slots=True)
class Reveal:
    """One entry of the court's ``unmask``: a share of ``dealer``'s secret ``kind``, its blind,
    its Merkle proof, and the dealer's points as delivered (the court checks them against the
    dealer's ``points_digest``, then the share with the Pedersen check)."""

    dealer: int
    kind: int
    share: bytes
    blind: bytes
    proof: tuple[bytes, ...]
    points: bytes


@dataclass(frozen=True, slots=True)
class PostUnmask:
    """Call the court's ``unmask(task, round, reveals)``: one entry per committed member, in
    member order."""

    reveals: tuple[Reveal, ...]


@dataclass(frozen=True, slots=True)
class Done:
    """Our update is in the group's aggregate; nothing more to do this round."""


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


Action = (
    SendShares | PostCommitment | PostSettle | PostAnswer | PostChunk | PostUnmask | Done | Failed
)


# ---------------------------------------------------------------------------------------------
# The persisted record: the machine's whole memory, and the snapshot schema.
# msgpack carries at most 64-bit integers, so addresses are stored as 20 big-endian bytes.


class _Commitment(msgspec.Struct, frozen=True):
    member: bytes
    mask_public: bytes
    shares_root: bytes
    points_digest: bytes


class _PeerError(msgspec.Struct, frozen=True):
    peer: bytes
    kind: str
    message: str


class _Revealed(msgspec.Struct, frozen=True):
    dealer: bytes
    kind: int


class _Record(msgspec.Struct, kw_only=True):
    version: int = SNAPSHOT_VERSION
    state: State = State.REGISTERED
    failure: str | None = None
    # RoundOpened
    opened: bool = False
    task: int = 0
    round: int = 0
    members: list[bytes] = []
    threshold: int = 0
    me: bytes = b""
    model_hash: bytes = b""
    lane_bits: int = 0
    scale_bits: int = 0
    clip_norm: float = 0.0
    d: int = 0
    chunk_words: int = MAX_CHUNK_WORDS
    # set when the submit phase opened
    submit_deadline: int | None = None
    # our secrets and what we dealt (one delivery per member, ours included)
    self_seed: bytes | None = None
    mask_secret: bytes | None = None
    dealt: list[ShareDelivery] = []
    # what we hold: at most one delivery per dealer, each consistent with its own proofs and,
    # once the commitments are known, with the dealer's on-chain root and key
    held: list[ShareDelivery] = []
    committed: list[_Commitment] | None = None
    # SETTLE: whether we filed our complaints, and against whom; while we wait for late
    # deliveries, the commitments SETTLE found and the chain time we wait until
    settled: bool = False
    accused: list[bytes] = []
    settle_due: list[_Commitment] | None = None
    settle_cutoff: int | None = None
    # our shares were made public to answer complaints: out of the round, answering on
    exposed: bool = False
    update: bytes | None = None  # quantized ring vector, little-endian lanes
    update_apart: bool = False  # a snapshot that left the update out (`snapshot(update=False)`)
    submitted: bool = False  # the masked update went out (only then may `chunks()` redo it)
    revealed: list[_Revealed] = []
    peer_errors: list[_PeerError] = []

    def copy(self) -> _Record:
        # A deep copy through the snapshot codec: handlers mutate the copy freely, and the
        # codec is exercised on every event, not only when an actor persists.
        return _decode_record(msgspec.msgpack.encode(self))

    @property
    def quant(self) -> QuantConfig:
        return QuantConfig(self.lane_bits, self.scale_bits, self.clip_norm)

    @property
    def member_ints(self) -> tuple[int, ...]:
        return tuple(address_int(m) for m in self.members)

    @property
    def me_int(self) -> int:
        return address_int(self.me)

    def commitments(self) -> dict[int, _Commitment]:
        return {address_int(c.member): c for c in self.committed or ()}

    def held_from(self, dealer: int) -> ShareDelivery | None:
        return next((h for h in self.held if address_int(h.dealer) == dealer), None)


_record_decoder = msgspec.msgpack.Decoder(_Record)


def _decode_record(data: bytes) -> _Record:
    return _record_decoder.decode(data)


_PEER_ERROR_TYPES: Final[dict[str, type[RemoteProtocolError]]] = {
    "CommitmentError": CommitmentError,
    "KeyAgreementError": KeyAgreementError,
    "RemoteProtocolError": RemoteProtocolError,
}


# ---------------------------------------------------------------------------------------------
# Handlers: each takes the working copy of the record and the event, mutates the copy, and
# returns the actions. They raise ProtocolError for anything that must stop the machine.


def _fail(rec: _Record, reason: str) -> list[Action]:
    rec.state = State.FAILED
    rec.failure = reason
    return [Failed(reason)]


def _require_opened(rec: _Record) -> None:
    if not rec.opened:
        raise LocalProtocolError("the round has not been opened (RoundOpened comes first)")


def _open_round(rec: _Record, ev: RoundOpened, randbytes: RandBytes) -> list[Action]:
    if rec.opened:
        raise LocalProtocolError("the round is already open")
    members = tuple(ev.members)
    if len(set(members)) != len(members) or not 2 <= len(members) <= MAX_GROUP:
        raise LocalProtocolError(f"a group is 2..{MAX_GROUP} distinct members")
    if ev.me not in members:
        raise LocalProtocolError("this DO is not a member of the group")
    if not 2 <= ev.threshold <= len(members):
        raise LocalProtocolError(f"threshold must be in [2, {len(members)}], got {ev.threshold}")
    # Messages carry task and round as uint64 (protocol.messages).
    if not 1 <= ev.task < 2**64 or not 0 <= ev.round < 2**64:
        raise LocalProtocolError("task must be in [1, 2**64) and round in [0, 2**64)")
    if not isinstance(ev.d, int) or ev.d < 1:
        raise LocalProtocolError(f"d must be a positive integer, got {ev.d!r}")
    if not 1 <= ev.chunk_words <= MAX_CHUNK_WORDS:
        raise LocalProtocolError(f"chunk_words must be in [1, {MAX_CHUNK_WORDS}]")
    if not isinstance(ev.model_hash, bytes) or len(ev.model_hash) != 32:
        raise LocalProtocolError("model_hash is 32 bytes")
    # A group sum that can wrap would be silently wrong: refuse such a task up front.
    check_headroom(ev.quant, len(members))
    rec.opened = True
    rec.task, rec.round = ev.task, ev.round
    rec.members = [address_bytes(m) for m in members]
    rec.threshold = ev.threshold
    rec.me = address_bytes(ev.me)
    rec.model_hash = ev.model_hash
    rec.lane_bits, rec.scale_bits = ev.quant.lane_bits, ev.quant.scale_bits
    rec.clip_norm = ev.quant.clip_norm
    rec.d, rec.chunk_words = ev.d, ev.chunk_words
    return []


def _open_share_phase(rec: _Record, ev: SharePhaseOpened, randbytes: RandBytes) -> list[Action]:
    _require_opened(rec)
    members = rec.member_ints
    me = rec.me_int
    dealing = deal_round(rec.task, rec.round, me, members, rec.threshold, randbytes)
    keys, dealt, points = dealing.keys, dealing.tree, dealing.points
    deliveries = [
        ShareDelivery(
            task=rec.task,
            round=rec.round,
            dealer=rec.me,
            holder=address_bytes(holder),
            seed_share=dealing.seed.shares[p],
            seed_blind=dealing.seed.blinds[p],
            key_share=dealing.key.shares[p],
            key_blind=dealing.key.blinds[p],
            mask_public=keys.public,
            shares_root=dealt.root,
            seed_proof=tuple(dealt.proof(p, KIND_SELF_SEED)),
            key_proof=tuple(dealt.proof(p, KIND_MASK_KEY)),
            points=points,
        )
        for p, holder in enumerate(members)
    ]
    rec.self_seed, rec.mask_secret = dealing.self_seed, keys.secret
    rec.dealt = deliveries
    # Our own shares are held like a peer's; they are what we reveal about ourselves.
    rec.held.append(deliveries[members.index(me)])
    rec.state = State.SHARED
    # Shares go out before the commitment, so a dealer that committed has tried to deliver.
    return [*_deliveries(rec), PostCommitment(keys.public, dealt.root, points)]


def _deliveries(rec: _Record) -> list[SendShares]:
    me = rec.me_int
    return [SendShares(address_int(d.holder), d) for d in rec.dealt if address_int(d.holder) != me]


def _delivery_problem(
    rec: _Record, sender: int, d: ShareDelivery, *, verified: bool = False
) -> ProtocolError | None:
    """Why a delivery from ``sender`` cannot be held, or None if it can (``verified``: its
    Pedersen check already passed on receipt, only the comparisons with the chain are left)."""
    members, me = rec.member_ints, rec.me_int
    dealer = address_int(d.dealer)
    if sender not in members or sender == me:
        return RemoteProtocolError("shares from a DO outside the group")
    if dealer != sender:
        return RemoteProtocolError("a delivery must come from its dealer's own channel")
    if address_int(d.holder) != me or (d.task, d.round) != (rec.task, rec.round):
        return RemoteProtocolError("a delivery for another holder, task or round")
    for kind in SECRET_KINDS:
        leaf = share_leaf(rec.task, rec.round, dealer, me, kind, d.share(kind), d.blind(kind))
        if not verify_proof(leaf, d.proof(kind), d.shares_root):
            return CommitmentError(f"share of kind {kind} does not verify under the dealt root")
    if len(d.points) != 2 * rec.threshold * 64:
        return CommitmentError(f"{len(d.points)} bytes of commitments, t = {rec.threshold}")
    if not verified:
        x = members.index(me) + 1
        for kind in SECRET_KINDS:
            if not verify_share(x, d.share(kind), d.blind(kind), d.polynomial(kind), rec.threshold):
                return CommitmentError(f"share of kind {kind} is off the committed polynomial")
    if rec.committed is not None:
        onchain = rec.commitments().get(dealer)
        if onchain is None:
            return RemoteProtocolError("shares from a member that did not commit")
        if _as_committed(d) != (onchain.shares_root, onchain.mask_public, onchain.points_digest):
            return CommitmentError("delivery does not match the dealer's on-chain commitment")
    held = rec.held_from(dealer)
    if held is not None and held != d:
        return RemoteProtocolError("conflicting deliveries from one dealer")
    return None


def _as_committed(d: ShareDelivery) -> tuple[bytes, bytes, bytes]:
    """What the dealer of ``d`` must have committed on-chain: root, mask key, points digest."""
    return (d.shares_root, d.mask_public, commitment_digest(d.points))


def _settle(rec: _Record, ev: SettleDue, randbytes: RandBytes) -> list[Action]:
    if rec.settled or rec.settle_due is not None:
        raise LocalProtocolError("complaints are filed once per round")
    check_commitments(rec.member_ints, ev.commitments)
    rec.settle_due = [
        _Commitment(address_bytes(c.member), c.mask_public, c.shares_root, c.points_digest)
        for c in ev.commitments
    ]
    if ev.cutoff is None or not _unheld_dealers(rec):
        return _settle_now(rec)
    rec.settle_cutoff = ev.cutoff  # late deliveries may still come: wait for them until then
    return []


def _unheld_dealers(rec: _Record) -> list[int]:
    """The committed dealers (SETTLE's view) whose matching shares we do not hold."""
    me = rec.me_int
    accused: list[int] = []
    onchain = {address_int(c.member): c for c in rec.settle_due or ()}
    for dealer in rec.member_ints:
        if dealer == me or dealer not in onchain:
            continue
        c = onchain[dealer]
        held = rec.held_from(dealer)
        if held is None or _as_committed(held) != (c.shares_root, c.mask_public, c.points_digest):
            accused.append(dealer)
    return accused


def _settle_now(rec: _Record) -> list[Action]:
    rec.settled, rec.settle_cutoff = True, None
    if all(address_int(c.member) != rec.me_int for c in rec.settle_due or ()):
        # only a committed member may complain; without our commitment the round is lost anyway
        return []
    accused = _unheld_dealers(rec)
    rec.accused = [address_bytes(a) for a in accused]
    return [PostSettle(tuple(accused))]


def _settle_waiting(rec: _Record) -> bool:
    return not rec.settled and rec.settle_cutoff is not None


def _record_peer_error(rec: _Record, peer: int, error: ProtocolError) -> None:
    # The first error a peer caused is the one worth reporting; later ones add nothing.
    if all(address_int(e.peer) != peer for e in rec.peer_errors):
        rec.peer_errors.append(_PeerError(address_bytes(peer), type(error).__name__, str(error)))


def _receive_share(rec: _Record, ev: ShareReceived, randbytes: RandBytes) -> list[Action]:
    _require_opened(rec)
    if not isinstance(ev.delivery, ShareDelivery):
        raise LocalProtocolError("ShareReceived carries a decoded ShareDelivery")
    problem = _delivery_problem(rec, ev.sender, ev.delivery)
    if problem is not None:
        _record_peer_error(rec, ev.sender, problem)
    elif rec.held_from(ev.sender) is None:
        rec.held.append(ev.delivery)
        if _settle_waiting(rec) and not _unheld_dealers(rec):
            return _settle_now(rec)  # the last late delivery SETTLE waited for
    return []


def _ignore_late_share(rec: _Record, ev: ShareReceived, randbytes: RandBytes) -> list[Action]:
    # After unmasking a share changes nothing; a peer's slow delivery is not our caller's fault.
    return []


def _missed_share_phase(rec: _Record, ev: Event, randbytes: RandBytes) -> list[Action]:
    return _fail(rec, f"{type(ev).__name__} before this DO dealt its shares: share phase missed")


def _commitments_known(
    rec: _Record, ev: SharesCommittedOnChain, randbytes: RandBytes
) -> list[Action]:
    if rec.committed is not None:
        raise LocalProtocolError("the on-chain commitments are already known")
    rec.settle_cutoff = None  # SETTLE is over: no more waiting for late deliveries
    members, me = rec.member_ints, rec.me_int
    seen = check_commitments(members, ev.commitments)
    rec.committed = [
        _Commitment(address_bytes(c.member), c.mask_public, c.shares_root, c.points_digest)
        for m in members
        for c in ev.commitments
        if c.member == m
    ]
    mine = rec.commitments().get(me)
    if mine is None:
        return _fail(rec, "our share commitment is not on-chain")
    keys = MaskKeyPair.from_secret(_secret(rec.mask_secret))
    if (mine.shares_root, mine.mask_public, mine.points_digest) != _as_committed(rec.dealt[0]):
        raise RemoteProtocolError("the chain holds a commitment for us that we did not make")
    if len(rec.committed) < rec.threshold:
        # The group can never reach t submitters; submitting would only spend gas.
        return _fail(rec, f"only {len(rec.committed)} members committed, threshold {rec.threshold}")
    # A committed key we cannot agree with (malformed, low order) makes masking impossible for
    # every honest member alike: the peer's fault, and the group's end, not our machine's crash.
    unusable: list[int] = []
    for member, c in rec.commitments().items():
        if member == me:
            continue
        try:
            pairwise_seed(keys.secret, c.mask_public, rec.task, rec.round, me, member)
        except KeyAgreementError as exc:
            _record_peer_error(rec, member, exc)
            unusable.append(member)
    if unusable:
        names = ", ".join(f"{m:#042x}" for m in unusable)
        return _fail(rec, f"unusable mask public keys on-chain from {names}")
    # Re-check what we hold against the chain: drop deliveries of members that did not commit,
    # and of dealers whose delivered root or key is not the one they committed.
    kept: list[ShareDelivery] = []
    for held in rec.held:
        dealer = address_int(held.dealer)
        if dealer == me:
            kept.append(held)
            continue
        problem = _delivery_problem(rec, dealer, held, verified=True) if dealer in seen else None
        if problem is not None:
            _record_peer_error(rec, dealer, problem)
        elif dealer in seen:
            kept.append(held)
    rec.held = kept
    return _try_submit(rec)


def _update_ready(rec: _Record, ev: LocalUpdateReady, randbytes: RandBytes) -> list[Action]:
    _require_opened(rec)
    if rec.update is not None:
        raise LocalProtocolError("the local update was already given")
    quant = rec.quant
    arr = np.asarray(ev.update)
    if arr.shape != (rec.d,):
        raise LocalProtocolError(f"the update must have shape ({rec.d},), got {arr.shape}")
    if arr.dtype != quant.ring_dtype:
        raise LocalProtocolError(
            f"the update is {np.dtype(quant.ring_dtype)} ring lanes, got {arr.dtype}"
        )
    rec.update = arr.astype(np.dtype(quant.ring_dtype).newbyteorder("<")).tobytes()
    return _try_submit(rec)


def _open_submit_phase(rec: _Record, ev: SubmitPhaseOpened, randbytes: RandBytes) -> list[Action]:
    if rec.submit_deadline is not None:
        raise LocalProtocolError("the submit phase is already open")
    rec.submit_deadline = ev.deadline
    return _try_submit(rec)


def _try_submit(rec: _Record) -> list[Action]:
    """Submit once the three preconditions hold, whatever order they arrived in."""
    if rec.committed is None or rec.update is None or rec.submit_deadline is None:
        return []
    rec.state = State.SUBMITTED
    rec.submitted = True
    return _chunks(rec)


def _masked(rec: _Record) -> np.ndarray:
    quant = rec.quant
    me = rec.me_int
    x = np.frombuffer(_secret(rec.update), dtype=np.dtype(quant.ring_dtype).newbyteorder("<"))
    # Pairwise masks towards exactly the members that committed on-chain: the set every other
    # submitter and every reader of the chain uses too, so the masks cancel or get cancelled.
    peers = {m: c.mask_public for m, c in rec.commitments().items() if m != me}
    return mask_update(
        x.astype(quant.ring_dtype),
        self_seed=_secret(rec.self_seed),
        my_keys=MaskKeyPair.from_secret(_secret(rec.mask_secret)),
        my_addr=me,
        peers=peers,
        task=rec.task,
        round=rec.round,
        lane_bits=quant.lane_bits,
    )


def _chunks(rec: _Record) -> list[Action]:
    words = pack_lanes(_masked(rec), rec.lane_bits)
    return [PostChunk(i, chunk) for i, chunk in enumerate(split_chunks(words, rec.chunk_words))]


def _not_submitted(rec: _Record, ev: UnmaskPhaseOpened, randbytes: RandBytes) -> list[Action]:
    return _fail(rec, "the unmask phase opened before this DO submitted")


def _open_unmask_phase(rec: _Record, ev: UnmaskPhaseOpened, randbytes: RandBytes) -> list[Action]:
    committed = rec.commitments()
    submitted = check_submitters(committed.keys(), tuple(ev.submitted))
    me = rec.me_int
    if me not in submitted:
        return _fail(rec, "our submission is not complete on-chain")
    if len(submitted) < rec.threshold:
        # The privacy floor: with fewer than t submitters no aggregate may appear, so reveal none.
        return _fail(rec, f"only {len(submitted)} members submitted, threshold {rec.threshold}")
    reveals: list[Reveal] = []
    missing: list[int] = []
    for dealer in rec.member_ints:
        if dealer not in committed:
            continue
        kind = KIND_SELF_SEED if dealer in submitted else KIND_MASK_KEY
        held = rec.held_from(dealer)
        if held is None:
            missing.append(dealer)
            continue
        reveals.append(_reveal(held, kind))
    if missing:
        # The contract wants one entry per committed member; without a valid share of each we
        # cannot unmask at all, and revealing a subset would only leak to no purpose.
        names = ", ".join(f"{m:#042x}" for m in missing)
        return _fail(rec, f"no valid shares from committed dealers {names}: cannot unmask")
    _record_reveals(rec, reveals, submitted)
    rec.state = State.UNMASKED
    return [PostUnmask(tuple(reveals))]


def _reveal(held: ShareDelivery, kind: int) -> Reveal:
    return Reveal(
        address_int(held.dealer),
        kind,
        held.share(kind),
        held.blind(kind),
        tuple(held.proof(kind)),
        held.points,
    )


def _record_reveals(rec: _Record, reveals: list[Reveal], submitted: tuple[int, ...]) -> None:
    """The never-both guard, checked against the persisted ledger before anything is revealed."""
    ledger = {(address_int(r.dealer), r.kind) for r in rec.revealed}
    for r in reveals:
        other = KIND_MASK_KEY if r.kind == KIND_SELF_SEED else KIND_SELF_SEED
        if (r.dealer, other) in ledger:
            raise LocalProtocolError(f"refusing to reveal both secrets of {r.dealer:#042x}")
        if r.kind == KIND_MASK_KEY and r.dealer in submitted:
            raise LocalProtocolError(f"refusing to reveal the mask key of submitter {r.dealer:#x}")
    rec.revealed.extend(
        _Revealed(address_bytes(r.dealer), r.kind)
        for r in reveals
        if (r.dealer, r.kind) not in ledger
    )


def _answer(rec: _Record, holder: int) -> PostAnswer | None:
    for d in rec.dealt:
        if address_int(d.holder) == holder:
            return PostAnswer(
                holder,
                d.seed_share,
                d.seed_blind,
                d.key_share,
                d.key_blind,
                d.seed_proof,
                d.key_proof,
                d.points,
            )
    return None


def _complaints_against_us(
    rec: _Record, ev: ComplaintsAgainstUs, randbytes: RandBytes
) -> list[Action]:
    holders = tuple(ev.holders)
    if not holders:
        raise LocalProtocolError("ComplaintsAgainstUs names at least one complaining holder")
    me = rec.me_int
    if len(set(holders)) != len(holders):
        raise ChainDataError(ChainDataReason.DUPLICATE, "a holder complained twice")
    for holder in holders:
        if holder not in rec.member_ints or holder == me:
            # the court takes complaints only from the dealer's other group members
            raise ChainDataError(ChainDataReason.NOT_MEMBER, f"a complaint from {holder:#x}")
    answers: list[Action] = [a for h in holders if (a := _answer(rec, h)) is not None]
    rec.exposed = True
    return [
        *answers,
        *_fail(
            rec,
            f"answered {len(answers)} complaints: our shares for those holders are public, so "
            "the court bars our submission and we sit the round out (peers reveal our mask key)",
        ),
    ]


def _finalized(rec: _Record, ev: GroupFinalized, randbytes: RandBytes) -> list[Action]:
    if rec.opened and rec.me_int in ev.credited:
        if rec.state not in (State.SUBMITTED, State.UNMASKED):
            raise RemoteProtocolError("the chain credits us for an update we never submitted")
        rec.state = State.DONE
        return [Done()]
    return _fail(rec, "the group finalized without our update")


def _group_failed(rec: _Record, ev: GroupFailed, randbytes: RandBytes) -> list[Action]:
    return _fail(rec, f"group failed: {ev.reason}")


def _tick(rec: _Record, ev: DeadlineTick, randbytes: RandBytes) -> list[Action]:
    # Two deadlines are ours to act on: the end of SETTLE's wait for late deliveries (file the
    # complaints we have), and the submit phase passing while we still wait for our update or
    # for the commitments. Every other phase end arrives as a chain event.
    if _settle_waiting(rec) and ev.now >= (rec.settle_cutoff or 0):
        return _settle_now(rec)
    if (
        rec.state == State.SHARED
        and rec.submit_deadline is not None
        and ev.now >= rec.submit_deadline
    ):
        return _fail(rec, "the submit deadline passed before this DO could submit")
    return []


def _secret(value: bytes | None) -> bytes:
    if value is None:
        raise LocalProtocolError("a secret the machine should hold is missing")
    return value


# ---------------------------------------------------------------------------------------------
# The transition table: (state, event type) -> handler and the states it may lead to.


@dataclass(frozen=True, slots=True)
class Transition:
    handler: Callable[[_Record, object, RandBytes], list[Action]]
    targets: frozenset[State]


def _t(handler: Callable[..., list[Action]], *targets: State) -> Transition:
    return Transition(handler, frozenset(targets))


_R, _S, _U, _M = State.REGISTERED, State.SHARED, State.SUBMITTED, State.UNMASKED
_DONE, _FAILED = State.DONE, State.FAILED

TRANSITIONS: Final[Mapping[tuple[State, type], Transition]] = {
    (_R, RoundOpened): _t(_open_round, _R),
    (_R, SharePhaseOpened): _t(_open_share_phase, _S),
    (_R, ShareReceived): _t(_receive_share, _R),
    (_R, LocalUpdateReady): _t(_update_ready, _R),
    (_R, SettleDue): _t(_missed_share_phase, _FAILED),
    (_R, SharesCommittedOnChain): _t(_missed_share_phase, _FAILED),
    (_R, SubmitPhaseOpened): _t(_missed_share_phase, _FAILED),
    (_R, UnmaskPhaseOpened): _t(_missed_share_phase, _FAILED),
    (_R, GroupFinalized): _t(_finalized, _FAILED),
    (_R, GroupFailed): _t(_group_failed, _FAILED),
    (_S, ShareReceived): _t(_receive_share, _S),
    (_S, SettleDue): _t(_settle, _S),
    (_S, ComplaintsAgainstUs): _t(_complaints_against_us, _FAILED),
    (_S, SharesCommittedOnChain): _t(_commitments_known, _S, _U, _FAILED),
    (_S, LocalUpdateReady): _t(_update_ready, _S, _U),
    (_S, SubmitPhaseOpened): _t(_open_submit_phase, _S, _U),
    (_S, UnmaskPhaseOpened): _t(_not_submitted, _FAILED),
    (_S, GroupFinalized): _t(_finalized, _FAILED),
    (_S, GroupFailed): _t(_group_failed, _FAILED),
    (_S, DeadlineTick): _t(_tick, _S, _FAILED),
    (_U, ShareReceived): _t(_receive_share, _U),
    (_U, UnmaskPhaseOpened): _t(_open_unmask_phase, _M, _FAILED),
    (_U, GroupFinalized): _t(_finalized, _DONE, _FAILED),
    (_U, GroupFailed): _t(_group_failed, _FAILED),
    (_M, ShareReceived): _t(_ignore_late_share, _M),
    (_M, GroupFinalized): _t(_finalized, _DONE, _FAILED),
    (_M, GroupFailed): _t(_group_failed, _FAILED),
}


# ---------------------------------------------------------------------------------------------
# The machine


class RoundMachine:
    """One DO's machine for one (task, round). Feed events with ``send``; perform what it returns.

    ``randbytes`` (e.g. ``secrets.token_bytes``) is the only source of randomness: the round's
    mask key pair, self-mask seed and quantization noise all come from it.
    """

    __slots__ = ("_randbytes", "_record")

    def __init__(self, randbytes: RandBytes) -> None:
        self._randbytes = randbytes
        self._record = _Record()

    # -- driving --------------------------------------------------------------------------

    def send(self, event: Event) -> list[Action]:
        """Apply ``event``; return the actions to perform, in order.

        Raises ``LocalProtocolError`` for an event the current state does not accept (or bad
        local input) and ``RemoteProtocolError`` for chain data that contradicts itself; either
        way the machine is then in ``ERROR`` and the event left no other trace.
        """
        transition = TRANSITIONS.get((self.state, type(event)))
        try:
            if transition is None:
                raise LocalProtocolError(
                    f"{type(event).__name__} is not allowed in state {self.state.name}"
                )
            work = self._record.copy()
            actions = transition.handler(work, event, self._randbytes)
            if work.state not in transition.targets:
                raise LocalProtocolError(
                    f"internal: {type(event).__name__} led {self.state.name} to {work.state.name}"
                )
        except Exception as exc:
            # Any error, ours or a peer's, ends the machine: a half-known round must not go on.
            if self._record.state != State.ERROR:
                self._record.state = State.ERROR
                self._record.failure = f"{type(exc).__name__}: {exc}"
            raise
        self._record = work
        return actions

    # -- what an actor reads ---------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._record.state

    @property
    def opened(self) -> RoundOpened | None:
        """The round's parameters (what to train on, how to encode), once ``RoundOpened`` came."""
        rec = self._record
        if not rec.opened:
            return None
        return RoundOpened(
            task=rec.task,
            round=rec.round,
            members=rec.member_ints,
            threshold=rec.threshold,
            me=rec.me_int,
            model_hash=rec.model_hash,
            quant=rec.quant,
            d=rec.d,
            chunk_words=rec.chunk_words,
        )

    def waiting(self) -> Waiting:
        """What the machine needs next (the facts to feed, in order) and the chain time at
        which a ``DeadlineTick`` matters: the one record of a round's progress."""
        rec, state = self._record, self._record.state
        facts: list[Fact] = []
        deadline = None
        if state is State.REGISTERED:
            facts.append(Fact.SHARE_PHASE)
        elif state is State.SHARED:
            if not rec.settled and rec.committed is None:
                if rec.settle_due is None:
                    facts.append(Fact.SETTLE)
                deadline = rec.settle_cutoff  # waiting for late deliveries until then
            if rec.committed is None:
                facts.append(Fact.COMMITMENTS)
            if rec.submit_deadline is None:
                facts.append(Fact.SUBMIT_PHASE)
            elif deadline is None:
                deadline = rec.submit_deadline
        elif state is State.SUBMITTED:
            facts.append(Fact.UNMASK_PHASE)
        elif state is State.UNMASKED:
            facts.append(Fact.RESULT)
        if state in (State.REGISTERED, State.SHARED) and rec.update is None:
            facts.append(Fact.UPDATE)
        return Waiting(tuple(facts), deadline)

    @property
    def exposed(self) -> bool:
        """Whether we answered complaints (our shares for those holders are public): the round
        is lost to us, but later complaints of the same SETTLE still want answers."""
        return self._record.exposed

    @property
    def failure(self) -> str | None:
        """Why the machine is FAILED or in ERROR."""
        return self._record.failure

    @property
    def peer_errors(self) -> dict[int, RemoteProtocolError]:
        """The first protocol error each misbehaving peer caused (e.g. a share failing its root)."""
        return {
            address_int(e.peer): _PEER_ERROR_TYPES.get(e.kind, RemoteProtocolError)(e.message)
            for e in self._record.peer_errors
        }

    @property
    def mask_public(self) -> bytes | None:
        """This round's mask public key, once dealt."""
        secret = self._record.mask_secret
        return None if secret is None else MaskKeyPair.from_secret(secret).public

    @property
    def dealers_held(self) -> frozenset[int]:
        """Dealers (ourselves included) whose shares we hold and consider valid."""
        return frozenset(address_int(h.dealer) for h in self._record.held)

    @property
    def revealed(self) -> frozenset[tuple[int, int]]:
        """The reveal ledger: ``(dealer, kind)`` pairs this machine has ever put in an unmask."""
        return frozenset((address_int(r.dealer), r.kind) for r in self._record.revealed)

    # -- redoing the last actions after a crash ---------------------------------------------

    def deliveries(self) -> list[SendShares]:
        """The share deliveries to peers (empty before the share phase)."""
        return _deliveries(self._record)

    def commitment(self) -> PostCommitment | None:
        """The commitment to post (None before the share phase)."""
        rec = self._record
        if rec.mask_secret is None or not rec.dealt:
            return None
        return PostCommitment(
            MaskKeyPair.from_secret(rec.mask_secret).public,
            rec.dealt[0].shares_root,
            rec.dealt[0].points,
        )

    def settlement(self) -> PostSettle | None:
        """The complaints already decided (None before ``SettleDue``): redone after a crash."""
        rec = self._record
        if not rec.settled:
            return None
        return PostSettle(tuple(address_int(a) for a in rec.accused))

    def answer(self, holder: int) -> PostAnswer | None:
        """What settles ``holder``'s complaint against us: its two shares and blinds, proofs and
        our commitments, exactly as dealt (None if we dealt nothing to ``holder``). Reading it
        changes nothing; ``ComplaintsAgainstUs`` is what answers and sits the round out."""
        return _answer(self._record, holder)

    def chunks(self) -> list[PostChunk]:
        """The masked update's chunks (empty unless the machine has submitted: a machine that
        failed before, e.g. after answering complaints, never yields them)."""
        if not self._record.submitted:
            return []
        return [a for a in _chunks(self._record) if isinstance(a, PostChunk)]

    def unmask(self) -> PostUnmask | None:
        """The unmask message already decided (None unless the machine has unmasked).

        Rebuilt from the persisted reveal ledger, never decided anew: a restarted actor posts
        exactly the shares the machine chose before the crash.
        """
        rec = self._record
        if self.state not in (State.UNMASKED, State.DONE) or not rec.revealed:
            return None
        chosen = {address_int(r.dealer): r.kind for r in rec.revealed}
        reveals = []
        for dealer in rec.member_ints:
            if dealer in chosen:
                held = rec.held_from(dealer)
                if held is None:
                    raise LocalProtocolError(f"a revealed dealer's shares are gone: {dealer:#x}")
                reveals.append(_reveal(held, chosen[dealer]))
        return PostUnmask(tuple(reveals))

    # -- persistence -----------------------------------------------------------------------

    def snapshot(self, *, update: bool = True) -> bytes:
        """Everything the machine knows, as msgpack (contains secrets: store it privately).

        Once in, the local update (``d`` lanes: nearly all of a snapshot's bytes) never changes.
        An actor that saves after every event may leave it out (``update=False``), persist
        ``update_bytes`` once, and give it back to ``restore``.
        """
        rec = self._record
        if update or rec.update is None:
            return msgspec.msgpack.encode(rec)
        return msgspec.msgpack.encode(msgspec.structs.replace(rec, update=None, update_apart=True))

    @property
    def update_bytes(self) -> bytes | None:
        """The quantized local update as the snapshot stores it (None before it is in)."""
        return self._record.update

    @classmethod
    def restore(
        cls, data: bytes, randbytes: RandBytes, *, update: bytes | None = None
    ) -> RoundMachine:
        """A machine continuing exactly where ``snapshot()`` left off; ``update`` is the
        ``update_bytes`` saved apart when the snapshot was taken with ``update=False``."""
        try:
            record = _decode_record(data)
        except msgspec.MsgspecError as exc:
            raise LocalProtocolError(f"not a round snapshot: {exc}") from exc
        if record.version != SNAPSHOT_VERSION:
            raise LocalProtocolError(f"unknown round snapshot version {record.version}")
        if record.update_apart:
            if update is None:
                raise LocalProtocolError("the snapshot's update was saved apart and is missing")
            expected = record.d * record.lane_bits // 8
            if len(update) != expected:
                raise LocalProtocolError(
                    f"the update saved apart has {len(update)} bytes, the round's has {expected}"
                )
            record.update, record.update_apart = update, False
        elif update is not None and update != record.update:
            raise LocalProtocolError("an update given for a snapshot that keeps its own")
        machine = cls(randbytes)
        machine._record = record
        return machine
