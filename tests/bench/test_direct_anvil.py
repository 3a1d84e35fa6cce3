"""bench.direct on a real node at d = 10,000 (its smallest configuration, about 10 s): three
whole rounds, and the relations the direct-path issue asks for.

Gas, not time: receipts' gas depends only on the calls made, so these relations are stable.
"""

import pytest

from bench.direct import DOS, measure

pytestmark = pytest.mark.anvil


def test_direct_rows_at_d_10k() -> None:
    result = measure(params=(10_000,))
    rows = {(r["path"], r["challenged"]): r for r in result["rows"]}
    assert set(rows) == {("direct", False), ("direct", True), ("event", False)}
    direct, challenged, event = rows["direct", False], rows["direct", True], rows["event", False]
    for row in rows.values():
        assert (row["d"], row["dos"], row["extrapolated"]) == (10_000, DOS, False)
        # what every data owner pays whatever the path
        assert row["register_gas_per_do"] == pytest.approx(direct["register_gas_per_do"], 1e-3)
    # no challenge: a commitment instead of the words, under the 1.0 M a round
    assert direct["gas_by_function_per_do"]["commit_update"] < 150_000
    assert direct["gas_per_do_round"] < 1_000_000 < event["gas_per_do_round"]
    assert direct["vs_event"] == pytest.approx(
        direct["gas_per_do_round"] / event["gas_per_do_round"]
    )
    # challenged: the answer carries the same words as `submit`, at the same cost
    answer = challenged["gas_by_function_per_do"]["answer"]
    assert answer == pytest.approx(event["gas_by_function_per_do"]["submit"], rel=0.01)
    assert 1.0 < challenged["vs_event"] < 1.05
    assert challenged["challenge_gas_per_do"] > 0
    # the 64 gas/byte floor only raises what carries words
    assert direct["gas_per_do_round_7976"] == pytest.approx(direct["gas_per_do_round"], 1e-3)
    assert event["gas_per_do_round_7976"] > 1.3 * event["gas_per_do_round"]
