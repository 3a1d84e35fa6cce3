"""Robust combination rules: known answers, resistance to a boosted outlier group, the registry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from protocol.errors import ConfigError
from protocol.robust import (
    RULES,
    CombinationRule,
    CoordinateMedian,
    FLTrust,
    Mean,
    MultiKrum,
    TrimmedMean,
    get_rule,
)

ROWS = np.array(
    [
        [1.0, 10.0, -2.0],
        [2.0, 20.0, -1.0],
        [3.0, 30.0, 0.0],
        [4.0, 40.0, 1.0],
        [100.0, -500.0, 2.0],
    ]
)


def test_mean_known_answer() -> None:
    assert np.allclose(Mean().combine(ROWS), [22.0, -80.0, 0.0])
    weighted = Mean().combine(ROWS[:2], weights=[3.0, 1.0])
    assert np.allclose(weighted, [1.25, 12.5, -1.75])


def test_median_known_answer() -> None:
    assert np.allclose(CoordinateMedian().combine(ROWS), [3.0, 20.0, 0.0])
    # Even G: mean of the two middle values.
    assert np.allclose(CoordinateMedian().combine(ROWS[:4]), [2.5, 25.0, -0.5])


def test_trimmed_mean_known_answer() -> None:
    # beta = 0.2 of 5 rows trims one row at each end of every coordinate.
    assert np.allclose(TrimmedMean(beta=0.2).combine(ROWS), [3.0, 20.0, 0.0])
    # beta = 0 is the plain mean.
    assert np.allclose(TrimmedMean(beta=0.0).combine(ROWS), Mean().combine(ROWS))
    # floor(0.3 * 4) = 1: rows sorted per coordinate, the middle two averaged.
    assert np.allclose(TrimmedMean(beta=0.3).combine(ROWS[:4]), [2.5, 25.0, -0.5])


def test_multi_krum_known_answer() -> None:
    rows = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [50.0, 50.0]])
    krum = MultiKrum(f=1, m=1)
    # G - f - 2 = 2 nearest neighbours; the four unit-square corners all score 1 + 1 = 2.
    assert np.allclose(krum.scores(rows)[:4], 2.0)
    assert krum.selected(rows).tolist() == [0]
    # Default m = G - f keeps the four corners and averages them.
    assert np.allclose(MultiKrum(f=1).combine(rows), [0.5, 0.5])
    assert 4 not in MultiKrum(f=1).selected(rows)


def test_fltrust_known_answer() -> None:
    reference = np.array([1.0, 0.0])
    rows = np.array([[2.0, 0.0], [0.0, 5.0], [-3.0, 0.0], [1.0, 1.0]])
    rule = FLTrust(norm="reference")
    assert np.allclose(rule.trust(rows, reference), [1.0, 0.0, 0.0, 1 / np.sqrt(2)])
    # Rescaled to |reference| = 1: [1, 0] with trust 1 and [1, 1]/sqrt2 with trust 1/sqrt2.
    c = 1 / np.sqrt(2)
    expected = (np.array([1.0, 0.0]) + c * np.array([c, c])) / (1 + c)
    assert np.allclose(rule.combine(rows, reference=reference), expected)
    # norm="median": the median row norm is median(2, 5, 3, sqrt2) = 2.5.
    median = FLTrust(norm="median").combine(rows, reference=reference)
    assert np.allclose(median, 2.5 * expected)
    # norm="bounded" (the default): 2.5 held within [|reference|, 2 |reference|] = [1, 2].
    assert FLTrust() == FLTrust(norm="bounded", bound=2.0)
    assert np.allclose(FLTrust().combine(rows, reference=reference), 2.0 * expected)
    assert np.allclose(FLTrust(bound=3.0).combine(rows, reference=reference), 2.5 * expected)
    # a reference longer than the median row norm: the floor holds
    assert np.allclose(FLTrust().combine(rows, reference=4 * reference), 4.0 * expected)


def _boosted_majority(seed: int, factor: float, d: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """5 groups of honest-looking rows of norm ~1; the first 3 rescaled by ``factor``."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    rows = direction + 0.2 * rng.normal(size=(5, d)) / np.sqrt(d)
    rows[:3] *= factor
    reference = 0.8 * direction + 0.2 * rng.normal(size=d) / np.sqrt(d)
    return rows, reference


