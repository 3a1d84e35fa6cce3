"""In-memory N-party harness: whole rounds of ``RoundMachine``s with no I/O.

``FakeChain`` plays the contract's part for one group (the rules of ``docs/interfaces.md`` §3–§5
and the shares court's of §9: one commitment per member; complaints filed once per committed
member against committed dealers, answered only with shares and blinds that prove against the
dealer's root and pass the Pedersen check, an answered dealer exposed (its submission refused),
and dealers left with an open complaint excluded when SETTLE closes; in-order chunks with a
running digest; unmask messages checked share by share against the dealers' roots, points digests
and the Pedersen check, finalization at the ``t``-th); peer channels are direct calls.
``Harness.run`` drives every member through SHARE, SETTLE, SUBMIT and UNMASK as
``actors/roles/data_owner.py`` does, with the dealing and the dropout its ``Plan`` names, then
recovers the aggregate from the fake chain's data alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from protocol.chain_data import answered_delivery
from protocol.commitments import ZERO_DIGEST, chunk_digest, share_leaf, verify_proof
from protocol.constants import (
    GROUP_FAILED,
    GROUP_FINALIZED,
    GROUP_PENDING,
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    STATUS_COMMITTED,
    STATUS_NONE,
    STATUS_SUBMITTED,
    STATUS_UNMASKED,
)
from protocol.encoding import QuantConfig, word_count
from protocol.recovery import GroupAggregate, RevealedShare, Submission, recover_group_aggregate
from protocol.round import (
    TERMINAL,
    Action,
    ComplaintsAgainstUs,
    DeadlineTick,
    Event,
    GroupFailed,
    GroupFinalized,
    LocalUpdateReady,
    MemberCommitment,
    PostAnswer,
    PostChunk,
    PostCommitment,
    PostSettle,
    PostUnmask,
    RoundMachine,
    RoundOpened,
    SendShares,
    SettleDue,
    SharePhaseOpened,
    ShareReceived,
    SharesCommittedOnChain,
    SubmitPhaseOpened,
    UnmaskPhaseOpened,
)
from protocol.shamir import commitment_digest, verify_share

TASK, ROUND = 3, 1
MODEL_HASH = bytes(range(32))
SUBMIT_DEADLINE = 200


class Revert(Exception):
    """The fake chain refused a call, as the contract would revert it."""


class Dropout(Enum):
    """Where a member vanishes (it performs nothing and hears nothing from then on)."""

    NONE = "none"
    BEFORE_SHARE = "before_share"  # never deals
    MID_SHARE = "mid_share"  # delivers shares to some peers, never commits
    MID_SETTLE = "mid_settle"  # files its complaints, then vanishes: answers none, takes none
    AFTER_COMMIT = "after_commit"  # committed and settled, never submits
    MID_SUBMIT = "mid_submit"  # posts its first chunk only
    AFTER_SUBMIT = "after_submit"  # submitted, never unmasks


class Sharing(Enum):
    """How a member that commits deals its shares."""

    FULL = "full"  # delivers every share, then commits
    # commits after delivering to the first half of its peers only; the others complain in SETTLE
    PARTIAL_ANSWERS = "partial_answers"  # and it answers every complaint on-chain
    PARTIAL_SILENT = "partial_silent"  # and it answers none: SETTLE closes excluding it


class UpdateTiming(Enum):
    """When the trained update reaches the machine, relative to the chain's phases."""

    EARLY = "early"  # before the share phase
    DURING_SHARE = "during_share"  # after dealing, before the commitments are known
    LATE = "late"  # after the submit phase opened


@dataclass(frozen=True)
class Answered:
    """A ``ComplaintAnswered`` event: the holder's two shares and blinds, published by their
    dealer."""

    dealer: int
    holder: int
    seed_share: bytes
    seed_blind: bytes
    key_share: bytes
    key_blind: bytes
    seed_proof: tuple[bytes, ...]
    key_proof: tuple[bytes, ...]


