"""`bench.peer.summarize` on made-up runs: a further round as the 3-round runs timed it inside
(rounds 2 and 3, without the first's start-up) and from whole runs, and both ratios to Flower
SecAgg+'s."""

import pytest

from bench.peer import FEDAVG, OURS, SECAGG, Config, Run, summarize


def _run(wall: float, rounds: list[float]) -> Run:
    return Run(wall, 2 * wall, 2**30, [0.9] * len(rounds), {"round_seconds": rounds})


def test_summary_rows_carry_the_marginal_and_the_in_run_round() -> None:
    runs = {
        Config(OURS, "boa", 1, "direct"): [_run(20.0, [15.0]), _run(24.0, [19.0])],
        # a slow start-up in one run moves the marginal round, not the in-run one
        Config(OURS, "boa", 3, "direct"): [_run(32.0, [15.0, 5.0, 6.0]), _run(40.0, [23, 5, 6])],
        Config(SECAGG, None, 1): [_run(20.0, [16.0]), _run(20.0, [16.0])],
        Config(SECAGG, None, 3): [_run(34.0, [16.0, 7.0, 7.0]), _run(34.0, [16.0, 7.0, 7.0])],
        Config(FEDAVG, None, 1): [_run(19.0, [15.0]), _run(19.0, [15.0])],
        Config(FEDAVG, None, 3): [_run(31.0, [15.0, 6.0, 6.0]), _run(31.0, [15.0, 6.0, 6.0])],
    }
    rows = {(r["system"], r["rounds"]): r for r in summarize(runs)}
    ours, flower = rows[OURS, 3], rows[SECAGG, 3]
    assert ours["whole_run_seconds_per_round"] == pytest.approx((36.0 - 22.0) / 2)
    assert ours["seconds_per_round"] == pytest.approx(5.5)
    assert flower["whole_run_seconds_per_round"] == pytest.approx(7.0)
    assert flower["seconds_per_round"] == pytest.approx(7.0)
    assert ours["whole_run_peer_ratio"] == pytest.approx(1.0)
    assert ours["peer_ratio"] == pytest.approx(5.5 / 7.0)
    assert rows[OURS, 1]["peer_ratio"] == ours["peer_ratio"]
    assert rows[FEDAVG, 3]["peer_ratio"] == pytest.approx(6.0 / 7.0)
    assert ours["cpu_seconds_per_round"] == pytest.approx(2 * 7.0)
