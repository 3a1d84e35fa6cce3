"""Torch modules from a task spec, and their safetensors bytes (DESIGN.md §7-§8).

This module owns turning a checked ``protocol.spec.TaskSpec`` into modules: the public body
(``layers[:private_from]``), the private head (the rest) and the public auxiliary head (the private
head's shape, seeded from ``model.aux_seed`` and scaled down as ``model.new_aux_head`` does). Every
module comes from one table, ``_BUILDERS``, keyed by the spec's layer struct types: a spec string
only ever selects a struct through msgspec's closed union, and nothing here imports, evaluates
or looks up anything by name.

The public model (body + auxiliary head) travels as a flat float32 vector in ``parameters()``
order, which for ``examples/mnist-cnn.toml`` is the CNN's order in ``model.py``. Its published
bytes, and a model owner's exported model (body, private head and auxiliary head, with the spec's
canonical bytes in the metadata), are safetensors: a size-bounded JSON header and raw tensors, no
pickle and no code, loadable by any torch user with ``safetensors.torch.load_file``.
"""

from __future__ import annotations

import copy
import struct
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from torch import nn

from protocol import spec as specs
from protocol.spec import TaskSpec, canonical_bytes, decode_canonical, infer_shapes, spec_hash

PUBLIC_FORMAT = "omnilytics-public/1"
EXPORT_FORMAT = "omnilytics-model/1"
# A safetensors header: u64 length, then JSON. Ours hold a few dozen tensors and the spec.
_MAX_HEADER = 1 << 20

_Builder = Callable[[Any, tuple[int, ...]], nn.Module]
# The only way from a spec to a module: layer struct type -> constructor(its arguments `a`,
# its input shape `s`).
_BUILDERS: Mapping[type, _Builder] = {
    specs.Linear: lambda a, s: nn.Linear(s[-1], a.out_features, bias=a.bias),
    specs.Conv2d: lambda a, s: nn.Conv2d(
        s[0], a.out_channels, a.kernel, stride=a.stride, padding=a.padding, bias=a.bias
    ),
    specs.MaxPool2d: lambda a, s: nn.MaxPool2d(a.kernel, a.stride or a.kernel),
    specs.AvgPool2d: lambda a, s: nn.AvgPool2d(a.kernel, a.stride or a.kernel),
    specs.ReLU: lambda a, s: nn.ReLU(),
    specs.GELU: lambda a, s: nn.GELU(),
    specs.Tanh: lambda a, s: nn.Tanh(),
    specs.Flatten: lambda a, s: nn.Flatten(),
    specs.Dropout: lambda a, s: nn.Dropout(a.p),
    specs.LayerNorm: lambda a, s: nn.LayerNorm(s[-1]),
    specs.GroupNorm: lambda a, s: nn.GroupNorm(a.groups, s[0]),
    specs.Embedding: lambda a, s: nn.Embedding(a.num_embeddings, a.embedding_dim),
}


class ModelFileError(ValueError):
    """Model bytes (published or exported) that do not fit their spec."""


class PublicModel(nn.Module):
    """What the model owner publishes and data owners train: the body and the auxiliary head."""

    def __init__(self, body: nn.Sequential, aux: nn.Sequential) -> None:
        super().__init__()
        self.body = body
        self.aux = aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aux(self.body(x))


class ExportedModel(nn.Module):
    """A model owner's whole model: ``head(body(x))`` is the network; ``aux`` rides along."""

    def __init__(self, body: nn.Sequential, head: nn.Sequential, aux: nn.Sequential) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.aux = aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _seeded(seed: int, build: Callable[[], nn.Sequential]) -> nn.Sequential:
    # torch's initialisers draw from the global generator: fork it so a seed gives the same
    # weights everywhere without disturbing anyone else's stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _build(spec: TaskSpec, start: int, stop: int) -> nn.Sequential:
    shapes = infer_shapes(spec).shapes
    layers = spec.model.layers
    return nn.Sequential(
        *(_BUILDERS[type(layers[i])](layers[i], shapes[i]) for i in range(start, stop))
    )


def new_body(spec: TaskSpec, seed: int) -> nn.Sequential:
    """The public body, initialised from ``seed`` (as ``model.new_body`` for the MNIST spec)."""
    return _seeded(seed, lambda: _build(spec, 0, spec.model.private_from))


def new_head(spec: TaskSpec, seed: int) -> nn.Sequential:
    """A private head, torch's initialisation from ``seed``."""
    return _seeded(seed, lambda: _build(spec, spec.model.private_from, len(spec.model.layers)))


def new_aux_head(spec: TaskSpec) -> nn.Sequential:
    """The public auxiliary head: a head from ``aux_seed``, weights scaled, biases zero.

    Scaled down for the reason ``model.new_aux_head`` measured: a small head makes every data
    owner first fit the head, so their bodies stay aligned.
    """
    head = new_head(spec, spec.model.aux_seed)
    with torch.no_grad():
        for module in head.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                module.weight.mul_(spec.model.aux_init_scale)
                if module.bias is not None:
                    module.bias.zero_()
    return head


def new_public_model(spec: TaskSpec, body_seed: int) -> PublicModel:
    """A public model from a seeded body and the spec's auxiliary head."""
    return PublicModel(new_body(spec, body_seed), new_aux_head(spec))


def public_model_for(spec: TaskSpec, body: nn.Sequential) -> PublicModel:
    """What the model owner publishes: a copy of its body and a fresh auxiliary head."""
    return PublicModel(copy.deepcopy(body), new_aux_head(spec))


