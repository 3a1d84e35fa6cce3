"""The actors' learners for any task spec: what a data owner trains and what a model owner keeps.

`SpecDataOwner` turns a round's published model bytes (safetensors, checked against the spec) into
an update of the public part, trained with the spec's recipe on the data owner's own samples
(read and checked by `adapters.read_data`). `SpecModelOwner` holds the model owner's private
head: it trains its whole model alone on its own samples, publishes the public body with the
spec's seeded auxiliary head, computes the FLTrust reference update from its own samples, applies
the combined aggregate and fine-tunes its head from the aggregated auxiliary head (DESIGN.md §7).
Its saved state is its exported model (`spec_model.export_model`: public part, private head and
the spec in one safetensors file), so `omnilytics task model` can write it out at any round.

For ``examples/mnist-cnn.toml`` these are the demo's learners: the split CNN and recipe of
DESIGN.md §7 (as `model.py` and `train.py` write them out for Flower's side of `bench.peer`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from actors.learning import recipe
from actors.learning import spec_model as sm
from actors.learning.data import Samples
from actors.learning.train import apply_update
from protocol.spec import TaskSpec, spec_hash

# a data owner's warm-up trains on this many of its samples, for one pass
_WARM_UP_SAMPLES = 64


def reference_epochs(spec: TaskSpec, own_samples: int) -> int:
    """Passes over the model owner's own samples that take as many optimizer steps as a data
    owner at the sample cap takes in a round: with the data owners' epochs on a few samples the
    reference would be a fraction of an honest update (norm ~0.9 against ~5 for the MNIST spec,
    docs/robustness.md)."""
    if own_samples < 1:
        raise ValueError("the model owner needs samples of its own")
    t = spec.training
    steps = t.epochs * math.ceil(spec.data.max_samples / t.batch_size)
    return math.ceil(steps / math.ceil(own_samples / t.batch_size))


class SpecDataOwner:
    """A data owner's samples (already checked against the spec) and the spec's recipe."""

    def __init__(self, spec: TaskSpec, data: Samples, *, seed: int) -> None:
        self.spec = spec
        self.data = data
        self.seed = seed

    def warm_up(self) -> None:
        """Pay torch's first-steps cost at start-up rather than inside the first round."""
        public = sm.new_public_model(self.spec, self.seed)
        subset = Samples(self.data.x[:_WARM_UP_SAMPLES], self.data.y[:_WARM_UP_SAMPLES])
        recipe.train_local(self.spec, public, subset, seed=self.seed, epochs=1)

    def train(self, model_bytes: bytes, round: int) -> tuple[np.ndarray, int]:
        public = sm.public_model_from_bytes(self.spec, model_bytes)
        update, samples = recipe.train_local(self.spec, public, self.data, seed=self.seed + round)
        return update.astype(np.float64), samples


class SpecModelOwner:
    """The model owner's model for a spec: public body + auxiliary head, and its private head.

    ``own``: its labelled samples (training alone, the FLTrust reference, the head's fine-tuning);
    ``test``: where its accuracy is measured (held out, or ``own`` when it has nothing else).
    """

    def __init__(self, spec: TaskSpec, own: Samples, test: Samples, *, seed: int) -> None:
        self.spec = spec
        self.own, self.test = own, test
        # four draws (the third, once the auxiliary head's seed, now comes from the spec): the
        # MNIST spec starts from the body and head the demo started from before it was a spec
        rng = np.random.default_rng(seed)
        body_seed, head_seed, _, self._train_seed = (int(s) for s in rng.integers(2**31, size=4))
        self.reference_passes = reference_epochs(spec, len(own))
        body, self.head = sm.new_body(spec, body_seed), sm.new_head(spec, head_seed)
        recipe.train_owner_alone(spec, body, self.head, own, seed=self._train_seed)
        self.public = sm.public_model_for(spec, body)

    @property
    def train_seed(self) -> int:
        """The seed of the model owner's own training (head fine-tuning, reference updates),
        for a baseline that must evaluate the same way (`bench.peer`)."""
        return self._train_seed

    def public_size(self) -> int:
        return sm.public_vector(self.public).size

    def model_bytes(self) -> bytes:
        return sm.public_model_to_bytes(self.spec, self.public)

    def reference_update(self) -> np.ndarray:
        """The update the model owner's own data asks for (FLTrust's trust reference)."""
        update, _ = recipe.train_local(
            self.spec, self.public, self.own, seed=self._train_seed, epochs=self.reference_passes
        )
        return update.astype(np.float64)

    def apply(self, update: np.ndarray) -> None:
        vector = apply_update(sm.public_vector(self.public), update.astype(np.float32))
        self.public = sm.public_model_from_vector(self.public, vector)

    def fit_head(self) -> None:
        self.head = recipe.finetune_head(
            self.spec, self.public.body, self.public.aux, self.own, seed=self._train_seed
        )

    def accuracy(self) -> float:
        return recipe.evaluate(self.spec, self.public.body, self.head, self.test)

    def export(self) -> bytes:
        """The whole model (public part, private head, spec) as safetensors bytes."""
        return sm.export_model(self.spec, self.public, self.head)

    def state(self) -> bytes:
        return self.export()

    def restore(self, state: bytes) -> None:
        """Load `state()`'s bytes; a model of another spec is refused (`ModelFileError`)."""
        spec, model = sm.load_exported(state)
        if spec_hash(spec) != spec_hash(self.spec):
            raise sm.ModelFileError("the saved model was made for another spec")
        public = sm.PublicModel(model.body, model.aux)
        with torch.no_grad():
            sm.load_public_vector(self.public, sm.public_vector(public))
            self.head.load_state_dict(model.head.state_dict())
