"""bench.scale on a real node at small sizes, and bench.table over what it writes.

Gas and block counts, not time: receipts' gas depends only on what was sent.
"""

import json
from pathlib import Path

import pytest

from bench.scale import measure
from bench.table import render

pytestmark = pytest.mark.anvil


def test_scale_rows_growth_and_one_block_capacity(tmp_path: Path) -> None:
    sweeps = {"dos": {"values": (5, 10), "fixed": {"group_size": 5, "d": 500}}}
    result = measure(sweeps)
    rows = result["rows"]
    assert [(r["dos"], r["group_size"], r["d"]) for r in rows] == [(5, 5, 500), (10, 5, 500)]
    for row in rows:
        for key in ("dos", "d", "total_gas", "chain_seconds", "protocol_overhead"):
            assert key in row
        assert row["submitted"] == row["dos"]
        assert row["submit_to_floor"] > 1  # nothing carries an update below its floor
    growth = result["growth"]["dos"]
    assert growth["variable"] == 2
    assert growth["total_gas"] == pytest.approx(rows[1]["total_gas"] / rows[0]["total_gas"])

    cap = result["block_capacity"]
    assert cap["checked"]
    assert cap["check_fits"]["blocks"] == 1 and cap["check_fits"]["gas_used_is_floor"]
    assert cap["check_one_word_more"]["blocks"] == 2
    assert cap["check_fits"]["gas_limits"] <= cap["block_gas_limit"]
    # a 30M-gas block at 1,280 gas a word carries at most 23,437 words
    assert cap["max_words"] <= cap["block_gas_limit"] // 1_280
    assert cap["max_params"] == 8 * cap["max_words"] - 1

    (tmp_path / "scale.json").write_text(json.dumps(result))
    table = render(tmp_path)
    assert f"d = {cap['max_params']:,}" in table
    assert "| N (data owners) | 5 → 10 (x2) |" in table
