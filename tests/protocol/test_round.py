"""The DO round machine on its own: every (state, event) pair, peer misbehaviour, the never-both
rule under arbitrary event sequences, and snapshot/restore."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import msgspec
import numpy as np
import pytest
from harness import MODEL_HASH, ROUND, SUBMIT_DEADLINE, TASK, addresses
from hypothesis import event as hypothesis_event
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.chain_data import ChainDataError, ChainDataReason
from protocol.commitments import deal_commitment, share_leaf, verify_proof
from protocol.constants import KIND_MASK_KEY, KIND_SELF_SEED, MAX_CHUNK_WORDS
from protocol.dealing import deal_round
from protocol.encoding import QuantConfig, word_count
from protocol.errors import (
    CommitmentError,
    KeyAgreementError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from protocol.messages import ShareDelivery, address_bytes
from protocol.round import (
    EVENT_TYPES,
    TERMINAL,
    TRANSITIONS,
    ComplaintsAgainstUs,
    DeadlineTick,
    Done,
    Event,
    Fact,
    Failed,
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
    State,
    SubmitPhaseOpened,
    UnmaskPhaseOpened,
    Waiting,
)
from protocol.shamir import FIELD_ORDER, commitment_digest, verify_share

QUANT = QuantConfig(lane_bits=32, scale_bits=10, clip_norm=4.0)
D = 20


class Script:
    """One group seen from member 0 ("me"); the peers are real machines that dealt already."""

    def __init__(self, seed: int = 0, n: int = 3, threshold: int = 2, chunk_words: int = 1):
        self.members = addresses(n, seed)
        self.me, self.peers = self.members[0], self.members[1:]
        self.threshold, self.chunk_words = threshold, chunk_words
        self.source = random.Random(seed)
        self.deliveries: dict[int, ShareDelivery] = {}
        self.commitments: dict[int, MemberCommitment] = {}
        for i, peer in enumerate(self.peers):
            machine = RoundMachine(random.Random(seed * 100 + i + 1).randbytes)
            machine.send(self.opened(peer))
            for action in machine.send(SharePhaseOpened()):
                if isinstance(action, SendShares) and action.to == self.me:
                    self.deliveries[peer] = action.delivery
                elif isinstance(action, PostCommitment):
                    self.commitments[peer] = MemberCommitment(
                        peer,
                        action.mask_public,
                        action.shares_root,
                        commitment_digest(action.points),
                    )
        self.update = np.arange(D, dtype=QUANT.ring_dtype) * 1000

    def opened(self, me: int | None = None) -> RoundOpened:
        return RoundOpened(
            task=TASK,
            round=ROUND,
            members=self.members,
            threshold=self.threshold,
            me=self.me if me is None else me,
            model_hash=MODEL_HASH,
            quant=QUANT,
            d=D,
            chunk_words=self.chunk_words,
        )

    def machine(self) -> RoundMachine:
        return RoundMachine(self.source.randbytes)

    def on_chain(self, machine: RoundMachine, members: tuple[int, ...] | None = None):
        """The commitments event as the chain would show it (ours included once we dealt)."""
        mine = machine.commitment()
        known = dict(self.commitments)
        if mine is not None:
            known[self.me] = MemberCommitment(
                self.me, mine.mask_public, mine.shares_root, commitment_digest(mine.points)
            )
        chosen = self.members if members is None else members
        return SharesCommittedOnChain(tuple(known[m] for m in chosen if m in known))

    def event(self, etype: type, machine: RoundMachine) -> Event:
        """A well-formed event of type ``etype`` for ``machine`` at its current point."""
        factories: dict[type, Callable[[], Event]] = {
            RoundOpened: self.opened,
            SharePhaseOpened: lambda: SharePhaseOpened(),
            ShareReceived: lambda: ShareReceived(self.peers[0], self.deliveries[self.peers[0]]),
            SharesCommittedOnChain: lambda: self.on_chain(machine),
            SettleDue: lambda: SettleDue(self.on_chain(machine).commitments),
            ComplaintsAgainstUs: lambda: ComplaintsAgainstUs((self.peers[0],)),
            LocalUpdateReady: lambda: LocalUpdateReady(self.update),
            SubmitPhaseOpened: lambda: SubmitPhaseOpened(SUBMIT_DEADLINE),
            UnmaskPhaseOpened: lambda: UnmaskPhaseOpened(self.members),
            # The chain credits us only for an update we submitted.
            GroupFinalized: lambda: GroupFinalized(
                self.members if machine.state in (State.SUBMITTED, State.UNMASKED) else self.peers
            ),
            GroupFailed: lambda: GroupFailed("test"),
            DeadlineTick: lambda: DeadlineTick(0),
        }
        return factories[etype]()

    def machine_in(self, state: State) -> RoundMachine:
        """A machine brought to ``state`` by a legal sequence of events."""
        m = self.machine()
        m.send(self.opened())
        if state == State.FAILED:
            m.send(GroupFailed("test"))
        elif state == State.ERROR:
            with pytest.raises(LocalProtocolError):
                m.send(self.opened())
        elif state != State.REGISTERED:
            m.send(SharePhaseOpened())
            if state != State.SHARED:
                for peer, delivery in self.deliveries.items():
                    m.send(ShareReceived(peer, delivery))
                m.send(self.on_chain(m))
                m.send(LocalUpdateReady(self.update))
                m.send(SubmitPhaseOpened(SUBMIT_DEADLINE))
                if state != State.SUBMITTED:
                    m.send(UnmaskPhaseOpened(self.members))
                    if state == State.DONE:
                        m.send(GroupFinalized(self.members))
        assert m.state == state
        return m


SCRIPT = Script()


def _record(machine: RoundMachine) -> dict:
    raw = msgspec.msgpack.decode(machine.snapshot())
    return {k: v for k, v in raw.items() if k not in ("state", "failure")}


@pytest.mark.parametrize("etype", EVENT_TYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("state", list(State), ids=lambda s: s.name)
def test_every_state_event_pair_follows_the_table(state: State, etype: type) -> None:
    fresh = state == State.REGISTERED and etype is RoundOpened
    machine = SCRIPT.machine() if fresh else SCRIPT.machine_in(state)
    event = SCRIPT.event(etype, machine)
    transition = TRANSITIONS.get((state, etype))
    if transition is None:
        before = _record(machine)
        with pytest.raises(LocalProtocolError, match="not allowed"):
            machine.send(event)
        assert machine.state == State.ERROR
        # Nothing of the refused event was applied.
        assert _record(machine) == before
        return
    actions = machine.send(event)
    assert machine.state in transition.targets
    if machine.state == State.FAILED:
        assert isinstance(actions[-1], Failed) and machine.failure
    if machine.state == State.DONE:
        assert actions == [Done()]


def test_table_shape() -> None:
    states = {s for s, _ in TRANSITIONS}
    assert states == {State.REGISTERED, State.SHARED, State.SUBMITTED, State.UNMASKED}
    assert all(etype in EVENT_TYPES for _, etype in TRANSITIONS)
    # Every live state can always be told that the group failed; time passing matters only where
    # `waiting()` names a deadline (SHARED: SETTLE's cut-off, the submit deadline), and only
    # there does the actor send a DeadlineTick.
    for s in states:
        assert (s, GroupFailed) in TRANSITIONS
    assert {s for s, etype in TRANSITIONS if etype is DeadlineTick} == {State.SHARED}
    assert all(not (t.targets & {State.ERROR}) for t in TRANSITIONS.values())


def _run_to_unmask(script: Script, submitted: tuple[int, ...] | None = None, committed=None):
    m = script.machine()
    m.send(script.opened())
    dealt = m.send(SharePhaseOpened())
    for peer, delivery in script.deliveries.items():
        m.send(ShareReceived(peer, delivery))
    m.send(script.on_chain(m, committed))
    m.send(LocalUpdateReady(script.update))
    chunks = m.send(SubmitPhaseOpened(SUBMIT_DEADLINE))
    subs = script.members if submitted is None else submitted
    unmask = m.send(UnmaskPhaseOpened(subs))
    return m, dealt, chunks, unmask


def test_a_full_round_from_one_machine() -> None:
    script = Script(seed=1, n=4, threshold=3, chunk_words=1)
    m, dealt, chunks, unmask = _run_to_unmask(script, submitted=script.members[:3])
    # Deal: one delivery per peer in member order, then the commitment.
    assert [type(a) for a in dealt] == [SendShares] * 3 + [PostCommitment]
    assert [a.to for a in dealt[:3]] == list(script.peers)
    assert m.deliveries() == dealt[:3] and m.commitment() == dealt[3]
    # Submit: W words in chunks of one, indexed in order.
    assert [a.chunk_index for a in chunks] == list(range(word_count(D, QUANT.lane_bits)))
    assert all(isinstance(a, PostChunk) and len(a.words) == 1 for a in chunks)
    assert m.chunks() == chunks
    # Unmask: seed shares of the 3 submitters, the mask-key share of the 4th, in member order.
    (post,) = unmask
    assert isinstance(post, PostUnmask) and m.state == State.UNMASKED
    assert [r.dealer for r in post.reveals] == list(script.members)
    assert [r.kind for r in post.reveals] == [KIND_SELF_SEED] * 3 + [KIND_MASK_KEY]
    onchain = {c.member: c for c in script.on_chain(m).commitments}
    x = script.members.index(script.me) + 1
    for r in post.reveals:
        leaf = share_leaf(TASK, ROUND, r.dealer, script.me, r.kind, r.share, r.blind)
        assert verify_proof(leaf, r.proof, onchain[r.dealer].shares_root)
        # what the court checks besides: the dealer's points, and the share on its polynomial
        assert commitment_digest(r.points) == onchain[r.dealer].points_digest
        half = len(r.points) // 2
        polynomial = r.points[:half] if r.kind == KIND_SELF_SEED else r.points[half:]
        assert verify_share(x, r.share, r.blind, polynomial, script.threshold)
    assert m.revealed == {(r.dealer, r.kind) for r in post.reveals}
    assert m.send(GroupFinalized(script.members[:3])) == [Done()]
    assert m.opened == script.opened() and script.machine().opened is None


def test_reveals_nothing_for_members_that_never_committed() -> None:
    script = Script(seed=2, n=4, threshold=2)
    committed = script.members[:3]
    _, _, _, (post,) = _run_to_unmask(script, submitted=committed[:2], committed=committed)
    assert [(r.dealer, r.kind) for r in post.reveals] == [
        (committed[0], KIND_SELF_SEED),
        (committed[1], KIND_SELF_SEED),
        (committed[2], KIND_MASK_KEY),
    ]


def test_too_few_submitters_reveal_nothing() -> None:
    script = Script(seed=3, n=4, threshold=3)
    m, _, _, actions = _run_to_unmask(script, submitted=script.members[:2])
    assert m.state == State.FAILED and [type(a) for a in actions] == [Failed]
    assert m.revealed == frozenset()


def test_not_submitted_or_not_committed_fails_quietly() -> None:
    script = Script(seed=4, n=3, threshold=2)
    m, _, _, actions = _run_to_unmask(script, submitted=script.peers)
    assert m.state == State.FAILED and "not complete" in actions[0].reason
    m = script.machine()
    m.send(script.opened())
    m.send(SharePhaseOpened())
    actions = m.send(script.on_chain(m, script.peers))
    assert m.state == State.FAILED and "not on-chain" in actions[0].reason
    # Fewer than t commitments: fail before spending gas on a submission.
    m = Script(seed=4, n=3, threshold=3).machine_in(State.SHARED)
    assert m.send(script.on_chain(m, (script.me, script.peers[0])))[0] == Failed(
        "only 2 members committed, threshold 3"
    )


def test_an_unusable_mask_key_on_chain_fails_the_round_not_the_machine() -> None:
    script = Script(seed=12, n=3, threshold=2)
    m = script.machine_in(State.SHARED)
    peer = script.peers[1]
    # u = 0 is a low-order point: X25519 with it yields the all-zero secret.
    chain = tuple(
        replace(c, mask_public=bytes(32)) if c.member == peer else c
        for c in script.on_chain(m).commitments
    )
    (failed,) = m.send(SharesCommittedOnChain(chain))
    assert isinstance(failed, Failed) and "unusable mask public keys" in failed.reason
    assert isinstance(m.peer_errors[peer], KeyAgreementError)
    assert m.chunks() == []


def test_submission_waits_for_all_three_preconditions_in_any_order() -> None:
    script = Script(seed=5)
    events: list[Callable[[RoundMachine], Event]] = [
        lambda m: script.on_chain(m),
        lambda m: LocalUpdateReady(script.update),
        lambda m: SubmitPhaseOpened(SUBMIT_DEADLINE),
    ]
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]):
        m = script.machine_in(State.SHARED)
        outputs = [m.send(events[i](m)) for i in order]
        assert outputs[0] == outputs[1] == [] and m.state == State.SUBMITTED
        assert all(isinstance(a, PostChunk) for a in outputs[2])


def test_missing_the_submit_deadline_fails() -> None:
    m = SCRIPT.machine_in(State.SHARED)
    m.send(SCRIPT.on_chain(m))
    m.send(SubmitPhaseOpened(SUBMIT_DEADLINE))
    assert m.send(DeadlineTick(SUBMIT_DEADLINE - 1)) == []
    (failed,) = m.send(DeadlineTick(SUBMIT_DEADLINE))
    assert isinstance(failed, Failed) and m.state == State.FAILED


def _flip(share: bytes) -> bytes:
    return bytes([share[0] ^ 1]) + share[1:]


def test_a_share_failing_its_commitment_is_the_dealers_fault() -> None:
    script = Script(seed=6, n=3, threshold=2)
    bad_peer, good_peer = script.peers
    m = script.machine_in(State.SHARED)
    bad = msgspec.structs.replace(
        script.deliveries[bad_peer], seed_share=_flip(script.deliveries[bad_peer].seed_share)
    )
    assert m.send(ShareReceived(bad_peer, bad)) == []
    assert m.state == State.SHARED
    assert isinstance(m.peer_errors[bad_peer], CommitmentError)
    m.send(ShareReceived(good_peer, script.deliveries[good_peer]))
    m.send(script.on_chain(m))
    m.send(LocalUpdateReady(script.update))
    m.send(SubmitPhaseOpened(SUBMIT_DEADLINE))
    # Without a valid share of a committed dealer the contract would refuse our unmask.
    (failed,) = m.send(UnmaskPhaseOpened(script.members))
    assert isinstance(failed, Failed) and f"{bad_peer:#042x}" in failed.reason
    assert m.revealed == frozenset()
    # The peer errors survive a snapshot.
    restored = RoundMachine.restore(m.snapshot(), random.Random(0).randbytes)
    assert isinstance(restored.peer_errors[bad_peer], CommitmentError)


def test_deliveries_checked_against_the_on_chain_commitment() -> None:
    script = Script(seed=7, n=3, threshold=2)
    peer = script.peers[0]
    # Held before the commitments were known, then the chain shows another root: dropped.
    m = script.machine_in(State.SHARED)
    m.send(ShareReceived(peer, script.deliveries[peer]))
    assert peer in m.dealers_held
    event = script.on_chain(m)
    forged = tuple(
        replace(c, shares_root=bytes(32)) if c.member == peer else c for c in event.commitments
    )
    m.send(SharesCommittedOnChain(forged))
    assert peer not in m.dealers_held and isinstance(m.peer_errors[peer], CommitmentError)
    # Arriving after the commitments are known: checked at once.
    m = script.machine_in(State.SHARED)
    forged = tuple(
        replace(c, shares_root=bytes(32)) if c.member == peer else c
        for c in script.on_chain(m).commitments
    )
    m.send(SharesCommittedOnChain(forged))
    m.send(ShareReceived(peer, script.deliveries[peer]))
    assert peer not in m.dealers_held and isinstance(m.peer_errors[peer], CommitmentError)


def test_relayed_conflicting_and_stray_deliveries() -> None:
    script = Script(seed=8, n=4, threshold=2)
    a, b, c = script.peers
    m = script.machine_in(State.SHARED)
    # b relays a's delivery: b misbehaves, a does not.
    m.send(ShareReceived(b, script.deliveries[a]))
    assert set(m.peer_errors) == {b} and a not in m.dealers_held
    m.send(ShareReceived(a, script.deliveries[a]))
    m.send(ShareReceived(a, script.deliveries[a]))  # an identical repeat is harmless
    assert a in m.dealers_held and a not in m.peer_errors
    # c deals twice with different shares: the first is kept, c is marked.
    second = Script(seed=9, n=4, threshold=2)
    other = RoundMachine(random.Random(99).randbytes)
    other.send(script.opened(c))
    redealt = next(
        x.delivery
        for x in other.send(SharePhaseOpened())
        if isinstance(x, SendShares) and x.to == script.me
    )
    m.send(ShareReceived(c, script.deliveries[c]))
    m.send(ShareReceived(c, redealt))
    assert "conflicting" in str(m.peer_errors[c]) and c in m.dealers_held
    # A stranger, and shares meant for somebody else.
    m.send(ShareReceived(12345, script.deliveries[a]))
    assert 12345 in m.peer_errors
    m2 = second.machine_in(State.SHARED)
    m2.send(ShareReceived(a, script.deliveries[a]))
    assert m2.state == State.SHARED and a in m2.peer_errors


@pytest.mark.parametrize(
    ("prepare", "event", "error"),
    [
        (State.REGISTERED, lambda: LocalUpdateReady(np.zeros(D + 1)), LocalProtocolError),
        # floats are the actor's to clip and quantize (protocol.weighting): lanes only here
        (State.REGISTERED, lambda: LocalUpdateReady(np.zeros(D)), LocalProtocolError),
        (
            State.REGISTERED,
            lambda: LocalUpdateReady(np.zeros(D, dtype=np.int8)),
            LocalProtocolError,
        ),
        (State.REGISTERED, lambda: GroupFinalized(SCRIPT.members), RemoteProtocolError),
        (State.SHARED, lambda: SharesCommittedOnChain(()), None),
        (
            State.SHARED,
            lambda: SharesCommittedOnChain(
                (MemberCommitment(777, bytes(32), bytes(32), bytes(32)),)
            ),
            RemoteProtocolError,
        ),
        (State.SUBMITTED, lambda: UnmaskPhaseOpened((12345,)), RemoteProtocolError),
        (State.SHARED, lambda: SharePhaseOpened(), LocalProtocolError),
    ],
)
def test_bad_events_move_to_error(prepare: State, event, error) -> None:
    m = SCRIPT.machine_in(prepare)
    if error is None:
        m.send(event())
        assert m.state == State.FAILED
        return
    before = _record(m)
    with pytest.raises(error):
        m.send(event())
    assert m.state == State.ERROR and m.failure
    assert _record(m) == before
    with pytest.raises(LocalProtocolError):
        m.send(DeadlineTick(0))


def _peer_commitment(**change: object) -> MemberCommitment:
    return replace(SCRIPT.commitments[SCRIPT.peers[0]], **change)


@pytest.mark.parametrize(
    ("prepare", "event", "reason"),
    [
        (
            State.SHARED,
            lambda: SharesCommittedOnChain((_peer_commitment(member=777),)),
            ChainDataReason.NOT_MEMBER,
        ),
        (
            State.SHARED,
            lambda: SettleDue((_peer_commitment(), _peer_commitment())),
            ChainDataReason.DUPLICATE,
        ),
        (
            State.SHARED,
            lambda: SharesCommittedOnChain((_peer_commitment(shares_root=bytes(31)),)),
            ChainDataReason.FIELD_SIZE,
        ),
        (
            State.SHARED,
            lambda: SettleDue((_peer_commitment(mask_public=bytes(33)),)),
            ChainDataReason.FIELD_SIZE,
        ),
        (
            State.SUBMITTED,
            lambda: UnmaskPhaseOpened((SCRIPT.me, *SCRIPT.peers, SCRIPT.me)),
            ChainDataReason.DUPLICATE,
        ),
        (
            State.SUBMITTED,
            lambda: UnmaskPhaseOpened((SCRIPT.me, 12345)),
            ChainDataReason.NOT_COMMITTED,
        ),
    ],
)
def test_chain_facts_that_do_not_fit_the_group_name_their_rule(
    prepare: State, event: Callable[[], Event], reason: ChainDataReason
) -> None:
    m = SCRIPT.machine_in(prepare)
    before = _record(m)
    with pytest.raises(ChainDataError) as info:
        m.send(event())
    assert info.value.reason == reason
    assert m.state == State.ERROR and m.failure and m.failure.startswith("ChainDataError")
    assert _record(m) == before


@pytest.mark.parametrize(
    "change",
    [
        {"threshold": 1},
        {"threshold": 4},
        {"me": 5},
        {"members": (1, 1, 2)},
        {"task": 0},
        {"d": 0},
        {"chunk_words": MAX_CHUNK_WORDS + 1},
        {"model_hash": b"short"},
        {"quant": QuantConfig(lane_bits=16, scale_bits=12, clip_norm=4.0)},  # no headroom for 3
    ],
)
def test_round_opened_refuses_bad_parameters(change: dict) -> None:
    m = SCRIPT.machine()
    with pytest.raises(LocalProtocolError):
        m.send(replace(SCRIPT.opened(), **change))
    assert m.state == State.ERROR


def test_events_before_the_round_is_opened_are_refused() -> None:
    m = SCRIPT.machine()
    with pytest.raises(LocalProtocolError, match="not been opened"):
        m.send(SharePhaseOpened())
    assert m.state == State.ERROR


def test_restore_refuses_garbage() -> None:
    with pytest.raises(LocalProtocolError):
        RoundMachine.restore(b"\x00garbage", random.Random(0).randbytes)
    data = msgspec.msgpack.encode({"version": 99})
    with pytest.raises(LocalProtocolError, match="version"):
        RoundMachine.restore(data, random.Random(0).randbytes)


def _script_events(script: Script, machine: RoundMachine) -> list[Callable[[], Event]]:
    """Me's whole round, as thunks (the commitments depend on what the machine dealt)."""
    return [
        script.opened,
        lambda: SharePhaseOpened(),
        *[
            (lambda p=p: ShareReceived(p, script.deliveries[p]))  # type: ignore[misc]
            for p in script.peers
        ],
        lambda: script.on_chain(machine),
        lambda: LocalUpdateReady(np.arange(D, dtype=QUANT.ring_dtype) * 7),
        lambda: SubmitPhaseOpened(SUBMIT_DEADLINE),
        lambda: UnmaskPhaseOpened(script.members[:-1]),
        lambda: GroupFinalized(script.members[:-1]),
    ]


