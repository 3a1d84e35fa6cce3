"""The task spec: a model owner's task as data, never code (DESIGN.md §8).

This module owns the spec's schema (strict, versioned, bounded msgspec structs), its reading from
TOML, its checks (every rule across fields, and shape inference layer by layer with parameter and
FLOP counts under caps), and its canonical bytes and hash, the form published on-chain and
hashed into the task config.

The model is an ordered list of layers from a closed vocabulary. A layer's ``type`` string
selects one of the structs below through msgspec's tagged union and is never used otherwise: no
string from a spec names anything to import, call or look up. Batch normalisation is left out on
purpose: its running mean and variance are statistics of each data owner's data, not trained
parameters, and the secure sum can only add vectors, so they could neither be summed securely
nor kept private (groupnorm and layernorm normalise per sample and need no running state).

Every refusal raises ``SpecError(field, rule)``, whose message names the field path and the rule.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
from eth_utils import keccak
from msgspec import Meta

from protocol.constants import (
    DATA_PATHS,
    MAX_DOS,
    MAX_DURATION,
    MAX_GROUP_SIZE,
    MAX_ROUNDS,
    MAX_SPEC_BYTES,
)
from protocol.encoding import QuantConfig
from protocol.errors import ConfigError
from protocol.weighting import check_count_headroom

SPEC_VERSION = 1
# The longest TOML file read (comments and layout included); its canonical bytes, what the chain
# carries, must fit MAX_SPEC_BYTES.
MAX_TOML_BYTES = 64 * 1024
# keccak256 of no spec at all: the config's `spec_hash` of a task that publishes none.
NO_SPEC_HASH = keccak(b"")
MAX_LAYERS = 64
# Absolute ceilings: whatever caps a spec declares, a data owner never builds more than this.
PARAMS_CEILING = 20_000_000
FLOPS_CEILING = 4_000_000_000
MAX_WIDTH = 8_192
MAX_CHANNELS = 1_024
MAX_SIDE = 1_024
MAX_CLASSES = 1_000
MAX_COLUMNS = 1_024
MAX_VOCAB = 1_000_000
MAX_SAMPLES = 10_000_000
MAX_NAME = 128
MAX_SEED = 2**31 - 1
MAX_WEI = 2**256 - 1

Width = Annotated[int, Meta(ge=1, le=MAX_WIDTH)]
Channels = Annotated[int, Meta(ge=1, le=MAX_CHANNELS)]
Kernel = Annotated[int, Meta(ge=1, le=15)]
Stride = Annotated[int, Meta(ge=1, le=8)]
Side = Annotated[int, Meta(ge=1, le=MAX_SIDE)]
Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
Duration = Annotated[int, Meta(ge=1, le=MAX_DURATION)]
Shape = tuple[int, ...]


class SpecError(ConfigError):
    """A spec that breaks a rule: ``field`` is its path (``model.layers[3].kernel``)."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class _Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class _Layer(_Strict, frozen=True, tag_field="type"):
    pass


class Linear(_Layer, frozen=True, tag="linear"):
    """A dense layer on the last dimension; its input width is inferred."""

    out_features: Width
    bias: bool = True


class Conv2d(_Layer, frozen=True, tag="conv2d"):
    """A 2-D convolution of a (channels, height, width) input; input channels are inferred."""

    out_channels: Channels
    kernel: Kernel
    stride: Stride = 1
    padding: Annotated[int, Meta(ge=0, le=7)] = 0
    bias: bool = True


class MaxPool2d(_Layer, frozen=True, tag="maxpool2d"):
    """Max pooling; ``stride`` 0 means the kernel size (torch's default)."""

    kernel: Annotated[int, Meta(ge=1, le=8)]
    stride: Annotated[int, Meta(ge=0, le=8)] = 0


class AvgPool2d(_Layer, frozen=True, tag="avgpool2d"):
    """Average pooling; ``stride`` 0 means the kernel size (torch's default)."""

    kernel: Annotated[int, Meta(ge=1, le=8)]
    stride: Annotated[int, Meta(ge=0, le=8)] = 0


