"""Training as a task spec's ``[training]`` says: data owners, the model owner, and the ceiling.

This module owns running a spec's recipe (loss, sgd or adam with its lr, momentum and weight
decay, epochs, batch size, optional gradient clip norm) on spec-built modules:
- ``train_local``: a data owner's round, the update ``new - old`` of the public vector and the
  sample count it was trained on (the ``x_i`` and ``n_i`` the protocol weights, clips and masks);
- ``train_owner_alone`` and ``finetune_head``: the model owner on its own samples, before any
  market and each round from the aggregated auxiliary head (DESIGN §7), with the spec's
  ``owner_*`` and ``finetune_*`` schedules;
- ``train_central``: the same network trained on the union of the data owners' data with the
  same recipe for ``epochs x rounds`` passes, the ceiling a market approaches
  (``accuracy_central``);
- ``evaluate``: accuracy for classes, R² for a regression target.

Deterministic given its seed and torch's thread count (``train.use_threads``): batches come from a
seeded ``numpy.random.Generator`` and dropout from a forked, seeded torch generator.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actors.learning.data import Samples
from actors.learning.spec_model import PublicModel, new_body, new_head, public_vector
from actors.learning.train import EVAL_BATCH
from protocol.spec import TaskSpec, Training


def _loss(training: Training, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if training.loss == "cross_entropy":
        return F.cross_entropy(output, target)
    return F.mse_loss(output, target)


def _fit(
    model: nn.Module,
    data: Samples,
    training: Training,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> None:
    """Train ``model``'s trainable parameters in place with the spec's optimizer and loss."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    if training.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            parameters, lr=lr, momentum=training.momentum, weight_decay=training.weight_decay
        )
    else:
        optimizer = torch.optim.Adam(parameters, lr=lr, weight_decay=training.weight_decay)
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.train()
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(len(data)))
            for start in range(0, len(data), batch_size):
                batch = order[start : start + batch_size]
                loss = _loss(training, model(data.x[batch]), data.y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if training.clip_norm is not None:
                    nn.utils.clip_grad_norm_(parameters, training.clip_norm)
                optimizer.step()
    model.eval()


def train_local(
    spec: TaskSpec, public: PublicModel, data: Samples, *, seed: int, epochs: int | None = None
) -> tuple[np.ndarray, int]:
    """A data owner's round on a copy of ``public``: (update as float32, samples used).
    ``epochs`` overrides the recipe's passes (the model owner's reference, a warm-up)."""
    t = spec.training
    before = public_vector(public)
    local = copy.deepcopy(public)
    passes = t.epochs if epochs is None else epochs
    _fit(local, data, t, epochs=passes, lr=t.lr, batch_size=t.batch_size, seed=seed)
    return public_vector(local) - before, len(data)


def train_owner_alone(
    spec: TaskSpec, body: nn.Sequential, head: nn.Sequential, data: Samples, *, seed: int
) -> None:
    """The model owner's whole model, in place, on its own samples before any market."""
    t = spec.training
    model = nn.Sequential(body, head)
    _fit(model, data, t, epochs=t.owner_epochs, lr=t.lr, batch_size=t.owner_batch_size, seed=seed)


def finetune_head(
    spec: TaskSpec, body: nn.Sequential, head: nn.Sequential, data: Samples, *, seed: int
) -> nn.Sequential:
    """The model owner's private head: a copy of ``head`` (the aggregated auxiliary head)
    trained on its own samples over the frozen body, whose features are computed once."""
    t = spec.training
    with torch.no_grad():
        features = body.eval()(data.x)
    private = copy.deepcopy(head)
    _fit(
        private,
        Samples(features, data.y),
        t,
        epochs=t.finetune_epochs,
        lr=t.finetune_lr,
        batch_size=t.finetune_batch_size,
        seed=seed,
    )
    return private


def train_central(
    spec: TaskSpec, union: Samples, *, seed: int
) -> tuple[nn.Sequential, nn.Sequential]:
    """The network trained on all data owners' data at once, same recipe, ``epochs x rounds``
    passes (as many as a data owner makes over the whole market): (body, head)."""
    t = spec.training
    body, head = new_body(spec, seed), new_head(spec, seed + 1)
    epochs = t.epochs * spec.market.rounds
    model = nn.Sequential(body, head)
    _fit(model, union, t, epochs=epochs, lr=t.lr, batch_size=t.batch_size, seed=seed)
    return body, head


def evaluate(spec: TaskSpec, body: nn.Module, head: nn.Module, data: Samples) -> float:
    """Accuracy in [0, 1] for classes; R² (1 is perfect) for a regression target."""
    body.eval()
    head.eval()
    with torch.inference_mode():
        outputs = torch.cat(
            [head(body(data.x[i : i + EVAL_BATCH])) for i in range(0, len(data), EVAL_BATCH)]
        )
    if spec.data.classes is not None:
        return float((outputs.argmax(1) == data.y).float().mean())
    residual = float(((outputs - data.y) ** 2).sum())
    total = float(((data.y - data.y.mean()) ** 2).sum())
    return 1.0 - residual / total if total > 0 else 0.0