def _cut_round(cut: int) -> tuple[random.Random, RoundMachine, list[Callable[[], Event]]]:
    """A machine fed the first `cut` events of a scripted round: its random source, the
    machine, and the rest of the round's events."""
    script = Script(seed=10, n=4, threshold=2)
    source = random.Random(42)
    original = RoundMachine(source.randbytes)
    events = _script_events(script, original)
    for thunk in events[:cut]:
        original.send(thunk())
    return source, original, events[cut:]


@pytest.mark.parametrize("cut", range(2, 10))
def test_snapshot_restore_mid_round_gives_the_same_outputs(cut: int) -> None:
    source, original, rest = _cut_round(cut)
    clone_source = random.Random()
    clone_source.setstate(source.getstate())
    restored = RoundMachine.restore(original.snapshot(), clone_source.randbytes)
    assert restored.snapshot() == original.snapshot()
    for thunk in rest:
        event = thunk()
        assert restored.send(event) == original.send(event)
        assert restored.snapshot() == original.snapshot()
    assert original.state == State.DONE


@pytest.mark.parametrize("cut", range(2, 10))
def test_snapshot_without_the_update_restores_with_it_given_back(cut: int) -> None:
    source, original, rest = _cut_round(cut)
    update = original.update_bytes
    slim = original.snapshot(update=False)
    if update is None:
        assert slim == original.snapshot()
    else:
        assert len(slim) < len(original.snapshot()) - len(update) // 2
        with pytest.raises(LocalProtocolError, match="saved apart and is missing"):
            RoundMachine.restore(slim, random.Random(0).randbytes)
        with pytest.raises(LocalProtocolError, match="has 3 bytes"):
            RoundMachine.restore(slim, random.Random(0).randbytes, update=b"abc")
    clone_source = random.Random()
    clone_source.setstate(source.getstate())
    restored = RoundMachine.restore(slim, clone_source.randbytes, update=update)
    assert restored.snapshot() == original.snapshot()
    for thunk in rest:
        event = thunk()
        assert restored.send(event) == original.send(event)
    assert restored.snapshot() == original.snapshot()


