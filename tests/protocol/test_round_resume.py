"""A restarted data owner re-posts exactly the unmask message its machine chose before the crash."""

from harness import Dropout, Harness, Plan, addresses
from hypothesis import given
from hypothesis import strategies as st

from protocol.encoding import QuantConfig
from protocol.round import PostUnmask, RoundMachine, State

QUANT = QuantConfig(lane_bits=16, scale_bits=8, clip_norm=4.0)


@given(size=st.integers(3, 6), seed=st.integers(0, 10_000), dropper=st.integers(0, 5))
def test_unmask_is_rebuilt_from_the_ledger_after_restore(
    size: int, seed: int, dropper: int
) -> None:
    members = addresses(size, seed)
    plans = {m: Plan() for m in members}
    plans[members[dropper % size]] = Plan(dropout=Dropout.AFTER_COMMIT)
    outcome = Harness(members, 2, QUANT, 9, plans, seed).run()
    for member, machine in outcome.machines.items():
        posted = [a for a in outcome.actions[member] if isinstance(a, PostUnmask)]
        restored = RoundMachine.restore(machine.snapshot(), lambda n: bytes(n))
        if machine.state in (State.UNMASKED, State.DONE):
            assert posted and restored.unmask() == posted[0]
        else:
            assert not posted and restored.unmask() is None
