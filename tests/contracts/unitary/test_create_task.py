"""create_task: escrow in ETH or ERC-20, the published spec, every config rule."""

from pathlib import Path

import boa
import pytest
from eth_utils import keccak

from protocol.constants import MAX_SPEC_BYTES, PHASE_REGISTER
from protocol.spec import canonical_bytes, parse_spec
from tests.contracts.market import ETH, NO_SPEC_HASH, as_struct, config, escrow_of, events

MNIST_SPEC = Path(__file__).resolve().parents[3] / "examples" / "mnist-cnn.toml"
# the largest sample cap a group of up to 2m - 1 = 3 members (m = 2) can count in a lane
CAP_16 = (2**15 - 1) // 3
CAP_32 = (2**31 - 1) // 3


def test_eth_task_escrows_exact_value(market, model_owner):
    cfg = config()
    balance = boa.env.get_balance(market.address)
    task = market.create_task(as_struct(cfg), b"", value=escrow_of(cfg), sender=model_owner)
    (created,) = events(market, "TaskCreated")
    assert created.task == task and created.owner == model_owner
    assert tuple(created.config) == as_struct(cfg)
    (published,) = events(market, "TaskSpec")
    assert published.task == task and published.spec == b""
    (deposited,) = events(market, "EscrowDeposited")
    assert deposited.amount == escrow_of(cfg)
    assert task == 1
    assert market.task_count() == 1
    assert market.escrow_remaining(task) == escrow_of(cfg)
    assert boa.env.get_balance(market.address) == balance + escrow_of(cfg)
    assert market.task_owner(task) == model_owner
    assert market.task_phase(task) == PHASE_REGISTER
    assert market.deadline(task) == boa.env.timestamp + cfg["register_duration"]
    assert tuple(market.task_config(task)) == as_struct(cfg)


def test_tasks_are_numbered_from_one(market, model_owner, other_owner):
    cfg = config()
    first = market.create_task(as_struct(cfg), b"", value=escrow_of(cfg), sender=model_owner)
    second = market.create_task(as_struct(cfg), b"", value=escrow_of(cfg), sender=other_owner)
    assert (first, second) == (1, 2)
    assert market.task_owner(second) == other_owner


@pytest.mark.parametrize("delta", [-1, 1])
def test_eth_task_rejects_wrong_value(market, model_owner, delta):
    cfg = config()
    with boa.reverts("escrow: wrong escrow value"):
        market.create_task(as_struct(cfg), b"", value=escrow_of(cfg) + delta, sender=model_owner)
    assert market.task_count() == 0


def test_token_task_pulls_escrow(market, model_owner, token):
    cfg = config(token=token.address)
    token.approve(market.address, escrow_of(cfg), sender=model_owner)
    before = token.balanceOf(model_owner)
    task = market.create_task(as_struct(cfg), b"", sender=model_owner)
    assert token.balanceOf(market.address) == escrow_of(cfg)
    assert token.balanceOf(model_owner) == before - escrow_of(cfg)
    assert market.escrow_remaining(task) == escrow_of(cfg)


def test_token_task_accepts_token_without_return_value(market, model_owner, no_return_token):
    cfg = config(token=no_return_token.address)
    no_return_token.approve(market.address, escrow_of(cfg), sender=model_owner)
    task = market.create_task(as_struct(cfg), b"", sender=model_owner)
    assert no_return_token.balanceOf(market.address) == escrow_of(cfg)
    assert market.escrow_remaining(task) == escrow_of(cfg)


def test_token_task_rejects_eth(market, model_owner, token):
    cfg = config(token=token.address)
    token.approve(market.address, escrow_of(cfg), sender=model_owner)
    with boa.reverts("escrow: wrong escrow value"):
        market.create_task(as_struct(cfg), b"", value=1, sender=model_owner)


def test_token_task_without_allowance_reverts(market, model_owner, token):
    cfg = config(token=token.address)
    with boa.reverts("escrow: token transfer failed"):
        market.create_task(as_struct(cfg), b"", sender=model_owner)


def test_token_returning_false_reverts(market, model_owner, false_token):
    cfg = config(token=false_token.address)
    with boa.reverts("escrow: token transfer failed"):
        market.create_task(as_struct(cfg), b"", sender=model_owner)


def test_fee_on_transfer_token_refused(market, model_owner, fee_token):
    cfg = config(token=fee_token.address)
    fee_token.approve(market.address, escrow_of(cfg), sender=model_owner)
    with boa.reverts("escrow: token amount short"):
        market.create_task(as_struct(cfg), b"", sender=model_owner)


