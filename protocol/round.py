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

import msgspec

from protocol.chain_data import MemberCommitment
from protocol.errors import (
    LocalProtocolError,
    RemoteProtocolError,
)
from protocol.masks import MaskKeyPair
from protocol.messages import address_int
from protocol.round_messages import (
    EVENT_TYPES,
    TERMINAL,
    Action,
    ComplaintsAgainstUs,
    DeadlineTick,
    Done,
    Event,
    Fact,
    Failed,
    GroupFailed,
    GroupFinalized,
    LocalUpdateReady,
    PostAnswer,
    PostChunk,
    PostCommitment,
    PostSettle,
    PostUnmask,
    RandBytes,
    Reveal,
    RoundOpened,
    SendShares,
    SettleDue,
    SharePhaseOpened,
    ShareReceived,
    SharesCommittedOnChain,
    State,
    SubmitPhaseOpened,
    UnmaskPhaseOpened,
    Waiting,
)
from protocol.round_record import PEER_ERROR_TYPES, SNAPSHOT_VERSION, Record, decode_record
from protocol.round_rules import (
    TRANSITIONS,
    Transition,
    answer_to,
    deliveries_of,
    reveal_of,
    update_chunks,
)

# the machine's public vocabulary is re-exported here: actors import it from protocol.round
__all__ = [
    "EVENT_TYPES",
    "SNAPSHOT_VERSION",
    "TERMINAL",
    "TRANSITIONS",
    "Action",
    "ComplaintsAgainstUs",
    "DeadlineTick",
    "Done",
    "Event",
    "Fact",
    "Failed",
    "GroupFailed",
    "GroupFinalized",
    "LocalUpdateReady",
    "MemberCommitment",
    "PostAnswer",
    "PostChunk",
    "PostCommitment",
    "PostSettle",
    "PostUnmask",
    "RandBytes",
    "Reveal",
    "RoundMachine",
    "RoundOpened",
    "SendShares",
    "SettleDue",
    "SharePhaseOpened",
    "ShareReceived",
    "SharesCommittedOnChain",
    "State",
    "SubmitPhaseOpened",
    "Transition",
    "UnmaskPhaseOpened",
    "Waiting",
]


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
        self._record = Record()

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
            address_int(e.peer): PEER_ERROR_TYPES.get(e.kind, RemoteProtocolError)(e.message)
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
        return deliveries_of(self._record)

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
        return answer_to(self._record, holder)

    def chunks(self) -> list[PostChunk]:
        """The masked update's chunks (empty unless the machine has submitted: a machine that
        failed before, e.g. after answering complaints, never yields them)."""
        if not self._record.submitted:
            return []
        return [a for a in update_chunks(self._record) if isinstance(a, PostChunk)]

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
                reveals.append(reveal_of(held, chosen[dealer]))
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
            record = decode_record(data)
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
