"""The round machine's rules: its persisted record (the snapshot schema), one handler per
accepted (state, event), and ``TRANSITIONS``, the whole table (``protocol.round`` explains the
states and the one rule no sequence of events can break)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from protocol.chain_data import (
    ChainDataError,
    ChainDataReason,
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
from protocol.encoding import check_headroom, pack_lanes
from protocol.errors import (
    CommitmentError,
    KeyAgreementError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from protocol.masks import MaskKeyPair, mask_update, pairwise_seed
from protocol.messages import ShareDelivery, address_bytes, address_int
from protocol.round_messages import (
    Action,
    ComplaintsAgainstUs,
    DeadlineTick,
    Done,
    Event,
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
)
from protocol.round_record import (
    Commitment,
    PeerError,
    Record,
    Revealed,
)
from protocol.shamir import commitment_digest, verify_share

# ---------------------------------------------------------------------------------------------
# Handlers: each takes the working copy of the record and the event, mutates the copy, and
# returns the actions. They raise ProtocolError for anything that must stop the machine.


def _fail(rec: Record, reason: str) -> list[Action]:
    rec.state = State.FAILED
    rec.failure = reason
    return [Failed(reason)]


def _require_opened(rec: Record) -> None:
    if not rec.opened:
        raise LocalProtocolError("the round has not been opened (RoundOpened comes first)")


def _open_round(rec: Record, ev: RoundOpened, randbytes: RandBytes) -> list[Action]:
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


def _open_share_phase(rec: Record, ev: SharePhaseOpened, randbytes: RandBytes) -> list[Action]:
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
    return [*deliveries_of(rec), PostCommitment(keys.public, dealt.root, points)]


def deliveries_of(rec: Record) -> list[SendShares]:
    me = rec.me_int
    return [SendShares(address_int(d.holder), d) for d in rec.dealt if address_int(d.holder) != me]


def _delivery_problem(
    rec: Record, sender: int, d: ShareDelivery, *, verified: bool = False
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


def _settle(rec: Record, ev: SettleDue, randbytes: RandBytes) -> list[Action]:
    if rec.settled or rec.settle_due is not None:
        raise LocalProtocolError("complaints are filed once per round")
    check_commitments(rec.member_ints, ev.commitments)
    rec.settle_due = [
        Commitment(address_bytes(c.member), c.mask_public, c.shares_root, c.points_digest)
        for c in ev.commitments
    ]
    if ev.cutoff is None or not _unheld_dealers(rec):
        return _settle_now(rec)
    rec.settle_cutoff = ev.cutoff  # late deliveries may still come: wait for them until then
    return []


def _unheld_dealers(rec: Record) -> list[int]:
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


def _settle_now(rec: Record) -> list[Action]:
    rec.settled, rec.settle_cutoff = True, None
    if all(address_int(c.member) != rec.me_int for c in rec.settle_due or ()):
        # only a committed member may complain; without our commitment the round is lost anyway
        return []
    accused = _unheld_dealers(rec)
    rec.accused = [address_bytes(a) for a in accused]
    return [PostSettle(tuple(accused))]


def _settle_waiting(rec: Record) -> bool:
    return not rec.settled and rec.settle_cutoff is not None


def _record_peer_error(rec: Record, peer: int, error: ProtocolError) -> None:
    # The first error a peer caused is the one worth reporting; later ones add nothing.
    if all(address_int(e.peer) != peer for e in rec.peer_errors):
        rec.peer_errors.append(PeerError(address_bytes(peer), type(error).__name__, str(error)))


def _receive_share(rec: Record, ev: ShareReceived, randbytes: RandBytes) -> list[Action]:
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


def _ignore_late_share(rec: Record, ev: ShareReceived, randbytes: RandBytes) -> list[Action]:
    # After unmasking a share changes nothing; a peer's slow delivery is not our caller's fault.
    return []


def _missed_share_phase(rec: Record, ev: Event, randbytes: RandBytes) -> list[Action]:
    return _fail(rec, f"{type(ev).__name__} before this DO dealt its shares: share phase missed")


def _commitments_known(
    rec: Record, ev: SharesCommittedOnChain, randbytes: RandBytes
) -> list[Action]:
    if rec.committed is not None:
        raise LocalProtocolError("the on-chain commitments are already known")
    rec.settle_cutoff = None  # SETTLE is over: no more waiting for late deliveries
    members, me = rec.member_ints, rec.me_int
    seen = check_commitments(members, ev.commitments)
    rec.committed = [
        Commitment(address_bytes(c.member), c.mask_public, c.shares_root, c.points_digest)
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


def _update_ready(rec: Record, ev: LocalUpdateReady, randbytes: RandBytes) -> list[Action]:
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


def _open_submit_phase(rec: Record, ev: SubmitPhaseOpened, randbytes: RandBytes) -> list[Action]:
    if rec.submit_deadline is not None:
        raise LocalProtocolError("the submit phase is already open")
    rec.submit_deadline = ev.deadline
    return _try_submit(rec)


def _try_submit(rec: Record) -> list[Action]:
    """Submit once the three preconditions hold, whatever order they arrived in."""
    if rec.committed is None or rec.update is None or rec.submit_deadline is None:
        return []
    rec.state = State.SUBMITTED
    rec.submitted = True
    return update_chunks(rec)


def _masked(rec: Record) -> np.ndarray:
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


def update_chunks(rec: Record) -> list[Action]:
    words = pack_lanes(_masked(rec), rec.lane_bits)
    return [PostChunk(i, chunk) for i, chunk in enumerate(split_chunks(words, rec.chunk_words))]


def _not_submitted(rec: Record, ev: UnmaskPhaseOpened, randbytes: RandBytes) -> list[Action]:
    return _fail(rec, "the unmask phase opened before this DO submitted")


def _open_unmask_phase(rec: Record, ev: UnmaskPhaseOpened, randbytes: RandBytes) -> list[Action]:
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
        reveals.append(reveal_of(held, kind))
    if missing:
        # The contract wants one entry per committed member; without a valid share of each we
        # cannot unmask at all, and revealing a subset would only leak to no purpose.
        names = ", ".join(f"{m:#042x}" for m in missing)
        return _fail(rec, f"no valid shares from committed dealers {names}: cannot unmask")
    _record_reveals(rec, reveals, submitted)
    rec.state = State.UNMASKED
    return [PostUnmask(tuple(reveals))]


def reveal_of(held: ShareDelivery, kind: int) -> Reveal:
    return Reveal(
        address_int(held.dealer),
        kind,
        held.share(kind),
        held.blind(kind),
        tuple(held.proof(kind)),
        held.points,
    )


def _record_reveals(rec: Record, reveals: list[Reveal], submitted: tuple[int, ...]) -> None:
    """The never-both guard, checked against the persisted ledger before anything is revealed."""
    ledger = {(address_int(r.dealer), r.kind) for r in rec.revealed}
    for r in reveals:
        other = KIND_MASK_KEY if r.kind == KIND_SELF_SEED else KIND_SELF_SEED
        if (r.dealer, other) in ledger:
            raise LocalProtocolError(f"refusing to reveal both secrets of {r.dealer:#042x}")
        if r.kind == KIND_MASK_KEY and r.dealer in submitted:
            raise LocalProtocolError(f"refusing to reveal the mask key of submitter {r.dealer:#x}")
    rec.revealed.extend(
        Revealed(address_bytes(r.dealer), r.kind)
        for r in reveals
        if (r.dealer, r.kind) not in ledger
    )


def answer_to(rec: Record, holder: int) -> PostAnswer | None:
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
    rec: Record, ev: ComplaintsAgainstUs, randbytes: RandBytes
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
    answers: list[Action] = [a for h in holders if (a := answer_to(rec, h)) is not None]
    rec.exposed = True
    return [
        *answers,
        *_fail(
            rec,
            f"answered {len(answers)} complaints: our shares for those holders are public, so "
            "the court bars our submission and we sit the round out (peers reveal our mask key)",
        ),
    ]


def _finalized(rec: Record, ev: GroupFinalized, randbytes: RandBytes) -> list[Action]:
    if rec.opened and rec.me_int in ev.credited:
        if rec.state not in (State.SUBMITTED, State.UNMASKED):
            raise RemoteProtocolError("the chain credits us for an update we never submitted")
        rec.state = State.DONE
        return [Done()]
    return _fail(rec, "the group finalized without our update")


def _group_failed(rec: Record, ev: GroupFailed, randbytes: RandBytes) -> list[Action]:
    return _fail(rec, f"group failed: {ev.reason}")


def _tick(rec: Record, ev: DeadlineTick, randbytes: RandBytes) -> list[Action]:
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
    handler: Callable[[Record, object, RandBytes], list[Action]]
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
