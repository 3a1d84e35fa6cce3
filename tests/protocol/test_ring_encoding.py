"""Properties of protocol.encoding: clipping, quantization, ring wrap, lane layout, headroom."""

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from protocol.encoding import (
    PackedWords,
    QuantConfig,
    check_headroom,
    clip,
    dequantize,
    pack_lanes,
    quantize,
    unpack_lanes,
    word_count,
    words_bytes,
)
from protocol.errors import ConfigError, DecodeError, DecodeReason, EncodingError

lane_bits = st.sampled_from([16, 32])


@st.composite
def configs(draw: st.DrawFn) -> QuantConfig:
    k = draw(lane_bits)
    scale = draw(st.integers(0, k - 8))
    # clip norms that leave room for at least one value in the signed ring
    norm = draw(st.floats(0.01, (2 ** (k - 1) - 2) / 2**scale, allow_nan=False))
    return QuantConfig(k, scale, norm)


@st.composite
def ring_vectors(draw: st.DrawFn, k: int) -> np.ndarray:
    d = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32))
    dtype = np.uint16 if k == 16 else np.uint32
    return np.random.default_rng(seed).integers(0, 2**k, size=d, dtype=dtype)


@given(cfg=configs(), seed=st.integers(0, 2**32), d=st.integers(1, 500))
def test_quantize_round_trip_within_one_step(cfg: QuantConfig, seed: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=cfg.clip_norm, size=d)
    q = quantize(x, cfg, np.random.default_rng(seed + 1))
    assert q.dtype == cfg.ring_dtype
    # stochastic rounding moves a value by less than one fixed-point step
    step = 2.0**-cfg.scale_bits
    assert np.all(np.abs(dequantize(q, cfg) - clip(x, cfg.clip_norm)) < step * (1 + 1e-9))


def test_quantize_is_unbiased_and_reproducible() -> None:
    cfg = QuantConfig(32, 4, 1000.0)
    x = np.full(200_000, 0.3)
    q1 = quantize(x, cfg, np.random.default_rng(7))
    q2 = quantize(x, cfg, np.random.default_rng(7))
    assert np.array_equal(q1, q2)
    # 0.3 * 16 = 4.8: values are 4 or 5, mean close to 4.8
    assert set(np.unique(q1.astype(np.int64))) == {4, 5}
    assert abs(dequantize(q1, cfg).mean() - 0.3) < 1e-3


def test_quantize_leaves_the_input_alone() -> None:
    x = np.array([3.0, 4.0])
    quantize(x, QuantConfig(32, 8, 1.0), np.random.default_rng(0))
    assert x.tolist() == [3.0, 4.0]


def test_negative_values_are_twos_complement() -> None:
    cfg = QuantConfig(16, 0, 100.0)
    q = quantize(np.array([-1.0, -2.0, 3.0]), cfg, np.random.default_rng(0))
    assert q.tolist() == [0xFFFF, 0xFFFE, 3]
    assert dequantize(q, cfg).tolist() == [-1.0, -2.0, 3.0]


@given(seed=st.integers(0, 2**32), m=st.integers(1, 8))
def test_ring_sum_of_quantized_updates_is_exact(seed: int, m: int) -> None:
    cfg = QuantConfig(16, 8, 4.0)
    check_headroom(cfg, m)
    rng = np.random.default_rng(seed)
    xs = [rng.normal(scale=3.0, size=50) for _ in range(m)]
    qs = [quantize(x, cfg, rng) for x in xs]
    total = np.zeros(50, dtype=np.uint16)
    for q in qs:
        total += q  # wraps: ring addition
    exact = sum(q.view(np.int16).astype(np.int64) for q in qs)
    assert np.array_equal(dequantize(total, cfg), exact / 2**8)


def test_clip_scales_down_only() -> None:
    assert np.allclose(clip([3.0, 4.0], 1.0), [0.6, 0.8])
    assert np.array_equal(clip([0.3, 0.4], 1.0), [0.3, 0.4])
    # squares that overflow float64 still give the right direction
    assert np.allclose(clip([1e300, -1e300], 1.0), [2**-0.5, -(2**-0.5)])
    with pytest.raises(EncodingError):
        clip([np.nan], 1.0)
    with pytest.raises(EncodingError):
        clip([[1.0]], 1.0)


@st.composite
def updates(draw: st.DrawFn) -> np.ndarray:
    """Float vectors: hypothesis' own (extremes, near-overflow squares) or seeded normals of any
    scale (where plain scaling overshot the norm by an ulp in about one case in ten)."""
    if draw(st.booleans()):
        finite = st.floats(allow_nan=False, allow_infinity=False)
        return np.array(draw(st.lists(finite, min_size=1, max_size=40)))
    gen = np.random.default_rng(draw(st.integers(0, 2**32)))
    return gen.normal(size=draw(st.integers(1, 400))) * 10.0 ** draw(st.integers(-6, 6))


@given(x=updates(), norm=st.floats(1e-6, 1e6))
# found by `just fuzz budget=15m` (seed 21210415): norm / |x| was subnormal and overshot
@example(x=np.array([2.53339423e305, 2.53339423e305]), norm=1e-6)
def test_clipped_vectors_keep_both_bounds_exactly(x: np.ndarray, norm: float) -> None:
    y = clip(x, norm)
    assert np.max(np.abs(y)) <= norm
    # the norm of the float64 result itself, summed exactly (fsum) and as numpy computes it
    assert math.sqrt(math.fsum(v * v for v in y.tolist())) <= norm
    assert np.linalg.norm(y) <= norm
    assert np.all(np.abs(y) <= np.abs(x))  # scaled down only


