"""advance: every transition, early closes, cancellation and the groups drawn at close."""

import boa
import pytest
from eth_utils import keccak

from protocol.constants import (
    GROUP_FAILED,
    GROUP_FINALIZED,
    GROUP_PENDING,
    PHASE_CANCELLED,
    PHASE_DRAW,
    PHASE_ENDED,
    PHASE_REGISTER,
    PHASE_ROUND_DONE,
    PHASE_SETTLE,
    PHASE_SHARE,
    PHASE_SUBMIT,
    PHASE_UNMASK,
)
from tests.contracts.market import escrow_of, events, shuffle_groups


def test_unknown_task(market, stranger):
    with boa.reverts("rounds: no such task"):
        market.advance(1, sender=stranger)


def test_register_not_over(run, data_owners):
    run.register(data_owners[:5])
    boa.env.time_travel(seconds=run.cfg["register_duration"] - 1)
    with boa.reverts("rounds: phase not over"):
        run.market.advance(run.task)


def test_register_closes_with_groups(run, data_owners, stranger):
    run.register(data_owners[:5])
    boa.env.time_travel(seconds=run.cfg["register_duration"])
    run.market.advance(run.task, sender=stranger)
    assert run.market.task_phase(run.task) == PHASE_DRAW
    run.draw(keccak(b"hash of the closing block"))
    (fixed,) = events(run.market, "GroupsFixed")
    assert (fixed.members, fixed.groups) == (5, 2)
    assert run.market.task_phase(run.task) == PHASE_SHARE
    assert run.market.current_round(run.task) == 0
    assert run.market.rounds_opened(run.task) == 1
    assert run.market.round_model_hash(run.task, 0) == run.cfg["model_hash"]
    assert run.market.deadline(run.task) == boa.env.timestamp + run.cfg["share_duration"]
    expected = shuffle_groups(data_owners[:5], keccak(b"hash of the closing block"), run.task, 2)
    assert run.groups() == expected
    assert sorted(do for group in expected for do in group) == sorted(data_owners[:5])
    for g, group in enumerate(expected):
        for p, do in enumerate(group):
            assert run.market.group_of(run.task, do) == g
            assert run.market.position_of(run.task, do) == p


@pytest.mark.parametrize(
    ("members", "m", "sizes"), [(4, 2, [2, 2]), (5, 2, [3, 2]), (7, 3, [4, 3]), (6, 4, [6])]
)
def test_groups_are_balanced(new_run, data_owners, members, m, sizes):
    r = new_run(group_size=m, threshold=2, min_dos=m, max_dos=8)
    r.start(data_owners[:members])
    assert [len(group) for group in r.groups()] == sizes


def test_groups_depend_on_randomness(new_run, data_owners):
    seen = set()
    for i in range(6):
        with boa.env.anchor():
            r = new_run(max_dos=12, min_dos=12)
            r.create()
            r.publish(0)
            r.register(data_owners)
            r.market.advance(r.task)
            r.draw(keccak(bytes([i])))
            seen.add(tuple(tuple(group) for group in r.groups()))
    assert len(seen) > 1


def test_position_of_non_member(sharing_run, stranger):
    with boa.reverts("registry: not a member"):
        sharing_run.market.position_of(sharing_run.task, stranger)


def test_register_closes_early_when_full_and_published(run, data_owners):
    run.register(data_owners[:6])
    run.market.advance(run.task)
    assert run.market.task_phase(run.task) == PHASE_DRAW
    run.draw()
    assert run.market.task_phase(run.task) == PHASE_SHARE
    assert run.market.group_count(run.task) == 3


def test_full_task_waits_for_its_model(new_run, data_owners):
    r = new_run()
    r.create()
    r.register(data_owners[:6])
    with boa.reverts("rounds: phase not over"):
        r.market.advance(r.task)
    r.publish(0)
    r.market.advance(r.task)
    assert r.market.task_phase(r.task) == PHASE_DRAW


def test_cancel_below_min_dos_refunds(run, data_owners):
    run.register(data_owners[:3])
    run.advance_after_deadline()
    (cancelled,) = events(run.market, "TaskCancelled")
    assert (cancelled.members, cancelled.model_published) == (3, True)
    assert run.market.task_phase(run.task) == PHASE_CANCELLED
    assert run.market.credits(run.cfg["token"], run.owner) == escrow_of(run.cfg)
    assert run.market.escrow_remaining(run.task) == 0
    assert run.market.group_count(run.task) == 0


@pytest.mark.parametrize("published", [None, b"another model"])
def test_cancel_without_the_announced_model(new_run, data_owners, published):
    r = new_run()
    r.create()
    if published:
        r.publish(0, published)
    r.register(data_owners[:6])
    r.advance_after_deadline()
    assert events(r.market, "TaskCancelled")[0].model_published is False
    assert r.market.task_phase(r.task) == PHASE_CANCELLED
    assert r.market.credits(r.cfg["token"], r.owner) == escrow_of(r.cfg)


def test_over_tasks_do_not_advance(run, data_owners):
    run.advance_after_deadline()
    with boa.reverts("rounds: task over"):
        run.market.advance(run.task)


