"""The direct data path (docs/interfaces.md §3c, §11): delivery terms, commitments, challenges
with their fee, answers through event chunks (blobs: test_direct_blobs.py, on anvil), silence
and its exclusion, DELIVERY's early close, and UNMASK after an exclusion."""

import boa
import pytest
from eth_utils import keccak

from protocol.commitments import direct_digest, split_chunks
from protocol.constants import (
    DATA_PATH_DIRECT,
    GROUP_FINALIZED,
    PHASE_DELIVERY,
    PHASE_SHARE,
    PHASE_SUBMIT,
    PHASE_UNMASK,
    STATUS_COMMITTED,
    STATUS_SUBMITTED,
    Challenge,
)
from tests.contracts.market import DURATION, events, update_words

FEE = 7 * 10**14
KEY = keccak(b"model owner channel key")
ENDPOINT = "mo.example:4000"


@pytest.fixture
def direct(new_run):
    """A created direct task in REGISTER with its delivery terms set (no model published)."""
    r = new_run(data_path=DATA_PATH_DIRECT, max_dos=6, min_dos=6, group_size=3)
    r.create()
    r.desk.set_terms(r.task, KEY, ENDPOINT, FEE, sender=r.owner)
    return r


@pytest.fixture
def submitting(direct, data_owners):
    """Round 0 of a direct task in SUBMIT: 6 data owners in 2 groups of 3 (t = 2), all committed
    and settled."""
    r = direct
    r.register(data_owners[:6])
    r.close_registration()
    for do in data_owners[:6]:
        r.commit(do)
    r.advance_after_deadline()
    r.settle_all()
    assert r.market.task_phase(r.task) == PHASE_SUBMIT
    return r


def commit(r, do, words=None):
    words = r.words(do) if words is None else words
    r.desk.commit_update(r.task, r.round(), direct_digest(words), len(words), sender=do)


@pytest.fixture
def delivering(submitting, data_owners):
    """In DELIVERY: every data owner committed its update directly."""
    r = submitting
    for do in data_owners[:6]:
        commit(r, do)
    r.market.advance(r.task)  # SUBMIT complete: closes early
    assert r.market.task_phase(r.task) == PHASE_DELIVERY
    return r


def answer(r, do, words=None):
    words = r.words(do) if words is None else words
    for index, chunk in enumerate(split_chunks(words)):
        r.desk.answer(r.task, r.round(), index, list(chunk), sender=do)


# -- terms and the model ------------------------------------------------------------------------


def test_terms_are_readable_before_registering(direct):
    d = direct.desk
    assert (d.challenge_fee(direct.task), d.owner_channel_key(direct.task)) == (FEE, KEY)
    assert d.owner_endpoint(direct.task) == ENDPOINT


@pytest.mark.parametrize(
    ("args", "who", "reason"),
    [
        ((KEY, ENDPOINT, FEE), "stranger", "delivery: not the model owner"),
        ((KEY, ENDPOINT, FEE), "owner", "delivery: terms already set"),
    ],
)
def test_terms_set_once_by_the_owner(direct, stranger, args, who, reason):
    with boa.reverts(reason):
        direct.desk.set_terms(
            direct.task, *args, sender=stranger if who == "stranger" else direct.owner
        )


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((bytes(32), ENDPOINT, FEE), "delivery: empty channel key"),
        ((KEY, "", FEE), "delivery: empty endpoint"),
        ((KEY, ENDPOINT, 0), "delivery: zero fee"),
    ],
)
def test_terms_rules(new_run, args, reason):
    r = new_run(data_path=DATA_PATH_DIRECT)
    r.create()
    with boa.reverts(reason):
        r.desk.set_terms(r.task, *args, sender=r.owner)


def test_terms_only_for_direct_tasks_in_register(run, direct, data_owners):
    with boa.reverts("delivery: not a direct task"):
        run.desk.set_terms(run.task, KEY, ENDPOINT, FEE, sender=run.owner)
    with boa.reverts("delivery: no such task"):
        run.desk.set_terms(99, KEY, ENDPOINT, FEE, sender=run.owner)
    boa.env.time_travel(seconds=DURATION)
    with boa.reverts("delivery: deadline passed"):
        direct.desk.set_terms(direct.task, KEY, ENDPOINT, FEE, sender=direct.owner)


def test_direct_round_starts_on_the_hash_alone(direct, data_owners):
    """No ModelChunk: REGISTER closes, and round 1 opens, on the model hash alone."""
    direct.register(data_owners[:6])
    direct.close_registration()
    assert direct.market.task_phase(direct.task) == PHASE_SHARE
    assert direct.desk.model_chunks(direct.task, 0) == 0


# -- SUBMIT: commitments ------------------------------------------------------------------------


