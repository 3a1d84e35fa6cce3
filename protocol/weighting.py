"""Sample-count weighting inside the secure sum.

A data owner with more data should count more, but its sample count is private too. So each DO
submits `d = P + 1` lanes: its clipped update scaled by `w_i = min(n_i, cap) / cap` (so its norm
stays within the clip bound), and one last *count lane* holding `min(n_i, cap)` as a plain ring
integer. Masking hides both; the group aggregate reveals only `sum w_i u_i` and `sum n_i`, from
which the group's sample-weighted mean follows. `cap` (a task parameter the model owner picks)
bounds one DO's weight, and the count lane needs `group_size * cap < 2**(k-1)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.encoding import QuantConfig, clip, dequantize, to_ring
from protocol.errors import ConfigError, LocalProtocolError, RecoveryError


@dataclass(frozen=True, slots=True)
class WeightedMean:
    """A group's sample-weighted mean update and the samples behind it."""

    update: np.ndarray  # float64, length P
    samples: int


def check_count_headroom(quant: QuantConfig, group_size: int, cap: int) -> None:
    """Refuse a cap whose group total could overflow the signed count lane."""
    if cap < 1:
        raise ConfigError(f"the sample cap must be at least 1, got {cap}")
    limit = 1 << (quant.lane_bits - 1)
    if group_size * cap >= limit:
        raise ConfigError(
            f"group size {group_size} x sample cap {cap} does not fit a {quant.lane_bits}-bit lane"
        )


def encode_weighted(
    update: npt.ArrayLike,
    samples: int,
    *,
    cap: int,
    quant: QuantConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """The `P + 1` ring lanes a DO submits: `to_ring(clip(u) * w)` then the count lane. The one
    clip of a data owner's update (scaling by `w <= 1` keeps it within the bound)."""
    if samples < 1:
        raise LocalProtocolError(f"a data owner trains on at least one sample, got {samples}")
    counted = min(samples, cap)
    scaled = clip(np.asarray(update, dtype=np.float64), quant.clip_norm) * (counted / cap)
    lanes = np.empty(scaled.size + 1, dtype=quant.ring_dtype)
    lanes[:-1] = to_ring(scaled, quant, rng)
    lanes[-1] = counted
    return lanes


def decode_weighted(ring_sum: npt.ArrayLike, *, cap: int, quant: QuantConfig) -> WeightedMean:
    """A group's weighted mean from the ring sum of its members' `encode_weighted` lanes."""
    lanes = np.asarray(ring_sum)
    if lanes.dtype != quant.ring_dtype or lanes.ndim != 1 or lanes.size < 2:
        raise RecoveryError("a weighted sum is a ring vector of P + 1 >= 2 lanes")
    samples = int(lanes[-1])
    if samples < 1 or samples >= 1 << (quant.lane_bits - 1):
        raise RecoveryError(f"the count lane holds {samples}: not a sum of sample counts")
    total = dequantize(lanes[:-1], quant)
    return WeightedMean(update=total * (cap / samples), samples=samples)