def test_share_closes_at_deadline_or_when_all_committed(sharing_run, data_owners):
    r = sharing_run
    for do in data_owners[:4]:
        r.commit(do)
    with boa.reverts("rounds: phase not over"):
        r.market.advance(r.task)
    r.commit(data_owners[4])
    r.market.advance(r.task)
    assert r.market.task_phase(r.task) == PHASE_SETTLE
    assert r.market.deadline(r.task) == boa.env.timestamp + r.cfg["share_duration"]


def test_settle_closes_early_when_every_committer_settled_and_nothing_is_open(
    sharing_run, data_owners
):
    r = sharing_run
    for do in data_owners[:4]:
        r.commit(do)
    r.advance_after_deadline()
    court = r.court
    for do in data_owners[:3]:
        court.settle(r.task, 0, 0, sender=do)
    with boa.reverts("rounds: phase not over"):
        r.market.advance(r.task)
    court.settle(r.task, 0, 0, sender=data_owners[3])
    r.market.advance(r.task)
    assert r.market.task_phase(r.task) == PHASE_SUBMIT
    assert r.market.deadline(r.task) == boa.env.timestamp + r.cfg["submit_duration"]


def test_settle_closes_at_deadline_without_settlements(sharing_run, data_owners):
    sharing_run.commit(data_owners[0])
    sharing_run.advance_after_deadline()
    assert sharing_run.market.task_phase(sharing_run.task) == PHASE_SETTLE
    sharing_run.advance_after_deadline()
    assert sharing_run.market.task_phase(sharing_run.task) == PHASE_SUBMIT


def test_share_closes_at_deadline(sharing_run, data_owners):
    sharing_run.commit(data_owners[0])
    sharing_run.advance_after_deadline()
    assert sharing_run.market.task_phase(sharing_run.task) == PHASE_SETTLE


def test_submit_closes_early_when_committers_submitted(sharing_run, data_owners):
    r = sharing_run
    for do in data_owners[:4]:
        r.commit(do)
    r.advance_after_deadline()
    r.settle_all()
    for do in data_owners[:3]:
        r.submit(do)
    with boa.reverts("rounds: phase not over"):
        r.market.advance(r.task)
    r.submit(data_owners[3])
    r.market.advance(r.task)
    assert r.market.task_phase(r.task) in (PHASE_UNMASK, PHASE_ROUND_DONE)


def test_submit_close_fails_groups_below_threshold(sharing_run):
    r = sharing_run
    big, small = r.groups()
    for do in big + small:
        r.commit(do)
    r.advance_after_deadline()
    r.settle_all()
    for do in big[:2] + small[:1]:
        r.submit(do)
    r.advance_after_deadline()
    assert r.market.task_phase(r.task) == PHASE_UNMASK
    assert r.market.group_result(r.task, 0, 0) == GROUP_PENDING
    assert r.market.group_result(r.task, 0, 1) == GROUP_FAILED
    assert r.market.round_pending(r.task, 0) == 1
    assert r.market.group_submitted(r.task, 0, 1) == 1


def test_submit_close_with_every_group_failed_resolves_round(sharing_run, data_owners):
    r = sharing_run
    r.play_round(data_owners[:5], [], [])
    assert r.market.task_phase(r.task) == PHASE_ROUND_DONE
    assert [r.market.group_result(r.task, 0, g) for g in range(2)] == [GROUP_FAILED, GROUP_FAILED]
    assert r.market.deadline(r.task) == boa.env.timestamp + r.cfg["register_duration"]


def test_last_round_resolution_ends_task(new_run, data_owners):
    r = new_run(rounds=1)
    r.start(data_owners[:4])
    r.play_round(data_owners[:4], [], [])
    assert r.market.task_phase(r.task) == PHASE_ENDED


def test_unmask_closes_only_at_deadline(sharing_run):
    r = sharing_run
    big, small = r.groups()
    r.play_round(big + small, big + small, big[:1])
    assert r.market.task_phase(r.task) == PHASE_UNMASK
    boa.env.time_travel(seconds=r.cfg["unmask_duration"] - 1)
    with boa.reverts("rounds: phase not over"):
        r.market.advance(r.task)
    boa.env.time_travel(seconds=1)
    r.market.advance(r.task)
    assert r.market.task_phase(r.task) == PHASE_ROUND_DONE
    assert [r.market.group_result(r.task, 0, g) for g in range(2)] == [GROUP_FAILED, GROUP_FAILED]


def test_last_group_to_finalize_resolves_round(sharing_run):
    r = sharing_run
    big, small = r.groups()
    r.play_round(big + small, big + small, big[:2] + small[:1])
    assert r.market.task_phase(r.task) == PHASE_UNMASK
    r.unmask(small[1])
    assert r.market.task_phase(r.task) == PHASE_ROUND_DONE
    assert [r.market.group_result(r.task, 0, g) for g in range(2)] == [GROUP_FINALIZED] * 2


def test_round_done_ends_when_owner_misses_window(sharing_run, data_owners):
    r = sharing_run
    r.play_round(data_owners[:5], data_owners[:5])
    with boa.reverts("rounds: phase not over"):
        r.market.advance(r.task)
    r.advance_after_deadline()
    assert r.market.task_phase(r.task) == PHASE_ENDED


def test_phase_view_and_register_phase(new_run):
    r = new_run()
    r.create()
    assert r.market.task_phase_of(r.task) == (
        PHASE_REGISTER,
        0,
        boa.env.timestamp + r.cfg["register_duration"],
    )