class ReLU(_Layer, frozen=True, tag="relu"):
    pass


class GELU(_Layer, frozen=True, tag="gelu"):
    pass


class Tanh(_Layer, frozen=True, tag="tanh"):
    pass


class Flatten(_Layer, frozen=True, tag="flatten"):
    pass


class Dropout(_Layer, frozen=True, tag="dropout"):
    p: Annotated[float, Meta(ge=0.0, le=0.9)]


class LayerNorm(_Layer, frozen=True, tag="layernorm"):
    """Normalises each sample over its last dimension (features, or an embedding's width)."""


class GroupNorm(_Layer, frozen=True, tag="groupnorm"):
    """Normalises each sample over groups of channels (the first dimension)."""

    groups: Annotated[int, Meta(ge=1, le=MAX_CHANNELS)]


class Embedding(_Layer, frozen=True, tag="embedding"):
    """Token ids (int64 array data) to vectors; only as the first layer."""

    num_embeddings: Annotated[int, Meta(ge=1, le=MAX_VOCAB)]
    embedding_dim: Width


Layer = (
    Linear
    | Conv2d
    | MaxPool2d
    | AvgPool2d
    | ReLU
    | GELU
    | Tanh
    | Flatten
    | Dropout
    | LayerNorm
    | GroupNorm
    | Embedding
)
LAYER_TYPES: tuple[type[_Layer], ...] = Layer.__args__
LAYER_NAMES: frozenset[str] = frozenset(t.__struct_config__.tag for t in LAYER_TYPES)


class Model(_Strict, frozen=True):
    """The network: ``layers[:private_from]`` is the public body, the rest the private head."""

    layers: Annotated[tuple[Layer, ...], Meta(min_length=2, max_length=MAX_LAYERS)]
    private_from: Annotated[int, Meta(ge=0, le=MAX_LAYERS)]
    max_params: Annotated[int, Meta(ge=1, le=PARAMS_CEILING)]
    max_flops_per_sample: Annotated[int, Meta(ge=1, le=FLOPS_CEILING)]
    # The public auxiliary head (the private head's shape, DESIGN §7): torch's initialisation
    # from this seed, weights scaled by `aux_init_scale`, biases zero.
    aux_seed: Annotated[int, Meta(ge=0, le=MAX_SEED)] = 0
    aux_init_scale: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.1


class ImagePrep(_Strict, frozen=True):
    """Images: channels (1 grey, 3 RGB), an optional resize, per-channel mean and std of x/255."""

    channels: Literal[1, 3]
    mean: Annotated[tuple[float, ...], Meta(min_length=1, max_length=3)]
    std: Annotated[tuple[Annotated[float, Meta(gt=0.0)], ...], Meta(min_length=1, max_length=3)]
    resize: Annotated[tuple[Side, ...], Meta(min_length=2, max_length=2)] | None = None
    # Class folder names in label order; None means "0", "1", ... (one per class).
    folders: Annotated[tuple[Name, ...], Meta(max_length=MAX_CLASSES)] | None = None


class TabularPrep(_Strict, frozen=True):
    """Tables: the feature columns in order and the model owner's published mean and std."""

    columns: Annotated[tuple[Name, ...], Meta(min_length=1, max_length=MAX_COLUMNS)]
    mean: Annotated[tuple[float, ...], Meta(max_length=MAX_COLUMNS)]
    std: Annotated[tuple[Annotated[float, Meta(gt=0.0)], ...], Meta(max_length=MAX_COLUMNS)]


