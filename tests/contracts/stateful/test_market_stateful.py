"""The market's state machine (tests/contracts/stateful/base.py) in the default suite.

The contracts are deployed once for the test and each example rolls back to that snapshot, so
a step costs its calls and the invariants it needs, not a redeployment: the ci profile runs at
least 10,000 steps. `just fuzz` runs the same machine for a time budget
(tests/fuzzing/runner.py).
"""

import os
import time

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from tests.contracts.stateful.base import ROOT, MarketBase, deploy
from tests.fuzzing.recorder import recorder

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
# ci: 54 examples of up to 200 steps (>= 10,000 steps: 12,104 in 61 examples measured, so
# about 10,700); debug: a few short ones
EXAMPLES = {"debug": 5}.get(PROFILE, 54)
STEPS = {"debug": 40}.get(PROFILE, 200)


class MarketMachine(MarketBase):
    """The market as built from contracts/."""


def test_market_stateful(record_property):
    MarketMachine.deployment = deploy(
        ROOT / "contracts" / "DataMarket.vy", ROOT / "contracts" / "SharesCourt.vy", "fuzz_deployer"
    )
    rec = recorder(MarketMachine.target)
    steps, examples, start = rec.steps, rec.examples, time.perf_counter()
    run_state_machine_as_test(
        MarketMachine,
        settings=settings(settings.default, max_examples=EXAMPLES, stateful_step_count=STEPS),
    )
    steps, examples = rec.steps - steps, rec.examples - examples
    elapsed = time.perf_counter() - start
    least = ", ".join(f"{name} {n}" for name, n in rec.least_fired(4))
    # the session's summary prints these (tests/conftest.py), from a worker process too
    record_property("summary", f"stateful: {steps} steps, {examples} examples, {elapsed:.0f} s")
    record_property("summary", f"stateful: fewest successes: {least}")
