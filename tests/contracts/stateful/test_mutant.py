"""Planted bugs are caught: the state machine against a copy of the contracts with one bug, for
a bounded number of examples, must fail. The market's `withdraw` pays out without zeroing the
credit; the desk's answer completes a challenge without crediting its fee to the data owner; the
desk's `settle` misses an unanswered challenge without excluding its data owner, who would then
be paid for an update nobody received."""

import shutil
from pathlib import Path

import pytest
from boa.contracts.base_evm_contract import BoaError
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.contracts.stateful.base import ROOT, MarketBase, deploy

# (file under contracts/, the function the bug goes in, the line it removes there)
MUTANTS = {
    "withdraw_keeps_the_credit": (
        "modules/escrow.vy",
        "def withdraw(",
        "    self.credits[token][msg.sender] = 0\n",
    ),
    "answer_keeps_the_fee": (
        "DeliveryDesk.vy",
        "def _answer_chunk(",
        "    self._credit(task, (staticcall market.court_terms(task)).token, msg.sender,"
        " self.challenge_fee[task])\n",
    ),
    "silence_keeps_the_submitter": (
        "DeliveryDesk.vy",
        "def settle(",
        "        extcall market.record_delivery(task, round, do, empty(bytes32))\n",
    ),
}


class MutantMachine(MarketBase):
    """The contracts with the planted bug."""

    target = "market_mutant"


def plant(contracts: Path, name: str) -> None:
    path, function, line = MUTANTS[name]
    source = (contracts / path).read_text()
    start = source.index(function)
    assert source.count(line, start) == 1, f"{function} no longer has the line the mutant removes"
    (contracts / path).write_text(source[:start] + source[start:].replace(line, "", 1))


# the market's mutant in the default suite; the desk's two (20-60 s each) with just test-slow
_SLOW_MUTANTS = {"answer_keeps_the_fee", "silence_keeps_the_submitter"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.slow] if name in _SLOW_MUTANTS else [])
        for name in sorted(MUTANTS)
    ],
)
def test_the_machine_catches_a_planted_bug(tmp_path, name):
    contracts = tmp_path / "contracts"
    shutil.copytree(ROOT / "contracts", contracts)
    plant(contracts, name)
    MutantMachine.deployment = deploy(
        contracts / "DataMarket.vy", contracts / "SharesCourt.vy", f"fuzz_mutant_{name}"
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
    # caught: an invariant or a check fails, or a call the model predicts to succeed reverts
    with pytest.raises((AssertionError, BoaError)):
        run_state_machine_as_test(MutantMachine, settings=bounded)
