"""A data owner refuses hostile or impossible task terms before it stakes a bond."""

from dataclasses import dataclass, replace

import pytest

from protocol.constants import MIN_DURATION
from protocol.terms import HostileTerms, JoinPolicy, check_terms


@dataclass(frozen=True)
class _Config:
    rounds: int = 2
    group_size: int = 5
    threshold: int = 3
    reward_per_do: int = 100
    bond: int = 50
    register_duration: int = 60
    share_duration: int = 60
    submit_duration: int = 120
    unmask_duration: int = 60


def test_fair_terms_pass():
    check_terms(_Config())
    check_terms(_Config(bond=200))  # exactly the task's whole reward for one data owner


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (dict(share_duration=1), "share_duration"),  # the review's sub-block SHARE
        (dict(register_duration=MIN_DURATION - 1), "register_duration"),
        (dict(unmask_duration=5), "unmask_duration"),
        (dict(submit_duration=10), "submit_duration"),
        (dict(threshold=1), "threshold"),
        (dict(threshold=6), "threshold"),
        (dict(bond=201), "bond"),  # more than the task could ever pay this data owner
        (dict(reward_per_do=0, bond=0), "reward_per_do"),
    ],
)
def test_hostile_terms_are_refused_by_name(change, field):
    with pytest.raises(HostileTerms) as refused:
        check_terms(replace(_Config(), **change))
    assert refused.value.field == field
    assert field in str(refused.value)


def test_a_data_owner_that_trains_long_refuses_a_short_submit_phase():
    slow = JoinPolicy(min_submit_seconds=300)
    with pytest.raises(HostileTerms, match="submit_duration: 120 s < the 300 s"):
        check_terms(_Config(), slow)
    check_terms(_Config(submit_duration=300), slow)


def test_bond_ceiling_follows_the_policy():
    with pytest.raises(HostileTerms, match="bond"):
        check_terms(_Config(bond=150), JoinPolicy(max_bond_rounds=1))