def test_restore_refuses_an_update_for_a_snapshot_that_keeps_its_own() -> None:
    script = Script(seed=10, n=4, threshold=2)
    machine = RoundMachine(random.Random(1).randbytes)
    machine.send(script.opened())
    with pytest.raises(LocalProtocolError, match="keeps its own"):
        RoundMachine.restore(machine.snapshot(), random.Random(0).randbytes, update=b"\x00" * 8)


@pytest.mark.parametrize("cut", [0, 1])
def test_restore_before_dealing_deals_the_same_keys(cut: int) -> None:
    # Shamir's coefficients come from pycryptodome's own CSPRNG (protocol.shamir), so share
    # bytes and roots differ between two dealings; the keys drawn from the injected source,
    # and so the commitment's mask key and everything masked later, do not.
    script = Script(seed=13)
    source = random.Random(7)
    original = RoundMachine(source.randbytes)
    if cut:
        original.send(script.opened())
    clone_source = random.Random()
    clone_source.setstate(source.getstate())
    restored = RoundMachine.restore(original.snapshot(), clone_source.randbytes)
    outputs = []
    for machine in (original, restored):
        if not cut:
            machine.send(script.opened())
        actions = machine.send(SharePhaseOpened())
        outputs.append(([type(a) for a in actions], actions[-1].mask_public))
    assert outputs[0] == outputs[1]


