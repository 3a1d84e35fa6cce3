"""unmask: each reveal checked against its dealer's root; the t-th message credits the group."""

import boa
import pytest

from protocol.constants import (
    GROUP_FAILED,
    GROUP_FINALIZED,
    GROUP_PENDING,
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    PHASE_ROUND_DONE,
    PHASE_UNMASK,
    STATUS_UNMASKED,
)
from tests.contracts.market import ETH, events


@pytest.fixture
def unmask_run(sharing_run):
    """Round 0 in UNMASK. Big group of 3: two submitted, the third only committed.
    Small group of 2: both submitted."""
    r = sharing_run
    big, small = r.groups()
    r.play_round(big + small, big[:2] + small, [])
    assert r.market.task_phase(r.task) == PHASE_UNMASK
    r.big, r.small = big, small
    return r


def test_reveals_follow_member_order_and_kinds(unmask_run):
    r = unmask_run
    reveals = r.reveals(r.big[0])
    assert [(dealer, kind) for dealer, kind, *_ in reveals] == [
        (r.big[0], KIND_SELF_SEED),
        (r.big[1], KIND_SELF_SEED),
        (r.big[2], KIND_MASK_KEY),
    ]


def test_first_message_reveals_without_paying(unmask_run):
    r = unmask_run
    reveals = r.reveals(r.big[0])
    r.court.unmask(r.task, 0, reveals, sender=r.big[0])
    (unmasked,) = events(r.court, "Unmasked")
    assert not events(r.court, "GroupPaid")
    revealed = events(r.court, "ShareRevealed")
    assert [(e.dealer, e.holder, e.kind) for e in revealed] == [
        (r.big[0], r.big[0], KIND_SELF_SEED),
        (r.big[1], r.big[0], KIND_SELF_SEED),
        (r.big[2], r.big[0], KIND_MASK_KEY),
    ]
    assert [e.share for e in revealed] == [share for _, _, share, *_ in reveals]
    assert unmasked.count == 1
    assert r.market.unmask_count(r.task, 0, 0) == 1
    assert r.market.do_status(r.task, 0, r.big[0]) == STATUS_UNMASKED
    assert r.market.group_result(r.task, 0, 0) == GROUP_PENDING
    assert r.market.credits(ETH, r.big[0]) == 0


def test_threshold_message_credits_every_submitter(unmask_run):
    r = unmask_run
    reward = r.cfg["reward_per_do"]
    escrow = r.market.escrow_remaining(r.task)
    r.unmask(r.big[1])
    reveals = r.reveals(r.big[0])
    r.court.unmask(r.task, 0, reveals, sender=r.big[0])
    (paid,) = events(r.court, "GroupPaid")
    assert (paid.group, paid.submitters, paid.reward) == (0, 2, reward)
    credited = events(r.court, "Credited")
    assert sorted(e.account for e in credited) == sorted(r.big[:2])
    assert r.market.group_result(r.task, 0, 0) == GROUP_FINALIZED
    assert r.market.credits(ETH, r.big[0]) == reward
    assert r.market.credits(ETH, r.big[1]) == reward
    assert r.market.credits(ETH, r.big[2]) == 0
    assert r.market.escrow_remaining(r.task) == escrow - 2 * reward
    assert r.market.is_credited(r.task, 0, r.big[0])
    assert not r.market.is_credited(r.task, 0, r.big[2])
    assert not r.market.is_credited(r.task, 0, r.small[0])
    assert r.market.task_phase(r.task) == PHASE_UNMASK


def test_group_cannot_finalize_twice(sharing_run):
    r = sharing_run
    big, small = r.groups()
    r.play_round(big + small, big + small, big[:2])
    with boa.reverts("rounds: group not pending"):
        r.unmask(big[2])


def test_failed_group_cannot_unmask(sharing_run):
    r = sharing_run
    big, small = r.groups()
    r.play_round(big + small, big + small[:1], [])
    assert r.market.group_result(r.task, 0, 1) == GROUP_FAILED
    with boa.reverts("rounds: group not pending"):
        r.unmask(small[0])


def test_unmask_twice(unmask_run):
    r = unmask_run
    r.unmask(r.big[0])
    with boa.reverts("rounds: already unmasked"):
        r.unmask(r.big[0])


def test_unmask_by_non_submitter(unmask_run, stranger):
    r = unmask_run
    with boa.reverts("rounds: not a submitter"):
        r.court.unmask(r.task, 0, r.reveals(r.big[0]), sender=r.big[2])
    with boa.reverts("rounds: not a submitter"):
        r.court.unmask(r.task, 0, [], sender=stranger)


def test_wrong_dealer_order(unmask_run):
    r = unmask_run
    reveals = r.reveals(r.big[0])
    reveals[0], reveals[1] = reveals[1], reveals[0]
    with boa.reverts("commitments: wrong dealer"):
        r.court.unmask(r.task, 0, reveals, sender=r.big[0])