@pytest.mark.parametrize("factor", [10.0, 0.05])
def test_fltrust_bounded_keeps_a_poisoned_majority_to_the_reference_band(factor: float) -> None:
    # Boosted (scaling) or shrunken (free-riding) groups in the majority: the median row norm
    # is theirs, but the bounded target stays between |reference| and bound * |reference|.
    rows, reference = _boosted_majority(seed=5, factor=factor)
    ref_norm = float(np.linalg.norm(reference))
    rule = FLTrust(bound=2.0)
    median = FLTrust(norm="median").target_norm(rows, reference)
    assert not ref_norm <= median <= 2 * ref_norm  # the median alone follows the majority
    target = rule.target_norm(rows, reference)
    assert ref_norm - 1e-12 <= target <= 2 * ref_norm + 1e-12
    # the rows are nearly aligned, so the combined step is about the target norm
    assert np.linalg.norm(rule.combine(rows, reference=reference)) <= target + 1e-12


@given(
    arrays(
        np.float64, st.tuples(st.integers(1, 7), st.integers(1, 5)), elements=st.floats(-1e3, 1e3)
    ),
    st.floats(1.0, 10.0),
)
def test_fltrust_bounded_never_leaves_the_band(rows: np.ndarray, bound: float) -> None:
    reference = np.arange(1.0, rows.shape[1] + 1.0)
    ref_norm = float(np.linalg.norm(reference))
    rule = FLTrust(bound=bound)
    target = rule.target_norm(rows, reference)
    assert ref_norm * (1 - 1e-12) <= target <= bound * ref_norm * (1 + 1e-12)
    assert np.linalg.norm(rule.combine(rows, reference=reference)) <= target * (1 + 1e-9)


def test_fltrust_no_trust_gives_zero_update() -> None:
    rows = np.array([[-1.0, 0.0], [0.0, 1.0]])
    assert np.array_equal(FLTrust().combine(rows, reference=[1.0, 0.0]), [0.0, 0.0])
    assert np.array_equal(FLTrust().combine(rows, reference=[0.0, 0.0]), [0.0, 0.0])