def test_commit_counts_as_submitted(submitting, data_owners):
    r, do = submitting, data_owners[0]
    words = r.words(do)
    r.desk.commit_update(r.task, 0, direct_digest(words), len(words), sender=do)
    (committed,) = events(r.desk, "UpdateCommitted")
    assert (committed.do, committed.digest, committed.words) == (do, direct_digest(words), 3)
    (submitted,) = events(r.desk, "UpdateSubmitted")
    assert submitted.digest == direct_digest(words)
    assert r.market.do_status(r.task, 0, do) == STATUS_SUBMITTED
    assert r.market.update_digest(r.task, 0, do) == direct_digest(words)
    assert r.market.round_submitted(r.task, 0) == 1
    with boa.reverts("rounds: already submitted"):
        commit(r, do)
    with boa.reverts("rounds: not committed"):
        r.desk.commit_update(r.task, 0, keccak(b"x"), 3, sender=r.owner)


def test_commit_rules(submitting, data_owners, run):
    r, do = submitting, data_owners[0]
    with boa.reverts("delivery: wrong word count"):
        r.desk.commit_update(r.task, 0, keccak(b"x"), update_words(r.cfg) + 1, sender=do)
    with boa.reverts("delivery: empty digest"):
        r.desk.commit_update(r.task, 0, bytes(32), 3, sender=do)
    with boa.reverts("delivery: wrong round"):
        r.desk.commit_update(r.task, 1, keccak(b"x"), 3, sender=do)
    r.market.submit(r.task, 0, 0, r.words(do)[:1], sender=do)
    with boa.reverts("delivery: update begun on-chain"):
        commit(r, do)
    with boa.reverts("delivery: wrong phase"):
        r.desk.commit_update(run.task, 0, keccak(b"x"), 3, sender=do)


def test_commit_refused_without_terms(new_run, data_owners):
    r = new_run(data_path=DATA_PATH_DIRECT, max_dos=6, min_dos=6, group_size=3)
    r.start(data_owners[:6])
    for do in data_owners[:6]:
        r.commit(do)
    r.advance_after_deadline()
    r.settle_all()
    with boa.reverts("delivery: no terms"):
        commit(r, data_owners[0])


def test_callbacks_are_restricted(delivering, stranger, data_owners):
    with boa.reverts("market: not the desk"):
        delivering.market.record_delivery(
            delivering.task, 0, data_owners[0], bytes(32), sender=stranger
        )
    with boa.reverts("delivery: not the market"):
        delivering.desk.settle(delivering.task, 0, sender=stranger)


# -- DELIVERY: challenges and answers -----------------------------------------------------------


def test_challenge_takes_the_fee(delivering, data_owners, stranger):
    r, do = delivering, data_owners[0]
    before = boa.env.get_balance(r.desk.address)
    r.desk.challenge(r.task, 0, do, value=FEE, sender=r.owner)
    assert boa.env.get_balance(r.desk.address) == before + FEE
    assert r.desk.challenge_state(r.task, 0, do) == Challenge.OPEN
    assert list(r.desk.challenged(r.task, 0)) == [do]
    with boa.reverts("delivery: already challenged"):
        r.desk.challenge(r.task, 0, do, value=FEE, sender=r.owner)
    with boa.reverts("delivery: wrong fee"):
        r.desk.challenge(r.task, 0, data_owners[1], value=FEE - 1, sender=r.owner)
    with boa.reverts("delivery: not the model owner"):
        r.desk.challenge(r.task, 0, data_owners[1], value=FEE, sender=stranger)
    with boa.reverts("delivery: not a submitter"):
        r.desk.challenge(r.task, 0, stranger, value=FEE, sender=r.owner)


def test_challenge_only_in_delivery(submitting, data_owners):
    r = submitting
    commit(r, data_owners[0])
    with boa.reverts("delivery: wrong phase"):
        r.desk.challenge(r.task, 0, data_owners[0], value=FEE, sender=r.owner)


def test_update_posted_on_chain_is_not_challenged(submitting, data_owners):
    r = submitting
    r.submit(data_owners[0])
    for do in data_owners[1:6]:
        commit(r, do)
    r.market.advance(r.task)
    with boa.reverts("delivery: update on-chain"):
        r.desk.challenge(r.task, 0, data_owners[0], value=FEE, sender=r.owner)


def test_answer_by_events_pays_the_fee(delivering, data_owners):
    r, do = delivering, data_owners[0]
    r.desk.challenge(r.task, 0, do, value=FEE, sender=r.owner)
    answer(r, do)
    assert events(r.desk, "ChallengeAnswered")[0].do == do
    (chunk,) = events(r.desk, "UpdateChunk")
    assert (chunk.do, chunk.chunk_index, list(chunk.words)) == (do, 0, r.words(do))
    assert r.desk.challenge_state(r.task, 0, do) == Challenge.ANSWERED
    assert r.desk.credits("0x" + "00" * 20, do) == FEE
    assert r.desk.round_open(r.task, 0) == 0
    assert r.desk.answer_digest(r.task, 0, do) == r.market.update_digest(r.task, 0, do)
    with boa.reverts("delivery: no open challenge"):
        r.desk.answer(r.task, 0, 0, [1], sender=do)
    r.desk.withdraw("0x" + "00" * 20, sender=do)
    # the answer changed nothing on the market: still a submitter
    assert r.market.do_status(r.task, 0, do) == STATUS_SUBMITTED


