"""Data owners' files against a spec: each refusal names the file (row, column) and the rule."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from actors.learning.adapters import MAX_IMAGE_SIDE, DataError, capped_indices, read_data
from protocol.spec import TaskSpec, spec_from_dict

ROOT = Path(__file__).resolve().parents[3]


def _spec(data: dict[str, Any], layers: list[dict[str, Any]]) -> TaskSpec:
    raw = tomllib.loads((ROOT / "examples" / "mnist-cnn.toml").read_text())
    raw["data"] = data
    raw["model"]["layers"] = layers
    raw["model"]["private_from"] = len(layers) - 1
    return spec_from_dict(raw)


def image_spec(**image: Any) -> TaskSpec:
    data = {"kind": "image", "shape": [1, 4, 4], "label": "folder", "classes": 2,
            "min_samples": 2, "max_samples": 100,
            "image": {"channels": 1, "mean": [0.5], "std": [0.25], **image}}  # fmt: skip
    return _spec(data, [{"type": "flatten"}, {"type": "linear", "out_features": 2}])


def table_spec(**data: Any) -> TaskSpec:
    base = {"kind": "tabular", "shape": [2], "label": "y", "classes": 3, "min_samples": 2,
            "max_samples": 100, "tabular": {"columns": ["a", "b"], "mean": [1.0, 0.0],
                                            "std": [2.0, 1.0]}}  # fmt: skip
    layers = [{"type": "linear", "out_features": 4}, {"type": "linear", "out_features": 3}]
    return _spec({**base, **data}, layers)


def npz_spec() -> TaskSpec:
    data = {"kind": "array", "shape": [3], "label": "y", "classes": 2, "min_samples": 2,
            "max_samples": 100}  # fmt: skip
    return _spec(data, [{"type": "tanh"}, {"type": "linear", "out_features": 2}])


def _png(path: Path, side: int = 4, mode: str = "L", value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (side, side), value).save(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for c in range(2):
        for i in range(3):
            _png(tmp_path / "do" / str(c) / f"{i}.png", value=64 * (c + 1))
    return tmp_path / "do"


def test_image_folder_reads_labels_and_normalises(folder: Path) -> None:
    samples = read_data(image_spec(), folder)
    assert samples.x.shape == (6, 1, 4, 4) and samples.x.dtype == torch.float32
    assert samples.y.tolist() == [0, 0, 0, 1, 1, 1]
    torch.testing.assert_close(samples.x[0, 0, 0, 0], torch.tensor((64 / 255 - 0.5) / 0.25))


def test_image_resize_applies_to_any_size(folder: Path) -> None:
    _png(folder / "1" / "big.png", side=9)
    assert read_data(image_spec(resize=[4, 4]), folder).x.shape == (7, 1, 4, 4)


@pytest.mark.parametrize(
    ("damage", "where", "rule"),
    [
        (lambda f: _png(f / "7" / "0.png"), "do/7", "not a class folder of the spec"),
        (lambda f: (f / "0" / "notes.txt").write_text("x"), "notes.txt", "not a PNG or JPEG"),
        (lambda f: (f / "0" / "bad.png").write_bytes(b"not a png"), "bad.png", "unreadable image"),
        (lambda f: _png(f / "0" / "big.png", side=5), "big.png", "5x5, the spec wants 4x4"),
        (lambda f: _png(f / "0" / "rgb.png", mode="RGB"), "rgb.png", "mode RGB, the spec wants L"),
        (
            lambda f: _png(f / "0" / "huge.png", side=MAX_IMAGE_SIDE + 1),
            "huge.png",
            f"larger than {MAX_IMAGE_SIDE} pixels a side",
        ),
    ],
    ids=["class-folder", "not-image", "unreadable", "shape", "channels", "huge"],
)
def test_image_folder_refusals(folder: Path, damage: Any, where: str, rule: str) -> None:
    damage(folder)
    with pytest.raises(DataError) as caught:
        read_data(image_spec(), folder)
    assert caught.value.where.endswith(where) and rule in caught.value.rule


def test_an_image_task_reads_a_folder_not_a_file(folder: Path) -> None:
    file = folder / "0" / "0.png"
    with pytest.raises(DataError) as caught:
        read_data(image_spec(), file)
    assert caught.value.where == str(file) and "one subfolder per class" in caught.value.rule


def _raw_with(spec: TaskSpec, **data: Any) -> dict[str, Any]:
    raw = msgspec.to_builtins(spec)
    raw["data"].update(data)
    return raw


def test_too_few_samples_are_refused(folder: Path) -> None:
    spec = spec_from_dict(_raw_with(image_spec(), min_samples=7))
    with pytest.raises(DataError, match="6 samples, the spec needs at least 7"):
        read_data(spec, folder)
    assert len(read_data(spec, folder, model_owner=True)) == 6


def test_more_than_the_cap_uses_evenly_spread_samples(folder: Path) -> None:
    spec = spec_from_dict(_raw_with(image_spec(), max_samples=3))
    samples = read_data(spec, folder)
    assert samples.y.tolist() == [0, 0, 1]  # indices 0, 2, 4 of six: both classes kept
    assert capped_indices(10, 4).tolist() == [0, 2, 5, 7]
    assert capped_indices(3, 4).tolist() == [0, 1, 2]


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "table.csv"
    path.write_text(text)
    return path


def test_csv_reads_columns_by_name_and_standardises(tmp_path: Path) -> None:
    path = _csv(tmp_path, "b,extra,a,y\n1,x,3,2\n0,y,1,0\n")
    samples = read_data(table_spec(), path)
    torch.testing.assert_close(samples.x, torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert samples.y.tolist() == [2, 0]


@pytest.mark.parametrize(
    ("text", "where", "rule"),
    [
        ("a,y\n1,0\n", "table.csv", "missing column 'b'"),
        ("a,b,y\n1,2,0\n1,oops,0\n", "row 3, column 'b'", "not a number: 'oops'"),
        ("a,b,y\n1,nan,0\n", "row 2, column 'b'", "not finite"),
        ("a,b,y\ninf,1,0\n", "row 2, column 'a'", "not finite"),
        ("a,b,y\n1,1,0\n1,1,3\n", "row 3", "label 3 is not a class in [0, 3)"),
        ("a,b,y\n1,1,0.5\n1,1,1\n", "row 2", "label 0.5 is not a class"),
    ],
    ids=["missing-column", "non-numeric", "nan", "inf", "label-range", "label-fraction"],
)
def test_csv_refusals(tmp_path: Path, text: str, where: str, rule: str) -> None:
    with pytest.raises(DataError) as caught:
        read_data(table_spec(), _csv(tmp_path, text))
    assert caught.value.where.endswith(where) and rule in caught.value.rule


def test_parquet_reads_and_refuses(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1.0, 3.0], "b": [0, 1], "y": [1, 2]}), path)
    assert read_data(table_spec(), path).y.tolist() == [1, 2]
    pq.write_table(pa.table({"a": [1.0, 3.0], "y": [1, 2]}), path)
    with pytest.raises(DataError, match="missing column 'b'"):
        read_data(table_spec(), path)
    pq.write_table(pa.table({"a": [1.0, 3.0], "b": ["x", "z"], "y": [1, 2]}), path)
    with pytest.raises(DataError, match="column 'b': type string is not numeric"):
        read_data(table_spec(), path)
    pq.write_table(pa.table({"a": [1.0, None], "b": [0, 1], "y": [1, 2]}), path)
    with pytest.raises(DataError, match="row 2, column 'a': missing or not finite"):
        read_data(table_spec(), path)
    path.write_bytes(b"PAR1 garbage")
    with pytest.raises(DataError, match="unreadable Parquet"):
        read_data(table_spec(), path)
    with pytest.raises(DataError, match=r"a table is a \.csv or \.parquet file"):
        read_data(table_spec(), tmp_path / "t.xlsx")


def test_npz_reads_and_refuses(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.savez(path, x=x, y=np.array([0, 1, 1, 0]))
    samples = read_data(npz_spec(), path)
    assert samples.x.shape == (4, 3) and samples.y.dtype == torch.int64
    np.savez(path, x=x)
    with pytest.raises(DataError, match="missing array 'y'"):
        read_data(npz_spec(), path)
    np.savez(path, x=x.reshape(4, 3, 1), y=np.zeros(4))
    with pytest.raises(DataError, match=r"shape \[4, 3, 1\], want \[4, 3\]"):
        read_data(npz_spec(), path)
    np.savez(path, x=np.where(x > 5, np.nan, x), y=np.zeros(4))
    with pytest.raises(DataError, match="array 'x', row 3: not finite"):
        read_data(npz_spec(), path)
    np.savez(path, x=x, y=np.array([0, 1, 2, 0]))
    with pytest.raises(DataError, match=r"row 3: label 2 is not a class in \[0, 2\)"):
        read_data(npz_spec(), path)
    np.savez(path, x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4))
    with pytest.raises(DataError, match="no pickle allowed"):
        read_data(npz_spec(), path)
    np.savez(path, x=x, y=np.array(["0", "1", "1", "0"]))
    with pytest.raises(DataError, match=r"array 'y'.*dtype <U1 is not numeric"):
        read_data(npz_spec(), path)