def _honest_and_boosted(seed: int, groups: int, attackers: int, d: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    honest = direction + 0.1 * rng.normal(size=(groups, d))
    # A boosted sign flip: the attack that collapses the plain mean (DESIGN.md §7).
    honest[:attackers] = -20.0 * direction
    return honest


@pytest.mark.parametrize(
    "rule", [CoordinateMedian(), TrimmedMean(beta=0.2), MultiKrum(f=1), FLTrust(norm="median")]
)
def test_robust_rules_resist_a_boosted_outlier_group(rule: CombinationRule) -> None:
    rows = _honest_and_boosted(seed=7, groups=5, attackers=1)
    truth = rows[1:].mean(axis=0)
    reference = truth + 0.3 * np.random.default_rng(8).normal(size=truth.shape)
    combined = rule.combine(rows, reference=reference)
    attacked = Mean().combine(rows)
    assert np.linalg.norm(combined - truth) < 0.25 * np.linalg.norm(truth)
    # The baseline is far off: the test would be meaningless if the mean survived too.
    assert np.linalg.norm(attacked - truth) > 2 * np.linalg.norm(truth)


def test_fltrust_drops_a_negatively_aligned_group() -> None:
    rows = _honest_and_boosted(seed=3, groups=4, attackers=1)
    reference = rows[1:].mean(axis=0)
    rule = FLTrust(norm="reference")  # the other norms read every row's norm, the dropped one too
    trust = rule.trust(rows, reference)
    assert trust[0] == 0.0 and np.all(trust[1:] > 0.9)
    # The dropped row does not influence the result at all.
    assert np.allclose(
        rule.combine(rows, reference=reference), rule.combine(rows[1:], reference=reference)
    )


@given(
    arrays(
        np.float64, st.tuples(st.integers(5, 9), st.integers(1, 6)), elements=st.floats(-1e3, 1e3)
    ),
    st.sampled_from(["mean", "median", "trimmed_mean", "multi_krum"]),
)
def test_rules_stay_within_the_coordinate_range(rows: np.ndarray, name: str) -> None:
    combined = get_rule(name).combine(rows)
    assert combined.shape == (rows.shape[1],)
    slack = 1e-9 * (1 + np.abs(rows).max())
    assert np.all(combined >= rows.min(axis=0) - slack)
    assert np.all(combined <= rows.max(axis=0) + slack)


@given(
    arrays(
        np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.floats(-1e3, 1e3)
    )
)
def test_identical_rows_are_a_fixed_point(rows: np.ndarray) -> None:
    same = np.repeat(rows[:1], 5, axis=0)
    for name in ("mean", "median", "trimmed_mean", "multi_krum"):
        assert np.allclose(get_rule(name).combine(same), rows[0])
    if np.linalg.norm(rows[0]) > 0:
        assert np.allclose(get_rule("fltrust").combine(same, reference=rows[0]), rows[0])


def test_registry() -> None:
    assert set(RULES) == {"mean", "median", "trimmed_mean", "multi_krum", "fltrust"}
    for name in RULES:
        rule = get_rule(name)
        assert isinstance(rule, CombinationRule) and rule.name == name
    assert get_rule("trimmed_mean", beta=0.1) == TrimmedMean(beta=0.1)
    with pytest.raises(ConfigError, match="unknown combination rule"):
        get_rule("average")
    with pytest.raises(ConfigError, match="bad parameters"):
        get_rule("median", beta=0.1)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: TrimmedMean(beta=0.5), "beta"),
        (lambda: MultiKrum(f=-1), "f must be"),
        (lambda: MultiKrum(f=2).combine(np.zeros((6, 2))), "G >= 2f"),
        (lambda: MultiKrum(f=1, m=5).combine(np.zeros((5, 2))), "m must be at most"),
        (lambda: FLTrust(norm="max"), "norm must be"),
        (lambda: FLTrust(bound=0.5), "bound must be"),
        (lambda: FLTrust(bound=float("inf")), "bound must be"),
        (lambda: FLTrust().combine(np.ones((2, 2))), "reference"),
        (lambda: FLTrust().combine(np.ones((2, 2)), reference=[1.0]), "reference must be"),
        (lambda: Mean().combine(np.ones(3)), "matrix"),
        (lambda: Mean().combine([[np.nan]]), "finite"),
        (lambda: Mean().combine(np.ones((2, 2)), weights=[1.0]), "shape"),
        (lambda: Mean().combine(np.ones((2, 2)), weights=[0.0, 0.0]), "not all zero"),
        (lambda: Mean().combine(np.ones((2, 2)), weights=[-1.0, 2.0]), "non-negative"),
    ],
)
def test_bad_parameters_raise_config_error(call, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        call()


def test_fltrust_bounded_keeps_a_tiny_row_within_the_band() -> None:
    """Found by `just fuzz` (seed 1356900699): a row of 3.9e-160 has a subnormal square, and
    scaling it by its plain norm overshot the bound by 2.9e-6."""
    rule = FLTrust(norm="bounded", bound=1.0)
    combined = rule.combine(np.array([[3.94169679e-160]]), reference=np.array([1.0]))
    assert np.linalg.norm(combined) <= 1.0 * (1 + 1e-9)
