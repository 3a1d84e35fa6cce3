"""open_round, end_task, reclaim, withdraw and release_bond: who gets which value, when."""

import boa
import pytest

from protocol.constants import (
    GROUP_FAILED,
    GROUP_FINALIZED,
    PHASE_ENDED,
    PHASE_SETTLE,
    PHASE_SHARE,
    PHASE_SUBMIT,
    PHASE_UNMASK,
    STATUS_NONE,
)
from tests.contracts.market import ETH, as_struct, config, digest_of, escrow_of, events, model_bytes


@pytest.fixture
def done_run(sharing_run):
    """Round 0 resolved: the big group (3) finalized with all three submitting, the small
    group failed with one submitter."""
    r = sharing_run
    big, small = r.groups()
    r.play_round(big + small, big + small[:1], big[:2])
    assert r.market.group_result(r.task, 0, 0) == GROUP_FINALIZED
    assert r.market.group_result(r.task, 0, 1) == GROUP_FAILED
    r.big, r.small = big, small
    return r


# -- open_round -----------------------------------------------------------------------------


def test_open_next_round(done_run):
    r = done_run
    r.publish(1)
    r.market.open_round(r.task, 1, digest_of(model_bytes(1)), sender=r.owner)
    (phase,) = events(r.market, "PhaseChanged")
    assert (phase.round, phase.phase) == (1, PHASE_SHARE)
    assert r.market.current_round(r.task) == 1
    assert r.market.rounds_opened(r.task) == 2
    assert r.market.round_model_hash(r.task, 1) == digest_of(model_bytes(1))
    assert r.market.do_status(r.task, 1, r.big[0]) == STATUS_NONE


def test_open_round_rules(done_run, stranger):
    r = done_run
    r.publish(1)
    good = digest_of(model_bytes(1))
    with boa.reverts("rounds: not the model owner"):
        r.market.open_round(r.task, 1, good, sender=stranger)
    with boa.reverts("rounds: wrong round"):
        r.market.open_round(r.task, 2, good, sender=r.owner)
    with boa.reverts("rounds: wrong round"):
        r.market.open_round(r.task, 0, good, sender=r.owner)
    with boa.reverts("commitments: model hash mismatch"):
        r.market.open_round(r.task, 1, digest_of(b"something else"), sender=r.owner)
    with boa.reverts("rounds: no such task"):
        r.market.open_round(r.task + 1, 1, good, sender=r.owner)
    boa.env.time_travel(seconds=r.cfg["register_duration"])
    with boa.reverts("rounds: deadline passed"):
        r.market.open_round(r.task, 1, good, sender=r.owner)


def test_open_round_needs_published_model(done_run):
    with boa.reverts("commitments: empty model hash"):
        done_run.market.open_round(done_run.task, 1, bytes(32), sender=done_run.owner)


def test_open_round_only_between_rounds(sharing_run):
    with boa.reverts("rounds: wrong phase"):
        sharing_run.market.open_round(
            sharing_run.task, 1, digest_of(b"x"), sender=sharing_run.owner
        )


def test_two_rounds_pay_twice(sharing_run):
    r = sharing_run
    everyone = [do for group in r.groups() for do in group]
    r.play_round(everyone, everyone)
    r.open_round(1)
    r.play_round(everyone, everyone)
    assert r.market.task_phase(r.task) == PHASE_ENDED
    for do in everyone:
        assert r.market.credits(ETH, do) == 2 * r.cfg["reward_per_do"]
        assert r.market.is_credited(r.task, 1, do)


# -- end_task -------------------------------------------------------------------------------


def test_end_task_between_rounds(done_run, stranger):
    r = done_run
    with boa.reverts("rounds: not the model owner"):
        r.market.end_task(r.task, sender=stranger)
    r.market.end_task(r.task, sender=r.owner)
    assert r.market.task_phase(r.task) == PHASE_ENDED
    assert r.market.reclaimable(r.task) == r.market.escrow_remaining(r.task)


def test_end_task_not_during_a_round(sharing_run):
    with boa.reverts("rounds: wrong phase"):
        sharing_run.market.end_task(sharing_run.task, sender=sharing_run.owner)


# -- reclaim --------------------------------------------------------------------------------


def test_reclaim_empty_slots_and_failed_groups(done_run):
    r = done_run
    reward = r.cfg["reward_per_do"]
    assert r.market.escrow_remaining(r.task) == escrow_of(r.cfg) - 3 * reward
    # one empty slot and two failed submitters' slots of round 0; round 1 stays reserved
    assert r.market.reclaimable(r.task) == 3 * reward
    assert r.market.reclaim(r.task, sender=r.owner) == 3 * reward
    assert r.market.credits(ETH, r.owner) == 3 * reward
    assert r.market.escrow_remaining(r.task) == 6 * reward
    with boa.reverts("escrow: nothing to reclaim"):
        r.market.reclaim(r.task, sender=r.owner)


