"""The task spec: every refusal names its field and rule; canonical bytes round-trip."""

# ruff: noqa: E501  (the table of refusals reads best one refusal per line)

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from protocol.errors import ConfigError
from protocol.spec import (
    FLOPS_CEILING,
    MAX_SPEC_BYTES,
    MAX_TOML_BYTES,
    PARAMS_CEILING,
    SPEC_VERSION,
    SpecError,
    TaskSpec,
    canonical_bytes,
    decode_canonical,
    parse_spec,
    spec_from_dict,
    spec_hash,
    validate,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MNIST = EXAMPLES / "mnist-cnn.toml"


def mnist_raw() -> dict[str, Any]:
    return tomllib.loads(MNIST.read_text())


def test_mnist_example_is_todays_cnn() -> None:
    plan = validate(parse_spec(MNIST.read_bytes()))
    assert (plan.public_params, plan.body_params, plan.head_params) == (46_730, 46_080, 650)
    assert plan.shapes[-1] == (10,)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_examples_round_trip_through_canonical_bytes(path: Path) -> None:
    spec = parse_spec(path.read_bytes())
    data = canonical_bytes(spec)
    assert decode_canonical(data) == spec
    assert canonical_bytes(decode_canonical(data)) == data
    assert len(spec_hash(spec)) == 32


def test_canonical_bytes_do_not_depend_on_toml_layout() -> None:
    text = MNIST.read_text()
    reordered = text.replace("lr = 0.02\nmomentum = 0.9", "momentum = 0.9\nlr = 2e-2")
    assert reordered != text
    assert spec_hash(parse_spec(reordered.encode())) == spec_hash(parse_spec(text.encode()))


def test_decode_canonical_refuses_other_encodings() -> None:
    data = canonical_bytes(parse_spec(MNIST.read_bytes()))
    with pytest.raises(SpecError, match="canonical"):
        decode_canonical(data.replace(b'{"data"', b'{ "data"', 1))
    with pytest.raises(SpecError, match="not JSON"):
        decode_canonical(b"\x00" + data)
    with pytest.raises(SpecError, match="more than"):
        decode_canonical(b" " * (MAX_SPEC_BYTES + 1))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation of the raw spec: set (or with ``...`` delete) the value at a dotted path."""

    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is ...:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _layers(edit: Callable[[list[dict[str, Any]]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda raw: edit(raw["model"]["layers"])


# (id, mutation, refused field, words of the rule)
REFUSALS = [
    ("unknown-layer", _set("model.layers.0.type", "os.system"), "model.layers[0].type", "unknown layer 'os.system'"),
    ("dunder-import-layer", _set("model.layers.1.type", "__import__"), "model.layers[1].type", "unknown layer '__import__'"),
    ("bad-argument", _set("model.layers.0.kernel", 0), "model.layers[0].kernel", ">= 1"),
    ("argument-over-bound", _set("model.layers.0.out_channels", 10**6), "model.layers[0].out_channels", "<= 1024"),
    ("argument-type", _set("model.layers.0.kernel", "5"), "model.layers[0].kernel", "Expected `int`"),
    ("unknown-argument", _set("model.layers.0.groups", 2), "model.layers[0]", "unknown field `groups`"),
    ("unknown-section", _set("plugins", {"x": 1}), "spec", "unknown field `plugins`"),
    ("missing-field", _set("market.rounds", ...), "market", "missing required field `rounds`"),
    ("future-version", _set("version", SPEC_VERSION + 1), "version", "newer than this software"),
    ("shapes-do-not-chain", _layers(lambda ls: ls.pop(6)), "model.layers[6]", "linear takes features"),
    ("kernel-larger-than-input", _set("model.layers.3.kernel", 15), "model.layers[3]", "does not fit an input side of 12"),
    ("output-not-classes", _set("model.layers.9.out_features", 9), "model.layers", "outputs [9], the data needs [10]"),
    ("params-over-cap", _set("model.max_params", 46_729), "model.max_params", "46730 parameters exceed the cap 46729"),
    ("params-over-ceiling", _set("model.max_params", PARAMS_CEILING + 1), "model.max_params", f"<= {PARAMS_CEILING}"),
    ("flops-over-cap", _set("model.max_flops_per_sample", 1_000_000), "model.max_flops_per_sample", "exceed the cap 1000000"),
    ("flops-over-ceiling", _set("model.max_flops_per_sample", FLOPS_CEILING + 1), "model.max_flops_per_sample", f"<= {FLOPS_CEILING}"),
    ("head-past-the-end", _set("model.private_from", 10), "model.private_from", "private head that ends the network"),
    ("no-public-body", _set("model.private_from", 0), "model.private_from", "leave a public body"),
    ("head-without-parameters", lambda raw: (raw["model"]["layers"].append({"type": "relu"}), _set("model.private_from", 10)(raw)), "model.private_from", "no parameters"),
    ("layernorm-on-conv-maps", _layers(lambda ls: ls.insert(1, {"type": "layernorm"})), "model.layers[1]", "layernorm takes features"),
    ("groupnorm-split", _layers(lambda ls: ls.insert(1, {"type": "groupnorm", "groups": 3})), "model.layers[1]", "16 channels do not split into 3 groups"),
    ("embedding-on-floats", _layers(lambda ls: ls.insert(0, {"type": "embedding", "num_embeddings": 9, "embedding_dim": 4})), "model.layers[0]", "int64 data needs an embedding first layer"),
    ("int64-image", _set("data.dtype", "int64"), "data.dtype", "only for array data"),
    ("mean-per-channel", _set("data.image.mean", [0.1, 0.2]), "data.image.mean", "one value per channel"),
    ("shape-channels", _set("data.shape", [3, 28, 28]), "data.shape", "images are [channels=1"),
    ("resize-not-shape", _set("data.image.resize", [32, 32]), "data.image.resize", "must equal the shape's"),
    ("folders-per-class", _set("data.image.folders", ["a", "b"]), "data.image.folders", "10 distinct folder names"),
    ("prep-for-another-kind", _set("data.tabular", {"columns": ["a"], "mean": [0.0], "std": [1.0]}), "data.tabular", "does not apply to image data"),
    ("prep-missing", _set("data.image", ...), "data.image", "is required"),
    ("zero-std", _set("data.image.std", [0.0]), "data.image.std[0]", "> 0.0"),
    ("image-label", _set("data.label", "digit"), "data.label", "'folder'"),
    ("min-over-max", _set("data.min_samples", 2_000), "data.min_samples", "must not exceed"),
    ("loss-for-classes", _set("training.loss", "mse"), "training.loss", "classes needs cross_entropy"),
    ("adam-momentum", _set("training.optimizer", "adam"), "training.momentum", "sgd setting"),
    ("lr-bound", _set("training.lr", 5.0), "training.lr", "<= 1.0"),
    ("threshold-over-group", _set("market.threshold", 6), "market.threshold", "must not exceed market.group_size"),
    ("group-over-min", _set("market.min_dos", 4), "market.group_size", "must not exceed market.min_dos"),
    ("min-over-max-dos", _set("market.max_dos", 4), "market.min_dos", "must not exceed market.max_dos"),
    ("count-lane-headroom", lambda raw: (_set("market.lane_bits", 16)(raw), _set("market.scale_bits", 8)(raw), _set("market.clip_norm", 1.0)(raw), _set("data.max_samples", 10_000)(raw)), "market.lane_bits", "does not fit a 16-bit lane"),
    ("reward-uint256", _set("market.reward_wei", 2**256), "market.reward_wei", "uint256"),
    ("rule-vocabulary", _set("market.rule", "custom"), "market.rule", "Invalid enum value 'custom'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "field", "rule"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refusals_name_field_and_rule(mutate: Callable[[dict], None], field: str, rule: str) -> None:  # fmt: skip
    raw = mnist_raw()
    mutate(raw)
    with pytest.raises(SpecError) as caught:
        spec_from_dict(raw)
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert str(caught.value).startswith(f"{field}: ")
    assert isinstance(caught.value, ConfigError)


def tabular_raw() -> dict[str, Any]:
    return tomllib.loads((EXAMPLES / "breast-cancer-mlp.toml").read_text())


def _as_array(raw: dict[str, Any]) -> None:
    """The tabular example as `.npz` array data (its label must then be 'y')."""
    del raw["data"]["tabular"]
    raw["data"]["kind"] = "array"
    raw["data"]["label"] = "y"


# the rules of tables and arrays, on the tabular example (id, mutation, field, words of the rule)
TABLE_REFUSALS = [
    ("column-twice", _set("data.tabular.columns.1", "mean_radius"), "data.tabular.columns", "names a column twice"),
    ("label-is-a-feature", _set("data.label", "mean_radius"), "data.label", "also a feature column"),
    ("mean-per-column", lambda raw: raw["data"]["tabular"]["mean"].pop(), "data.tabular.mean", "one value per column (30)"),
    ("std-per-column", lambda raw: raw["data"]["tabular"]["std"].pop(), "data.tabular.std", "one value per column (30)"),
    ("mean-finite", _set("data.tabular.mean.0", float("inf")), "data.tabular.mean", "values must be finite"),
    ("shape-of-columns", _set("data.shape", [31]), "data.shape", "30 feature columns make shape [30]"),
    ("npz-label", lambda raw: (_as_array(raw), _set("data.label", "target")(raw)), "data.label", "as 'y'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "field", "rule"),
    [r[1:] for r in TABLE_REFUSALS],
    ids=[r[0] for r in TABLE_REFUSALS],
)
def test_table_refusals_name_field_and_rule(mutate: Callable[[dict], None], field: str, rule: str) -> None:  # fmt: skip
    raw = tabular_raw()
    mutate(raw)
    with pytest.raises(SpecError) as caught:
        spec_from_dict(raw)
    assert (caught.value.field, rule in caught.value.rule) == (field, True), caught.value


def test_array_data_and_image_classes() -> None:
    """The tabular example as arrays labelled 'y' is valid; an image task without classes, and a
    spec that is not a table, are refused."""
    raw = tabular_raw()
    _as_array(raw)
    spec_from_dict(raw)
    mnist = mnist_raw()
    del mnist["data"]["classes"]
    with pytest.raises(SpecError, match=r"^data.classes: image folders need classes"):
        spec_from_dict(mnist)
    with pytest.raises(SpecError, match=r"^spec: must be a table"):
        spec_from_dict([1, 2])


def test_every_refusal_mutation_changes_a_valid_spec() -> None:
    # The baseline passes, so each refusal above is due to its mutation alone.
    spec_from_dict(mnist_raw())
    for _, mutate, _, _ in REFUSALS:
        raw = mnist_raw()
        mutate(raw)
        assert raw != mnist_raw()


def test_not_toml_and_oversize_are_refused() -> None:
    with pytest.raises(SpecError, match=r"^spec: not a TOML file"):
        parse_spec(b"[model\nlayers = ")
    with pytest.raises(SpecError, match=r"^spec: not a TOML file"):
        parse_spec(b"\xff\xfe")
    with pytest.raises(SpecError, match=r"^spec: .* more than"):
        parse_spec(b"#" * (MAX_TOML_BYTES + 1))


def test_a_spec_whose_canonical_bytes_do_not_fit_the_chain_is_refused() -> None:
    raw = tomllib.loads((EXAMPLES / "breast-cancer-mlp.toml").read_text())
    columns = 600
    raw["data"]["shape"] = [columns]
    raw["data"]["tabular"] = {
        "columns": [f"feature_{i:04d}" for i in range(columns)],
        "mean": [0.123456789] * columns,
        "std": [1.23456789] * columns,
    }
    raw["model"]["max_params"] = 100_000
    raw["model"]["max_flops_per_sample"] = 100_000
    with pytest.raises(
        SpecError, match=rf"^spec: canonical bytes are \d+, more than {MAX_SPEC_BYTES}"
    ):
        spec_from_dict(raw)
    raw["data"]["tabular"]["columns"] = [f"f{i}" for i in range(columns)]
    raw["data"]["tabular"]["mean"] = [0.5] * columns
    raw["data"]["tabular"]["std"] = [2.0] * columns
    assert len(canonical_bytes(spec_from_dict(raw))) <= MAX_SPEC_BYTES


def test_spec_is_immutable() -> None:
    spec = parse_spec(MNIST.read_bytes())
    with pytest.raises(AttributeError):
        spec.version = 2  # type: ignore[misc]
    assert isinstance(spec, TaskSpec)
    assert copy.deepcopy(spec) == spec
    assert msgspec.structs.replace(spec.market, rounds=2).rounds == 2
