"""Sample-count weighting: the decoded group mean is the sample-weighted mean of its members."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.encoding import QuantConfig
from protocol.errors import ConfigError, RecoveryError
from protocol.weighting import check_count_headroom, decode_weighted, encode_weighted

QUANT = QuantConfig(lane_bits=32, scale_bits=20, clip_norm=1.0)


@given(
    counts=st.lists(st.integers(1, 3_000), min_size=2, max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
def test_group_mean_is_sample_weighted(counts: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    cap = 2_000
    updates = [rng.normal(0, 0.01, 50) for _ in counts]
    total = np.zeros(51, dtype=QUANT.ring_dtype)
    for update, count in zip(updates, counts, strict=True):
        total += encode_weighted(update, count, cap=cap, quant=QUANT, rng=rng)
    mean = decode_weighted(total, cap=cap, quant=QUANT)
    counted = [min(c, cap) for c in counts]
    expected = sum(c * u for c, u in zip(counted, updates, strict=True)) / sum(counted)
    assert mean.samples == sum(counted)
    # each lane carries at most one quantization step of error per member, scaled back by cap/n
    bound = len(counts) * cap / sum(counted) / 2**QUANT.scale_bits
    assert np.max(np.abs(mean.update - expected)) <= bound


def test_headroom_and_bad_sums_are_refused() -> None:
    check_count_headroom(QUANT, 8, 10_000)
    with pytest.raises(ConfigError):
        check_count_headroom(QuantConfig(16, 8, 1.0), 8, 10_000)
    with pytest.raises(ConfigError):
        check_count_headroom(QUANT, 8, 0)
    with pytest.raises(RecoveryError):
        decode_weighted(np.zeros(5, dtype=QUANT.ring_dtype), cap=10, quant=QUANT)
    with pytest.raises(RecoveryError):
        decode_weighted(np.zeros(5, dtype=np.uint16), cap=10, quant=QUANT)