def public_vector(model: nn.Module) -> np.ndarray:
    """The model's parameters as one flat float32 vector, in ``parameters()`` order."""
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return flat.to(torch.float32).numpy().copy()


def load_public_vector(model: nn.Module, vector: np.ndarray) -> None:
    """Overwrite the model's parameters, in place, from a flat vector of the right length."""
    vector = np.asarray(vector)
    expected = sum(p.numel() for p in model.parameters())
    if vector.shape != (expected,):
        raise ValueError(f"public vector has shape {vector.shape}, want ({expected},)")
    source = torch.from_numpy(np.array(vector, dtype=np.float32))
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(source[offset : offset + p.numel()].view_as(p))
            offset += p.numel()


def public_model_from_vector(template: PublicModel, vector: np.ndarray) -> PublicModel:
    """A new public model with ``template``'s modules and ``vector``'s parameters."""
    model = copy.deepcopy(template)
    load_public_vector(model, vector)
    return model


def _save(model: nn.Module, metadata: dict[str, str]) -> bytes:
    """The model's state as safetensors bytes, the same bytes for the same state.

    Written here rather than by ``safetensors.torch.save``, whose header lists the metadata in
    the order of a randomly seeded hash map (two saves of one model differed), which would give
    one model many hashes. Sorted keys, float32 little-endian, the header padded to 8 bytes.
    """
    header: dict[str, object] = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, tensor in sorted(model.state_dict().items()):
        raw = tensor.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    text = msgspec.json.encode(header, order="sorted")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def public_model_to_bytes(spec: TaskSpec, model: PublicModel) -> bytes:
    """The published public model: safetensors, with the format and the spec hash as metadata."""
    metadata = {"format": PUBLIC_FORMAT, "spec_hash": "0x" + spec_hash(spec).hex()}
    return _save(model, metadata)


def public_model_from_bytes(spec: TaskSpec, data: bytes) -> PublicModel:
    """The public model from its published bytes, checked against ``spec``."""
    metadata = _metadata(data, max_size=_max_size(spec, 1))
    if metadata.get("format") != PUBLIC_FORMAT:
        raise ModelFileError("not a public model file")
    if metadata.get("spec_hash") != "0x" + spec_hash(spec).hex():
        raise ModelFileError("public model was made for another spec")
    model = new_public_model(spec, 0)
    _load_into(model, data)
    return model


def export_model(spec: TaskSpec, public: PublicModel, head: nn.Sequential) -> bytes:
    """The model owner's whole model: body, private head, auxiliary head, and the spec."""
    model = ExportedModel(public.body, head, public.aux)
    metadata = {
        "format": EXPORT_FORMAT,
        "spec": canonical_bytes(spec).decode("utf-8"),
        "spec_hash": "0x" + spec_hash(spec).hex(),
    }
    return _save(model, metadata)


def new_exported_model(spec: TaskSpec) -> ExportedModel:
    """An empty (freshly initialised) module of an exported model's shape, for loading into."""
    return ExportedModel(new_body(spec, 0), new_head(spec, 0), new_aux_head(spec))


def load_exported(data: bytes) -> tuple[TaskSpec, ExportedModel]:
    """The spec and model from exported bytes. Nothing is executed: the header is bounded JSON,
    the spec is decoded strictly and checked, the tensors must be exactly the spec's."""
    metadata = _metadata(data, max_size=_max_size(None, 2))
    if metadata.get("format") != EXPORT_FORMAT or "spec" not in metadata:
        raise ModelFileError("not an exported model file")
    spec = decode_canonical(metadata["spec"].encode("utf-8"))
    if len(data) > _max_size(spec, 2):
        raise ModelFileError("exported model is larger than its spec allows")
    model = new_exported_model(spec)
    _load_into(model, data)
    return spec, model


def _max_size(spec: TaskSpec | None, heads: int) -> int:
    params = specs.PARAMS_CEILING if spec is None else infer_shapes(spec).public_params
    return 8 + _MAX_HEADER + 4 * params * heads


def _metadata(data: bytes, *, max_size: int) -> dict[str, str]:
    """The safetensors header's ``__metadata__``, read like safetensors reads its header."""
    if len(data) > max_size:
        raise ModelFileError(f"{len(data)} bytes, more than the spec allows ({max_size})")
    if len(data) < 8:
        raise ModelFileError("shorter than a safetensors header")
    (size,) = struct.unpack_from("<Q", data)
    if size > min(_MAX_HEADER, len(data) - 8):
        raise ModelFileError("safetensors header length out of bounds")
    try:
        header = msgspec.json.decode(data[8 : 8 + size], type=dict[str, Any])
        return msgspec.convert(header.get("__metadata__", {}), dict[str, str])
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ModelFileError(f"bad safetensors header: {error}") from None


def _load_into(model: nn.Module, data: bytes) -> None:
    try:
        tensors = load_safetensors(data)
    except Exception as error:  # safetensors raises its own SafetensorError
        raise ModelFileError(f"unreadable safetensors: {error}") from None
    expected = model.state_dict()
    if set(tensors) != set(expected):
        raise ModelFileError(f"tensors {sorted(set(tensors) ^ set(expected))} do not fit the spec")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
            raise ModelFileError(f"tensor {name} is {tensor.dtype}{list(tensor.shape)}")
        if not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(f"tensor {name} has a non-finite value")
    model.load_state_dict(tensors, strict=True)
