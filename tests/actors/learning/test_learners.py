"""The model owner's learner (actors.learning.learners): its reference update takes as many SGD
steps as a data owner's, and its saved model restores."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from actors.learning.data import Samples
from actors.learning.learners import TorchModelOwner, reference_schedule
from actors.learning.train import DO_SCHEDULE, Schedule


def _steps(schedule: Schedule, samples: int) -> int:
    return schedule.epochs * math.ceil(samples / schedule.batch_size)


@pytest.mark.parametrize(("own", "do"), [(25, 500), (25, 1_000), (100, 1_000), (60, 50)])
def test_reference_takes_as_many_steps_as_a_data_owner(own: int, do: int) -> None:
    schedule = reference_schedule(own, do)
    assert (schedule.lr, schedule.batch_size) == (DO_SCHEDULE.lr, DO_SCHEDULE.batch_size)
    wanted = _steps(DO_SCHEDULE, do)
    # whole epochs: at least as many steps, fewer than one epoch more
    assert wanted <= _steps(schedule, own) < wanted + math.ceil(own / schedule.batch_size)


def test_the_sweep_setting_gives_64_full_batch_steps() -> None:
    # 25 own samples fit one batch of 32; a data owner with 500 takes 4 x 16 = 64 steps
    assert reference_schedule(25, 500) == Schedule(epochs=64, lr=0.02, batch_size=32)


def test_refuses_empty_sample_counts() -> None:
    with pytest.raises(ValueError, match="positive"):
        reference_schedule(0, 500)


def test_model_owner_trains_its_reference_for_the_data_owners_steps() -> None:
    generator = torch.Generator().manual_seed(0)
    own = Samples(torch.randn(8, 1, 28, 28, generator=generator), torch.arange(8) % 10)
    tiny = Schedule(epochs=1, lr=0.02, batch_size=8)
    owner = TorchModelOwner(own, own, seed=1, alone=tiny, finetune=tiny, do_samples=64)
    assert owner.reference == reference_schedule(8, 64)
    given = TorchModelOwner(own, own, seed=1, alone=tiny, finetune=tiny, reference=tiny)
    assert given.reference == tiny
    assert given.reference_update().shape == (owner.public_size(),)


def test_model_owner_state_restores_public_part_and_private_head() -> None:
    """A model owner's saved model (public part and private head) loads into a fresh learner,
    which then predicts exactly as the saved one; a model of another shape is refused."""
    generator = torch.Generator().manual_seed(0)
    own = Samples(torch.randn(8, 1, 28, 28, generator=generator), torch.arange(8) % 10)
    tiny = Schedule(epochs=1, lr=0.02, batch_size=8)
    trained = TorchModelOwner(own, own, seed=1, alone=tiny, finetune=tiny, reference=tiny)
    trained.apply(np.full(trained.public_size(), 0.01))  # moves both public part and head
    fresh = TorchModelOwner(own, own, seed=2, alone=tiny, finetune=tiny, reference=tiny)
    assert fresh.model_bytes() != trained.model_bytes()
    fresh.restore(trained.state())
    assert fresh.model_bytes() == trained.model_bytes()
    with torch.no_grad():
        features = trained.public.body(own.x)
        assert torch.equal(fresh.head(features), trained.head(features))
    right_head = np.zeros(sum(p.numel() for p in trained.head.parameters()), np.float32)
    for public, head, what in [
        (np.zeros(3, np.float32), np.zeros(3, np.float32), "private head"),
        (np.zeros(3, np.float32), right_head, "public vector"),
    ]:
        other = io.BytesIO()
        np.savez(other, public=public, head=head)
        with pytest.raises(ValueError, match=what):
            fresh.restore(other.getvalue())
    assert fresh.model_bytes() == trained.model_bytes()  # a refused state changes nothing