STREAM_SCRIPT = Script(seed=11, n=4, threshold=2)

# One step of an event stream: an event code and its argument, turned into an event only when it
# is sent (the commitments depend on what the machine dealt). "restore" is a crash: the machine is
# reloaded from its latest snapshot, as an actor that persists before acting would.
Step = tuple[str, object]

# Member index sets (0 is "me"), biased towards sets that let the machine unmask.
subsets = st.sampled_from([(0, 1, 2), (0, 1, 2, 3), (0, 3), (0, 1), (1, 2, 3)]) | st.lists(
    st.integers(0, 3), unique=True, max_size=4
).map(sorted).map(tuple)
noise_steps = st.one_of(
    st.tuples(st.just("share"), st.none()),
    st.tuples(st.just("deliver"), st.tuples(st.integers(0, 2), st.booleans())),
    st.tuples(st.just("commitments"), subsets),
    st.tuples(st.just("update"), st.none()),
    st.tuples(st.just("submit"), st.none()),
    st.tuples(st.just("unmask"), subsets),
    st.tuples(st.just("finalized"), subsets),
    st.tuples(st.just("failed"), st.none()),
    st.tuples(st.just("tick"), st.sampled_from([0, SUBMIT_DEADLINE])),
    st.tuples(st.just("restore"), st.none()),
)