class Data(_Strict, frozen=True):
    """The data schema every data owner's files must fit."""

    kind: Literal["image", "tabular", "array"]
    shape: Annotated[tuple[Side, ...], Meta(min_length=1, max_length=3)]
    label: Name  # "folder" for images, "y" for npz arrays, the label column for tables
    min_samples: Annotated[int, Meta(ge=1, le=MAX_SAMPLES)]
    # The sample cap: a data owner's weight in the secure sum is min(n, max_samples) / max_samples.
    max_samples: Annotated[int, Meta(ge=1, le=MAX_SAMPLES)]
    classes: Annotated[int, Meta(ge=2, le=MAX_CLASSES)] | None = None  # None: regression
    dtype: Literal["float32", "int64"] = "float32"
    image: ImagePrep | None = None
    tabular: TabularPrep | None = None

    def folder_names(self) -> tuple[str, ...]:
        """The image class folders in label order."""
        if self.image is not None and self.image.folders is not None:
            return self.image.folders
        return tuple(str(c) for c in range(self.classes or 0))


class Training(_Strict, frozen=True):
    """The recipe: data owners' local training, then the model owner's own schedules."""

    loss: Literal["cross_entropy", "mse"]
    optimizer: Literal["sgd", "adam"]
    lr: Annotated[float, Meta(gt=0.0, le=1.0)]
    epochs: Annotated[int, Meta(ge=1, le=100)]
    batch_size: Annotated[int, Meta(ge=1, le=4_096)]
    momentum: Annotated[float, Meta(ge=0.0, lt=1.0)] = 0.0
    weight_decay: Annotated[float, Meta(ge=0.0, le=0.1)] = 0.0
    clip_norm: Annotated[float, Meta(gt=0.0, le=1e4)] | None = None  # gradient norm per step
    owner_epochs: Annotated[int, Meta(ge=1, le=1_000)] = 40  # the model owner alone
    owner_batch_size: Annotated[int, Meta(ge=1, le=4_096)] = 10
    finetune_epochs: Annotated[int, Meta(ge=0, le=1_000)] = 5  # its private head, each round
    finetune_lr: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.005
    finetune_batch_size: Annotated[int, Meta(ge=1, le=4_096)] = 10


class Market(_Strict, frozen=True):
    """The terms the contract takes (docs/interfaces.md): seats, groups, phases, money."""

    rounds: Annotated[int, Meta(ge=1, le=MAX_ROUNDS)]
    max_dos: Annotated[int, Meta(ge=1, le=MAX_DOS)]
    min_dos: Annotated[int, Meta(ge=1, le=MAX_DOS)]
    group_size: Annotated[int, Meta(ge=2, le=MAX_GROUP_SIZE)]
    threshold: Annotated[int, Meta(ge=1, le=MAX_GROUP_SIZE)]
    reward_wei: int
    bond_wei: int = 0
    rule: Literal["mean", "median", "trimmed_mean", "multi_krum", "fltrust"] = "mean"
    register_duration: Duration = 600
    share_duration: Duration = 120
    submit_duration: Duration = 300
    unmask_duration: Duration = 120
    lane_bits: Literal[16, 32] = 32
    scale_bits: Annotated[int, Meta(ge=0, le=30)] = 16
    clip_norm: Annotated[float, Meta(gt=0.0, le=1e6)] = 4.0
    data_path: Literal["event", "blob", "direct"] = "event"
    # direct: what the model owner pays a data owner it challenges to post its update on-chain
    # (0: a quarter of reward_wei)
    challenge_fee_wei: Annotated[int, Meta(ge=0)] = 0

    @property
    def quant(self) -> QuantConfig:
        return QuantConfig(self.lane_bits, self.scale_bits, self.clip_norm)

    @property
    def data_path_id(self) -> int:
        """The contract's number for ``data_path``."""
        return DATA_PATHS[self.data_path]


