"""Replays across tasks and rounds: a valid message of task A, round r, sent again on task B or in
round r + 1, is refused with its named reason.

tests/contracts/unitary covers a message with the wrong `round` argument, duplicates within a
round and strangers; here the replayed content is otherwise valid, so what refuses it is the
binding of every share leaf to (task, round) and of every action to the caller's own standing
in that task and round.
"""

from __future__ import annotations

import boa
import pytest

from tests.contracts.market import DURATION, TaskRun, config

# one group of four per task (t = 2), so two tasks over the same data owners have one member set
ONE_GROUP = {"max_dos": 4, "min_dos": 4, "group_size": 4, "threshold": 2}


def _to_unmask(runs: list[TaskRun], dos: list[str]) -> None:
    """Every run through round 0 to UNMASK with all of `dos` committed and submitted."""
    for run in runs:
        run.create()
        run.publish(0)
        run.register(dos)
    boa.env.time_travel(seconds=DURATION)
    for run in runs:
        run.market.advance(run.task)
    for run in runs:
        run.draw()
    _commit_and_submit(runs, dos)


def _commit_and_submit(runs: list[TaskRun], dos: list[str]) -> None:
    for run in runs:
        for do in dos:
            run.commit(do)
        run.market.advance(run.task)  # complete: everyone committed
        run.settle_all()  # no complaints: SETTLE closes at once
    for run in runs:
        for do in dos:
            run.submit(do)
        run.market.advance(run.task)  # complete: everyone submitted


def _reveals_in_order_of(source: TaskRun, target: TaskRun, holder: str, round: int) -> list:
    """`holder`'s reveals of `source` (its shares and proofs there), laid out as `target` wants
    them: `target`'s member order, one per committed member, all submitted (seeds)."""
    position = source.group_of(holder).index(holder)
    out = []
    for dealer in target.group_of(holder):
        dealt, shares = source.dealt[(round, dealer)]
        points = source.points[(round, dealer)]
        out.append((dealer, 0, *shares[(position, 0)], dealt.proof(position, 0), points))
    return out


@pytest.fixture
def twin_tasks(market, model_owner, data_owners) -> tuple[TaskRun, TaskRun, list[str]]:
    """Tasks A and B over the same four data owners, both in round 0's UNMASK."""
    dos = data_owners[:4]
    a, b = (TaskRun(market, model_owner, config(**ONE_GROUP)) for _ in range(2))
    _to_unmask([a, b], dos)
    return a, b, dos


def test_an_unmask_of_task_a_fails_its_proofs_on_task_b(twin_tasks) -> None:
    a, b, dos = twin_tasks
    holder = dos[0]
    assert sorted(a.group_of(holder)) == sorted(b.group_of(holder))
    replay = _reveals_in_order_of(a, b, holder, 0)
    with boa.reverts("commitments: bad proof"):
        b.court.unmask(b.task, 0, replay, sender=holder)
    # the same holder's own message of task B is accepted
    b.unmask(holder)
    assert b.market.do_status(b.task, 0, holder) == 3


def test_an_unmask_of_round_r_is_refused_in_round_r_plus_1(twin_tasks) -> None:
    a, _, dos = twin_tasks
    a.unmask(dos[0])
    a.unmask(dos[1])  # the t-th message: round 0 resolved
    held_back = a.reveals(dos[2], round=0)  # valid in round 0, never sent
    a.open_round(1)
    _commit_and_submit([a], dos)
    with boa.reverts("court: wrong round"):
        a.court.unmask(a.task, 0, held_back, sender=dos[2])
    with boa.reverts("commitments: bad proof"):
        a.court.unmask(a.task, 1, held_back, sender=dos[2])
    a.unmask(dos[2])  # its round-1 message is accepted


def test_a_commit_and_a_submission_of_task_a_are_refused_on_task_b(
    market, model_owner, data_owners
) -> None:
    a, b = (TaskRun(market, model_owner, config(**ONE_GROUP)) for _ in range(2))
    for run, dos in ((a, data_owners[:4]), (b, data_owners[4:8])):
        run.create()
        run.publish(0)
        run.register(dos)
    boa.env.time_travel(seconds=DURATION)
    market.advance(a.task)
    market.advance(b.task)
    a.draw()
    b.draw()
    outsider = data_owners[0]  # in A, not in B
    a.commit(outsider)
    mask_pk = market.mask_pk(a.task, 0, outsider)
    root = market.shares_root(a.task, 0, outsider)
    points = a.points[(0, outsider)]
    with boa.reverts("registry: not a member"):
        market.commit_shares(b.task, 0, mask_pk, root, points, sender=outsider)
    for do in data_owners[1:4]:
        a.commit(do)
    for do in data_owners[4:8]:
        b.commit(do)
    market.advance(a.task)
    market.advance(b.task)
    a.settle_all()
    b.settle_all()
    chunks = a.submit(outsider)
    with boa.reverts("rounds: not committed"):
        market.submit(b.task, 0, 0, chunks[0], sender=outsider)


def test_a_commit_and_a_chunk_of_round_r_are_refused_in_round_r_plus_1(twin_tasks) -> None:
    a, _, dos = twin_tasks
    do = dos[0]
    mask_pk, root = a.market.mask_pk(a.task, 0, do), a.market.shares_root(a.task, 0, do)
    points = a.points[(0, do)]
    chunk = a.words(do, round=0)[:2]
    a.unmask(dos[0])
    a.unmask(dos[1])
    a.open_round(1)
    with boa.reverts("rounds: wrong round"):
        a.market.commit_shares(a.task, 0, mask_pk, root, points, sender=do)
    # a DO may reuse its own values
    a.market.commit_shares(a.task, 1, mask_pk, root, points, sender=do)
    with boa.reverts("rounds: already committed"):
        a.market.commit_shares(a.task, 1, mask_pk, root, points, sender=do)
    for other in dos[1:]:
        a.commit(other)
    a.market.advance(a.task)
    a.settle_all()
    with boa.reverts("rounds: wrong round"):
        a.market.submit(a.task, 0, 0, chunk, sender=do)
    a.market.submit(a.task, 1, 0, chunk, sender=do)
    with boa.reverts("rounds: wrong chunk index"):
        a.market.submit(a.task, 1, 0, chunk, sender=do)