@st.composite
def event_streams(draw: st.DrawFn) -> list[Step]:
    """An honest round (with a random unmask set) mutated by random insertions, deletions and
    swaps: most streams reach the unmask phase, many through contradictory events."""
    honest: list[Step] = [
        ("share", None),
        ("deliver", (0, False)),
        ("deliver", (1, False)),
        ("deliver", (2, False)),
        ("commitments", (0, 1, 2, 3)),
        ("update", None),
        ("submit", None),
        ("unmask", draw(subsets)),
        ("finalized", (0, 1, 2)),
    ]
    # Contradictions after the fact: a second unmask set, a crash, a late share.
    tail = st.tuples(st.just("unmask"), subsets) | st.sampled_from(
        [("restore", None), ("deliver", (0, True)), ("tick", 0)]
    )
    honest[-1:-1] = draw(st.lists(tail, max_size=3))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["insert", "insert", "delete", "swap"]))
        pos = draw(st.integers(0, len(honest)))
        if kind == "insert":
            honest.insert(pos, draw(noise_steps))
        elif kind == "delete" and pos < len(honest):
            del honest[pos]
        elif kind == "swap" and pos + 1 < len(honest):
            honest[pos], honest[pos + 1] = honest[pos + 1], honest[pos]
    return honest


def _materialize(step: Step, machine: RoundMachine) -> Event:
    script = STREAM_SCRIPT
    code, arg = step

    def addrs(idx: object) -> tuple[int, ...]:
        return tuple(script.members[i] for i in idx)  # type: ignore[attr-defined]

    if code == "share":
        return SharePhaseOpened()
    if code == "deliver":
        peer, tamper = arg  # type: ignore[misc]
        sender = script.peers[peer]
        delivery = script.deliveries[sender]
        if tamper:
            delivery = msgspec.structs.replace(delivery, key_share=_flip(delivery.key_share))
        return ShareReceived(sender, delivery)
    if code == "commitments":
        return script.on_chain(machine, addrs(arg))
    if code == "update":
        return LocalUpdateReady(script.update)
    if code == "submit":
        return SubmitPhaseOpened(SUBMIT_DEADLINE)
    if code == "unmask":
        return UnmaskPhaseOpened(addrs(arg))
    if code == "finalized":
        return GroupFinalized(addrs(arg))
    if code == "failed":
        return GroupFailed("test")
    return DeadlineTick(arg)  # type: ignore[arg-type]


