"""Malicious data owners (actors.roles.attacks): each attack does what it says,
deterministically."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
import torch

from actors.entry.scenario import MNIST_SPEC, Scenario, data_owner_learner, split_data
from actors.learning.data import Samples
from actors.learning.spec_learners import SpecDataOwner
from actors.learning.spec_model import new_public_model, public_model_to_bytes, public_vector
from actors.learning.train import use_threads
from actors.roles.attacks import (
    ATTACKS,
    BOOST,
    GaussianNoise,
    LabelFlip,
    Scaling,
    SignFlip,
    StaleUpdate,
    ZeroUpdate,
    attacker_indices,
    flip_labels,
    make_attacker,
)
from protocol.encoding import QuantConfig
from protocol.spec import TaskSpec, parse_spec, spec_from_dict
from protocol.weighting import decode_weighted, encode_weighted


def _tiny_spec() -> TaskSpec:
    """The MNIST spec with one pass of batches of 8: its learners, quickly."""
    raw = msgspec.to_builtins(parse_spec(MNIST_SPEC.read_bytes()))
    raw["training"] |= {"epochs": 1, "batch_size": 8}
    return spec_from_dict(raw)


TINY = _tiny_spec()


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    use_threads(1)


class FixedLearner:
    """An honest stand-in with a known update."""

    def __init__(self, update: np.ndarray, samples: int = 100) -> None:
        self.update, self.samples = update, samples
        self.calls = 0

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        self.calls += 1
        return self.update.copy(), self.samples


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return public_model_to_bytes(TINY, new_public_model(TINY, 3))


@pytest.fixture(scope="module")
def tiny_data() -> Samples:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 28, 28, generator=generator)
    y = torch.arange(16) % 10
    return Samples(x, y)


def honest_update(seed: int = 0, size: int = 1_000) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.01, size)


def test_sign_flip_is_minus_boost_times_the_honest_update():
    u = honest_update()
    update, samples = SignFlip(FixedLearner(u)).train(b"model", 0)
    np.testing.assert_array_equal(update, -BOOST * u)
    assert samples == 100
    assert np.dot(update, u) < 0


def test_scaling_keeps_the_direction_and_multiplies_the_norm():
    u = honest_update()
    update, _ = Scaling(FixedLearner(u), boost=3.0).train(b"model", 0)
    np.testing.assert_allclose(update, 3.0 * u)
    cosine = np.dot(update, u) / (np.linalg.norm(update) * np.linalg.norm(u))
    assert cosine == pytest.approx(1.0)


def test_gaussian_noise_has_the_boosted_norm_and_no_direction():
    u = honest_update(size=20_000)
    update, samples = GaussianNoise(FixedLearner(u), seed=7).train(b"model", 0)
    assert np.linalg.norm(update) == pytest.approx(BOOST * np.linalg.norm(u))
    cosine = np.dot(update, u) / (np.linalg.norm(update) * np.linalg.norm(u))
    assert abs(cosine) < 0.05  # ~N(0, 1/d): independent of the honest update
    assert samples == 100


def test_gaussian_noise_is_deterministic_per_seed_and_round():
    u = honest_update()
    a = GaussianNoise(FixedLearner(u), seed=7).train(b"model", 0)[0]
    b = GaussianNoise(FixedLearner(u), seed=7).train(b"model", 0)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, GaussianNoise(FixedLearner(u), seed=8).train(b"model", 0)[0])
    assert not np.array_equal(a, GaussianNoise(FixedLearner(u), seed=7).train(b"model", 1)[0])


def test_flip_labels_moves_every_label():
    data = Samples(torch.zeros(10, 1, 28, 28), torch.arange(10))
    flipped = flip_labels(data, 10)
    assert flipped.y.tolist() == [9 - y for y in range(10)]
    assert bool((flipped.y != data.y).all())
    assert flipped.x is data.x


def test_label_flip_trains_on_flipped_labels(tiny_data, model_bytes):
    honest = SpecDataOwner(TINY, tiny_data, seed=5)
    attacker = LabelFlip(honest)
    assert attacker.data.y.tolist() == (9 - tiny_data.y).tolist()
    poisoned, samples = attacker.train(model_bytes, 0)
    again, _ = LabelFlip(honest).train(model_bytes, 0)
    clean, _ = honest.train(model_bytes, 0)
    np.testing.assert_array_equal(poisoned, again)  # deterministic per seed
    assert samples == len(tiny_data)
    assert poisoned.shape == clean.shape and not np.allclose(poisoned, clean)


def test_zero_update_is_zero_and_claims_its_samples(model_bytes):
    update, samples = ZeroUpdate(TINY, samples=500).train(model_bytes, 0)
    assert update.shape == public_vector(new_public_model(TINY, 3)).shape
    assert not update.any()
    assert samples == 500


def test_stale_update_is_an_untrained_model_then_replayed(model_bytes):
    attacker = StaleUpdate(TINY, samples=500, seed=11)
    first, samples = attacker.train(model_bytes, 0)
    published = public_vector(new_public_model(TINY, 3))
    untrained = public_vector(new_public_model(TINY, 11))
    np.testing.assert_allclose(first, untrained - published, rtol=0, atol=1e-7)
    assert samples == 500
    # a later round publishes another model: the stale data owner resubmits its first update
    later = public_model_to_bytes(TINY, new_public_model(TINY, 5))
    np.testing.assert_array_equal(attacker.train(later, 1)[0], first)
    again = StaleUpdate(TINY, samples=500, seed=11).train(model_bytes, 0)[0]
    np.testing.assert_array_equal(again, first)


def test_the_clip_bounds_every_boosted_attack():
    """The protocol's encoder is the first defence: a boost buys at most the clip norm."""
    quant = QuantConfig(lane_bits=32, scale_bits=16, clip_norm=2.0)
    u = honest_update(size=5_000) * 10  # norm ~7, above the clip
    rng = np.random.default_rng(0)
    for attack in (SignFlip(FixedLearner(u)), Scaling(FixedLearner(u))):
        update, samples = attack.train(b"model", 0)
        assert np.linalg.norm(update) > 10 * quant.clip_norm
        lanes = encode_weighted(update, samples, cap=samples, quant=quant, rng=rng)
        sent = decode_weighted(lanes, cap=samples, quant=quant).update
        assert np.linalg.norm(sent) <= quant.clip_norm * (1 + 1e-3)