@given(k=lane_bits, data=st.data())
def test_pack_unpack_identity(k: int, data: st.DataObject) -> None:
    v = data.draw(ring_vectors(k))
    words = pack_lanes(v, k)
    assert len(words) == word_count(v.size, k) == math.ceil(v.size * k / 256)
    assert all(0 <= w < 2**256 for w in words)
    assert np.array_equal(unpack_lanes(words, v.size, k), v)


@given(k=lane_bits, data=st.data())
def test_pack_bit_layout_lane_zero_low(k: int, data: st.DataObject) -> None:
    v = data.draw(ring_vectors(k))
    lanes = 256 // k
    words = pack_lanes(v, k)
    for i, value in enumerate(v.tolist()):
        assert (words[i // lanes] >> (k * (i % lanes))) & (2**k - 1) == value
    # hand-built reference for the whole word list
    expected = [0] * len(words)
    for i, value in enumerate(v.tolist()):
        expected[i // lanes] |= value << (k * (i % lanes))
    assert words == expected


@given(k=lane_bits, data=st.data())
def test_packed_words_read_as_the_ints_they_hold(k: int, data: st.DataObject) -> None:
    v = data.draw(ring_vectors(k))
    words = pack_lanes(v, k)
    ints = list(words)
    assert isinstance(words, PackedWords)
    assert words.data == words_bytes(ints) == b"".join(w.to_bytes(32, "big") for w in ints)
    assert words == ints and ints == words and words == tuple(ints)
    start = data.draw(st.integers(-len(ints) - 1, len(ints) + 1))
    stop = data.draw(st.integers(-len(ints) - 1, len(ints) + 1))
    assert words[start:stop] == ints[start:stop]
    assert isinstance(words[start:stop], PackedWords)
    assert words[::2] == ints[::2]
    assert [words[i] for i in range(-len(ints), len(ints))] == ints + ints
    with pytest.raises(IndexError):
        words[len(ints)]
    assert hash(words) == hash(PackedWords(words.data))


def test_packed_words_are_whole_words_and_words_bytes_checks_plain_ones() -> None:
    with pytest.raises(EncodingError):
        PackedWords(bytes(33))
    assert PackedWords(b"") == [] and len(PackedWords(b"")) == 0
    assert PackedWords(bytes(32)) != [0, 0] and PackedWords(bytes(32)) != "x"
    for bad in ([-1], [2**256], [True], ["1"]):
        with pytest.raises(EncodingError):
            words_bytes(bad)


def test_pack_small_example() -> None:
    assert pack_lanes(np.array([1, 2, 3], dtype=np.uint32), 32) == [1 | 2 << 32 | 3 << 64]
    assert pack_lanes(np.array([0xFFFF] * 17, dtype=np.uint16), 16) == [2**256 - 1, 0xFFFF]


def test_pack_refuses_out_of_range_lanes() -> None:
    with pytest.raises(EncodingError):
        pack_lanes(np.array([2**16]), 16)
    with pytest.raises(EncodingError):
        pack_lanes(np.array([-1]), 32)
    with pytest.raises(EncodingError):
        pack_lanes(np.array([], dtype=np.uint32), 32)


def test_unpack_refusals_are_named() -> None:
    with pytest.raises(DecodeError) as err:
        unpack_lanes([0, 0], 8, 32)
    assert err.value.reason == DecodeReason.WORD_COUNT
    with pytest.raises(DecodeError) as err:
        unpack_lanes([2**256], 8, 32)
    assert err.value.reason == "word_range"
    with pytest.raises(DecodeError) as err:
        unpack_lanes([-1], 8, 32)
    assert err.value.reason == "word_range"
    # lane 3 is padding when d = 3
    with pytest.raises(DecodeError) as err:
        unpack_lanes([1 << 96], 3, 32)
    assert err.value.reason == "padding"


def test_headroom_rule() -> None:
    cfg = QuantConfig(16, 8, 1.0)  # 256 per DO, limit 32767 -> 127 DOs
    check_headroom(cfg, 127)
    with pytest.raises(ConfigError):
        check_headroom(cfg, 128)
    with pytest.raises(ConfigError):
        check_headroom(cfg, 2, max_abs=100.0)
    check_headroom(QuantConfig(32, 16, 1.0), 32767)
    with pytest.raises(ConfigError):
        check_headroom(QuantConfig(32, 16, 1.0), 32768)


@pytest.mark.parametrize(
    ("k", "scale", "norm"),
    [
        (8, 0, 1.0),
        (64, 0, 1.0),
        (16, 16, 1.0),
        (16, -1, 1.0),
        (16, 8, 0.0),
        (16, 8, math.inf),
        (16, 8, 200.0),
    ],
)
def test_config_refusals(k: int, scale: int, norm: float) -> None:
    with pytest.raises(ConfigError):
        QuantConfig(k, scale, norm)


def test_config_properties() -> None:
    cfg = QuantConfig(16, 8, 1.0)
    assert (cfg.lanes_per_word, cfg.ring_dtype, cfg.modulus) == (16, np.uint16, 65536)
    cfg = QuantConfig(32, 16, 1.0)
    assert (cfg.lanes_per_word, cfg.ring_dtype, cfg.modulus) == (8, np.uint32, 2**32)