def test_reclaim_locked_while_round_unresolved(done_run, data_owners):
    r = done_run
    r.open_round(1)
    with boa.reverts("escrow: round unresolved"):
        r.market.reclaim(r.task, sender=r.owner)
    assert r.market.reclaimable(r.task) == 0
    r.play_round(data_owners[:5], [], [])
    assert r.market.task_phase(r.task) == PHASE_ENDED
    assert r.market.reclaim(r.task, sender=r.owner) == escrow_of(r.cfg) - 3 * r.cfg["reward_per_do"]
    assert r.market.escrow_remaining(r.task) == 0


def test_reclaim_locked_in_every_phase_of_a_round(done_run):
    r = done_run
    everyone = r.big + r.small
    r.open_round(1)
    seen = []

    def refused() -> None:
        seen.append(r.market.task_phase(r.task))
        with boa.reverts("escrow: round unresolved"):
            r.market.reclaim(r.task, sender=r.owner)

    refused()
    for do in everyone:
        r.commit(do)
    r.market.advance(r.task)
    refused()
    r.advance_after_deadline()
    refused()
    for do in everyone:
        r.submit(do)
    r.market.advance(r.task)
    refused()
    assert seen == [PHASE_SHARE, PHASE_SETTLE, PHASE_SUBMIT, PHASE_UNMASK]


def test_reclaim_locked_in_register(run):
    with boa.reverts("escrow: round unresolved"):
        run.market.reclaim(run.task, sender=run.owner)


def test_reclaim_only_by_model_owner(done_run, stranger):
    with boa.reverts("rounds: not the model owner"):
        done_run.market.reclaim(done_run.task, sender=stranger)


def test_reclaim_never_takes_credited_rewards(done_run):
    r = done_run
    r.market.end_task(r.task, sender=r.owner)
    r.market.reclaim(r.task, sender=r.owner)
    r.market.withdraw(ETH, sender=r.owner)
    for do in r.big:
        assert r.market.withdraw(ETH, sender=do) == r.cfg["reward_per_do"]
    assert boa.env.get_balance(r.market.address) == 5 * r.cfg["bond"]


def test_cancelled_task_is_refunded_once(run, data_owners):
    run.register(data_owners[:2])
    run.advance_after_deadline()
    with boa.reverts("escrow: nothing to reclaim"):
        run.market.reclaim(run.task, sender=run.owner)
    assert run.market.withdraw(ETH, sender=run.owner) == escrow_of(run.cfg)


# -- withdraw -------------------------------------------------------------------------------


def test_withdraw_eth(done_run):
    r, do = done_run, done_run.big[0]
    balance = boa.env.get_balance(do)
    assert r.market.withdraw(ETH, sender=do) == r.cfg["reward_per_do"]
    (withdrawn,) = events(r.market, "Withdrawn")
    assert (withdrawn.account, withdrawn.amount) == (do, r.cfg["reward_per_do"])
    assert boa.env.get_balance(do) == balance + r.cfg["reward_per_do"]
    assert r.market.credits(ETH, do) == 0
    with boa.reverts("escrow: nothing to withdraw"):
        r.market.withdraw(ETH, sender=do)


@pytest.mark.parametrize("kind", ["token", "no_return_token"])
def test_withdraw_tokens(new_run, data_owners, token, no_return_token, kind):
    # both tokens are requested as arguments, so they are deployed in fixture setup: one made
    # inside the test body (getfixturevalue) is rolled back with the test but stays cached
    token = {"token": token, "no_return_token": no_return_token}[kind]
    r = new_run(token=token)
    r.start(data_owners[:4])
    everyone = [do for group in r.groups() for do in group]
    r.play_round(everyone, everyone)
    before = token.balanceOf(everyone[0])
    assert r.market.credits(token.address, everyone[0]) == r.cfg["reward_per_do"]
    assert r.market.credits(ETH, everyone[0]) == 0
    r.market.withdraw(token.address, sender=everyone[0])
    assert token.balanceOf(everyone[0]) == before + r.cfg["reward_per_do"]


def test_withdraw_reverting_token_keeps_credit(new_run, broken_token, data_owners):
    r = new_run(token=broken_token)
    r.create()
    r.advance_after_deadline()
    with boa.reverts("escrow: token transfer failed"):
        r.market.withdraw(broken_token.address, sender=r.owner)
    assert r.market.credits(broken_token.address, r.owner) == escrow_of(r.cfg)


