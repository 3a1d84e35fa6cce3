"""Robust combination of group aggregates: the model owner's defence against poisoned groups.

This module owns the rules that turn ``G`` group aggregates (one row each, already dequantized)
into one model update (DESIGN.md §1 G3(b), §7). Every rule has the same small interface,
``combine(updates, weights=None, reference=None)``, and a name in a registry (``get_rule``), so the
model owner picks one by configuration:

- ``mean``: weighted mean (no robustness; the baseline).
- ``median``: coordinate-wise median.
- ``trimmed_mean``: coordinate-wise mean after dropping the ``β`` fraction at each end.
- ``multi_krum``: the ``m`` rows with the smallest Krum scores for ``f`` Byzantine rows, averaged.
- ``fltrust``: trust-weighted mean, trust = ReLU(cosine to the model owner's reference update),
  every row rescaled to a common norm (FLTrust, NDSS 2021): by default the median row norm held
  between the reference norm and ``bound`` times it; or the reference norm, or the median alone.

Weights are per-group (e.g. the number of submitters whose updates a group aggregate sums). The
order statistics (``median``, ``trimmed_mean``) ignore them: they are meant to be robust to a few
rows whatever those rows claim. The averaging rules use them. Invalid parameters or shapes raise
``ConfigError``: they are the caller's mistakes, never a poisoned group's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from protocol.errors import ConfigError


@runtime_checkable
class CombinationRule(Protocol):
    """A rule that combines ``G`` group updates of length ``d`` into one update of length ``d``."""

    name: ClassVar[str]

    def combine(
        self,
        updates: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        reference: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        """Return the combined update (float64, shape ``(d,)``)."""
        ...


def _as_updates(updates: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(updates, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ConfigError(f"updates must be a non-empty [G, d] matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError("updates must be finite")
    return arr


def _as_weights(weights: npt.ArrayLike | None, groups: int) -> np.ndarray:
    if weights is None:
        return np.ones(groups, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (groups,):
        raise ConfigError(f"weights must have shape ({groups},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise ConfigError("weights must be finite, non-negative and not all zero")
    return w


def _weighted_mean(rows: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (w[:, None] * rows).sum(axis=0) / w.sum()


@dataclass(frozen=True, slots=True)
class Mean:
    """Weighted mean of the group updates: optimal without attackers, broken by one."""

    name: ClassVar[str] = "mean"

    def combine(
        self,
        updates: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        reference: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        rows = _as_updates(updates)
        return _weighted_mean(rows, _as_weights(weights, rows.shape[0]))


@dataclass(frozen=True, slots=True)
class CoordinateMedian:
    """Coordinate-wise median (the mean of the two middle values when ``G`` is even)."""

    name: ClassVar[str] = "median"

    def combine(
        self,
        updates: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        reference: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        rows = _as_updates(updates)
        _as_weights(weights, rows.shape[0])  # validated for a uniform interface, then unused
        return np.median(rows, axis=0)


@dataclass(frozen=True, slots=True)
class TrimmedMean:
    """Coordinate-wise mean after dropping the ``floor(beta * G)`` lowest and highest values."""

    beta: float = 0.2
    name: ClassVar[str] = "trimmed_mean"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.beta) and 0 <= self.beta < 0.5):
            raise ConfigError(f"trimmed_mean: beta must be in [0, 0.5), got {self.beta}")

    def combine(
        self,
        updates: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        reference: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        rows = _as_updates(updates)
        _as_weights(weights, rows.shape[0])
        groups = rows.shape[0]
        cut = math.floor(self.beta * groups)
        # beta < 0.5 keeps at least one row: G - 2*floor(beta*G) >= 1.
        ordered = np.sort(rows, axis=0)
        return ordered[cut : groups - cut].mean(axis=0)


@dataclass(frozen=True, slots=True)
class MultiKrum:
    """Multi-Krum (Blanchard et al., NeurIPS 2017) for up to ``f`` Byzantine rows.

    A row's score is the sum of squared distances to its ``G - f - 2`` nearest other rows; the
    ``m`` lowest-scoring rows (default ``G - f``) are averaged with their weights. Needs
    ``G >= 2f + 3``, the condition under which Krum's guarantee holds.
    """

    f: int = 1
    m: int | None = None
    name: ClassVar[str] = "multi_krum"

    def __post_init__(self) -> None:
        if self.f < 0:
            raise ConfigError(f"multi_krum: f must be non-negative, got {self.f}")
        if self.m is not None and self.m < 1:
            raise ConfigError(f"multi_krum: m must be positive, got {self.m}")

    def scores(self, updates: npt.ArrayLike) -> np.ndarray:
        """Krum score of every row (lower is more central)."""
        rows = _as_updates(updates)
        groups = rows.shape[0]
        if groups < 2 * self.f + 3:
            raise ConfigError(f"multi_krum: needs G >= 2f + 3 = {2 * self.f + 3}, got G = {groups}")
        sq = (rows * rows).sum(axis=1)
        # ||a - b||^2 = |a|^2 + |b|^2 - 2ab; clamp the tiny negatives of rounding.
        dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * rows @ rows.T, 0.0)
        np.fill_diagonal(dist, np.inf)
        neighbours = groups - self.f - 2
        return np.sort(dist, axis=1)[:, :neighbours].sum(axis=1)

    def selected(self, updates: npt.ArrayLike) -> np.ndarray:
        """Indices of the rows Multi-Krum keeps, best first (ties: lower index first)."""
        groups = np.asarray(updates).shape[0]
        keep = groups - self.f if self.m is None else self.m
        if keep > groups - self.f:
            raise ConfigError(
                f"multi_krum: m must be at most G - f = {groups - self.f}, got {keep}"
            )
        return np.argsort(self.scores(updates), kind="stable")[:keep]

    def combine(
        self,
        updates: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        reference: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        rows = _as_updates(updates)
        w = _as_weights(weights, rows.shape[0])
        chosen = self.selected(rows)
        if not w[chosen].sum() > 0:
            raise ConfigError("multi_krum: every selected row has weight zero")
        return _weighted_mean(rows[chosen], w[chosen])


@dataclass(frozen=True, slots=True)
class FLTrust:
    """Trust-weighted mean against the model owner's reference update (Cao et al., NDSS 2021).

    Trust of row ``i`` = ``max(0, cos(u_i, reference)) * weight_i``: rows that point away from
    what the model owner's own data says are dropped, however large they are. Every row is then
    rescaled to a common norm so that a boosted row cannot dominate:

    - ``norm="bounded"`` (default): the median row norm, held between ``|reference|`` and
      ``bound * |reference|``. Without attackers the median is what the honest groups ask for; a
      poisoned minority cannot move it, and a poisoned majority can move it only within a band
      the model owner's own data sets: not above ``bound`` times what that data asks for (boosted
      groups), not below it (zero or shrunken groups). This needs a reference trained as long as
      a data owner trains, not a token few steps.
    - ``norm="reference"``: the reference norm (the paper's choice); a step the size of what the
      model owner's few samples ask for, whatever the groups say.
    - ``norm="median"``: the median row norm alone (DESIGN.md §7); a poisoned majority of
      boosted groups sets it.

    When no row earns trust the result is zero: no update beats a poisoned one.
    """

    norm: str = "bounded"
    bound: float = 2.0
    name: ClassVar[str] = "fltrust"

    def __post_init__(self) -> None:
        if self.norm not in ("bounded", "reference", "median"):
            raise ConfigError(
                f"fltrust: norm must be 'bounded', 'reference' or 'median', got {self.norm!r}"
            )
        if not (math.isfinite(self.bound) and self.bound >= 1):
            raise ConfigError(f"fltrust: bound must be finite and at least 1, got {self.bound}")

    def target_norm(self, updates: npt.ArrayLike, reference: npt.ArrayLike) -> float:
        """The norm every trusted row is rescaled to."""
        rows = _as_updates(updates)
        ref_norm = float(np.linalg.norm(self._reference(reference, rows.shape[1])))
        if self.norm == "reference":
            return ref_norm
        median = float(np.median(np.linalg.norm(rows, axis=1)))
        if self.norm == "median":
            return median
        return min(max(median, ref_norm), self.bound * ref_norm)

    def trust(self, updates: npt.ArrayLike, reference: npt.ArrayLike) -> np.ndarray:
        """ReLU'd cosine of every row to ``reference`` (0 for a zero row or a zero reference)."""
        rows = _as_updates(updates)
        ref = self._reference(reference, rows.shape[1])
        norms = np.linalg.norm(rows, axis=1)
        ref_norm = float(np.linalg.norm(ref))
        if ref_norm == 0:
            return np.zeros(rows.shape[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = (rows @ ref) / (norms * ref_norm)
        return np.where(norms > 0, np.maximum(cos, 0.0), 0.0)

    def combine(
        self,
        updates: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        reference: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        rows = _as_updates(updates)
        if reference is None:
            raise ConfigError("fltrust: needs the model owner's reference update")
        w = _as_weights(weights, rows.shape[0]) * self.trust(rows, reference)
        if not w.sum() > 0:
            return np.zeros(rows.shape[1])
        target = self.target_norm(rows, reference)
        # Each row to unit length, through its largest coordinate first: the squares of a tiny
        # row (1e-160) are subnormal and its norm would be off by parts per million (found by
        # `just fuzz`). Rows with trust > 0 are non-zero, so the divisions are safe there.
        peak = np.max(np.abs(rows), axis=1, keepdims=True)
        unit = np.divide(rows, peak, out=np.zeros_like(rows), where=peak > 0)
        length = np.linalg.norm(unit, axis=1, keepdims=True)
        unit = np.divide(unit, length, out=np.zeros_like(unit), where=length > 0)
        return _weighted_mean(unit * target, w)

    @staticmethod
    def _reference(reference: npt.ArrayLike, d: int) -> np.ndarray:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.shape != (d,) or not np.all(np.isfinite(ref)):
            raise ConfigError(f"fltrust: reference must be a finite vector of shape ({d},)")
        return ref


RULES: Mapping[str, Callable[..., CombinationRule]] = {
    rule.name: rule for rule in (Mean, CoordinateMedian, TrimmedMean, MultiKrum, FLTrust)
}
# The rules whose ``combine`` reads the model owner's reference update: for the others the model
# owner need not train one (a second of its serial work between rounds).
REFERENCE_RULES: frozenset[str] = frozenset({FLTrust.name})


def get_rule(name: str, **params: object) -> CombinationRule:
    """The combination rule registered under ``name``, built with ``params`` (e.g. ``beta=0.1``)."""
    factory = RULES.get(name)
    if factory is None:
        raise ConfigError(f"unknown combination rule {name!r}; known: {sorted(RULES)}")
    try:
        return factory(**params)
    except TypeError as exc:
        raise ConfigError(f"{name}: bad parameters {sorted(params)}: {exc}") from None


def rule_from_spec(spec: str) -> CombinationRule:
    """A combination rule from `name` or `name:key=value,...` (e.g. `fltrust:norm=median`)."""
    name, _, params = spec.partition(":")
    kwargs: dict[str, object] = {}
    for item in filter(None, params.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"rule parameter {item!r}: use key=value")
        kwargs[key.strip()] = _number_or_text(value.strip())
    return get_rule(name.strip(), **kwargs)


def _number_or_text(value: str) -> object:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value
