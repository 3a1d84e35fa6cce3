"""Fixed-point encoding of model updates into the ring Z_2^k and lane packing into 256-bit words.

This module owns the numeric side of a masked update (``docs/interfaces.md`` §2): L2 clipping,
quantization with stochastic rounding from an injected generator, the ring ``Z_2^k`` (held in
``uint16``/``uint32`` arrays so that numpy's wrapping addition *is* the ring addition), the signed
reading back to floats, the headroom rule that keeps a group sum exact, and the packing of lanes
into the ``uint256`` words the contract's ``submit`` takes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.constants import LANE_BITS_CHOICES, WORD_BITS
from protocol.errors import ConfigError, DecodeError, DecodeReason, EncodingError

_WORD_BYTES = WORD_BITS // 8
_RING_DTYPES: dict[int, type[np.unsignedinteger]] = {16: np.uint16, 32: np.uint32}
_SIGNED_DTYPES: dict[int, type[np.signedinteger]] = {16: np.int16, 32: np.int32}
# Explicit little-endian views: lane 0 sits in the least significant bits of a word (§2).
_LE_DTYPES = {16: np.dtype("<u2"), 32: np.dtype("<u4")}


def _check_lane_bits(lane_bits: int) -> None:
    if lane_bits not in LANE_BITS_CHOICES:
        raise ConfigError(f"lane_bits must be one of {LANE_BITS_CHOICES}, got {lane_bits!r}")


@dataclass(frozen=True, slots=True)
class QuantConfig:
    """How a task maps float updates into the ring: lane width, fixed-point scale, L2 clip norm."""

    lane_bits: int
    scale_bits: int
    clip_norm: float

    def __post_init__(self) -> None:
        _check_lane_bits(self.lane_bits)
        # One sign bit must remain, otherwise not even a single value has a signed reading.
        if not 0 <= self.scale_bits < self.lane_bits - 1:
            raise ConfigError(
                f"scale_bits must be in [0, {self.lane_bits - 1}), got {self.scale_bits}"
            )
        if not (math.isfinite(self.clip_norm) and self.clip_norm > 0):
            raise ConfigError(f"clip_norm must be a positive finite number, got {self.clip_norm}")
        # A single clipped value must fit the signed ring, or quantize would wrap silently.
        check_headroom(self, 1)

    @property
    def lanes_per_word(self) -> int:
        """Lanes in one 256-bit word (``L = 256 / k``)."""
        return WORD_BITS // self.lane_bits

    @property
    def ring_dtype(self) -> type[np.unsignedinteger]:
        """The unsigned numpy type whose wrapping arithmetic is the ring ``Z_2^k``."""
        return _RING_DTYPES[self.lane_bits]

    @property
    def modulus(self) -> int:
        """The ring modulus ``2**k``."""
        return 1 << self.lane_bits


def ring_dtype(lane_bits: int) -> type[np.unsignedinteger]:
    """The unsigned numpy type for ``lane_bits``-bit ring elements."""
    _check_lane_bits(lane_bits)
    return _RING_DTYPES[lane_bits]


def word_count(d: int, lane_bits: int) -> int:
    """Number of 256-bit words ``W = ceil(d / L)`` that carry ``d`` lanes."""
    _check_lane_bits(lane_bits)
    if d < 1:
        raise ConfigError(f"an update has at least one lane, got d = {d}")
    lanes = WORD_BITS // lane_bits
    return -(-d // lanes)


def check_headroom(cfg: QuantConfig, group_size: int, max_abs: float | None = None) -> None:
    """Refuse a config whose group sum could wrap around the signed ring.

    Rule: a lane holds ``q = round(v * 2**scale_bits)``, rounded stochastically, so
    ``|q| <= ceil(max_abs * 2**scale_bits)`` for every value ``|v| <= max_abs``. The sum over a
    group of ``group_size`` DOs is read back exactly as a signed ``lane_bits``-bit integer iff

        group_size * ceil(max_abs * 2**scale_bits) <= 2**(lane_bits - 1) - 1.

    ``max_abs`` is in float units, before scaling, and defaults to ``clip_norm``: after L2
    clipping no coordinate exceeds the norm. Check lanes that are not clipped model parameters
    separately: a lane carrying a raw integer up to ``n`` (e.g. a sample count) needs
    ``max_abs = n / 2**scale_bits``.
    Raises ``ConfigError`` when the rule fails.
    """
    if group_size < 1:
        raise ConfigError(f"group_size must be positive, got {group_size}")
    bound = cfg.clip_norm if max_abs is None else max_abs
    if not (math.isfinite(bound) and bound >= 0):
        raise ConfigError(f"max_abs must be a non-negative finite number, got {bound}")
    per_lane = math.ceil(bound * (1 << cfg.scale_bits))
    limit = (1 << (cfg.lane_bits - 1)) - 1
    if group_size * per_lane > limit:
        raise ConfigError(
            f"no headroom: {group_size} DOs x {per_lane}"
            f" (|value| {bound} at scale 2^{cfg.scale_bits})"
            f" exceeds the signed {cfg.lane_bits}-bit ring limit {limit}"
        )


def _l2_norm(v: np.ndarray) -> float:
    """L2 norm without BLAS: OpenBLAS threads made ``np.linalg.norm`` 100x slower on a busy
    2-core machine (11 ms for 100k values), while a plain reduction takes 0.05 ms."""
    with np.errstate(over="ignore"):
        length = math.sqrt(float(np.einsum("i,i->", v, v)))
    if math.isinf(length):
        # the squares overflowed: scale into range first (v is finite, so biggest > 0)
        biggest = float(np.max(np.abs(v)))
        scaled = v / biggest
        length = biggest * math.sqrt(float(np.einsum("i,i->", scaled, scaled)))
    return length


def clip(x: npt.ArrayLike, norm: float) -> np.ndarray:
    """Scale ``x`` (as float64) down so that its L2 norm is at most ``norm``; never scale up.

    Both bounds hold of the float64 result itself, not only up to rounding: its L2 norm is at
    most ``norm`` and every coordinate lies in ``[-norm, norm]`` (the headroom rule counts on
    the latter). Plain ``x * (norm / |x|)`` overshot by an ulp in about one case in ten; so the
    computed length is taken as high as its rounding error allows, ``(d + 8) · 2**-53`` relative
    (a bound for a sum of ``d`` squares, its square root and the scaling), and the coordinates
    are clamped. A vector that close to the bound loses that relative sliver, far below any
    quantization step.
    """
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1:
        raise EncodingError(f"an update is a 1-d vector, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise EncodingError("an update must be finite (NaN or inf found)")
    if not (math.isfinite(norm) and norm > 0):
        raise EncodingError(f"clip norm must be a positive finite number, got {norm}")
    length = _l2_norm(v) * (1.0 + (v.size + 8) * 2.0**-53)
    if length <= norm:
        return v.copy()
    # v / length first: a factor norm / length would be subnormal for a huge v and a small
    # norm (2.5e305 against 1e-6: found by `just fuzz`), losing the precision the bound needs
    out = v / length
    out *= norm
    np.clip(out, -norm, norm, out=out)
    return out


def quantize(x: npt.ArrayLike, cfg: QuantConfig, rng: np.random.Generator) -> np.ndarray:
    """Clip to ``cfg.clip_norm``, then ``to_ring``: a float vector as ring elements."""
    return to_ring(clip(x, cfg.clip_norm), cfg, rng)


def to_ring(clipped: np.ndarray, cfg: QuantConfig, rng: np.random.Generator) -> np.ndarray:
    """Scale an already clipped float64 vector by ``2**scale_bits``, round stochastically with
    ``rng`` and map it into the ring (the caller clipped it: no second clip, no second norm).

    Stochastic rounding is unbiased (``E[q] = x * 2**scale_bits``), so rounding errors of many DOs
    average out in the aggregate instead of adding a bias. Negative values become their two's
    complement in ``cfg.ring_dtype``.
    """
    scaled = np.multiply(clipped, float(1 << cfg.scale_bits), dtype=np.float64)
    # floor(z + u) with u ~ U[0, 1) rounds up with probability frac(z): stochastic rounding
    # in one addition.
    scaled += rng.random(scaled.shape)
    np.floor(scaled, out=scaled)
    # Casting int64 -> uint{k} wraps modulo 2**k: exactly the two's complement mapping.
    return scaled.astype(np.int64).astype(cfg.ring_dtype)


def dequantize(v: npt.ArrayLike, cfg: QuantConfig) -> np.ndarray:
    """Read ring elements as signed ``lane_bits``-bit integers and divide by ``2**scale_bits``."""
    arr = np.asarray(v)
    if arr.dtype != cfg.ring_dtype:
        raise EncodingError(f"expected {np.dtype(cfg.ring_dtype)} ring elements, got {arr.dtype}")
    signed = arr.view(_SIGNED_DTYPES[cfg.lane_bits])
    return signed.astype(np.float64) / float(1 << cfg.scale_bits)


class PackedWords(Sequence[int]):
    """256-bit words held as their calldata bytes: 32 big-endian bytes a word, as an ABI
    ``uint256[]`` body carries them (``data``). A sequence of ints to its readers (a word is
    read as an int when indexed); a chain client sends ``data`` as it is (``words_bytes``).
    ``pack_lanes`` builds them with numpy: turning a 46,731-parameter update into Python ints
    and back to bytes cost about 4 ms of a data owner's round."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        if len(data) % _WORD_BYTES:
            raise EncodingError(f"packed words are whole 32-byte words, got {len(data)} bytes")
        self.data = bytes(data)

    def __len__(self) -> int:
        return len(self.data) // _WORD_BYTES

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return list(self)[index]
            return PackedWords(self.data[start * _WORD_BYTES : max(start, stop) * _WORD_BYTES])
        count = len(self)
        i = index + count if index < 0 else index
        if not 0 <= i < count:
            raise IndexError("word index out of range")
        return int.from_bytes(self.data[i * _WORD_BYTES : (i + 1) * _WORD_BYTES], "big")

    def __iter__(self):
        data = self.data
        return (
            int.from_bytes(data[i : i + _WORD_BYTES], "big")
            for i in range(0, len(data), _WORD_BYTES)
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedWords):
            return self.data == other.data
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"PackedWords({len(self)} words)"