@dataclass
class FakeChain:
    """The contract's view of one group in one round."""

    members: tuple[int, ...]
    threshold: int
    d: int
    lane_bits: int
    commitments: dict[int, PostCommitment] = field(default_factory=dict)
    chunks: dict[int, list[tuple[int, ...]]] = field(default_factory=dict)
    digests: dict[int, bytes] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    settled: set[int] = field(default_factory=set)
    complaints: dict[tuple[int, int], bool] = field(default_factory=dict)  # (dealer, holder): open
    answers: list[Answered] = field(default_factory=list)
    exposed: set[int] = field(default_factory=set)  # answered a complaint: may not submit
    excluded: set[int] = field(default_factory=set)
    reveals: list[RevealedShare] = field(default_factory=list)
    unmaskers: list[int] = field(default_factory=list)
    result: int = GROUP_PENDING

    def status(self, member: int) -> int:
        return self.statuses.get(member, STATUS_NONE)

    def commit(self, member: int, action: PostCommitment) -> None:
        if member not in self.members or member in self.commitments:
            raise Revert("commit: not a member or already committed")
        self.commitments[member] = action
        self.statuses[member] = STATUS_COMMITTED

    def standing(self) -> dict[int, PostCommitment]:
        """The commitments that count: an excluded dealer's is taken back (status NONE)."""
        return {m: c for m, c in self.commitments.items() if self.status(m) >= STATUS_COMMITTED}

    def settle(self, member: int, action: PostSettle) -> None:
        if self.status(member) != STATUS_COMMITTED or member in self.settled:
            raise Revert("court: not committed, or already settled")
        for dealer in action.accused:
            if dealer == member or self.status(dealer) != STATUS_COMMITTED:
                raise Revert("court: complaint against self, or dealer not committed")
        self.settled.add(member)
        for dealer in action.accused:
            self.complaints[dealer, member] = True

    def answer(self, dealer: int, action: PostAnswer) -> None:
        if not self.complaints.get((dealer, action.holder)):
            raise Revert("court: no open complaint")
        dealt = self.commitments[dealer]
        if commitment_digest(action.points) != commitment_digest(dealt.points):
            raise Revert("court: wrong points")
        x = self.members.index(action.holder) + 1
        half = len(dealt.points) // 2
        for kind, share, blind, proof, polynomial in (
            (
                KIND_SELF_SEED,
                action.seed_share,
                action.seed_blind,
                action.seed_proof,
                dealt.points[:half],
            ),
            (
                KIND_MASK_KEY,
                action.key_share,
                action.key_blind,
                action.key_proof,
                dealt.points[half:],
            ),
        ):
            leaf = share_leaf(TASK, ROUND, dealer, action.holder, kind, share, blind)
            if not verify_proof(leaf, proof, dealt.shares_root):
                raise Revert("court: bad proof")
            if not verify_share(x, share, blind, polynomial, self.threshold):
                raise Revert("court: share off polynomial")
        self.complaints[dealer, action.holder] = False
        self.exposed.add(dealer)
        self.answers.append(
            Answered(
                dealer,
                action.holder,
                action.seed_share,
                action.seed_blind,
                action.key_share,
                action.key_blind,
                action.seed_proof,
                action.key_proof,
            )
        )

    def close_settle(self) -> None:
        """Exclude every dealer with a complaint still open (``DealerExcluded``)."""
        for (dealer, _), still_open in self.complaints.items():
            if still_open and self.status(dealer) == STATUS_COMMITTED:
                self.statuses[dealer] = STATUS_NONE
                self.excluded.add(dealer)

    def submit(self, member: int, action: PostChunk) -> None:
        if self.status(member) != STATUS_COMMITTED:
            raise Revert("submit: not committed or already submitted")
        if member in self.exposed:
            raise Revert("rounds: shares exposed")
        got = self.chunks.setdefault(member, [])
        total = sum(len(c) for c in got) + len(action.words)
        if action.chunk_index != len(got) or total > word_count(self.d, self.lane_bits):
            raise Revert("submit: chunk out of order or too long")
        self.digests[member] = chunk_digest(self.digests.get(member, ZERO_DIGEST), action.words)
        got.append(action.words)
        if total == word_count(self.d, self.lane_bits):
            self.statuses[member] = STATUS_SUBMITTED

    def submitters(self) -> tuple[int, ...]:
        return tuple(m for m in self.members if self.status(m) >= STATUS_SUBMITTED)

    def close_submit(self) -> None:
        if len(self.submitters()) < self.threshold:
            self.result = GROUP_FAILED

    def unmask(self, member: int, action: PostUnmask) -> None:
        if self.result != GROUP_PENDING or self.status(member) != STATUS_SUBMITTED:
            raise Revert("unmask: group resolved, or caller not a submitter")
        committed = [m for m in self.members if m in self.standing()]
        if [r.dealer for r in action.reveals] != committed:
            raise Revert("unmask: one reveal per committed member, in member order")
        accepted = []
        x = self.members.index(member) + 1
        for r in action.reveals:
            due = KIND_SELF_SEED if self.status(r.dealer) >= STATUS_SUBMITTED else KIND_MASK_KEY
            dealt = self.commitments[r.dealer]
            leaf = share_leaf(TASK, ROUND, r.dealer, member, r.kind, r.share, r.blind)
            if r.kind != due or not verify_proof(leaf, r.proof, dealt.shares_root):
                raise Revert("court: bad proof")
            if commitment_digest(r.points) != commitment_digest(dealt.points):
                raise Revert("court: wrong points")
            half = len(r.points) // 2
            polynomial = r.points[:half] if r.kind == KIND_SELF_SEED else r.points[half:]
            if not verify_share(x, r.share, r.blind, polynomial, self.threshold):
                raise Revert("court: share off polynomial")
            accepted.append(RevealedShare(r.dealer, member, r.kind, r.share, r.blind))
        self.reveals.extend(accepted)
        self.statuses[member] = STATUS_UNMASKED
        self.unmaskers.append(member)
        if len(self.unmaskers) == self.threshold:
            self.result = GROUP_FINALIZED

    def close_unmask(self) -> None:
        if self.result == GROUP_PENDING:
            self.result = GROUP_FAILED

    def recover(self, quant: QuantConfig) -> GroupAggregate:
        """The group aggregate from this chain's data alone, as any reader would compute it."""
        return recover_group_aggregate(
            members=self.members,
            threshold=self.threshold,
            statuses=self.statuses,
            mask_public_keys={m: c.mask_public for m, c in self.standing().items()},
            # the SharesCommitted events: every commitment made, an excluded dealer's included
            points={m: c.points for m, c in self.commitments.items()},
            submissions={
                m: Submission(tuple(self.chunks[m]), self.digests[m]) for m in self.submitters()
            },
            reveals=self.reveals,
            task=TASK,
            round=ROUND,
            quant=quant,
            d=self.d,
        )


