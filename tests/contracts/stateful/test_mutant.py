"""A planted bug is caught: the state machine against a copy of the market whose `withdraw`
pays out without zeroing the credit, for a bounded number of examples, must fail."""

import shutil

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.contracts.stateful.base import ROOT, MarketBase, deploy

ZEROING = "    self.credits[token][msg.sender] = 0\n"


class MutantMachine(MarketBase):
    """The market with the planted bug."""

    target = "market_mutant"


def test_the_machine_catches_a_withdraw_that_keeps_the_credit(tmp_path):
    contracts = tmp_path / "contracts"
    shutil.copytree(ROOT / "contracts", contracts)
    escrow = contracts / "modules" / "escrow.vy"
    source = escrow.read_text()
    withdraw = source.index("def withdraw(")
    assert source.count(ZEROING, withdraw) == 1, "withdraw no longer zeroes the credit this way"
    escrow.write_text(source[:withdraw] + source[withdraw:].replace(ZEROING, "", 1))
    MutantMachine.deployment = deploy(
        contracts / "DataMarket.vy", contracts / "SharesCourt.vy", "fuzz_mutant_deployer"
    )
    # bounded: no database, no shrinking, at most 30 examples of 100 steps
    bounded = settings(
        settings.default,
        max_examples=30,
        stateful_step_count=100,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
    )
    with pytest.raises(AssertionError):
        run_state_machine_as_test(MutantMachine, settings=bounded)
