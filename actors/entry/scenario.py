"""A market scenario: its shape, its data split and its learners, the same in every process.

The demo runs a scenario in one process; a swarm runs the same scenario with the model owner and
each data owner in processes of their own. The data split is a pure function of the scenario
(seeded), so every process derives its own shard without any data crossing between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actors.learning.data import (
    Mnist,
    dirichlet_partition,
    iid_partition,
    load_mnist,
    split_model_owner,
)
from actors.learning.learners import TorchDataOwner, TorchModelOwner
from actors.measure.probe import MO_SAMPLES  # ~62% alone, the paper's starting point
from actors.roles.attacks import attacker_indices, make_attacker
from actors.roles.data_owner import Learner
from actors.roles.model_owner import TaskPlan
from protocol.constants import DATA_PATH_EVENT


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to run: the market's shape, the data split, faults to inject."""

    dos: int = 10
    rounds: int = 1
    group_size: int = 5
    threshold: int = 3
    do_samples: int = 1_000
    mo_samples: int = MO_SAMPLES
    alpha: float | None = None  # None: IID; else Dirichlet label skew
    rule: str = "mean"
    seed: int = 0
    test_limit: int | None = None
    drops: tuple[tuple[int, int, str], ...] = ()  # (data owner, round, step)
    lane_bits: int = 32
    scale_bits: int = 16
    clip_norm: float = 8.0
    share_duration: int = 60
    submit_duration: int = 120
    unmask_duration: int = 60
    attack: str = "none"  # actors.roles.attacks.ATTACKS: what the malicious data owners do
    attackers: float = 0.0  # fraction of data owners that attack, drawn from the seed
    data_path: int = DATA_PATH_EVENT  # DATA_PATH_BLOB: masked updates as blobs (a node only)

    def plan(self) -> TaskPlan:
        """The task the model owner creates for this scenario."""
        return TaskPlan(
            max_dos=self.dos,
            min_dos=self.group_size,
            group_size=self.group_size,
            threshold=self.threshold,
            rounds=self.rounds,
            rule=self.rule,
            lane_bits=self.lane_bits,
            scale_bits=self.scale_bits,
            clip_norm=self.clip_norm,
            sample_cap=self.do_samples,
            share_duration=self.share_duration,
            submit_duration=self.submit_duration,
            unmask_duration=self.unmask_duration,
            data_path=self.data_path,
        )


@dataclass(frozen=True, slots=True)
class DataSplit:
    mnist: Mnist
    model_owner: np.ndarray  # indices of the model owner's own samples
    data_owners: list[np.ndarray]  # indices of each data owner's samples


def split_data(scenario: Scenario) -> DataSplit:
    """The scenario's disjoint split of MNIST's training set (deterministic in the seed)."""
    rng = np.random.default_rng(scenario.seed)
    mnist = load_mnist()
    mo, pool = split_model_owner(mnist.train_labels, scenario.mo_samples, rng)
    sizes = [scenario.do_samples] * scenario.dos
    if scenario.alpha is None:
        parts = iid_partition(pool, sizes, rng)
    else:
        parts = dirichlet_partition(mnist.train_labels, pool, sizes, scenario.alpha, rng)
    return DataSplit(mnist, mo, parts)


def model_owner_learner(scenario: Scenario, data: DataSplit) -> TorchModelOwner:
    own = data.mnist.train(data.model_owner)
    return TorchModelOwner(
        own,
        data.mnist.test(scenario.test_limit),
        seed=scenario.seed,
        do_samples=scenario.do_samples,
    )


def data_owner_learner(scenario: Scenario, data: DataSplit, index: int) -> Learner:
    samples = data.mnist.train(data.data_owners[index])
    honest = TorchDataOwner(samples, seed=scenario.seed * 1_000 + index)
    if scenario.attack == "none" or index not in attacker_indices(
        scenario.dos, scenario.attackers, scenario.seed
    ):
        return honest
    return make_attacker(scenario.attack, honest, seed=honest.seed)