class TaskSpec(_Strict, frozen=True):
    version: Annotated[int, Meta(ge=1, le=SPEC_VERSION)]
    model: Model
    data: Data
    training: Training
    market: Market


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """What shape inference found: per-sample shapes (input first), counts per layer."""

    shapes: tuple[Shape, ...]
    params: tuple[int, ...]
    flops: tuple[int, ...]
    private_from: int

    @property
    def public_params(self) -> int:
        """Length of the public vector: body + auxiliary head (the head's own count)."""
        return sum(self.params)

    @property
    def body_params(self) -> int:
        return sum(self.params[: self.private_from])

    @property
    def head_params(self) -> int:
        return sum(self.params[self.private_from :])

    @property
    def flops_per_sample(self) -> int:
        return sum(self.flops)


class _Rule(Exception):
    """A layer's shape rule, raised inside inference and named with the layer's path."""


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def _conv_side(side: int, kernel: int, stride: int, padding: int) -> int:
    out = (side + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise _Rule(f"kernel {kernel} does not fit an input side of {side} (+{padding} padding)")
    return out


def _need_ndim(shape: Shape, ndims: tuple[int, ...], what: str) -> None:
    if len(shape) not in ndims:
        raise _Rule(f"takes {what}, got shape {list(shape)}")


def _infer(layer: _Layer, shape: Shape, first: bool, dtype: str) -> tuple[Shape, int, int]:
    """(output shape, parameters, FLOPs per sample) of one layer, or ``_Rule``."""
    if isinstance(layer, Embedding) != (dtype == "int64" and first):
        raise _Rule("int64 data needs an embedding first layer, and only there")
    n = _numel(shape)
    match layer:
        case Linear(out_features=out, bias=bias):
            _need_ndim(shape, (1, 2), "features (flatten conv maps first)")
            return (*shape[:-1], out), shape[-1] * out + out * bias, 2 * n * out
        case Conv2d(out_channels=out, kernel=k, stride=s, padding=p, bias=bias):
            _need_ndim(shape, (3,), "(channels, height, width)")
            h, w = _conv_side(shape[1], k, s, p), _conv_side(shape[2], k, s, p)
            weights = shape[0] * out * k * k
            return (out, h, w), weights + out * bias, 2 * weights * h * w
        case MaxPool2d(kernel=k, stride=s) | AvgPool2d(kernel=k, stride=s):
            _need_ndim(shape, (3,), "(channels, height, width)")
            h, w = _conv_side(shape[1], k, s or k, 0), _conv_side(shape[2], k, s or k, 0)
            return (shape[0], h, w), 0, k * k * shape[0] * h * w
        case ReLU() | GELU() | Tanh() | Dropout():
            return shape, 0, n
        case Flatten():
            return (n,), 0, 0
        case LayerNorm():
            _need_ndim(shape, (1, 2), "features or a sequence (groupnorm for conv maps)")
            return shape, 2 * shape[-1], 5 * n
        case GroupNorm(groups=g):
            _need_ndim(shape, (1, 3), "channels first")
            if shape[0] % g:
                raise _Rule(f"{shape[0]} channels do not split into {g} groups")
            return shape, 2 * shape[0], 5 * n
        case Embedding(num_embeddings=vocab, embedding_dim=dim):
            _need_ndim(shape, (1,), "a sequence of token ids")
            return (shape[0], dim), vocab * dim, n * dim
    raise _Rule(f"no shape rule for {type(layer).__name__}")  # unreachable: closed union


def infer_shapes(spec: TaskSpec) -> ModelPlan:
    """Chain the shapes through every layer and count parameters and FLOPs, under the caps."""
    model = spec.model
    shapes: list[Shape] = [tuple(spec.data.shape)]
    params, flops = [], []
    for i, layer in enumerate(model.layers):
        try:
            out, p, f = _infer(layer, shapes[-1], i == 0, spec.data.dtype)
        except _Rule as rule:
            raise SpecError(f"model.layers[{i}]", f"{_tag(layer)} {rule}") from None
        shapes.append(tuple(out))
        params.append(p)
        flops.append(f)
    plan = ModelPlan(tuple(shapes), tuple(params), tuple(flops), model.private_from)
    if not 1 <= model.private_from < len(model.layers):
        raise SpecError(
            "model.private_from",
            f"{model.private_from} must leave a public body and a private head that ends the "
            f"network (1 to {len(model.layers) - 1})",
        )
    if plan.head_params == 0:
        raise SpecError("model.private_from", "the private head has no parameters")
    want = (spec.data.classes,) if spec.data.classes is not None else (1,)
    if shapes[-1] != want:
        raise SpecError(
            "model.layers", f"the network outputs {list(shapes[-1])}, the data needs {list(want)}"
        )
    cap = min(model.max_params, PARAMS_CEILING)
    if plan.public_params > cap:
        raise SpecError("model.max_params", f"{plan.public_params} parameters exceed the cap {cap}")
    cap = min(model.max_flops_per_sample, FLOPS_CEILING)
    if plan.flops_per_sample > cap:
        raise SpecError(
            "model.max_flops_per_sample",
            f"{plan.flops_per_sample} FLOPs per sample exceed the cap {cap}",
        )
    return plan


def _tag(layer: _Layer) -> str:
    return type(layer).__struct_config__.tag


def _check_data(data: Data) -> None:
    if data.min_samples > data.max_samples:
        raise SpecError("data.min_samples", "must not exceed data.max_samples")
    preps = {"image": data.image, "tabular": data.tabular}
    for kind, prep in preps.items():
        if (prep is not None) != (data.kind == kind):
            rule = "is required" if prep is None else f"does not apply to {data.kind} data"
            raise SpecError(f"data.{kind}", rule)
    if data.dtype == "int64" and data.kind != "array":
        raise SpecError("data.dtype", "int64 (token ids) only for array data")
    if data.kind == "image":
        _check_image(data, data.image)
    elif data.kind == "tabular":
        _check_tabular(data, data.tabular)
    elif data.label != "y":
        raise SpecError("data.label", "npz arrays carry their labels as 'y'")


def _check_image(data: Data, image: ImagePrep) -> None:
    if data.label != "folder":
        raise SpecError("data.label", "images take their label from their class folder: 'folder'")
    if data.classes is None:
        raise SpecError("data.classes", "image folders need classes (one folder per class)")
    for name, values in (("mean", image.mean), ("std", image.std)):
        if len(values) != image.channels:
            raise SpecError(f"data.image.{name}", f"needs one value per channel ({image.channels})")
    if len(data.shape) != 3 or data.shape[0] != image.channels:
        raise SpecError("data.shape", f"images are [channels={image.channels}, height, width]")
    hw = list(data.shape[1:])
    if image.resize is not None and list(image.resize) != hw:
        raise SpecError("data.image.resize", f"must equal the shape's [height, width] {hw}")
    folders = data.folder_names()
    if len(folders) != data.classes or len(set(folders)) != len(folders):
        raise SpecError("data.image.folders", f"needs {data.classes} distinct folder names")


def _check_tabular(data: Data, table: TabularPrep) -> None:
    columns = table.columns
    if len(set(columns)) != len(columns):
        raise SpecError("data.tabular.columns", "names a column twice")
    if data.label in columns:
        raise SpecError("data.label", "the label column is also a feature column")
    for name, values in (("mean", table.mean), ("std", table.std)):
        if len(values) != len(columns):
            raise SpecError(f"data.tabular.{name}", f"needs one value per column ({len(columns)})")
        if not all(math.isfinite(v) for v in values):
            raise SpecError(f"data.tabular.{name}", "values must be finite")
    if tuple(data.shape) != (len(columns),):
        raise SpecError("data.shape", f"{len(columns)} feature columns make shape [{len(columns)}]")


def _check_training(training: Training, data: Data) -> None:
    want = "cross_entropy" if data.classes is not None else "mse"
    if training.loss != want:
        target = "classes" if data.classes is not None else "a regression target"
        raise SpecError("training.loss", f"{target} needs {want}")
    if training.optimizer == "adam" and training.momentum:
        raise SpecError("training.momentum", "is an sgd setting; adam uses its default betas")


def _check_market(market: Market, data: Data) -> None:
    if market.min_dos > market.max_dos:
        raise SpecError("market.min_dos", "must not exceed market.max_dos")
    if market.group_size > market.min_dos:
        raise SpecError("market.group_size", "must not exceed market.min_dos")
    if market.threshold > market.group_size:
        raise SpecError("market.threshold", "must not exceed market.group_size")
    for name, value in (("reward_wei", market.reward_wei), ("bond_wei", market.bond_wei)):
        if not 0 <= value <= MAX_WEI:
            raise SpecError(f"market.{name}", "must be a uint256")
    try:
        # groups have up to 2m - 1 members (docs/interfaces.md §7), as the contract checks
        check_count_headroom(market.quant, 2 * market.group_size - 1, data.max_samples)
    except ConfigError as error:
        raise SpecError("market.lane_bits", str(error)) from None


def validate(spec: TaskSpec) -> ModelPlan:
    """Check every rule that spans fields; return the model's shape plan."""
    _check_data(spec.data)
    _check_training(spec.training, spec.data)
    _check_market(spec.market, spec.data)
    return infer_shapes(spec)


def spec_from_dict(raw: object) -> TaskSpec:
    """A checked spec from parsed TOML (or JSON) values."""
    if not isinstance(raw, dict):
        raise SpecError("spec", "must be a table")
    version = raw.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SPEC_VERSION:
        raise SpecError("version", f"{version} is newer than this software's {SPEC_VERSION}")
    layers = raw.get("model", {}).get("layers") if isinstance(raw.get("model"), dict) else None
    for i, layer in enumerate(layers if isinstance(layers, list) else ()):
        name = layer.get("type") if isinstance(layer, dict) else None
        if name not in LAYER_NAMES:
            raise SpecError(
                f"model.layers[{i}].type",
                f"unknown layer {name!r}; the vocabulary is {sorted(LAYER_NAMES)}",
            )
    try:
        spec = msgspec.convert(raw, TaskSpec, strict=True)
    except msgspec.ValidationError as error:
        raise _schema_error(error) from None
    validate(spec)
    size = len(canonical_bytes(spec))
    if size > MAX_SPEC_BYTES:
        raise SpecError("spec", f"canonical bytes are {size}, more than {MAX_SPEC_BYTES}")
    return spec


def _schema_error(error: msgspec.ValidationError) -> SpecError:
    message, _, path = str(error).partition(" - at `$")
    return SpecError(path.rstrip("`").lstrip(".") or "spec", message)


def parse_spec(data: bytes) -> TaskSpec:
    """A checked spec from a TOML file's bytes."""
    if len(data) > MAX_TOML_BYTES:
        raise SpecError("spec", f"{len(data)} bytes, more than {MAX_TOML_BYTES}")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SpecError("spec", f"not a TOML file: {error}") from None
    return spec_from_dict(raw)


def canonical_bytes(spec: TaskSpec) -> bytes:
    """The spec as JSON with every default filled in and keys sorted: one byte string per spec."""
    return msgspec.json.encode(spec, order="sorted")


def spec_hash(spec: TaskSpec) -> bytes:
    """keccak256 of the canonical bytes: the task config's `spec_hash`, which the contract checks
    against the bytes `create_task` publishes."""
    return keccak(canonical_bytes(spec))


def decode_canonical(data: bytes) -> TaskSpec:
    """A spec from canonical bytes read back from the chain: bounded, strict, checked, and
    refused unless re-encoding gives the same bytes (so one hash means one spec)."""
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError("spec", f"{len(data)} bytes, more than {MAX_SPEC_BYTES}")
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as error:
        raise SpecError("spec", f"not JSON: {error}") from None
    spec = spec_from_dict(raw)
    if canonical_bytes(spec) != data:
        raise SpecError("spec", "bytes are not in canonical form")
    return spec
