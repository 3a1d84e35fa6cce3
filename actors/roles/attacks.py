"""Poisoning and free-riding data owners: learners that lie, for the robustness measurements.

Every attack is a `Learner` (``train(model_bytes, round) -> (update, samples)``) wrapping or
replacing an honest data owner's learner, so a malicious data owner goes through the real protocol
path: its update is clipped, weighted, quantized and masked by the same `DataOwner` actor as an
honest one, and only its group's aggregate is ever revealed.

- ``sign_flip``: ``-boost * u`` (u: the honest update on the attacker's own data).
- ``scaling``: ``boost * u`` (an honest direction, an exaggerated size).
- ``gaussian``: ``N(0, s^2 I)`` rescaled to ``boost * |u|``: noise of a comparable, boosted norm.
- ``label_flip``: data poisoning, honest training on labels mapped ``y -> (classes - 1) - y``.
- ``zero``: a free rider that posts a zero update and claims its samples.
- ``stale``: a free rider that never trains: its first update is that of a model that did not
  train (a freshly initialised public model minus the published one) and it resubmits that first
  update in every later round.

Every attacker claims its full sample count, the most weight the task's cap allows.

The protocol's L2 clip is the first defence: a data owner's encoder clips every update to the
task's clip norm before weighting and masking, so a boost buys at most ``clip_norm / |u|``. The
default ``BOOST`` is large enough that the boosted attacks always reach the clip; how much they
hurt then depends on the clip norm the model owner chose (``docs/robustness.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from actors.learning import spec_model as sm
from actors.learning.data import Samples
from actors.learning.spec_learners import SpecDataOwner
from actors.roles.data_owner import Learner
from protocol.spec import TaskSpec

# An attacker asks for ten times its honest update; the task's clip bounds what it gets.
BOOST = 10.0
# A constant mixed into the seed that picks the attackers, so it draws apart from the data split.
_ATTACKER_STREAM = 0xA77AC4

ATTACKS = ("none", "sign_flip", "scaling", "gaussian", "label_flip", "zero", "stale")


def attacker_indices(dos: int, fraction: float, seed: int) -> frozenset[int]:
    """Which of ``dos`` data owners attack: ``round(fraction * dos)`` of them, drawn from ``seed``.

    The draw is one seeded permutation cut at the count, so for one seed a larger fraction's
    attackers include a smaller fraction's: the sweep's attacker sets are nested.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"the attackers' fraction must be in [0, 1], got {fraction}")
    count = round(fraction * dos)
    order = np.random.default_rng([seed, _ATTACKER_STREAM]).permutation(dos)
    return frozenset(int(i) for i in order[:count])


@dataclass
class SignFlip:
    """``-boost * u``: pushes the model against what the attacker's own data asks for."""

    honest: Learner
    boost: float = BOOST

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        update, samples = self.honest.train(model_bytes, round)
        return -self.boost * update, samples


@dataclass
class Scaling:
    """``boost * u``: an honest direction with an exaggerated norm (model-replacement style)."""

    honest: Learner
    boost: float = BOOST

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        update, samples = self.honest.train(model_bytes, round)
        return self.boost * update, samples


@dataclass
class GaussianNoise:
    """Isotropic Gaussian noise whose norm is ``boost`` times the honest update's norm."""

    honest: Learner
    seed: int
    boost: float = BOOST

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        update, samples = self.honest.train(model_bytes, round)
        noise = np.random.default_rng([self.seed, round]).standard_normal(update.size)
        norm = float(np.linalg.norm(noise))
        return noise * (self.boost * float(np.linalg.norm(update)) / norm), samples


def flip_labels(data: Samples, classes: int) -> Samples:
    """The same inputs with every label ``y`` replaced by ``(classes - 1) - y`` (with an even
    number of classes, no class keeps its label)."""
    return Samples(data.x, (classes - 1) - data.y)


class LabelFlip(SpecDataOwner):
    """Data poisoning: trains honestly, but on its samples with flipped labels."""

    def __init__(self, honest: SpecDataOwner) -> None:
        classes = honest.spec.data.classes
        if classes is None:
            raise ValueError("label_flip needs a task with classes, not a regression target")
        super().__init__(honest.spec, flip_labels(honest.data, classes), seed=honest.seed)


@dataclass
class ZeroUpdate:
    """A free rider: no training, a zero update, and the sample count it claims."""

    spec: TaskSpec
    samples: int

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        size = sm.public_vector(sm.public_model_from_bytes(self.spec, model_bytes)).size
        return np.zeros(size, dtype=np.float64), self.samples


@dataclass
class StaleUpdate:
    """A free rider that never trains and replays its first update in every round.

    Its first update is what a model that did not train gives: a freshly initialised public model
    (seeded) minus the published one.
    """

    spec: TaskSpec
    samples: int
    seed: int
    first: np.ndarray | None = field(default=None, repr=False)

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        if self.first is None:
            published = sm.public_vector(sm.public_model_from_bytes(self.spec, model_bytes))
            untrained = sm.public_vector(sm.new_public_model(self.spec, self.seed))
            self.first = (untrained - published).astype(np.float64)
        return self.first.copy(), self.samples


_FACTORIES: dict[str, Callable[[SpecDataOwner, int], Learner]] = {
    "sign_flip": lambda honest, seed: SignFlip(honest),
    "scaling": lambda honest, seed: Scaling(honest),
    "gaussian": lambda honest, seed: GaussianNoise(honest, seed),
    "label_flip": lambda honest, seed: LabelFlip(honest),
    "zero": lambda honest, seed: ZeroUpdate(honest.spec, len(honest.data)),
    "stale": lambda honest, seed: StaleUpdate(honest.spec, len(honest.data), seed),
}


def make_attacker(attack: str, honest: SpecDataOwner, *, seed: int) -> Learner:
    """The learner of a data owner that mounts ``attack`` instead of training ``honest``."""
    factory = _FACTORIES.get(attack)
    if factory is None:
        raise ValueError(f"unknown attack {attack!r}; known: {sorted(_FACTORIES)}")
    return factory(honest, seed)
