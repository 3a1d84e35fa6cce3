"""SharesCourt and the SETTLE phase: complaints, answers checked against Feldman commitments, and
the exclusion of a dealer that leaves a complaint unanswered."""

import boa
import pytest

from protocol.constants import (
    GROUP_FINALIZED,
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    PHASE_SETTLE,
    PHASE_SUBMIT,
    STATUS_COMMITTED,
    STATUS_NONE,
)
from tests.contracts.market import events


@pytest.fixture
def settling_run(sharing_run):
    """Round 0 in SETTLE; every member of both groups (sizes 3 and 2) committed honestly."""
    r = sharing_run
    for group in r.groups():
        for do in group:
            r.commit(do)
    r.advance_after_deadline()
    assert r.market.task_phase(r.task) == PHASE_SETTLE
    return r


def _bits(group: list[str], *accused: str) -> int:
    return sum(1 << group.index(d) for d in accused)


# -- binding ---------------------------------------------------------------------------------


def test_court_is_bound_to_its_market(market, court, stranger):
    assert court.market() == market.address
    with boa.reverts("court: already bound"):
        court.bind(sender=stranger)


# -- settle ----------------------------------------------------------------------------------


def test_complaint_is_recorded(settling_run):
    r = settling_run
    big, _ = r.groups()
    holder, dealer = big[0], big[1]
    court = r.court
    court.settle(r.task, 0, _bits(big, dealer), value=r.deposit(_bits(big, dealer)), sender=holder)
    (complaint,) = events(court, "Complaint")
    assert (complaint.dealer, complaint.holder) == (dealer, holder)
    (settled,) = events(court, "Settled")
    assert (settled.holder, settled.accused) == (holder, _bits(big, dealer))
    assert court.complaint_open(r.task, 0, dealer, holder)
    assert court.open_against(r.task, 0, dealer) == 1
    assert court.round_open(r.task, 0) == 1
    assert court.settled(r.task, 0, holder)
    assert court.round_settled(r.task, 0) == 1
    assert list(court.accused_of(r.task, 0)) == [dealer]


def test_settle_without_complaints(settling_run):
    r = settling_run
    big, _ = r.groups()
    r.court.settle(r.task, 0, 0, sender=big[0])
    assert events(r.court, "Complaint") == []
    assert r.court.round_settled(r.task, 0) == 1
    assert r.court.round_open(r.task, 0) == 0


def test_settle_twice(settling_run):
    r = settling_run
    big, _ = r.groups()
    r.court.settle(r.task, 0, 0, sender=big[0])
    with boa.reverts("court: already settled"):
        r.court.settle(
            r.task, 0, _bits(big, big[1]), value=r.deposit(_bits(big, big[1])), sender=big[0]
        )


def test_settle_outside_group(settling_run):
    r = settling_run
    _big, small = r.groups()
    with boa.reverts("court: not in group"):
        r.court.settle(r.task, 0, 1 << len(small), sender=small[0])


def test_complaint_against_self(settling_run):
    r = settling_run
    big, _ = r.groups()
    with boa.reverts("court: complaint against self"):
        r.court.settle(
            r.task, 0, _bits(big, big[0]), value=r.deposit(_bits(big, big[0])), sender=big[0]
        )


def test_settle_needs_a_committed_holder_and_dealer(sharing_run):
    r = sharing_run
    big, small = r.groups()
    for do in big[:2] + small:
        r.commit(do)
    r.advance_after_deadline()
    with boa.reverts("court: not committed"):
        r.court.settle(r.task, 0, 0, sender=big[2])
    with boa.reverts("court: dealer not committed"):
        r.court.settle(
            r.task, 0, _bits(big, big[2]), value=r.deposit(_bits(big, big[2])), sender=big[0]
        )


