"""Modules from a spec: today's CNN exactly, safetensors round trips, nothing executed."""

from __future__ import annotations

import ast
import json
import struct
import tomllib
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from actors.learning import model as cnn
from actors.learning import spec_model as sm
from protocol.spec import (
    SpecError,
    TaskSpec,
    infer_shapes,
    parse_spec,
    spec_from_dict,
    spec_hash,
)

ROOT = Path(__file__).resolve().parents[3]
MNIST = ROOT / "examples" / "mnist-cnn.toml"


@pytest.fixture(scope="module")
def spec() -> TaskSpec:
    return parse_spec(MNIST.read_bytes())


def test_mnist_spec_builds_todays_public_model(spec: TaskSpec) -> None:
    built = sm.public_vector(sm.new_public_model(spec, 7))
    today = cnn.public_vector(cnn.new_public_model(7, spec.model.aux_seed))
    assert built.shape == (46_730,)
    np.testing.assert_array_equal(built, today)  # same layers, order, seeds and aux scaling


def test_flower_side_trains_as_the_mnist_spec(spec: TaskSpec) -> None:
    """`bench/flower_peer.py` trains the MNIST spec with `model` and `train` (Flower's venv has
    no msgspec or safetensors): from our published vector, the same samples and seed, its update
    and its model owner's private head are the spec learners' own, bit for bit."""
    from actors.learning import recipe, train
    from actors.learning.data import Samples

    generator = torch.Generator().manual_seed(0)
    data = Samples(torch.randn(48, 1, 28, 28, generator=generator), torch.arange(48) % 10)
    ours = sm.new_public_model(spec, 7)
    vector = sm.public_vector(ours)
    theirs = cnn.PublicModel(cnn.FeatureExtractor(), torch.nn.Linear(cnn.HIDDEN, 10))
    cnn.load_public_vector(theirs, vector)
    update, _ = recipe.train_local(spec, ours, data, seed=3)
    np.testing.assert_array_equal(train.train_local(theirs, data, seed=3), update)
    head = recipe.finetune_head(spec, ours.body, ours.aux, data, seed=5)
    flower_head = train.finetune_head(theirs.body, theirs.aux, data, seed=5)
    np.testing.assert_array_equal(sm.public_vector(flower_head), sm.public_vector(head))


def _all_layers_spec(*, dtype: str = "float32") -> TaskSpec:
    raw = tomllib.loads(MNIST.read_text())
    raw["model"]["layers"] = [
        {"type": "conv2d", "out_channels": 8, "kernel": 3, "padding": 1, "stride": 2},
        {"type": "groupnorm", "groups": 2},
        {"type": "gelu"},
        {"type": "avgpool2d", "kernel": 2},
        {"type": "maxpool2d", "kernel": 2, "stride": 1},
        {"type": "flatten"},
        {"type": "dropout", "p": 0.1},
        {"type": "linear", "out_features": 12, "bias": False},
        {"type": "layernorm"},
        {"type": "tanh"},
        {"type": "linear", "out_features": 10},
    ]
    raw["model"]["private_from"] = 8
    return spec_from_dict(raw)


def test_every_layer_matches_its_inferred_shape_and_count() -> None:
    spec = _all_layers_spec()
    plan = infer_shapes(spec)
    body, head = sm.new_body(spec, 0).eval(), sm.new_head(spec, 0).eval()
    x = torch.zeros(2, *plan.shapes[0])
    for i, layer in enumerate([*body, *head]):
        x = layer(x)
        assert tuple(x.shape[1:]) == plan.shapes[i + 1], i
        assert sum(p.numel() for p in layer.parameters()) == plan.params[i], i


def test_embedding_spec_builds_on_token_ids() -> None:
    raw = tomllib.loads(MNIST.read_text())
    raw["data"] = {"kind": "array", "shape": [6], "dtype": "int64", "label": "y", "classes": 3,
                   "min_samples": 1, "max_samples": 10}  # fmt: skip
    raw["model"]["layers"] = [
        {"type": "embedding", "num_embeddings": 20, "embedding_dim": 4},
        {"type": "layernorm"},
        {"type": "flatten"},
        {"type": "linear", "out_features": 3},
    ]
    raw["model"]["private_from"] = 3
    spec = spec_from_dict(raw)
    out = sm.new_public_model(spec, 0)(torch.zeros(2, 6, dtype=torch.int64))
    assert out.shape == (2, 3)
    assert infer_shapes(spec).public_params == 20 * 4 + 2 * 4 + 24 * 3 + 3


def test_public_vector_round_trip(spec: TaskSpec) -> None:
    public = sm.new_public_model(spec, 1)
    vector = sm.public_vector(public) + 1.0
    back = sm.public_model_from_vector(public, vector)
    np.testing.assert_array_equal(sm.public_vector(back), vector)
    with pytest.raises(ValueError, match="shape"):
        sm.load_public_vector(back, vector[:-1])


def test_public_bytes_round_trip_deterministically(spec: TaskSpec) -> None:
    public = sm.new_public_model(spec, 1)
    data = sm.public_model_to_bytes(spec, public)
    assert data == sm.public_model_to_bytes(spec, sm.new_public_model(spec, 1))
    back = sm.public_model_from_bytes(spec, data)
    np.testing.assert_array_equal(sm.public_vector(back), sm.public_vector(public))


