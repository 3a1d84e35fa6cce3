"""publish_model and register: who, when, how much, and what is kept."""

import boa
import pytest
from eth_utils import keccak

from protocol.commitments import model_digest
from tests.contracts.market import MODEL_BYTES, digest_of, escrow_of, events

# -- publish_model --------------------------------------------------------------------------


def test_publish_folds_chunks_into_digest(new_run):
    r = new_run()
    r.create()
    r.desk.publish_model(r.task, 0, b"first", sender=r.owner)
    (chunk,) = events(r.desk, "ModelChunk")
    assert (chunk.task, chunk.round, chunk.index, chunk.data) == (r.task, 0, 0, b"first")
    r.desk.publish_model(r.task, 0, b"second", sender=r.owner)
    assert events(r.desk, "ModelChunk")[0].index == 1
    assert r.desk.model_digest(r.task, 0) == model_digest(
        model_digest(bytes(32), b"first"), b"second"
    )
    assert r.desk.model_chunks(r.task, 0) == 2


def test_publish_accepts_largest_chunk(new_run):
    r = new_run()
    r.create()
    data = bytes(range(256)) * 256
    r.desk.publish_model(r.task, 0, data, sender=r.owner)
    assert r.desk.model_digest(r.task, 0) == digest_of(data)


def test_publish_only_by_model_owner(run, stranger):
    with boa.reverts("delivery: not the model owner"):
        run.desk.publish_model(run.task, 0, b"x", sender=stranger)


def test_publish_unknown_task(desk, model_owner):
    with boa.reverts("delivery: no such task"):
        desk.publish_model(7, 0, b"x", sender=model_owner)


def test_publish_rejects_empty_chunk(run):
    with boa.reverts("models: empty model chunk"):
        run.desk.publish_model(run.task, 0, b"", sender=run.owner)


def test_publish_round_zero_closes_with_registration(run):
    boa.env.time_travel(seconds=100)
    with boa.reverts("delivery: deadline passed"):
        run.desk.publish_model(run.task, 0, b"late", sender=run.owner)


def test_publish_next_round_only_between_rounds(run):
    with boa.reverts("delivery: wrong phase"):
        run.desk.publish_model(run.task, 1, b"early", sender=run.owner)


def test_publish_next_round_between_rounds(sharing_run, data_owners):
    r = sharing_run
    r.play_round(data_owners[:5], data_owners[:5])
    r.desk.publish_model(r.task, 1, b"next", sender=r.owner)
    assert r.desk.model_digest(r.task, 1) == digest_of(b"next")
    with boa.reverts("delivery: wrong round"):
        r.desk.publish_model(r.task, 2, b"too far", sender=r.owner)
    with boa.reverts("delivery: wrong phase"):
        r.desk.publish_model(r.task, 0, b"old round", sender=r.owner)


def test_publish_frozen_once_round_opened(sharing_run):
    with boa.reverts("delivery: wrong phase"):
        sharing_run.desk.publish_model(sharing_run.task, 0, MODEL_BYTES, sender=sharing_run.owner)


# -- register -------------------------------------------------------------------------------


def test_register_records_member_and_bond(run, data_owners):
    do = data_owners[0]
    balance = boa.env.get_balance(run.market.address)
    run.market.register(run.task, keccak(b"pk"), "10.0.0.1:9000", value=run.cfg["bond"], sender=do)
    (registered,) = events(run.market, "Registered")
    assert (registered.do, registered.channel_pk, registered.endpoint) == (
        do,
        keccak(b"pk"),
        "10.0.0.1:9000",
    )
    (bond,) = events(run.market, "BondPosted")
    assert bond.amount == run.cfg["bond"]
    assert run.market.is_registered(run.task, do)
    assert run.market.members(run.task) == [do]
    assert run.market.member_count(run.task) == 1
    assert run.market.channel_key(run.task, do) == keccak(b"pk")
    assert run.market.endpoint(run.task, do) == "10.0.0.1:9000"
    assert run.market.bond_of(run.task, do) == run.cfg["bond"]
    assert boa.env.get_balance(run.market.address) == balance + run.cfg["bond"]