# Cheap examples (one machine, four members): run more of them than the profile's default.
@settings(max_examples=max(200, settings.default.max_examples))
@given(event_streams())
def test_never_both_secrets_under_arbitrary_event_streams(stream: list[Step]) -> None:
    script = STREAM_SCRIPT
    source = random.Random(5)
    machine = RoundMachine(source.randbytes)
    machine.send(script.opened())
    unmasks: list[tuple[tuple[int, ...], PostUnmask]] = []
    for step in stream:
        if step[0] == "restore":
            machine = RoundMachine.restore(machine.snapshot(), source.randbytes)
            continue
        event = _materialize(step, machine)
        was_terminal = machine.state in TERMINAL
        try:
            actions = machine.send(event)
        except ProtocolError:
            # Every refusal ends the machine, and only a refusal does.
            assert machine.state == State.ERROR
            continue
        assert not was_terminal
        submitted = event.submitted if isinstance(event, UnmaskPhaseOpened) else ()
        unmasks.extend((submitted, a) for a in actions if isinstance(a, PostUnmask))
    assert len(unmasks) <= 1
    kinds: dict[int, set[int]] = {}
    for submitted, post in unmasks:
        hypothesis_event("revealed")
        assert script.me in submitted and len(submitted) >= script.threshold
        for r in post.reveals:
            kinds.setdefault(r.dealer, set()).add(r.kind)
            # A seed share only of a submitter, a key share never of one.
            assert (r.kind == KIND_SELF_SEED) == (r.dealer in submitted)
    assert all(len(k) == 1 for k in kinds.values())
    assert machine.revealed == {(d, k) for d, ks in kinds.items() for k in ks}