def test_public_bytes_of_another_spec_or_tampered_are_refused(spec: TaskSpec) -> None:
    other = _all_layers_spec()
    data = sm.public_model_to_bytes(other, sm.new_public_model(other, 0))
    with pytest.raises(sm.ModelFileError, match="another spec"):
        sm.public_model_from_bytes(spec, data)
    public = sm.new_public_model(spec, 1)
    with torch.no_grad():
        public.aux[0].bias[0] = float("nan")
    with pytest.raises(sm.ModelFileError, match="non-finite"):
        sm.public_model_from_bytes(spec, sm.public_model_to_bytes(spec, public))
    good = sm.public_model_to_bytes(spec, sm.new_public_model(spec, 1))
    with pytest.raises(sm.ModelFileError, match="header length"):
        sm.public_model_from_bytes(spec, struct.pack("<Q", 2**40) + good[8:])
    with pytest.raises(sm.ModelFileError, match="more than the spec allows"):
        sm.public_model_from_bytes(spec, good + bytes(2**21))


def test_public_bytes_with_a_missing_tensor_are_refused(spec: TaskSpec) -> None:
    state = sm.new_public_model(spec, 1).state_dict()
    del state["aux.0.bias"]
    metadata = {"format": sm.PUBLIC_FORMAT, "spec_hash": "0x" + spec_hash(spec).hex()}
    data = safetensors.torch.save(state, metadata=metadata)
    with pytest.raises(sm.ModelFileError, match=r"aux\.0\.bias"):
        sm.public_model_from_bytes(spec, data)


def test_exported_model_loads_with_plain_safetensors(spec: TaskSpec, tmp_path: Path) -> None:
    public = sm.new_public_model(spec, 1)
    head = sm.new_head(spec, 2)
    path = tmp_path / "model.safetensors"
    path.write_bytes(sm.export_model(spec, public, head))

    # A plain torch user: the spec from the metadata, a module from it, load_state_dict.
    with safetensors.safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    assert json.loads(metadata["spec"])["version"] == 1
    rebuilt = sm.new_exported_model(parse_spec(MNIST.read_bytes()))
    rebuilt.load_state_dict(safetensors.torch.load_file(str(path)), strict=True)
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(rebuilt(x), head(public.body(x)))

    loaded_spec, loaded = sm.load_exported(path.read_bytes())
    assert loaded_spec == spec
    torch.testing.assert_close(loaded(x), head(public.body(x)))


def test_exported_model_with_a_bad_spec_is_refused(spec: TaskSpec) -> None:
    data = sm.export_model(spec, sm.new_public_model(spec, 1), sm.new_head(spec, 2))
    size = struct.unpack_from("<Q", data)[0]
    header = json.loads(data[8 : 8 + size])
    header["__metadata__"]["spec"] = header["__metadata__"]["spec"].replace(
        '"type":"relu"', '"type":"os.system"', 1
    )
    raw = json.dumps(header).encode()
    forged = struct.pack("<Q", len(raw)) + raw + data[8 + size :]
    with pytest.raises(SpecError, match=r"unknown layer 'os\.system'"):
        sm.load_exported(forged)


# Names that run code or load pickles: none may be called in the spec-driven modules.
_BANNED_CALLS = {"eval", "exec", "compile", "__import__", "getattr", "setattr", "globals",
                 "locals", "vars", "import_module", "load_module"}  # fmt: skip
_BANNED_MODULES = {"importlib", "pickle", "marshal", "dill", "cloudpickle", "joblib", "runpy"}
SCANNED = [
    ROOT / "protocol" / "spec.py",
    ROOT / "actors" / "learning" / "spec_model.py",
    ROOT / "actors" / "learning" / "adapters.py",
    ROOT / "actors" / "learning" / "recipe.py",
]


def _offences(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            found += [f"import {n}" for n in names if n.split(".")[0] in _BANNED_MODULES]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _BANNED_CALLS:
                found.append(f"call {func.id}")
            elif isinstance(func, ast.Attribute):
                # `module.eval()` is torch's mode switch; only these attribute calls run code.
                owner = func.value.id if isinstance(func.value, ast.Name) else ""
                if func.attr in {"import_module", "load_module", "__import__"} or (
                    owner, func.attr) in {("torch", "load"), ("builtins", "eval"),
                                          ("builtins", "exec")}:  # fmt: skip
                    found.append(f"call {owner}.{func.attr}")
    return found


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.name)
def test_no_spec_string_can_reach_code_execution(path: Path) -> None:
    assert _offences(path.read_text()) == []


def test_the_scan_catches_what_it_bans() -> None:
    bad = "import pickle\nfrom importlib import import_module\n"
    bad += "eval(s)\ngetattr(nn, s)\ntorch.load(f)\n"
    assert len(_offences(bad)) == 5
    assert _offences("model.eval()\nx = spec.model.layers") == []


def test_modules_come_from_one_table_over_the_closed_vocabulary() -> None:
    from protocol.spec import LAYER_TYPES

    assert set(sm._BUILDERS) == set(LAYER_TYPES)