def words_bytes(words: Sequence[int]) -> bytes:
    """The words as 32 big-endian bytes each (a ``uint256[]`` body): ``PackedWords`` as they
    are, anything else word by word (``EncodingError`` for a word outside ``[0, 2**256)``)."""
    if isinstance(words, PackedWords):
        return words.data
    for w in words:
        if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w < 1 << WORD_BITS:
            raise EncodingError(f"a word is an integer in [0, 2**256), got {w!r}")
    return b"".join([w.to_bytes(_WORD_BYTES, "big") for w in words])


def pack_lanes(v: npt.ArrayLike, lane_bits: int) -> PackedWords:
    """Pack ring elements into 256-bit words, lane 0 in the least significant bits (§2).

    The lanes are laid out as a little-endian byte buffer, so each 32-byte slice is one word in
    little-endian order; reversing every slice gives the words' big-endian bytes, all in numpy.
    """
    _check_lane_bits(lane_bits)
    arr = np.asarray(v)
    if arr.ndim != 1 or arr.size == 0:
        raise EncodingError(f"lanes are a non-empty 1-d vector, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise EncodingError(f"lanes are integers, got {arr.dtype}")
    if arr.dtype != _RING_DTYPES[lane_bits] and (
        int(arr.min()) < 0 or int(arr.max()) >= 1 << lane_bits
    ):
        raise EncodingError(f"lane values must lie in [0, 2**{lane_bits})")
    lanes = WORD_BITS // lane_bits
    words = word_count(arr.size, lane_bits)
    buf = np.zeros(words * lanes, dtype=_LE_DTYPES[lane_bits])
    buf[: arr.size] = arr
    big_endian = buf.view(np.uint8).reshape(words, _WORD_BYTES)[:, ::-1]
    return PackedWords(big_endian.tobytes())


def unpack_lanes(words: Sequence[int], d: int, lane_bits: int) -> np.ndarray:
    """Inverse of ``pack_lanes``: words from the chain back to ``d`` ring elements.

    Raises ``DecodeError`` for the wrong number of words (``word_count``), a word outside
    ``[0, 2**256)`` (``word_range``) or non-zero padding lanes after lane ``d`` (``padding``):
    a well-formed submission has exactly one encoding.
    """
    expected = word_count(d, lane_bits)
    if len(words) != expected:
        raise DecodeError(DecodeReason.WORD_COUNT, f"expected {expected} words, got {len(words)}")
    parts = []
    for w in words:
        if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w < 1 << WORD_BITS:
            raise DecodeError(DecodeReason.WORD_RANGE, f"not a uint256: {w!r}")
        parts.append(w.to_bytes(_WORD_BYTES, "little"))
    lanes = np.frombuffer(b"".join(parts), dtype=_LE_DTYPES[lane_bits])
    if np.any(lanes[d:]):
        raise DecodeError(DecodeReason.PADDING, "padding lanes after lane d must be zero")
    return lanes[:d].astype(_RING_DTYPES[lane_bits])