def test_register_without_bond(new_run, data_owners):
    r = new_run(bond=0)
    r.create()
    r.register(data_owners[:1])
    assert r.market.bond_of(r.task, data_owners[0]) == 0
    with boa.reverts("escrow: wrong bond value"):
        r.market.register(r.task, keccak(b"pk"), "e", value=1, sender=data_owners[1])


@pytest.mark.parametrize("delta", [-1, 1])
def test_register_rejects_wrong_bond(run, data_owners, delta):
    with boa.reverts("escrow: wrong bond value"):
        run.market.register(
            run.task, keccak(b"pk"), "e", value=run.cfg["bond"] + delta, sender=data_owners[0]
        )
    assert not run.market.is_registered(run.task, data_owners[0])


def test_register_token_bond(new_run, token, data_owners):
    r = new_run(token=token)
    r.create()
    r.register(data_owners[:2])
    assert token.balanceOf(r.market.address) == escrow_of(r.cfg) + 2 * r.cfg["bond"]
    assert r.market.bond_of(r.task, data_owners[1]) == r.cfg["bond"]


def test_register_token_bond_rejects_eth_and_missing_allowance(new_run, token, data_owners):
    r = new_run(token=token)
    r.create()
    token.approve(r.market.address, r.cfg["bond"], sender=data_owners[0])
    with boa.reverts("escrow: wrong bond value"):
        r.market.register(r.task, keccak(b"pk"), "e", value=r.cfg["bond"], sender=data_owners[0])
    with boa.reverts("escrow: token transfer failed"):
        r.market.register(r.task, keccak(b"pk"), "e", sender=data_owners[1])


def test_register_twice(run, data_owners):
    run.register(data_owners[:1])
    with boa.reverts("registry: already registered"):
        run.register(data_owners[:1])


def test_register_when_full(run, data_owners):
    run.register(data_owners[:6])
    with boa.reverts("registry: task full"):
        run.register(data_owners[6:7])


def test_register_after_deadline(run, data_owners):
    boa.env.time_travel(seconds=run.cfg["register_duration"] - 1)
    run.register(data_owners[:1])
    boa.env.time_travel(seconds=1)
    with boa.reverts("rounds: deadline passed"):
        run.register(data_owners[1:2])


def test_register_after_close(sharing_run, data_owners):
    with boa.reverts("rounds: wrong phase"):
        sharing_run.register(data_owners[6:7])


def test_register_unknown_task(market, data_owners):
    with boa.reverts("rounds: no such task"):
        market.register(3, keccak(b"pk"), "e", sender=data_owners[0])


def test_model_owner_cannot_register(run):
    with boa.reverts("registry: owner cannot register"):
        run.market.register(run.task, keccak(b"pk"), "e", value=run.cfg["bond"], sender=run.owner)


def test_register_needs_channel_key_and_endpoint(run, data_owners):
    with boa.reverts("registry: empty channel key"):
        run.market.register(run.task, bytes(32), "e", value=run.cfg["bond"], sender=data_owners[0])
    with boa.reverts("registry: empty endpoint"):
        run.market.register(
            run.task, keccak(b"pk"), "", value=run.cfg["bond"], sender=data_owners[0]
        )


def test_tasks_are_independent(new_run, other_owner, data_owners):
    first, second = new_run(), new_run(owner=other_owner, max_dos=4)
    first.create()
    second.create()
    first.register(data_owners[:3])
    second.register(data_owners[1:5])
    assert first.market.members(first.task) == data_owners[:3]
    assert second.market.members(second.task) == data_owners[1:5]
    with boa.reverts("registry: task full"):
        second.register(data_owners[5:6])
