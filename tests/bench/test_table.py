"""bench.table: markdown from results files, written between the README's markers."""

import json
from pathlib import Path

import pytest

from bench.table import BEGIN, END, into_readme, render


def _gas_paths(tmp_path: Path) -> None:
    rows = [
        {"path": path, "d": d, "lane_bits": 32, "gas_per_param": gas, "ratio": gas / 160}
        for path, gas in (("event", 161.0), ("naive", 22_500.0))
        for d in (10_000, 50_000)
    ]
    rows.append(
        {
            "path": "blob",
            "d": 50_000,
            "lane_bits": 32,
            "gas_per_param": 0.5,
            "ratio": 0.5 / 160,
            "blob_gas_per_param": 5.2,
        }
    )
    (tmp_path / "gas_paths.json").write_text(json.dumps({"rows": rows}))


def test_render_pivots_paths_by_d_and_leaves_missing_files_out(tmp_path: Path) -> None:
    _gas_paths(tmp_path)
    table = render(tmp_path)
    assert "| event (ours) | 32 | 161.0 (1.006x) | 161.0 (1.006x) |" in table
    assert "| blob (EIP-4844) | 32 | — | 0.5 (0.003x) + 5.2 blob gas |" in table
    assert "One whole round" not in table  # no rounds.json


def test_into_readme_replaces_only_the_marked_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{BEGIN}\nold\n{END}\n\nafter\n")
    into_readme(readme, "| new |\n")
    assert readme.read_text() == f"intro\n\n{BEGIN}\n| new |\n{END}\n\nafter\n"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit):
        into_readme(readme, "| new |\n")


def test_render_shows_the_peer_rows_and_the_breakdown(tmp_path: Path) -> None:
    def row(system: str, chain: str | None, rounds: int, wall: float, per_round: float) -> dict:
        return {
            "system": system,
            "chain": chain,
            "rounds": rounds,
            "repeats": 2,
            "wall_seconds": wall,
            "seconds_per_round": per_round,
            "cpu_seconds_per_round": 2 * per_round,
            "peer_ratio": per_round / 5.0,
            "cpu_peer_ratio": per_round / 5.0,
            "whole_run_seconds_per_round": per_round + 1.0,
            "whole_run_peer_ratio": (per_round + 1.0) / 6.0,
            "accuracy": [0.95, 0.97, 0.975][:rounds],
            "peak_rss_bytes": 2**30,
        }

    rows = [row("omnilytics", "boa", n, 10.0 * n, 10.0) | {"data_path": "direct"} for n in (1, 3)]
    rows += [row("omnilytics", "boa", n, 12.0 * n, 12.0) | {"data_path": "event"} for n in (1, 3)]
    rows += [row("flower_secaggplus", None, n, 5.0 * n, 5.0) for n in (1, 3)]
    round_ = {
        "wall_seconds": 10.0,
        "cpu_seconds": 8.0,
        "phases": dict.fromkeys(
            ("share", "settle", "submit", "unmask", "aggregate", "open_next"), 2.0
        ),
        "work": {"training": 6.0, "cpu training": 5.5, "evm": 3.0},
        "evaluate_beside": 1.25,
    }
    doc = {"flwr_version": "1.42.0", "rows": rows, "breakdown": {"boa direct": {"round": round_}}}
    (tmp_path / "peer.json").write_text(json.dumps(doc))
    table = render(tmp_path)
    ours = (
        "| ours (`omnilytics demo`), boa, direct path | 10.00 s (2.00x) | 20.00 s (2.00x) "
        "| 11.00 s (1.83x) |"
    )
    assert ours in table
    assert "| ours (`omnilytics demo`), boa, event path | 12.00 s (2.40x) |" in table
    assert "1: 12.0 s, 3: 36.0 s" in table  # the event path's runs, not the direct path's
    assert "|  | boa direct |" in table
    assert "| beside the next round: the model owner's head and accuracy | 1.25 |" in table
    assert "| Flower SecAgg+ | 5.00 s (1.00x) |" in table
    assert "| training (every data owner) | 6.00 (5.50) |" in table
    assert "| inside the chain (titanoboa's EVM; anvil's answers) | 3.00 |" in table
