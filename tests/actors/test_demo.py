"""The demo's own path (`omnilytics demo`): a small two-round market on the embedded chain with
the real torch learners and one data owner vanishing in round 1. Its JSON report carries every
key the README documents, its PNG is written, its aggregates are exact, every data owner that
stayed is paid for both rounds and the vanished one's round-1 slot goes back to the model owner."""

import io
import json
from pathlib import Path

from rich.console import Console

from actors.entry.run import demo
from actors.entry.scenario import Scenario

REPORT_KEYS = {
    "chain",
    "dos",
    "rounds",
    "groups",
    "accuracy_before",
    "accuracy_after",
    "gas",
    "gas_per_param_submit",
    "chain_seconds",
    "credited_wei",
    "withdrawn_wei",
    "refunded_wei",
    "dropped",
    "aggregate_exact",
}


def test_demo_reports_plots_and_pays(tmp_path: Path) -> None:
    scenario = Scenario(
        dos=6,
        rounds=2,
        group_size=3,
        threshold=2,
        do_samples=200,
        test_limit=1_000,
        drops=((5, 1, "submit"),),
        submit_duration=30,  # round 1's SUBMIT runs to its deadline: one member never submits
    )
    out = io.StringIO()
    report = demo(
        scenario,
        report_path=tmp_path / "report.json",
        plot_path=tmp_path / "plot.png",
        state_dir=tmp_path / "state",
        console=Console(file=out, width=120),
    )
    data = json.loads((tmp_path / "report.json").read_text())
    assert data.keys() >= REPORT_KEYS
    assert (data["chain"], data["dos"], data["rounds"], data["groups"]) == ("boa", 6, 2, 2)
    assert len(data["accuracy_before"]) == len(data["accuracy_after"]) == 2
    assert data["accuracy_after"][0] > data["accuracy_before"][0]
    assert data["gas"]["total"] == sum(v for k, v in data["gas"].items() if k != "total") > 0
    assert data["gas_per_param_submit"] > 0 and data["chain_seconds"] > 0
    # each round end to end, the first from the market's start: they add up to the run's time
    assert len(data["round_seconds"]) == 2 and all(s > 0 for s in data["round_seconds"])
    assert sum(data["round_seconds"]) <= data["wall_seconds"]
    assert data["aggregate_exact"] is True
    reward = scenario.plan().reward_per_do
    (dropped,) = data["dropped"]
    assert len(data["withdrawn_wei"]) == len(data["credited_wei"]) == 6
    assert all(paid == 2 * reward for who, paid in data["withdrawn_wei"].items() if who != dropped)
    # credited from chain data, apart from withdrawals: the one that vanished in round 1 was
    # still credited round 0's reward (its process stopped before it could withdraw it)
    assert all(c == 2 * reward for who, c in data["credited_wei"].items() if who != dropped)
    assert data["credited_wei"][dropped] == reward
    assert data["withdrawn_wei"][dropped] == 0
    assert data["refunded_wei"] == reward  # the round-1 slot of the one that vanished
    assert data == json.loads(report.to_json())
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "exact" in out.getvalue()
