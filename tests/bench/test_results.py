"""bench/results/*.json as committed: each `{"rows": [...]}`, gas-path and round rows complete.

Reads the files only (no node, no benchmark run), so a bench that writes another shape, or a
file that is not a `just bench` output, fails here rather than in `bench.table` or a reader.
"""

import itertools
import json
from pathlib import Path

import pytest

from bench.gas import RESULTS
from protocol.constants import MAX_CHUNK_WORDS

GAS_PATH_KEYS = {"path", "d", "lane_bits", "gas_per_param", "floor_gas_per_param", "ratio"}
ROUND_KEYS = {"dos", "d", "total_gas", "chain_seconds", "protocol_overhead"}
MASK_KEYS = {"d", "peers", "threshold", "ours_seconds", "flower_seconds", "ratio"}
# `just bench-peer`: ours beside Flower on the demo's job
PEER_KEYS = {
    "system",
    "rounds",
    "chain",
    "wall_seconds",
    "seconds_per_round",
    "whole_run_seconds_per_round",
    "accuracy",
    "peak_rss_bytes",
    "peer_ratio",
    "whole_run_peer_ratio",
}
PEER_SYSTEMS = {"omnilytics", "flower_secaggplus", "flower_fedavg"}
# the market issue's gas table (`just gas`)
GAS_KEYS = {"d", "dos", "groups", "per_phase", "submit_gas_per_param", "floor_gas_per_param"}
# the direct-path issue's rows (`just bench-direct`): per data owner per round, not per parameter
DIRECT_KEYS = {"path", "d", "gas_per_do_round", "challenged", "gas_per_do_round_7976"}
FILES = sorted(RESULTS.glob("*.json"))


def _rows(path: Path) -> list[dict]:
    doc = json.loads(path.read_text())
    assert isinstance(doc, dict), f"{path.name}: not an object"
    rows = doc.get("rows")
    assert isinstance(rows, list) and rows, f"{path.name}: no non-empty rows list"
    assert all(isinstance(row, dict) for row in rows), f"{path.name}: a row is not an object"
    return rows


def test_the_results_are_there() -> None:
    names = {path.name for path in FILES}
    assert {"gas.json", "gas_paths.json", "rounds.json", "chain_time.json", "mask.json"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_rows_of_each_kind_carry_its_keys(path: Path) -> None:
    for row in _rows(path):
        if "gas_per_do_round" in row:
            assert not DIRECT_KEYS - row.keys(), f"{path.name}: {DIRECT_KEYS - row.keys()}"
        elif "paper_seconds" in row:  # a chain-time row (the direct path's has a path)
            assert row["chain_seconds"] > 0 and row["paper_seconds"] == 0.5
        elif "path" in row:
            assert not GAS_PATH_KEYS - row.keys(), f"{path.name}: {GAS_PATH_KEYS - row.keys()}"
            assert row["ratio"] == pytest.approx(row["gas_per_param"] / row["floor_gas_per_param"])
        if {"dos", "total_gas"} <= row.keys() and row.get("path") != "direct":
            assert not ROUND_KEYS - row.keys(), f"{path.name}: {ROUND_KEYS - row.keys()}"


def test_each_kind_of_row_is_present() -> None:
    rows = {path.name: _rows(path) for path in FILES}
    assert any("path" in row for row in rows["gas_paths.json"])
    assert [row["function"] for row in rows["gas.json"] if "path" in row] == ["submit"]
    assert all({"dos", "total_gas"} <= row.keys() for row in rows["rounds.json"])
    (chain_time,) = [row for row in rows["chain_time.json"] if "path" not in row]
    assert chain_time["chain_seconds"] > 0 and chain_time["protocol_overhead"] is not None
    (direct,) = [row for row in rows["chain_time.json"] if row.get("path") == "direct"]
    assert direct["chain_seconds"] > 0 and direct["paper_seconds"] == 0.5
    # a round at d >= 1M through the actors, with exact aggregates (`just bench-direct-round`)
    large = [row for row in rows["direct_round.json"] if row["d"] >= 1_000_000]
    assert large and all(row["aggregates_exact"] for row in rows["direct_round.json"])
    (mask,) = rows["mask.json"]
    assert not MASK_KEYS - mask.keys()


def test_peer_rows_carry_their_keys_and_ratios_to_flower_secaggplus() -> None:
    path = RESULTS / "peer.json"
    if not path.exists():
        pytest.skip("no peer.json: `just bench-peer` has not run")
    rows = _rows(path)
    for row in rows:
        assert not PEER_KEYS - row.keys(), f"peer.json: {PEER_KEYS - row.keys()}"
        assert row["system"] in PEER_SYSTEMS
        assert (row["chain"] is None) == row["system"].startswith("flower")
        assert len(row["accuracy"]) == row["rounds"]
        assert row["wall_seconds"] > 0 and row["peak_rss_bytes"] > 0
    assert {row["system"] for row in rows} == PEER_SYSTEMS
    ours = [row for row in rows if row["system"] == "omnilytics"]
    assert {row["chain"] for row in ours} == {"boa", "anvil"}
    assert {row["data_path"] for row in ours} <= {"direct", "event"}
    assert all(row["data_path"] is None for row in rows if row not in ours)
    for row in rows:
        if row["system"] == "flower_secaggplus":
            assert row["peer_ratio"] == pytest.approx(1.0)
    doc = json.loads(path.read_text())
    for chain, data_path in itertools.product(("boa", "anvil"), doc["data_paths"]):
        middle = doc["breakdown"][f"{chain} {data_path}"]["round"]
        phases = {"share", "settle", "submit", "unmask", "aggregate", "open_next"}
        assert phases <= middle["phases"].keys() and middle["evaluate_beside"] > 0


def test_the_round_gas_table_has_the_issues_keys_and_submit_within_1_1x_of_the_floor() -> None:
    gas = json.loads((RESULTS / "gas.json").read_text())
    assert not GAS_KEYS - gas.keys(), GAS_KEYS - gas.keys()
    assert (gas["d"], gas["dos"], gas["groups"]) == (50_000, 10, 2)
    phases = {"create_task", "register", "advance", "commit_shares", "submit", "unmask"}
    assert phases <= gas["per_phase"].keys() and all(v > 0 for v in gas["per_phase"].values())
    # measured with the chunks the data owners send (a stale default once made it 4,000)
    assert gas["chunk_words"] == MAX_CHUNK_WORDS
    assert gas["submit_gas_per_param"] / gas["floor_gas_per_param"] <= 1.1


def test_the_direct_path_rows_carry_the_issues_numbers() -> None:
    """bench/results/direct_path.json as committed: the rows the issue asks for."""
    doc = json.loads((RESULTS / "direct_path.json").read_text())
    plain = {r["d"]: r for r in doc["rows"] if r["path"] == "direct" and not r["challenged"]}
    assert {10_000, 50_000, 200_000, 1_000_000, 10_000_000} <= plain.keys()
    values = [r["gas_per_do_round"] for r in plain.values()]
    assert max(values) / min(values) <= 1.05 and max(values) <= 1_000_000
    assert doc["direct_flatness"] == pytest.approx(max(values) / min(values))
    event = {r["d"]: r for r in doc["rows"] if r["path"] == "event"}
    assert not event[46_730]["extrapolated"] and event[10_000_000]["extrapolated"]
    assert plain[46_730]["vs_event"] == pytest.approx(
        plain[46_730]["gas_per_do_round"] / event[46_730]["gas_per_do_round"]
    )