def test_withdraw_to_contract_rejecting_eth(market, token):
    cfg = config()
    boa.env.set_balance(token.address, escrow_of(cfg))
    task = market.create_task(as_struct(cfg), b"", value=escrow_of(cfg), sender=token.address)
    boa.env.time_travel(seconds=cfg["register_duration"])
    market.advance(task)
    with boa.reverts("escrow: eth transfer failed"):
        market.withdraw(ETH, sender=token.address)
    assert market.credits(ETH, token.address) == escrow_of(cfg)


def test_withdraw_cannot_be_reentered(market, reentrant_deployer, token):
    attacker = reentrant_deployer.deploy(market.address, token.address)
    eth_cfg, token_cfg = config(), config(token=token.address)
    boa.env.set_balance(attacker.address, escrow_of(eth_cfg))
    token.mint(attacker.address, escrow_of(token_cfg))
    token.approve(market.address, escrow_of(token_cfg), sender=attacker.address)
    for cfg, value in ((eth_cfg, escrow_of(eth_cfg)), (token_cfg, 0)):
        market.create_task(as_struct(cfg), b"", value=value, sender=attacker.address)
    boa.env.time_travel(seconds=eth_cfg["register_duration"])
    market.advance(1)
    market.advance(2)
    attacker.attack()
    assert attacker.payments() == 1
    assert attacker.reentered() is False
    assert boa.env.get_balance(attacker.address) == escrow_of(eth_cfg)
    assert market.credits(ETH, attacker.address) == 0
    assert market.credits(token.address, attacker.address) == escrow_of(token_cfg)
    attacker.withdraw_target()
    assert token.balanceOf(attacker.address) == escrow_of(token_cfg)


# -- release_bond ---------------------------------------------------------------------------


def test_bond_returns_to_committed_members(done_run, stranger):
    r = done_run
    r.market.end_task(r.task, sender=r.owner)
    for do in r.big + r.small:
        assert not r.market.bond_forfeited(r.task, do)
        r.market.release_bond(r.task, do, sender=stranger)
        (released,) = events(r.market, "BondReleased")
        assert (released.do, released.to, released.amount) == (do, do, r.cfg["bond"])
        assert r.market.bond_of(r.task, do) == 0
    assert r.market.credits(ETH, r.big[0]) == r.cfg["reward_per_do"] + r.cfg["bond"]
    assert r.market.credits(ETH, r.small[1]) == r.cfg["bond"]


def test_bond_of_member_that_skipped_a_round_goes_to_owner(sharing_run):
    r = sharing_run
    big, small = r.groups()
    r.play_round(big + small[:1], big, big[:2])
    r.market.end_task(r.task, sender=r.owner)
    assert r.market.bond_forfeited(r.task, small[1])
    r.market.release_bond(r.task, small[1])
    assert events(r.market, "BondReleased")[0].to == r.owner
    assert r.market.credits(ETH, r.owner) == r.cfg["bond"]
    assert r.market.credits(ETH, small[1]) == 0


def test_bond_forfeited_for_skipping_a_later_round(done_run):
    r = done_run
    r.open_round(1)
    r.play_round(r.big, [], [])
    assert r.market.task_phase(r.task) == PHASE_ENDED
    assert not r.market.bond_forfeited(r.task, r.big[0])
    assert r.market.bond_forfeited(r.task, r.small[0])


def test_bond_returned_when_cancelled(run, data_owners):
    run.register(data_owners[:3])
    run.advance_after_deadline()
    run.market.release_bond(run.task, data_owners[0])
    assert run.market.credits(ETH, data_owners[0]) == run.cfg["bond"]


def test_bond_locked_until_task_over(done_run):
    with boa.reverts("escrow: task not over"):
        done_run.market.release_bond(done_run.task, done_run.big[0])


def test_bond_released_once(done_run, stranger):
    r = done_run
    r.market.end_task(r.task, sender=r.owner)
    r.market.release_bond(r.task, r.big[0])
    with boa.reverts("escrow: no bond held"):
        r.market.release_bond(r.task, r.big[0])
    with boa.reverts("escrow: no bond held"):
        r.market.release_bond(r.task, stranger)


def test_token_bond_released_in_token(new_run, token, data_owners):
    r = new_run(token=token)
    r.create()
    r.register(data_owners[:2])
    r.advance_after_deadline()
    r.market.release_bond(r.task, data_owners[0])
    assert r.market.credits(token.address, data_owners[0]) == r.cfg["bond"]
    before = token.balanceOf(data_owners[0])
    r.market.withdraw(token.address, sender=data_owners[0])
    assert token.balanceOf(data_owners[0]) == before + r.cfg["bond"]
