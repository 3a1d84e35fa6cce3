"""The split CNN: a public feature extractor, a private head, and the public auxiliary head.

DESIGN §1 G1 and §7: the model owner keeps its classifier head private and publishes only the
feature extractor (the *body*). Data owners train that body under an *auxiliary head* the MO
publishes with the task — seeded, not the MO's private head — and the aggregated update covers
both, so bodies trained by different DOs stay aligned to one head.

The public model (body + auxiliary head) is one flat float32 vector, in a fixed parameter order
(``conv1.weight``, ``conv1.bias``, ``conv2.weight``, ``conv2.bias``, ``fc.weight``, ``fc.bias``,
``aux.weight``, ``aux.bias``, each row-major): what DOs update and the secure sum adds.

The market builds its models from task specs (`spec_model`, published as safetensors); this is
the MNIST spec's network (``examples/mnist-cnn.toml``) written as code, with torch and numpy only,
for what cannot import the spec modules: Flower's side of `bench.peer` (whose venv has no msgspec
or safetensors) and the learning probe (`actors.measure.probe`). A test holds the two equal.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from actors.learning.data import IMAGE_SIDE, NUM_CLASSES

CONV1_CHANNELS = 16
CONV2_CHANNELS = 32
HIDDEN = 64
# The auxiliary head starts at a tenth of torch's default scale; see `new_aux_head`.
AUX_INIT_SCALE = 0.1


class FeatureExtractor(nn.Module):
    """The public body: conv 5x5 -> pool -> conv 5x5 -> pool -> 64-unit layer, ReLU throughout.

    With the default widths it has 46,080 parameters (DESIGN §7: ~46k).
    """

    def __init__(
        self, conv1: int = CONV1_CHANNELS, conv2: int = CONV2_CHANNELS, hidden: int = HIDDEN
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, conv1, kernel_size=5)
        self.conv2 = nn.Conv2d(conv1, conv2, kernel_size=5)
        # 28 -conv-> 24 -pool-> 12 -conv-> 8 -pool-> 4
        side = ((IMAGE_SIDE - 4) // 2 - 4) // 2
        self.fc = nn.Linear(conv2 * side * side, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return torch.relu(self.fc(x.flatten(1)))


class PublicModel(nn.Module):
    """What the MO publishes and DOs train: the body and the auxiliary head."""

    def __init__(self, body: FeatureExtractor, aux: nn.Linear) -> None:
        super().__init__()
        self.body = body
        self.aux = aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aux(self.body(x))


_Module = TypeVar("_Module", bound=nn.Module)


def _seeded(seed: int, build: Callable[[], _Module]) -> _Module:
    # torch's default initialisers draw from the global generator; fork it so that a seed gives
    # the same weights everywhere without disturbing anyone else's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def new_body(seed: int) -> FeatureExtractor:
    """A freshly initialised feature extractor, the same for the same seed."""
    return _seeded(seed, FeatureExtractor)


def new_head(seed: int, hidden: int = HIDDEN) -> nn.Linear:
    """A freshly initialised 64 -> 10 head (private or auxiliary), the same for the same seed."""
    return _seeded(seed, lambda: nn.Linear(hidden, NUM_CLASSES))


def new_aux_head(seed: int, hidden: int = HIDDEN) -> nn.Linear:
    """The public auxiliary head: a seeded head scaled down by ``AUX_INIT_SCALE``, bias zero.

    Why small: the MO's body, trained on a few samples, emits large features, and a head of the
    usual scale turns them into large random logits whose gradients push each DO's body its own
    way before the head has learnt anything. A small head makes every DO first fit the head (much
    the same convex problem for all of them), so the bodies stay aligned and their mean stays a
    good model. Measured with the probe's seed 1: the averaged public model reached 87.9% with a
    full-scale head and 93.2% with this one.
    """
    head = new_head(seed, hidden)
    with torch.no_grad():
        head.weight.mul_(AUX_INIT_SCALE)
        head.bias.zero_()
    return head


def new_public_model(body_seed: int, aux_seed: int) -> PublicModel:
    """A public model from seeds: what a MO without a trained body would publish."""
    return PublicModel(new_body(body_seed), new_aux_head(aux_seed))


def public_model_for(body: FeatureExtractor, aux_seed: int) -> PublicModel:
    """What the MO publishes with a task: a copy of its body and a fresh seeded auxiliary head.

    The auxiliary head is deliberately not the MO's private head (G1); the seed makes it
    reproducible by anyone.
    """
    return PublicModel(copy.deepcopy(body), new_aux_head(aux_seed))


def public_model_from_vector(template: PublicModel, vector: np.ndarray) -> PublicModel:
    """A new public model with ``template``'s architecture and ``vector``'s parameters."""
    model = copy.deepcopy(template)
    load_public_vector(model, vector)
    return model


def parameter_count(module: nn.Module) -> int:
    """Number of scalar parameters, i.e. the length of the module's flat vector."""
    return sum(p.numel() for p in module.parameters())


def public_vector(model: PublicModel) -> np.ndarray:
    """The public model as one flat float32 vector, in the documented parameter order."""
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return flat.to(torch.float32).numpy().copy()


def load_public_vector(model: PublicModel, vector: np.ndarray) -> None:
    """Overwrite the public model's parameters, in place, from a flat vector."""
    vector = np.asarray(vector)
    expected = parameter_count(model)
    if vector.shape != (expected,):
        raise ValueError(f"public vector has shape {vector.shape}, want ({expected},)")
    # A copy: the vector may be a read-only view of chain bytes, and torch wants writable memory.
    source = torch.from_numpy(np.array(vector, dtype=np.float32))
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(source[offset : offset + p.numel()].view_as(p))
            offset += p.numel()


def public_parameter_count(
    conv1: int = CONV1_CHANNELS, conv2: int = CONV2_CHANNELS, hidden: int = HIDDEN
) -> int:
    """Length of the public vector for these widths (46,730 for the defaults), without a model."""
    side = ((IMAGE_SIDE - 4) // 2 - 4) // 2
    body = (25 * conv1 + conv1) + (25 * conv1 * conv2 + conv2) + (conv2 * side * side + 1) * hidden
    return body + (hidden + 1) * NUM_CLASSES
