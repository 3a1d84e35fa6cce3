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
