"""Local training, aggregation and the model owner's fine-tuning, on small MNIST subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actors.learning.data import Mnist, iid_partition, split_model_owner
from actors.learning.model import (
    new_body,
    new_head,
    new_public_model,
    public_model_for,
    public_model_from_vector,
    public_vector,
)
from actors.learning.train import (
    Schedule,
    apply_update,
    evaluate,
    evaluate_loss,
    fedavg,
    finetune_head,
    train_local,
    train_model,
)
from actors.measure.probe import ProbeConfig, run_probe

SHORT = Schedule(epochs=2, lr=0.02, batch_size=32)


def test_train_local_lowers_loss_and_leaves_the_public_model_alone(mnist: Mnist) -> None:
    data = mnist.train(np.arange(500))
    public = new_public_model(1, 2)
    before = public_vector(public)
    # A fresh body under the small auxiliary head sits on a plateau for its first ~20 steps.
    update = train_local(public, data, seed=0, schedule=Schedule(3, 0.02, 32))
    assert update.shape == before.shape and update.dtype == np.float32
    assert np.array_equal(public_vector(public), before)
    trained = public_model_from_vector(public, before + update)
    assert evaluate_loss(trained.body, trained.aux, data) < 0.6 * evaluate_loss(
        public.body, public.aux, data
    )


def test_train_local_is_deterministic_per_seed(mnist: Mnist) -> None:
    data = mnist.train(np.arange(200))
    public = new_public_model(1, 2)
    first = train_local(public, data, seed=4, schedule=SHORT)
    assert np.array_equal(first, train_local(public, data, seed=4, schedule=SHORT))
    assert not np.array_equal(first, train_local(public, data, seed=5, schedule=SHORT))


def test_fedavg_weights_by_sample_count() -> None:
    a, b = np.full(4, 1.0, np.float32), np.full(4, 5.0, np.float32)
    assert np.allclose(fedavg([a, b], [3, 1]), 2.0)
    assert fedavg([a, b], [3, 1]).dtype == np.float32
    with pytest.raises(ValueError):
        fedavg([a, b], [1])
    with pytest.raises(ValueError):
        fedavg([a], [0])


def test_apply_update_checks_shape() -> None:
    vector = np.arange(3, dtype=np.float32)
    assert np.array_equal(apply_update(vector, np.ones(3, np.float32)), vector + 1)
    with pytest.raises(ValueError, match="shape"):
        apply_update(vector, np.ones(4, np.float32))


def test_finetune_head_trains_a_copy_over_a_frozen_body(mnist: Mnist) -> None:
    own = mnist.train(np.arange(100))
    body, aux = new_body(1), new_head(2)
    body_before = [p.detach().clone() for p in body.parameters()]
    private = finetune_head(body, aux, own, seed=0, schedule=Schedule(20, 0.05, 10))
    assert private is not aux
    assert all(torch.equal(p, q) for p, q in zip(body.parameters(), body_before, strict=True))
    assert not torch.equal(private.weight, aux.weight)
    assert evaluate_loss(body, private, own) < evaluate_loss(body, aux, own)


def test_a_small_round_lifts_the_model_owner_above_its_own_data(mnist: Mnist) -> None:
    # The probe's flow at small scale: MO with 25 samples, 4 DOs x 500 samples, one round.
    rng = np.random.default_rng(0)
    mo_indices, pool = split_model_owner(mnist.train_labels, 25, rng)
    parts = iid_partition(pool, [500, 500, 300, 700], rng)
    own, test = mnist.train(mo_indices), mnist.test(1_000)
    body, head = new_body(1), new_head(2)
    train_model(body, head, own, seed=3)
    alone = evaluate(body, head, test)

    public = public_model_for(body, aux_seed=4)
    updates = [train_local(public, mnist.train(p), seed=i) for i, p in enumerate(parts)]
    aggregate = fedavg(updates, [len(p) for p in parts])
    public = public_model_from_vector(public, apply_update(public_vector(public), aggregate))
    private = finetune_head(public.body, public.aux, own, seed=3)
    after = evaluate(public.body, private, test)
    assert alone < 0.75
    assert after > alone + 0.15


@pytest.mark.slow
def test_probe_one_round_reaches_ninety_percent(mnist: Mnist) -> None:
    """DESIGN §7 at full size: 10 DOs x 1,000 samples, one round, on the whole test set."""
    result = run_probe(ProbeConfig(seed=0, rounds=1), mnist)
    assert 0.5 < result.alone < 0.75
    assert result.mo_after[0] >= 0.90
