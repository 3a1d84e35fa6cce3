"""commit_shares and submit: phase, round, caller, duplicates, lengths and the running digest."""

import boa
import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from protocol.commitments import update_digest
from protocol.constants import MAX_CHUNK_WORDS, STATUS_COMMITTED, STATUS_NONE, STATUS_SUBMITTED
from tests.contracts.market import events, update_words

ROOT = keccak(b"root")
MASK = keccak(b"mask")
# Feldman commitments of t = 2 points per polynomial (64 bytes each): the market only stores
# their digest; the court checks them when a complaint needs it.
POINTS = bytes(range(256))


# -- commit_shares --------------------------------------------------------------------------


def test_commit_records_key_root_and_status(sharing_run, data_owners):
    r, do = sharing_run, data_owners[0]
    group = r.market.group_of(r.task, do)
    r.market.commit_shares(r.task, 0, MASK, ROOT, POINTS, sender=do)
    (committed,) = events(r.market, "SharesCommitted")
    assert (committed.do, committed.group) == (do, group)
    assert (committed.mask_pk, committed.shares_root) == (MASK, ROOT)
    assert r.market.mask_pk(r.task, 0, do) == MASK
    assert r.market.shares_root(r.task, 0, do) == ROOT
    assert r.market.do_status(r.task, 0, do) == STATUS_COMMITTED
    assert r.market.group_committed(r.task, 0, group) == 1
    assert r.market.round_committed(r.task, 0) == 1
    assert r.market.commits_made(r.task, do) == 1
    assert committed.points == POINTS
    assert r.market.points_digest(r.task, 0, do) == keccak(POINTS)


@pytest.mark.parametrize("size", [0, 128, 255, 257, 384])
def test_commit_needs_two_polynomials_of_t_points(sharing_run, data_owners, size):
    with boa.reverts("commitments: wrong point count"):
        sharing_run.market.commit_shares(
            sharing_run.task, 0, MASK, ROOT, bytes(size), sender=data_owners[0]
        )


def test_commit_twice(sharing_run, data_owners):
    sharing_run.market.commit_shares(sharing_run.task, 0, MASK, ROOT, POINTS, sender=data_owners[0])
    with boa.reverts("rounds: already committed"):
        sharing_run.market.commit_shares(
            sharing_run.task, 0, MASK, ROOT, POINTS, sender=data_owners[0]
        )


def test_commit_by_non_member(sharing_run, data_owners, stranger):
    with boa.reverts("registry: not a member"):
        sharing_run.market.commit_shares(sharing_run.task, 0, MASK, ROOT, POINTS, sender=stranger)
    with boa.reverts("registry: not a member"):
        sharing_run.market.commit_shares(
            sharing_run.task, 0, MASK, ROOT, POINTS, sender=data_owners[7]
        )


def test_commit_needs_key_and_root(sharing_run, data_owners):
    with boa.reverts("commitments: empty mask key"):
        sharing_run.market.commit_shares(
            sharing_run.task, 0, bytes(32), ROOT, POINTS, sender=data_owners[0]
        )
    with boa.reverts("commitments: empty shares root"):
        sharing_run.market.commit_shares(
            sharing_run.task, 0, MASK, bytes(32), POINTS, sender=data_owners[0]
        )


def test_commit_wrong_round(sharing_run, data_owners):
    with boa.reverts("rounds: wrong round"):
        sharing_run.market.commit_shares(
            sharing_run.task, 1, MASK, ROOT, POINTS, sender=data_owners[0]
        )


def test_commit_wrong_phase(run, data_owners):
    run.register(data_owners[:1])
    with boa.reverts("rounds: wrong phase"):
        run.market.commit_shares(run.task, 0, MASK, ROOT, POINTS, sender=data_owners[0])


def test_commit_after_deadline(sharing_run, data_owners):
    boa.env.time_travel(seconds=sharing_run.cfg["share_duration"])
    with boa.reverts("rounds: deadline passed"):
        sharing_run.market.commit_shares(
            sharing_run.task, 0, MASK, ROOT, POINTS, sender=data_owners[0]
        )


def test_commit_unknown_task(market, data_owners):
    with boa.reverts("rounds: no such task"):
        market.commit_shares(9, 0, MASK, ROOT, POINTS, sender=data_owners[0])


# -- submit ---------------------------------------------------------------------------------


@pytest.fixture
def submitting_run(sharing_run, data_owners):
    """Round 0 in SUBMIT; data owners 0..3 committed, data owner 4 did not."""
    for do in data_owners[:4]:
        sharing_run.commit(do)
    sharing_run.advance_after_deadline()
    sharing_run.settle_all()
    return sharing_run


def test_submit_in_chunks_keeps_digest_and_emits_words(submitting_run, data_owners):
    r, do = submitting_run, data_owners[0]
    words = r.words(do)
    assert len(words) == update_words(r.cfg) == 3
    r.market.submit(r.task, 0, 0, words[:2], sender=do)
    (chunk,) = events(r.market, "UpdateChunk")
    assert (chunk.do, chunk.chunk_index, list(chunk.words)) == (do, 0, words[:2])
    assert r.market.do_status(r.task, 0, do) == STATUS_COMMITTED
    assert r.market.chunk_count(r.task, 0, do) == 1
    assert r.market.words_received(r.task, 0, do) == 2
    assert r.market.update_digest(r.task, 0, do) == update_digest([words[:2]])
    r.market.submit(r.task, 0, 1, words[2:], sender=do)
    (done,) = events(r.market, "UpdateSubmitted")
    assert done.digest == update_digest([words[:2], words[2:]])
    assert r.market.update_digest(r.task, 0, do) == done.digest
    assert r.market.do_status(r.task, 0, do) == STATUS_SUBMITTED
    assert r.market.group_submitted(r.task, 0, r.market.group_of(r.task, do)) == 1
    assert r.market.round_submitted(r.task, 0) == 1