# -- verifiable shares and complaints ----------------------------------------------------------


def test_a_share_off_the_committed_polynomial_is_refused_and_blamed() -> None:
    script = Script(seed=21, n=3, threshold=2)
    m = script.machine_in(State.SHARED)
    peer, other = script.peers
    good = script.deliveries[peer]
    # the shares still prove against the dealt root, but under another dealer's commitments
    forged = msgspec.structs.replace(good, points=script.deliveries[other].points)
    m.send(ShareReceived(peer, forged))
    assert peer not in m.dealers_held
    assert isinstance(m.peer_errors[peer], CommitmentError)
    assert "off the committed polynomial" in str(m.peer_errors[peer])


def test_settle_accuses_exactly_the_committed_dealers_without_valid_shares() -> None:
    script = Script(seed=22, n=4, threshold=2)
    m = script.machine_in(State.SHARED)
    held, missing, forged = script.peers
    m.send(ShareReceived(held, script.deliveries[held]))
    bad = msgspec.structs.replace(script.deliveries[forged], points=script.deliveries[held].points)
    m.send(ShareReceived(forged, bad))
    (settle,) = m.send(SettleDue(script.on_chain(m).commitments))
    assert isinstance(settle, PostSettle)
    assert set(settle.accused) == {missing, forged}
    assert m.settlement() == settle
    with pytest.raises(LocalProtocolError):
        m.send(SettleDue(script.on_chain(m).commitments))


def test_settle_waits_for_late_deliveries_until_its_cutoff() -> None:
    """With a cut-off, SETTLE waits: the last missing delivery files no complaint at all; a
    DeadlineTick at the cut-off files complaints against whoever is still missing. The wait is
    the machine's `waiting().deadline`, and both survive a snapshot."""
    script = Script(seed=25, n=4, threshold=2)
    m = script.machine_in(State.SHARED)
    first, second, late = script.peers
    m.send(ShareReceived(first, script.deliveries[first]))
    assert m.send(SettleDue(script.on_chain(m).commitments, cutoff=500)) == []
    waiting = m.waiting()
    assert Fact.SETTLE not in waiting.facts and waiting.deadline == 500
    m = RoundMachine.restore(m.snapshot(), script.source.randbytes)
    assert m.send(DeadlineTick(499)) == []
    assert m.send(ShareReceived(second, script.deliveries[second])) == []
    (settle,) = m.send(ShareReceived(late, script.deliveries[late]))
    assert settle == PostSettle(()) and m.settlement() == settle

    m = script.machine_in(State.SHARED)
    m.send(ShareReceived(first, script.deliveries[first]))
    m.send(SettleDue(script.on_chain(m).commitments, cutoff=500))
    (settle,) = m.send(DeadlineTick(500))
    assert set(settle.accused) == {second, late}
    assert m.waiting().deadline is None  # settled: no deadline of SETTLE's any more


def test_waiting_names_what_each_state_needs() -> None:
    script = Script(seed=26, n=3, threshold=2)
    m = script.machine()
    m.send(script.opened())
    assert m.waiting() == Waiting((Fact.SHARE_PHASE, Fact.UPDATE))
    m.send(SharePhaseOpened())
    assert m.waiting().facts == (Fact.SETTLE, Fact.COMMITMENTS, Fact.SUBMIT_PHASE, Fact.UPDATE)
    for peer in script.peers:
        m.send(ShareReceived(peer, script.deliveries[peer]))
    m.send(script.on_chain(m))
    assert m.waiting().facts == (Fact.SUBMIT_PHASE, Fact.UPDATE)
    m.send(SubmitPhaseOpened(SUBMIT_DEADLINE))
    assert m.waiting() == Waiting((Fact.UPDATE,), SUBMIT_DEADLINE)
    m.send(LocalUpdateReady(script.update))
    assert m.state is State.SUBMITTED and m.waiting() == Waiting((Fact.UNMASK_PHASE,))
    m.send(UnmaskPhaseOpened(script.members))
    assert m.waiting() == Waiting((Fact.RESULT,))
    m.send(GroupFinalized(script.members))
    assert m.waiting() == Waiting(())


def test_answered_shares_come_back_as_a_delivery_and_the_round_goes_on() -> None:
    script = Script(seed=23, n=3, threshold=2)
    m = script.machine_in(State.SHARED)
    held, missing = script.peers
    m.send(ShareReceived(held, script.deliveries[held]))
    (settle,) = m.send(SettleDue(script.on_chain(m).commitments))
    assert settle.accused == (missing,)
    # the dealer's answer, read back from chain data, is an ordinary delivery from it
    m.send(ShareReceived(missing, script.deliveries[missing]))
    assert m.dealers_held == {script.me, held, missing}
    m.send(script.on_chain(m))
    m.send(LocalUpdateReady(script.update))
    (chunk, *_) = m.send(SubmitPhaseOpened(SUBMIT_DEADLINE))
    assert isinstance(chunk, PostChunk) and m.state == State.SUBMITTED


