"""bench.paths on a real node at d = 10,000: every path measured, and the floor holds.

Gas, not time: receipts' gas depends only on the words sent, so these relations are stable.
"""

import pytest

from bench.paths import measure

pytestmark = pytest.mark.anvil


def test_paths_rows_at_d_10k() -> None:
    result = measure(params=(10_000,), lane_bits=(32,), naive_sample_chunks=1, sweep=False)
    rows = {row["path"]: row for row in result["rows"]}
    assert set(rows) == {"event", "blob", "naive", "packed_storage"}
    blob = rows.pop("blob")
    # one type-3 transaction of one blob: execution gas far below the floor, blob gas apart
    assert (blob["transactions"], blob["blobs"]) == (1, 1)
    assert blob["gas_per_param"] < 0.5 * blob["floor_gas_per_param"]
    assert blob["blob_gas_per_param"] == 2**17 / 10_000
    assert result["kzg"]["seconds_per_blob"]["commitment"] > 0
    for row in rows.values():
        assert (row["d"], row["lane_bits"]) == (10_000, 32)
        # nothing carries the update below the calldata floor of its words
        assert row["gas_per_param"] > row["floor_gas_per_param"] > 150
        assert row["ratio"] == pytest.approx(row["gas_per_param"] / row["floor_gas_per_param"])
    assert rows["event"]["vs_event"] == 1.0
    assert rows["naive"]["sampled_params"] == 1_024
    assert rows["naive"]["gas_per_param"] > 20_000  # a fresh slot per parameter
    assert rows["naive"]["vs_event"] > 100
    packed = rows["packed_storage"]
    assert packed["first_write_gas_per_param"] > 3 * packed["gas_per_param"]
    assert 1 < packed["vs_event"] < rows["naive"]["vs_event"]
    assert result["event_max_chunk_words"] == 6_144
    assert rows["event"]["chunk_words"] == 1_250  # one chunk: 10,000 lanes of 32 bits