def test_both_secrets_of_one_dealer_refused(unmask_run):
    r = unmask_run
    reveals = r.reveals(r.big[0])
    dealer = r.big[1]
    dealt, shares = r.dealt[(0, dealer)]
    position = r.big.index(r.big[0])
    reveals[1] = (
        dealer,
        KIND_MASK_KEY,
        *shares[(position, KIND_MASK_KEY)],
        dealt.proof(position, 1),
        r.points[(0, dealer)],
    )
    with boa.reverts("commitments: wrong kind"):
        r.court.unmask(r.task, 0, reveals, sender=r.big[0])


def test_seed_of_non_submitter_refused(unmask_run):
    r = unmask_run
    reveals = r.reveals(r.big[0])
    dealt, shares = r.dealt[(0, r.big[2])]
    points = r.points[(0, r.big[2])]
    reveals[2] = (r.big[2], KIND_SELF_SEED, *shares[(0, KIND_SELF_SEED)], dealt.proof(0, 0), points)
    with boa.reverts("commitments: wrong kind"):
        r.court.unmask(r.task, 0, reveals, sender=r.big[0])


def test_altered_share_fails_proof(unmask_run):
    r = unmask_run
    reveals = r.reveals(r.big[0])
    dealer, kind, share, blind, proof, points = reveals[1]
    reveals[1] = (dealer, kind, bytes([share[0] ^ 1]) + share[1:], blind, proof, points)
    with boa.reverts("commitments: bad proof"):
        r.court.unmask(r.task, 0, reveals, sender=r.big[0])


def test_another_holders_share_fails_proof(unmask_run):
    r = unmask_run
    with boa.reverts("commitments: bad proof"):
        r.court.unmask(r.task, 0, r.reveals(r.big[1]), sender=r.big[0])


def test_short_proof_fails(unmask_run):
    r = unmask_run
    reveals = r.reveals(r.big[0])
    dealer, kind, share, blind, proof, points = reveals[0]
    reveals[0] = (dealer, kind, share, blind, proof[:-1], points)
    with boa.reverts("commitments: bad proof"):
        r.court.unmask(r.task, 0, reveals, sender=r.big[0])


def test_missing_and_extra_reveals(unmask_run):
    r = unmask_run
    reveals = r.reveals(r.big[0])
    with boa.reverts("commitments: missing reveal"):
        r.court.unmask(r.task, 0, reveals[:2], sender=r.big[0])
    with boa.reverts("commitments: extra reveal"):
        r.court.unmask(r.task, 0, [*reveals, reveals[0]], sender=r.big[0])


def test_silent_member_gets_no_reveal(sharing_run):
    r = sharing_run
    big, small = r.groups()
    r.play_round(big[:2] + small, big[:2] + small, [])
    reveals = r.reveals(big[0])
    assert [dealer for dealer, *_ in reveals] == big[:2]
    forged = (big[2], KIND_MASK_KEY, bytes(32), bytes(32), [], b"")
    with boa.reverts("commitments: extra reveal"):
        r.court.unmask(r.task, 0, [*reveals, forged], sender=big[0])
    r.court.unmask(r.task, 0, reveals, sender=big[0])


def test_unmask_wrong_phase_round_deadline(unmask_run):
    r = unmask_run
    with boa.reverts("court: wrong round"):
        r.court.unmask(r.task, 1, r.reveals(r.big[0]), sender=r.big[0])
    boa.env.time_travel(seconds=r.cfg["unmask_duration"])
    with boa.reverts("court: deadline passed"):
        r.unmask(r.big[0])
    r.market.advance(r.task)
    with boa.reverts("court: wrong phase"):
        r.court.unmask(r.task, 0, r.reveals(r.big[0]), sender=r.big[0])
    assert r.market.task_phase(r.task) == PHASE_ROUND_DONE


def test_unmask_in_submit_phase(sharing_run):
    r = sharing_run
    big, small = r.groups()
    for do in big + small:
        r.commit(do)
    r.advance_after_deadline()
    r.settle_all()
    r.submit(big[0])
    with boa.reverts("court: wrong phase"):
        r.court.unmask(r.task, 0, [], sender=big[0])


def test_larger_group_and_threshold(new_run, data_owners):
    r = new_run(max_dos=12, min_dos=8, group_size=4, threshold=3)
    r.start(data_owners[:9])
    (group,) = r.groups()[:1]
    assert len(group) in (4, 5)
    everyone = [do for g in r.groups() for do in g]
    r.play_round(everyone, everyone, group[:2])
    assert r.market.group_result(r.task, 0, 0) == GROUP_PENDING
    r.unmask(group[2])
    assert r.market.group_result(r.task, 0, 0) == GROUP_FINALIZED
    assert all(r.market.is_credited(r.task, 0, do) for do in group)