def test_a_dealer_answers_with_the_shares_it_dealt() -> None:
    script = Script(seed=24, n=3, threshold=2)
    dealer = script.machine_in(State.SHARED)
    holder = script.peers[0]
    answer = dealer.answer(holder)
    assert isinstance(answer, PostAnswer) and answer.holder == holder
    (delivery,) = [a.delivery for a in dealer.deliveries() if a.to == holder]
    assert (answer.seed_share, answer.key_share) == (delivery.seed_share, delivery.key_share)
    assert (answer.seed_blind, answer.key_blind) == (delivery.seed_blind, delivery.key_blind)
    assert (answer.seed_proof, answer.key_proof) == (delivery.seed_proof, delivery.key_proof)
    assert answer.points == delivery.points == dealer.commitment().points
    x = script.members.index(holder) + 1
    for kind, share, blind in (
        (KIND_SELF_SEED, answer.seed_share, answer.seed_blind),
        (KIND_MASK_KEY, answer.key_share, answer.key_blind),
    ):
        assert verify_share(x, share, blind, delivery.polynomial(kind), 2)
    assert dealer.answer(12345) is None
    # reading an answer changes nothing: only ComplaintsAgainstUs answers and sits out
    assert dealer.state == State.SHARED


def test_complaints_against_us_answer_each_and_sit_the_round_out() -> None:
    script = Script(seed=25, n=4, threshold=2)
    m = script.machine_in(State.SHARED)
    for peer, delivery in script.deliveries.items():
        m.send(ShareReceived(peer, delivery))
    m.send(script.on_chain(m))
    m.send(SettleDue(script.on_chain(m).commitments))
    m.send(LocalUpdateReady(script.update))
    holders = (script.peers[2], script.peers[0])
    actions = m.send(ComplaintsAgainstUs(holders))
    # one answer per complaining holder, in the order given, each what we dealt it
    answers = [a for a in actions if isinstance(a, PostAnswer)]
    assert [a.holder for a in answers] == list(holders)
    assert answers == [m.answer(h) for h in holders]
    assert isinstance(actions[-1], Failed) and len(actions) == len(holders) + 1
    assert m.state == State.FAILED and "public" in m.failure and "sit the round out" in m.failure
    # persisted: a restored machine has failed too, with nothing to submit
    restored = RoundMachine.restore(m.snapshot(), random.Random(0).randbytes)
    assert restored.state == State.FAILED and restored.chunks() == []
    # never submits: the submit phase opening is refused, and there are no chunks to redo
    assert m.chunks() == []
    with pytest.raises(LocalProtocolError, match="not allowed"):
        m.send(SubmitPhaseOpened(SUBMIT_DEADLINE))
    assert m.chunks() == [] and m.unmask() is None


@pytest.mark.parametrize(
    ("holders", "error"),
    [
        ((), LocalProtocolError),
        ("dup", ChainDataError),
        ("me", ChainDataError),
        ((7,), ChainDataError),
    ],
)
def test_complaints_against_us_refuse_what_the_court_never_holds(holders, error) -> None:
    m = SCRIPT.machine_in(State.SHARED)
    if holders == "dup":
        holders = (SCRIPT.peers[0], SCRIPT.peers[0])
    elif holders == "me":
        holders = (SCRIPT.me,)
    before = _record(m)
    with pytest.raises(error):
        m.send(ComplaintsAgainstUs(holders))
    assert m.state == State.ERROR and _record(m) == before


def _crafted_delivery(script: Script, dealer: int, key_blind_shift: int) -> ShareDelivery:
    """A delivery to ``me`` from ``dealer`` whose tree commits to the blinds given, so its Merkle
    proofs pass whatever the blinds are: only the Pedersen check can refuse it."""
    dealing = deal_round(TASK, ROUND, dealer, script.members, 2, random.Random(5).randbytes)
    key_blinds = list(dealing.key.blinds)
    shifted = (int.from_bytes(key_blinds[0], "big") + key_blind_shift) % FIELD_ORDER
    key_blinds[0] = shifted.to_bytes(32, "big")
    tree = deal_commitment(
        TASK,
        ROUND,
        dealer,
        script.members,
        dealing.seed.shares,
        dealing.key.shares,
        dealing.seed.blinds,
        key_blinds,
    )
    return ShareDelivery(
        task=TASK,
        round=ROUND,
        dealer=address_bytes(dealer),
        holder=address_bytes(script.me),
        seed_share=dealing.seed.shares[0],
        seed_blind=dealing.seed.blinds[0],
        key_share=dealing.key.shares[0],
        key_blind=key_blinds[0],
        mask_public=dealing.keys.public,
        shares_root=tree.root,
        seed_proof=tuple(tree.proof(0, KIND_SELF_SEED)),
        key_proof=tuple(tree.proof(0, KIND_MASK_KEY)),
        points=dealing.points,
    )


def test_a_blind_off_its_polynomial_is_refused_under_a_valid_tree() -> None:
    script = Script(seed=26, n=3, threshold=2)
    peer, other = script.peers
    m = script.machine_in(State.SHARED)
    m.send(ShareReceived(peer, _crafted_delivery(script, peer, key_blind_shift=1)))
    assert peer not in m.dealers_held
    assert "kind 1 is off the committed polynomial" in str(m.peer_errors[peer])
    # the same recipe with the dealt blind is an ordinary, valid delivery
    m.send(ShareReceived(other, _crafted_delivery(script, other, key_blind_shift=0)))
    assert other in m.dealers_held and other not in m.peer_errors
