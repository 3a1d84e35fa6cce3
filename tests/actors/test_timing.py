"""A data owner's chain time (`actors.measure.timing.TimedChain`): transactions are summed and
labelled by function, reads apart, and the phase polls while it waits are waiting, not protocol
time."""

from collections import defaultdict

from actors.measure.timing import TimedChain, summarize


class FakeChain:
    name = "fake"

    def transact(self, address, function, args, sender):
        return f"{function} mined"

    def call(self, address, function, args):
        return 0

    def call_many(self, address, calls, *, clock=False):
        return [0] * (len(calls) + clock)


def test_transactions_are_labelled_by_function_and_phase_polls_kept_apart() -> None:
    spent: defaultdict[str, float] = defaultdict(float)
    chain = TimedChain(FakeChain(), spent)
    assert chain.transact("0xm", "submit", [1], "0xd") == "submit mined"
    chain.transact("0xm", "withdraw", [], "0xd")
    chain.call("0xm", "credits", ["0xd"])
    chain.call_many("0xm", [("task_phase_of", (1,))], clock=True)
    assert {"transact submit", "transact withdraw", "read call credits"} <= spent.keys()
    assert spent["transactions"] >= spent["transact submit"] + spent["transact withdraw"] > 0
    assert spent["reads"] > 0 and spent["phase_polls"] > 0
    spent["training"] = 1.0
    spent["cpu training"] = 1.0
    summary = summarize(spent)
    assert summary["protocol"] == spent["transactions"] + spent["reads"]
