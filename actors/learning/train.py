"""Local training: a data owner's update, the model owner's head fine-tuning, evaluation.

Data owner: ``train_local`` trains a copy of the public model (body + auxiliary head) on its own
samples and returns the update ``new - old`` as a flat float32 vector — the ``x_i`` that the
protocol clips, quantizes and masks.

Model owner: ``fedavg`` is the plaintext sample-weighted mean (what the secure sum reveals, divided
by the summed counts), ``apply_update`` moves the public vector, and ``finetune_head`` turns the
aggregated auxiliary head into the MO's private head using only the MO's own samples (DESIGN §7).

Everything is deterministic given its seed and the thread count: batches are shuffled by a seeded
``numpy.random.Generator`` and there is no dropout. The thread count matters because torch splits
CPU reductions by thread, so ``use_threads`` fixes it once per process.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actors.learning.data import Samples
from actors.learning.model import (
    FeatureExtractor,
    PublicModel,
    new_body,
    public_model_for,
    public_vector,
)

# Momentum SGD with a modest step: DOs start from one published model and must stay close enough
# to it that the mean of their models is still a good model. A step of 0.05 made single DOs
# diverge (dead ReLUs, ~11% accuracy), 0.03 cost one seed 8 points after averaging; at 0.02 each
# DO reaches ~89% and the mean of ten of them 92-95%. More passes helped more than bigger steps.
MOMENTUM = 0.9
# Evaluation batches (here and in `recipe`) small enough that their activations come from the
# allocator's heap: at 1,000 MNIST samples the first convolution's output (37 MB) is above
# glibc's largest mmap threshold (32 MB), so every batch mapped fresh pages and faulted them in.
# Measured on the model owner's fitting and evaluation: 270k page faults, 1.45 s (0.55 s of it
# in the kernel) against 0.9 s at 128-250 samples, with the same accuracy.
EVAL_BATCH = 128


@dataclass(frozen=True, slots=True)
class Schedule:
    """How long and how fast to train: passes over the data, SGD step size, batch size."""

    epochs: int
    lr: float
    batch_size: int

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.lr <= 0 or self.batch_size <= 0:
            raise ValueError("epochs must be >= 0, lr and batch_size positive")


# The schedules measured by `python -m actors.measure.probe` (DESIGN §7 setup, 2-core CPU):
# one round of 10 DOs x 1,000 samples takes the MO from ~62% to >= 90%.
DO_SCHEDULE = Schedule(epochs=4, lr=0.02, batch_size=32)
# The MO alone on its own few samples: train to convergence on them (many passes, small batches).
MO_ALONE_SCHEDULE = Schedule(epochs=40, lr=0.02, batch_size=10)
# The MO's private head from the aggregated auxiliary head: a few gentle steps, because the
# auxiliary head already learnt from thousands of DO samples and the MO has only a handful.
FINETUNE_SCHEDULE = Schedule(epochs=5, lr=0.005, batch_size=10)


def use_threads(count: int) -> None:
    """Fix torch's intra-op threads for this process.

    One thread is the robust choice on the project's shared 2-core machine: with other processes
    busy, two OpenMP threads made a round of the probe 9x slower (67 s against 7.4 s), and the
    models here are too small to gain much from a second core even when it is free.
    """
    torch.set_num_threads(count)


def _fit(
    model: nn.Module,
    parameters: Iterable[nn.Parameter],
    data: Samples,
    schedule: Schedule,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.SGD(parameters, lr=schedule.lr, momentum=MOMENTUM)
    model.train()
    for _ in range(schedule.epochs):
        order = torch.from_numpy(rng.permutation(len(data)))
        for start in range(0, len(data), schedule.batch_size):
            batch = order[start : start + schedule.batch_size]
            loss = F.cross_entropy(model(data.x[batch]), data.y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()


def train_local(
    public_model: PublicModel,
    data: Samples,
    *,
    seed: int,
    schedule: Schedule = DO_SCHEDULE,
) -> np.ndarray:
    """A data owner's round: train body + auxiliary head on ``data``; return ``new - old``.

    ``public_model`` is not modified (the DO trains a copy), so one process can run many DOs
    from the same published model.
    """
    before = public_vector(public_model)
    local = copy.deepcopy(public_model)
    _fit(local, local.parameters(), data, schedule=schedule, seed=seed)
    return public_vector(local) - before


def warm_up(data: Samples, *, seed: int = 0) -> None:
    """Run torch's first training steps once, on a throwaway model: in a fresh process they
    cost about a second more than later ones (measured here: 1.66 s for a data owner's first
    round of training, 0.61 s for the next), which a data owner pays at start-up instead of
    inside its first round."""
    throwaway = public_model_for(new_body(seed), seed)
    subset = Samples(data.x[:64], data.y[:64])
    _fit(throwaway, throwaway.parameters(), subset, Schedule(2, 0.01, 32), seed)


def train_model(
    body: FeatureExtractor,
    head: nn.Linear,
    data: Samples,
    *,
    seed: int,
    schedule: Schedule = MO_ALONE_SCHEDULE,
) -> None:
    """Train a whole model (body and head) in place: the model owner on its own samples alone."""
    model = nn.Sequential(body, head)
    _fit(model, model.parameters(), data, schedule=schedule, seed=seed)


def fedavg(updates: Sequence[np.ndarray], counts: Sequence[int]) -> np.ndarray:
    """The mean of the updates weighted by sample counts (plain FedAvg, no cryptography)."""
    if not updates or len(updates) != len(counts) or any(c <= 0 for c in counts):
        raise ValueError("need one positive sample count per update")
    weights = np.asarray(counts, dtype=np.float64)
    total = np.tensordot(weights, np.stack(updates).astype(np.float64), axes=1)
    return (total / weights.sum()).astype(np.float32)


def apply_update(vector: np.ndarray, update: np.ndarray) -> np.ndarray:
    """The next public vector: ``vector + update`` (the aggregate is already a mean)."""
    if vector.shape != update.shape:
        raise ValueError(f"update shape {update.shape} does not match the model {vector.shape}")
    return (vector.astype(np.float32) + update.astype(np.float32)).astype(np.float32)


def finetune_head(
    body: FeatureExtractor,
    head: nn.Linear,
    data: Samples,
    *,
    seed: int,
    schedule: Schedule = FINETUNE_SCHEDULE,
) -> nn.Linear:
    """The MO's private head: a copy of ``head`` trained on the MO's samples over a frozen body.

    Start it from the aggregated auxiliary head: that head is what the DOs' bodies were trained
    towards, so a few gentle steps on the MO's own data adapt it without undoing what thousands
    of DO samples taught it. The body stays frozen, so its features are computed once.
    """
    with torch.no_grad():
        features = body.eval()(data.x)
    private = copy.deepcopy(head)
    _fit(
        private,
        private.parameters(),
        Samples(features, data.y),
        schedule=schedule,
        seed=seed,
    )
    return private


def evaluate(body: FeatureExtractor, head: nn.Linear, test: Samples) -> float:
    """Accuracy of ``head(body(x))`` on ``test``, in [0, 1]."""
    return _evaluate(body, head, test)[0]


def evaluate_loss(body: FeatureExtractor, head: nn.Linear, data: Samples) -> float:
    """Mean cross-entropy of ``head(body(x))`` on ``data``."""
    return _evaluate(body, head, data)[1]


def _evaluate(body: FeatureExtractor, head: nn.Linear, data: Samples) -> tuple[float, float]:
    body.eval()
    head.eval()
    correct, loss = 0, 0.0
    with torch.inference_mode():
        for start in range(0, len(data), EVAL_BATCH):
            logits = head(body(data.x[start : start + EVAL_BATCH]))
            labels = data.y[start : start + EVAL_BATCH]
            correct += int((logits.argmax(1) == labels).sum())
            loss += float(F.cross_entropy(logits, labels, reduction="sum"))
    return correct / len(data), loss / len(data)