def test_token_must_be_a_contract(market, model_owner, stranger):
    cfg = config(token=stranger)
    with boa.reverts("escrow: token is not a contract"):
        market.create_task(as_struct(cfg), b"", sender=model_owner)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"model_hash": bytes(32)}, "rounds: empty model hash"),
        ({"d": 0}, "rounds: bad d"),
        ({"d": 2**32 + 1}, "rounds: bad d"),
        ({"lane_bits": 8}, "rounds: bad lane bits"),
        ({"lane_bits": 64}, "rounds: bad lane bits"),
        ({"lane_bits": 16, "scale_bits": 16}, "rounds: bad scale bits"),
        ({"clip_norm_micro": 0}, "rounds: zero clip norm"),
        ({"rounds": 0}, "rounds: bad rounds"),
        ({"rounds": 1025}, "rounds: bad rounds"),
        ({"max_dos": 0}, "rounds: bad max_dos"),
        ({"max_dos": 257}, "rounds: bad max_dos"),
        ({"group_size": 1, "threshold": 1}, "rounds: bad group size"),
        ({"group_size": 33, "min_dos": 33, "max_dos": 40}, "rounds: bad group size"),
        ({"min_dos": 1}, "rounds: bad min_dos"),
        ({"min_dos": 7}, "rounds: bad min_dos"),
        ({"threshold": 1}, "rounds: bad threshold"),
        ({"threshold": 3}, "rounds: bad threshold"),
        ({"sample_cap": 0}, "rounds: bad sample cap"),
        ({"sample_cap": CAP_32 + 1}, "rounds: bad sample cap"),
        ({"sample_cap": 2**256 - 1}, "rounds: bad sample cap"),
        ({"lane_bits": 16, "scale_bits": 8, "sample_cap": CAP_16 + 1}, "rounds: bad sample cap"),
        (
            {
                "group_size": 32,
                "threshold": 32,
                "min_dos": 32,
                "max_dos": 256,
                "sample_cap": (2**31 - 1) // 63 + 1,
            },
            "rounds: bad sample cap",
        ),
        ({"reward_per_do": 0}, "rounds: zero reward"),
        ({"reward_per_do": 2**256 // 12 + 1}, "rounds: reward too large"),
        ({"register_duration": 0}, "rounds: bad duration"),
        ({"share_duration": 0}, "rounds: bad duration"),
        ({"submit_duration": 0}, "rounds: bad duration"),
        ({"unmask_duration": 365 * 86400 + 1}, "rounds: bad duration"),
        ({"data_path": 3}, "rounds: bad data path"),
        ({"data_path": 2**256 - 1}, "rounds: bad data path"),
        ({"spec_hash": bytes(32)}, "rounds: spec hash mismatch"),
    ],
)
def test_config_rules(market, model_owner, overrides, reason):
    cfg = config(**overrides)
    with boa.reverts(reason):
        market.create_task(as_struct(cfg), b"", value=0, sender=model_owner)


@pytest.mark.parametrize(
    "overrides",
    [
        {"lane_bits": 16, "scale_bits": 15},
        {"d": 2**32},
        {"group_size": 32, "threshold": 32, "min_dos": 32, "max_dos": 256},
        {"min_dos": 6, "max_dos": 6},
        {"bond": 0},
        {"rounds": 1024, "unmask_duration": 365 * 86400},
        {"data_path": 1},
        {"sample_cap": 1},
        {"sample_cap": CAP_32},
        {"lane_bits": 16, "scale_bits": 8, "sample_cap": CAP_16},
        {
            "group_size": 32,
            "threshold": 32,
            "min_dos": 32,
            "max_dos": 256,
            "sample_cap": (2**31 - 1) // 63,
        },
    ],
)
def test_config_limits_accepted(market, model_owner, overrides):
    cfg = config(**overrides)
    task = market.create_task(as_struct(cfg), b"", value=escrow_of(cfg), sender=model_owner)
    assert tuple(market.task_config(task)) == as_struct(cfg)
    assert cfg["token"] == ETH


def test_spec_is_published_in_the_creating_transaction(market, model_owner):
    spec = canonical_bytes(parse_spec(MNIST_SPEC.read_bytes()))
    cfg = config(spec_hash=keccak(spec))
    task = market.create_task(as_struct(cfg), spec, value=escrow_of(cfg), sender=model_owner)
    (published,) = events(market, "TaskSpec")
    assert (published.task, published.spec) == (task, spec)
    assert market.task_config(task).spec_hash == keccak(spec)


def test_the_longest_spec_is_accepted(market, model_owner):
    spec = bytes(range(256)) * (MAX_SPEC_BYTES // 256)
    assert len(spec) == MAX_SPEC_BYTES
    cfg = config(spec_hash=keccak(spec))
    task = market.create_task(as_struct(cfg), spec, value=escrow_of(cfg), sender=model_owner)
    (published,) = events(market, "TaskSpec")
    assert (published.task, published.spec) == (task, spec)


@pytest.mark.parametrize(
    ("spec", "spec_hash"),
    [
        (b"{}", NO_SPEC_HASH),  # bytes the config does not commit to
        (b"", keccak(b"{}")),  # a committed spec left out
        (b"{} ", keccak(b"{}")),
    ],
)
def test_spec_must_match_its_hash(market, model_owner, spec, spec_hash):
    cfg = config(spec_hash=spec_hash)
    with boa.reverts("rounds: spec hash mismatch"):
        market.create_task(as_struct(cfg), spec, value=escrow_of(cfg), sender=model_owner)
    assert market.task_count() == 0