@dataclass
class Plan:
    """One member's behaviour in a round."""

    dropout: Dropout = Dropout.NONE
    timing: UpdateTiming = UpdateTiming.DURING_SHARE
    sharing: Sharing = Sharing.FULL


@dataclass
class Outcome:
    chain: FakeChain
    machines: dict[int, RoundMachine]
    updates: dict[int, np.ndarray]
    actions: dict[int, list[Action]]
    alive: set[int]

    def expected_sum(self, quant: QuantConfig) -> np.ndarray:
        total = np.zeros(self.chain.d, dtype=quant.ring_dtype)
        for m in self.chain.submitters():
            total += self.updates[m]
        return total


class Harness:
    """Drives one group's machines; ``restore_each_event`` reloads every machine from its
    snapshot after every event, as an actor that crashes all the time would."""

    def __init__(
        self,
        members: tuple[int, ...],
        threshold: int,
        quant: QuantConfig,
        d: int,
        plans: dict[int, Plan],
        seed: int,
        chunk_words: int = 2,
        restore_each_event: bool = False,
    ) -> None:
        self.members, self.threshold, self.quant, self.d = members, threshold, quant, d
        self.plans, self.chunk_words = plans, chunk_words
        self.restore_each_event = restore_each_event
        self.sources = {m: random.Random(seed * 1_000 + p) for p, m in enumerate(members)}
        self.machines = {m: RoundMachine(self.sources[m].randbytes) for m in members}
        self.chain = FakeChain(members, threshold, d, quant.lane_bits)
        self.alive = set(members)
        self.actions: dict[int, list[Action]] = {m: [] for m in members}
        gen = np.random.default_rng(seed)
        info = np.iinfo(quant.ring_dtype)
        self.updates = {
            m: gen.integers(0, int(info.max) + 1, size=d, dtype=np.int64).astype(quant.ring_dtype)
            for m in members
        }

    def feed(self, member: int, event: Event) -> list[Action]:
        # An actor stops driving a machine once it is gone or finished.
        if member not in self.alive or self.machines[member].state in TERMINAL:
            return []
        actions = self.machines[member].send(event)
        self.actions[member].extend(actions)
        if self.restore_each_event:
            snapshot = self.machines[member].snapshot()
            self.machines[member] = RoundMachine.restore(snapshot, self.sources[member].randbytes)
        return actions

    def tick(self, member: int, now: int) -> list[Action]:
        """The chain's clock reached `now`: a DeadlineTick for a machine whose `waiting()`
        names a deadline by then (as the round driver sends it)."""
        if member not in self.alive or self.machines[member].state in TERMINAL:
            return []
        deadline = self.machines[member].waiting().deadline
        if deadline is None or now < deadline:
            return []
        return self.feed(member, DeadlineTick(now))

    def drop(self, member: int, at: Dropout) -> bool:
        """True if ``member`` vanishes at ``at`` (and from then on is gone)."""
        if self.plans[member].dropout == at:
            self.alive.discard(member)
        return member not in self.alive

    def give_update(self, member: int, timing: UpdateTiming) -> None:
        if self.plans[member].timing == timing:
            self.perform(member, self.feed(member, LocalUpdateReady(self.updates[member])))

    def perform(self, member: int, actions: list[Action]) -> None:
        """Carry out ``member``'s actions in order, as its actor would, honouring its dropout."""
        for action in actions:
            if member not in self.alive:
                return
            if isinstance(action, SendShares):
                self.feed(action.to, ShareReceived(member, action.delivery))
            elif isinstance(action, PostCommitment):
                self.chain.commit(member, action)
            elif isinstance(action, PostSettle):
                self.chain.settle(member, action)
            elif isinstance(action, PostAnswer):
                self.chain.answer(member, action)
            elif isinstance(action, PostChunk):
                self.chain.submit(member, action)
                if self.drop(member, Dropout.MID_SUBMIT):
                    return
            elif isinstance(action, PostUnmask):
                try:
                    self.chain.unmask(member, action)
                except Revert:
                    # Late unmask messages revert once the group finalized; the actor moves on.
                    if self.chain.result == GROUP_PENDING:
                        raise

    def commitments_on_chain(self) -> tuple[MemberCommitment, ...]:
        """The standing commitments as a data owner reads them (views, in member order)."""
        standing = self.chain.standing()
        return tuple(
            MemberCommitment(
                m,
                standing[m].mask_public,
                standing[m].shares_root,
                commitment_digest(standing[m].points),
            )
            for m in self.members
            if m in standing
        )

    def answer_complaints(self, dealer: int) -> None:
        """The dealer is told of every complaint still open against it: its machine answers each
        (and sits the round out, its answered shares being public)."""
        holders = tuple(
            holder
            for (accused, holder), still_open in self.chain.complaints.items()
            if accused == dealer and still_open
        )
        if holders:
            self.perform(dealer, self.feed(dealer, ComplaintsAgainstUs(holders)))

    def take_answers(self, holder: int) -> None:
        """Feed ``holder`` the shares its accused dealers published, as deliveries from them."""
        machine = self.machines[holder]
        if holder not in self.alive or machine.state in TERMINAL:
            return
        settlement = machine.settlement()
        if settlement is None:
            return
        owed = set(settlement.accused) - machine.dealers_held
        for a in self.chain.answers:
            if a.holder != holder or a.dealer not in owed:
                continue
            dealt = self.chain.commitments[a.dealer]
            delivery = answered_delivery(
                TASK,
                ROUND,
                dealer=a.dealer,
                holder=holder,
                seed_share=a.seed_share,
                seed_blind=a.seed_blind,
                key_share=a.key_share,
                key_blind=a.key_blind,
                seed_proof=a.seed_proof,
                key_proof=a.key_proof,
                mask_public=dealt.mask_public,
                shares_root=dealt.shares_root,
                points=dealt.points,
            )
            self.perform(holder, self.feed(holder, ShareReceived(a.dealer, delivery)))

    def run(self) -> Outcome:
        members, chain = self.members, self.chain
        for m in members:
            self.feed(
                m,
                RoundOpened(
                    task=TASK,
                    round=ROUND,
                    members=members,
                    threshold=self.threshold,
                    me=m,
                    model_hash=MODEL_HASH,
                    quant=self.quant,
                    d=self.d,
                    chunk_words=self.chunk_words,
                ),
            )
            self.give_update(m, UpdateTiming.EARLY)
        # SHARE: a MID_SHARE dealer gets its shares out to the first half of the group only,
        # then vanishes; a partial dealer does the same and commits.
        for m in members:
            if self.drop(m, Dropout.BEFORE_SHARE):
                continue
            actions = self.feed(m, SharePhaseOpened())
            plan = self.plans[m]
            if plan.dropout == Dropout.MID_SHARE or plan.sharing != Sharing.FULL:
                sends = [a for a in actions if isinstance(a, SendShares)]
                withheld = sends[len(sends) // 2 :]
                actions = [a for a in actions if a not in withheld]
            if plan.dropout == Dropout.MID_SHARE:
                self.perform(m, [a for a in actions if isinstance(a, SendShares)])
                self.alive.discard(m)
                continue
            self.perform(m, actions)
            self.give_update(m, UpdateTiming.DURING_SHARE)
        for m in members:
            self.tick(m, SUBMIT_DEADLINE - 1)
        # SETTLE: complaints, answers, answered shares taken back from chain data; then the
        # chain excludes every dealer left with an open complaint.
        settle_due = SettleDue(self.commitments_on_chain())
        for m in members:
            self.perform(m, self.feed(m, settle_due))
            self.drop(m, Dropout.MID_SETTLE)
        for m in members:
            if m in self.alive and self.plans[m].sharing != Sharing.PARTIAL_SILENT:
                self.answer_complaints(m)
        for m in members:
            self.take_answers(m)
        chain.close_settle()
        # SUBMIT
        committed = SharesCommittedOnChain(self.commitments_on_chain())
        for m in members:
            self.take_answers(m)
            self.perform(m, self.feed(m, committed))
            if self.drop(m, Dropout.AFTER_COMMIT):
                continue
            self.perform(m, self.feed(m, SubmitPhaseOpened(SUBMIT_DEADLINE)))
            self.give_update(m, UpdateTiming.LATE)
        for m in members:
            self.perform(m, self.tick(m, SUBMIT_DEADLINE))
        chain.close_submit()
        # UNMASK
        if chain.result == GROUP_PENDING:
            for m in members:
                if self.drop(m, Dropout.AFTER_SUBMIT):
                    continue
                self.perform(m, self.feed(m, UnmaskPhaseOpened(chain.submitters())))
            chain.close_unmask()
        for m in members:
            if chain.result == GROUP_FINALIZED:
                self.feed(m, GroupFinalized(chain.submitters()))
            else:
                self.feed(m, GroupFailed("fewer than t unmask messages"))
        return Outcome(chain, self.machines, self.updates, self.actions, self.alive)


def addresses(count: int, seed: int) -> tuple[int, ...]:
    """``count`` distinct 160-bit addresses."""
    rnd = random.Random(seed)
    out: list[int] = []
    while len(out) < count:
        a = rnd.getrandbits(160)
        if a and a not in out:
            out.append(a)
    return tuple(out)