def test_full_chunk_stays_under_the_calldata_floor(new_run, data_owners):
    """EIP-7623: a data-heavy transaction pays at least 40 gas per non-zero calldata byte. The
    submit path must cost less than that (standard calldata plus execution), so it pays the floor
    and no more. titanoboa keeps storage warm, which the wide margin here absorbs."""
    r = new_run(d=2 * MAX_CHUNK_WORDS * 8)
    r.start(data_owners[:4])
    for do in data_owners[:4]:
        r.commit(do)
    r.market.advance(r.task)
    r.settle_all()
    words = [int.from_bytes(keccak(i.to_bytes(4, "big")), "big") for i in range(MAX_CHUNK_WORDS)]
    before = boa.env.get_gas_used()
    r.market.submit(r.task, 0, 0, words, sender=data_owners[0])
    execution = boa.env.get_gas_used() - before
    assert execution > 1_000_000  # the words are really logged: 8 gas per byte at least
    calldata = bytes(4) + abi_encode(
        ["uint256", "uint256", "uint256", "uint256[]"], [r.task, 0, 0, words]
    )
    nonzero = sum(1 for b in calldata if b)
    zero = len(calldata) - nonzero
    standard = 21_000 + 16 * nonzero + 4 * zero + execution
    floor = 21_000 + 40 * nonzero + 10 * zero
    assert standard < 0.85 * floor


def test_submit_whole_update_in_one_chunk(submitting_run, data_owners):
    r, do = submitting_run, data_owners[1]
    r.market.submit(r.task, 0, 0, r.words(do), sender=do)
    assert r.market.do_status(r.task, 0, do) == STATUS_SUBMITTED


def test_submit_largest_chunk(new_run, data_owners):
    r = new_run(d=MAX_CHUNK_WORDS * 8 + 1)
    r.start(data_owners[:4])
    for do in data_owners[:4]:
        r.commit(do)
    r.market.advance(r.task)
    r.settle_all()
    words = list(range(1, MAX_CHUNK_WORDS + 1))
    r.market.submit(r.task, 0, 0, words, sender=data_owners[0])
    r.market.submit(r.task, 0, 1, [7], sender=data_owners[0])
    assert r.market.do_status(r.task, 0, data_owners[0]) == STATUS_SUBMITTED
    assert r.market.update_digest(r.task, 0, data_owners[0]) == update_digest([words, [7]])


def test_submit_too_many_words(submitting_run, data_owners):
    r, do = submitting_run, data_owners[0]
    with boa.reverts("rounds: too many words"):
        r.market.submit(r.task, 0, 0, [1, 2, 3, 4], sender=do)
    r.market.submit(r.task, 0, 0, [1, 2], sender=do)
    with boa.reverts("rounds: too many words"):
        r.market.submit(r.task, 0, 1, [3, 4], sender=do)


def test_submit_empty_chunk(submitting_run, data_owners):
    with boa.reverts("rounds: empty chunk"):
        submitting_run.market.submit(submitting_run.task, 0, 0, [], sender=data_owners[0])


@pytest.mark.parametrize("index", [1, 2**255])
def test_submit_out_of_order(submitting_run, data_owners, index):
    with boa.reverts("rounds: wrong chunk index"):
        submitting_run.market.submit(submitting_run.task, 0, index, [1], sender=data_owners[0])


def test_submit_duplicate_chunk(submitting_run, data_owners):
    r, do = submitting_run, data_owners[0]
    r.market.submit(r.task, 0, 0, [1], sender=do)
    with boa.reverts("rounds: wrong chunk index"):
        r.market.submit(r.task, 0, 0, [1], sender=do)


def test_submit_after_complete(submitting_run, data_owners):
    r, do = submitting_run, data_owners[0]
    r.submit(do)
    with boa.reverts("rounds: already submitted"):
        r.market.submit(r.task, 0, 2, [1], sender=do)


def test_submit_without_commitment(submitting_run, data_owners, stranger):
    with boa.reverts("rounds: not committed"):
        submitting_run.market.submit(submitting_run.task, 0, 0, [1], sender=data_owners[4])
    with boa.reverts("rounds: not committed"):
        submitting_run.market.submit(submitting_run.task, 0, 0, [1], sender=stranger)


def test_submit_wrong_phase_round_and_deadline(submitting_run, data_owners):
    r, do = submitting_run, data_owners[0]
    with boa.reverts("rounds: wrong round"):
        r.market.submit(r.task, 1, 0, [1], sender=do)
    boa.env.time_travel(seconds=r.cfg["submit_duration"])
    with boa.reverts("rounds: deadline passed"):
        r.market.submit(r.task, 0, 0, [1], sender=do)
    r.market.advance(r.task)
    with boa.reverts("rounds: wrong phase"):
        r.market.submit(r.task, 0, 0, [1], sender=do)


def test_submit_in_share_phase(sharing_run, data_owners):
    sharing_run.commit(data_owners[0])
    with boa.reverts("rounds: wrong phase"):
        sharing_run.market.submit(sharing_run.task, 0, 0, [1], sender=data_owners[0])


def test_partial_submission_does_not_count(submitting_run, data_owners):
    r, do = submitting_run, data_owners[0]
    r.market.submit(r.task, 0, 0, [1, 2], sender=do)
    r.advance_after_deadline()
    assert r.market.do_status(r.task, 0, do) == STATUS_COMMITTED
    assert r.market.round_submitted(r.task, 0) == 0
    assert r.market.do_status(r.task, 0, data_owners[4]) == STATUS_NONE