def test_answer_mismatch_then_restart(delivering, data_owners):
    """The committed digest fixes the chunking (one chunk of 3 words here): an answer cut
    otherwise cannot complete, and chunk 0 starts it over."""
    r, do = delivering, data_owners[0]
    r.desk.challenge(r.task, 0, do, value=FEE, sender=r.owner)
    words = r.words(do)
    with boa.reverts("delivery: digest mismatch"):
        r.desk.answer(r.task, 0, 0, [words[0] ^ 1, *words[1:]], sender=do)
    r.desk.answer(r.task, 0, 0, words[:2], sender=do)
    assert (r.desk.answer_chunks(r.task, 0, do), r.desk.answer_words(r.task, 0, do)) == (1, 2)
    with boa.reverts("delivery: wrong chunk index"):
        r.desk.answer(r.task, 0, 2, words[2:], sender=do)
    with boa.reverts("delivery: too many words"):
        r.desk.answer(r.task, 0, 1, [*words[2:], 5], sender=do)
    with boa.reverts("delivery: empty chunk"):
        r.desk.answer(r.task, 0, 1, [], sender=do)
    with boa.reverts("delivery: digest mismatch"):
        r.desk.answer(r.task, 0, 1, words[2:], sender=do)
    answer(r, do)
    assert r.desk.challenge_state(r.task, 0, do) == Challenge.ANSWERED


def test_only_a_challenged_data_owner_answers(delivering, data_owners):
    with boa.reverts("delivery: no open challenge"):
        delivering.desk.answer(delivering.task, 0, 0, [1], sender=data_owners[0])


# -- DELIVERY closes ----------------------------------------------------------------------------


def test_silence_excludes_and_returns_the_fee(delivering, data_owners):
    r = delivering
    silent = r.groups()[0][0]
    r.desk.challenge(r.task, 0, silent, value=FEE, sender=r.owner)
    with boa.reverts("rounds: phase not over"):
        r.market.advance(r.task)
    with boa.reverts("delivery: challenges open"):
        r.desk.close_delivery(r.task, 0, sender=r.owner)
    r.advance_after_deadline()
    assert r.market.task_phase(r.task) == PHASE_UNMASK
    assert r.desk.challenge_state(r.task, 0, silent) == Challenge.MISSED
    assert r.market.do_status(r.task, 0, silent) == STATUS_COMMITTED
    assert r.market.round_submitted(r.task, 0) == 5
    assert r.market.group_submitted(r.task, 0, 0) == 2
    assert r.desk.credits("0x" + "00" * 20, r.owner) == FEE
    with boa.reverts("delivery: wrong phase"):
        r.desk.answer(r.task, 0, 0, [1], sender=silent)


def test_exclusion_then_unmask_pays_exactly_the_others(delivering, data_owners):
    """The excluded member's mask key is revealed (kind MASK_KEY in every reveal), its group
    finalizes with the two others, and it is not paid."""
    r = delivering
    group = r.groups()[0]
    silent = group[0]
    r.desk.challenge(r.task, 0, silent, value=FEE, sender=r.owner)
    r.advance_after_deadline()
    before = {do: r.market.credits("0x" + "00" * 20, do) for do in group}
    for do in group[1:]:
        reveals = r.reveals(do)
        assert [(rv[0], rv[1]) for rv in reveals if rv[0] == silent] == [(silent, 1)]
        r.unmask(do)
    assert r.market.group_result(r.task, 0, 0) == GROUP_FINALIZED
    reward = r.cfg["reward_per_do"]
    paid = {do: r.market.credits("0x" + "00" * 20, do) - before[do] for do in group}
    assert paid == {silent: 0, group[1]: reward, group[2]: reward}
    assert not r.market.is_credited(r.task, 0, silent)
    with boa.reverts("rounds: not a submitter"):
        r.unmask(silent)


def test_early_close_by_the_owner(delivering, data_owners, stranger):
    r = delivering
    do = data_owners[0]
    r.desk.challenge(r.task, 0, do, value=FEE, sender=r.owner)
    answer(r, do)
    with boa.reverts("delivery: not the model owner"):
        r.desk.close_delivery(r.task, 0, sender=stranger)
    r.desk.close_delivery(r.task, 0, sender=r.owner)
    with boa.reverts("delivery: closed"):
        r.desk.challenge(r.task, 0, data_owners[1], value=FEE, sender=r.owner)
    r.market.advance(r.task, sender=stranger)
    assert r.market.task_phase(r.task) == PHASE_UNMASK
    assert r.market.round_submitted(r.task, 0) == 6