def test_settle_wrong_phase_round_and_deadline(settling_run):
    r = settling_run
    big, _ = r.groups()
    with boa.reverts("court: wrong round"):
        r.court.settle(r.task, 1, 0, sender=big[0])
    boa.env.time_travel(seconds=r.cfg["share_duration"] // 2)
    with boa.reverts("court: complaints closed"):
        r.court.settle(r.task, 0, 0, sender=big[0])
    boa.env.time_travel(seconds=r.cfg["share_duration"])
    with boa.reverts("court: deadline passed"):
        r.court.settle(r.task, 0, 0, sender=big[0])
    r.market.advance(r.task)
    assert r.market.task_phase(r.task) == PHASE_SUBMIT
    with boa.reverts("court: wrong phase"):
        r.court.settle(r.task, 0, 0, sender=big[0])


# -- answer ----------------------------------------------------------------------------------


def test_honest_dealer_answers_a_false_complaint_is_paid_and_sits_the_round_out(settling_run):
    """Answering keeps the dealer's commitment (and bond) and pays it the complaint's deposit,
    but its shares are public now: the market refuses its update this round."""
    r = settling_run
    big, _small = r.groups()
    holder, dealer = big[0], big[1]
    court = r.court
    court.settle(r.task, 0, _bits(big, dealer), value=r.deposit(_bits(big, dealer)), sender=holder)
    court.answer(*r.answer_args(dealer, holder), sender=dealer)
    (answered,) = events(court, "ComplaintAnswered")
    _, shares = r.dealt[(0, dealer)]
    p = big.index(holder)
    assert (answered.dealer, answered.holder) == (dealer, holder)
    assert (answered.seed_share, answered.seed_blind) == shares[(p, KIND_SELF_SEED)]
    assert (answered.key_share, answered.key_blind) == shares[(p, KIND_MASK_KEY)]
    assert court.credits(r.cfg["token"], dealer) == r.cfg["reward_per_do"]
    assert r.market.exposed(r.task, 0, dealer) and r.market.round_exposed(r.task, 0) == 1
    assert not court.complaint_open(r.task, 0, dealer, holder)
    assert court.round_open(r.task, 0) == 0
    r.settle_all({})  # everybody else settles; nothing is open: SETTLE closes early
    assert r.market.task_phase(r.task) == PHASE_SUBMIT
    assert r.market.do_status(r.task, 0, dealer) == STATUS_COMMITTED
    assert events(r.market, "DealerExcluded") == []
    with boa.reverts("rounds: shares exposed"):
        r.submit(dealer)


def test_answer_without_complaint(settling_run):
    r = settling_run
    big, _ = r.groups()
    with boa.reverts("court: no open complaint"):
        r.court.answer(*r.answer_args(big[1], big[0]), sender=big[1])


def test_answer_twice(settling_run):
    r = settling_run
    big, _ = r.groups()
    r.court.settle(
        r.task, 0, _bits(big, big[1]), value=r.deposit(_bits(big, big[1])), sender=big[0]
    )
    r.court.answer(*r.answer_args(big[1], big[0]), sender=big[1])
    with boa.reverts("court: no open complaint"):
        r.court.answer(*r.answer_args(big[1], big[0]), sender=big[1])


def test_answer_with_other_points(settling_run):
    r = settling_run
    big, _ = r.groups()
    r.court.settle(
        r.task, 0, _bits(big, big[1]), value=r.deposit(_bits(big, big[1])), sender=big[0]
    )
    args = list(r.answer_args(big[1], big[0]))
    args[-1] = r.points[(0, big[2])]
    with boa.reverts("court: wrong points"):
        r.court.answer(*args, sender=big[1])


@pytest.mark.parametrize("which", [0, 1])
def test_answer_with_a_share_not_in_the_tree(settling_run, which):
    r = settling_run
    big, _ = r.groups()
    r.court.settle(
        r.task, 0, _bits(big, big[1]), value=r.deposit(_bits(big, big[1])), sender=big[0]
    )
    args = list(r.answer_args(big[1], big[0]))
    shares = list(args[3])
    shares[which] = bytes(31) + b"\x01"
    args[3] = shares
    with boa.reverts("court: bad proof"):
        r.court.answer(*args, sender=big[1])


@pytest.mark.parametrize("kind", [KIND_SELF_SEED, KIND_MASK_KEY])
def test_cheating_dealer_cannot_answer_and_is_excluded(sharing_run, kind):
    """A share in the dealer's tree but off its committed polynomial: the holder complains, the
    dealer's answer fails the Feldman check, and SETTLE's close takes its commitment back."""
    r = sharing_run
    big, small = r.groups()
    cheat, victim = big[2], big[0]
    for do in big + small:
        r.commit(do, corrupt=(victim, kind) if do == cheat else None)
    r.advance_after_deadline()
    court = r.court
    court.settle(r.task, 0, _bits(big, cheat), value=r.deposit(_bits(big, cheat)), sender=victim)
    with boa.reverts("court: share off polynomial"):
        court.answer(*r.answer_args(cheat, victim), sender=cheat)
    committed = r.market.round_committed(r.task, 0)
    r.advance_after_deadline()
    (excluded,) = events(r.market, "DealerExcluded")
    assert excluded.dealer == cheat
    assert r.market.do_status(r.task, 0, cheat) == STATUS_NONE
    assert r.market.round_committed(r.task, 0) == committed - 1
    assert r.market.group_committed(r.task, 0, 0) == len(big) - 1
    assert r.market.commits_made(r.task, cheat) == 0
    # the others go on without it: its shares are neither due nor accepted at unmask
    with boa.reverts("rounds: not committed"):
        r.market.submit(r.task, 0, 0, r.words(cheat), sender=cheat)
    for do in big[:2] + small:
        r.submit(do)
    r.advance_after_deadline()
    for do in big[:2]:
        r.unmask(do)
    assert r.market.group_result(r.task, 0, 0) == GROUP_FINALIZED
    assert not r.market.is_credited(r.task, 0, cheat)
    assert r.market.bond_forfeited(r.task, cheat)


def test_dealer_that_ignores_a_complaint_is_excluded(settling_run):
    r = settling_run
    big, _ = r.groups()
    r.settle(big[0], _bits(big, big[1]))
    r.settle(big[1], _bits(big, big[2]))
    r.court.answer(*r.answer_args(big[2], big[1]), sender=big[2])
    r.advance_after_deadline()
    assert [e.dealer for e in events(r.market, "DealerExcluded")] == [big[1]]
    assert r.market.do_status(r.task, 0, big[1]) == STATUS_NONE
    assert r.market.do_status(r.task, 0, big[2]) == STATUS_COMMITTED


def test_settle_does_not_close_early_while_a_complaint_is_open(settling_run):
    r = settling_run
    big, small = r.groups()
    court = r.court
    court.settle(r.task, 0, _bits(big, big[1]), value=r.deposit(_bits(big, big[1])), sender=big[0])
    for do in big[1:] + small:
        court.settle(r.task, 0, 0, sender=do)
    with boa.reverts("rounds: phase not over"):
        r.market.advance(r.task)
    court.answer(*r.answer_args(big[1], big[0]), sender=big[1])
    r.market.advance(r.task)
    assert r.market.task_phase(r.task) == PHASE_SUBMIT


def test_answer_after_settle_deadline(settling_run):
    r = settling_run
    big, _ = r.groups()
    r.court.settle(
        r.task, 0, _bits(big, big[1]), value=r.deposit(_bits(big, big[1])), sender=big[0]
    )
    boa.env.time_travel(seconds=r.cfg["share_duration"])
    with boa.reverts("court: deadline passed"):
        r.court.answer(*r.answer_args(big[1], big[0]), sender=big[1])


def test_dealer_with_points_off_the_curve_can_never_answer(sharing_run):
    """Points that are not on BN254 (here (1, 1): 1 != 1 + 3) make the ecMul precompile fail:
    the answer reverts whatever the shares, and SETTLE's close excludes the dealer."""
    r = sharing_run
    big, small = r.groups()
    cheat, victim = big[1], big[0]
    for do in big + small:
        if do != cheat:
            r.commit(do)
    dealt = r.deal(cheat)
    garbage = ((1).to_bytes(32, "big") * 2) * (2 * r.cfg["threshold"])
    r.points[(0, cheat)] = garbage
    r.market.commit_shares(r.task, 0, b"\x01" * 32, dealt.root, garbage, sender=cheat)
    r.advance_after_deadline()
    r.court.settle(r.task, 0, _bits(big, cheat), value=r.deposit(_bits(big, cheat)), sender=victim)
    with boa.reverts():
        r.court.answer(*r.answer_args(cheat, victim), sender=cheat)
    r.advance_after_deadline()
    assert r.market.do_status(r.task, 0, cheat) == STATUS_NONE


def test_complaints_close_halfway_through_settle(new_run, data_owners):
    """The cut-off is half the SETTLE phase (as long as SHARE), whatever the other durations."""
    r = new_run(share_duration=40, submit_duration=1_000, unmask_duration=30)
    r.start(data_owners[:5])
    big, small = r.groups()
    for do in big + small:
        r.commit(do)
    r.advance_after_deadline()
    assert r.market.deadline(r.task) == boa.env.timestamp + 40
    boa.env.time_travel(seconds=19)
    r.court.settle(r.task, 0, 0, sender=big[0])
    boa.env.time_travel(seconds=1)
    with boa.reverts("court: complaints closed"):
        r.court.settle(r.task, 0, 0, sender=big[1])
