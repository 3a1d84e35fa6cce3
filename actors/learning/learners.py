"""The actors' learners on real MNIST: what a data owner trains and what a model owner keeps.

`TorchDataOwner` turns the round's published model bytes into an update of the public part (body
and public auxiliary head). `TorchModelOwner` holds the model owner's private head, publishes the
public part, applies the combined aggregate and fine-tunes its head from the aggregated auxiliary
head on its own few samples (DESIGN.md §7).
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch

from actors.learning.data import Samples
from actors.learning.model import (
    new_body,
    new_head,
    public_model_for,
    public_model_from_bytes,
    public_model_from_vector,
    public_model_to_bytes,
    public_vector,
)
from actors.learning.train import (
    DO_SCHEDULE,
    FINETUNE_SCHEDULE,
    MO_ALONE_SCHEDULE,
    Schedule,
    apply_update,
    evaluate,
    finetune_head,
    train_local,
    train_model,
    warm_up,
)


def reference_schedule(own_samples: int, do_samples: int, do: Schedule = DO_SCHEDULE) -> Schedule:
    """The model owner's reference training: as many SGD steps as a data owner takes.

    With the data owners' own schedule on its few samples the model owner would take one step per
    epoch (4 against a data owner's 64 at 500 samples), and its reference would be a fraction of
    an honest update's size (norm ~0.9 against ~5): useless as a yardstick for the norm of group
    updates. With as many steps as a data owner, at its step size and batch size, the reference
    fits the model owner's own data from the published model (norm ~3.2 against ~4.3 for an honest
    group of 4 in the robustness sweep); more steps change nothing once that data is fit.
    """
    if own_samples < 1 or do_samples < 1:
        raise ValueError("sample counts must be positive")
    steps = do.epochs * math.ceil(do_samples / do.batch_size)
    per_epoch = math.ceil(own_samples / do.batch_size)
    return Schedule(epochs=math.ceil(steps / per_epoch), lr=do.lr, batch_size=do.batch_size)


class TorchDataOwner:
    """A data owner's private samples and its local training schedule."""

    def __init__(self, data: Samples, *, seed: int, schedule: Schedule = DO_SCHEDULE) -> None:
        self.data = data
        self.seed = seed
        self.schedule = schedule

    def warm_up(self) -> None:
        """Pay torch's first-steps cost now (`train.warm_up`), not in the first round."""
        warm_up(self.data, seed=self.seed)

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        public = public_model_from_bytes(model_bytes)
        update = train_local(public, self.data, seed=self.seed + round, schedule=self.schedule)
        return update.astype(np.float64), len(self.data)


class TorchModelOwner:
    """The model owner's model: public part (body + auxiliary head) and its private head."""

    def __init__(
        self,
        own: Samples,
        test: Samples,
        *,
        seed: int,
        alone: Schedule = MO_ALONE_SCHEDULE,
        finetune: Schedule = FINETUNE_SCHEDULE,
        do_samples: int = 1_000,
        reference: Schedule | None = None,
    ) -> None:
        """``do_samples``: a data owner's sample count (the task's sample cap), which sets how
        long the reference update trains (`reference_schedule`) unless ``reference`` is given."""
        rng = np.random.default_rng(seed)
        body_seed, head_seed, aux_seed, self._train_seed = (
            int(s) for s in rng.integers(2**31, size=4)
        )
        self.own, self.test = own, test
        self.finetune = finetune
        self.reference = reference or reference_schedule(len(own), do_samples)
        body, self.head = new_body(body_seed), new_head(head_seed)
        # before any market: the model owner trains its whole model on its own few samples
        train_model(body, self.head, own, seed=self._train_seed, schedule=alone)
        self.public = public_model_for(body, aux_seed)

    @property
    def train_seed(self) -> int:
        """The seed of the model owner's own training (head fine-tuning, reference updates),
        for a baseline that must evaluate the same way (`bench.peer`)."""
        return self._train_seed

    def public_size(self) -> int:
        return public_vector(self.public).size

    def model_bytes(self) -> bytes:
        return public_model_to_bytes(self.public)

    def reference_update(self) -> np.ndarray:
        """The update the model owner's own data asks for (the trust reference of FLTrust),
        from the current public model."""
        update = train_local(self.public, self.own, seed=self._train_seed, schedule=self.reference)
        return update.astype(np.float64)

    def apply(self, update: np.ndarray) -> None:
        vector = apply_update(public_vector(self.public), update.astype(np.float32))
        self.public = public_model_from_vector(self.public, vector)

    def fit_head(self) -> None:
        self.head = finetune_head(
            self.public.body,
            self.public.aux,
            self.own,
            seed=self._train_seed,
            schedule=self.finetune,
        )

    def accuracy(self) -> float:
        return evaluate(self.public.body, self.head, self.test)

    def state(self) -> bytes:
        """The public part and the private head as one `.npz` of float32 vectors (no pickle)."""
        head = torch.nn.utils.parameters_to_vector(self.head.parameters()).detach()
        out = io.BytesIO()
        np.savez(out, public=public_vector(self.public), head=head.numpy())
        return out.getvalue()

    def restore(self, state: bytes) -> None:
        """Load `state()`'s bytes; a model of another shape is refused (`ValueError`)."""
        with np.load(io.BytesIO(state), allow_pickle=False) as saved:
            public, head = saved["public"], saved["head"]
        size = sum(p.numel() for p in self.head.parameters())
        if head.shape != (size,):
            raise ValueError(f"saved private head has shape {head.shape}, want ({size},)")
        self.public = public_model_from_vector(self.public, public)
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(
                torch.from_numpy(head.copy()), self.head.parameters()
            )