def test_make_attacker_knows_every_attack_and_refuses_others(tiny_data):
    honest = SpecDataOwner(TINY, tiny_data, seed=1)
    kinds = {
        "sign_flip": SignFlip,
        "scaling": Scaling,
        "gaussian": GaussianNoise,
        "label_flip": LabelFlip,
        "zero": ZeroUpdate,
        "stale": StaleUpdate,
    }
    assert set(kinds) == set(ATTACKS) - {"none"}
    for name, kind in kinds.items():
        assert isinstance(make_attacker(name, honest, seed=1), kind)
    with pytest.raises(ValueError, match="unknown attack"):
        make_attacker("none", honest, seed=1)


def test_attackers_are_drawn_from_the_seed_and_nested():
    assert attacker_indices(20, 0.2, 0) == attacker_indices(20, 0.2, 0)
    assert len(attacker_indices(20, 0.2, 0)) == 4
    assert len(attacker_indices(20, 0.1, 0)) == 2
    assert attacker_indices(20, 0.0, 0) == frozenset()
    for seed in range(5):
        smaller, larger = attacker_indices(20, 0.1, seed), attacker_indices(20, 0.3, seed)
        assert smaller <= attacker_indices(20, 0.2, seed) <= larger
        assert larger <= set(range(20))
    assert len({attacker_indices(20, 0.2, seed) for seed in range(5)}) > 1
    with pytest.raises(ValueError):
        attacker_indices(20, 1.5, 0)


def test_scenario_wraps_exactly_the_drawn_attackers():
    scenario = Scenario(
        dos=10, do_samples=20, test_limit=100, seed=3, attack="sign_flip", attackers=0.3
    )
    data = split_data(scenario)
    wrapped = {
        i
        for i in range(scenario.dos)
        if isinstance(data_owner_learner(scenario, data, i), SignFlip)
    }
    assert wrapped == attacker_indices(10, 0.3, 3)
    honest = Scenario(dos=10, do_samples=20, test_limit=100, seed=3)
    assert all(
        type(data_owner_learner(honest, data, i)) is SpecDataOwner for i in range(honest.dos)
    )
