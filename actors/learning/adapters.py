"""A data owner's own files, checked against the task's data schema and preprocessed.

This module owns reading the three kinds of files a spec's ``[data]`` can name and refusing any
that do not fit, before a data owner registers (DESIGN.md §8):
- ``image``: a folder with one subfolder per class (torchvision's ImageFolder convention), the
  subfolder names being the spec's ``folders``; PNG or JPEG files read through Pillow;
- ``tabular``: a ``.csv`` (stdlib ``csv``, a header row) or ``.parquet`` file (pyarrow) holding
  the spec's feature columns and its label column (other columns are ignored);
- ``array``: an ``.npz`` with arrays ``x`` (n, *shape) and ``y`` (n,), read without pickle.

Every file and every value is checked before anything is returned; a refusal raises
``DataError`` naming the file (or row and column) and the rule. Then preprocessing runs exactly
as the spec says, the same for every party: images to x/255, optional bilinear resize, per-channel
``(x - mean) / std``; tables ``(x - mean) / std`` with the model owner's published statistics.

More than ``max_samples`` samples: only ``max_samples`` are used, the ones at indices
``i * n // max_samples`` for ``i < max_samples`` in file order (sorted file names within sorted
class folders; rows in order). Evenly spread, so a folder sorted by class keeps every class, and
deterministic, so a data owner's count and weight in the secure sum never depend on chance.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image, UnidentifiedImageError

from actors.learning.data import Samples
from protocol.spec import Data, Embedding, TaskSpec

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
# Pillow decodes lazily: the size is checked before any pixel is, so no file can be a bomb.
MAX_IMAGE_SIDE = 4_096
_MODES = {1: "L", 3: "RGB"}


class DataError(ValueError):
    """A data owner's file that does not fit the spec: ``where`` is the file (row, column)."""

    def __init__(self, where: str, rule: str) -> None:
        self.where = where
        self.rule = rule
        super().__init__(f"{where}: {rule}")


def read_data(spec: TaskSpec, path: Path, *, model_owner: bool = False) -> Samples:
    """Check ``path`` against ``spec.data`` and return its preprocessed samples, at most
    ``max_samples`` of them: x float32, y int64 (classes) or float32 (n, 1) (regression).

    ``model_owner``: the model owner's own or validation data, held to the same schema and
    preprocessing but to no sample count (``min_samples`` and the cap are data owners' terms).
    """
    data = spec.data
    if data.kind == "image":
        x, y = _read_image_folder(data, path)
    elif data.kind == "tabular":
        x, y = _read_table(data, path)
    else:
        x, y = _read_npz(spec, path)
    if model_owner:
        return _to_samples(data, x, y)
    if len(y) < data.min_samples:
        raise DataError(str(path), f"{len(y)} samples, the spec needs at least {data.min_samples}")
    keep = capped_indices(len(y), data.max_samples)
    return _to_samples(data, x[keep], y[keep])


def capped_indices(n: int, cap: int) -> np.ndarray:
    """The indices of the samples used out of ``n``: all, or ``cap`` evenly spread ones."""
    if n <= cap:
        return np.arange(n)
    return np.arange(cap, dtype=np.int64) * n // cap


def _to_samples(data: Data, x: np.ndarray, y: np.ndarray) -> Samples:
    if data.classes is None:
        return Samples(torch.from_numpy(x), torch.from_numpy(y.astype(np.float32)).unsqueeze(1))
    return Samples(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)))


def _check_labels(data: Data, y: np.ndarray, where: str, first_row: int = 1) -> None:
    """Labels are finite; class labels are whole numbers in [0, classes). ``first_row``: the
    row number of ``y[0]`` as the message counts rows (a CSV's line, after its header)."""
    bad = ~np.isfinite(y)
    if data.classes is not None:
        bad |= (y != np.round(y)) | (y < 0) | (y >= data.classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        rule = "not finite" if data.classes is None else f"not a class in [0, {data.classes})"
        raise DataError(f"{where}, row {i + first_row}", f"label {y[i]:g} is {rule}")


def _read_image_folder(data: Data, root: Path) -> tuple[np.ndarray, np.ndarray]:
    assert data.image is not None and data.classes is not None  # the spec checked it
    if not root.is_dir():
        raise DataError(str(root), "an image task reads a folder with one subfolder per class")
    labels = {name: c for c, name in enumerate(data.folder_names())}
    files: list[tuple[Path, int]] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir() or entry.name not in labels:
            raise DataError(str(entry), f"not a class folder of the spec ({sorted(labels)})")
        for file in sorted(entry.iterdir()):
            if file.name.startswith("."):
                continue
            if file.suffix.lower() not in IMAGE_SUFFIXES or not file.is_file():
                raise DataError(str(file), "not a PNG or JPEG file")
            files.append((file, labels[entry.name]))
    channels, height, width = data.shape
    x = np.empty((len(files), channels, height, width), dtype=np.float32)
    for i, (file, _) in enumerate(files):
        x[i] = _read_image(data, file)
    mean = np.asarray(data.image.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(data.image.std, dtype=np.float32).reshape(-1, 1, 1)
    x = (x - mean) / std
    return x, np.array([label for _, label in files], dtype=np.float64)


def _read_image(data: Data, file: Path) -> np.ndarray:
    assert data.image is not None
    channels, height, width = data.shape
    try:
        with Image.open(file) as image:
            if max(image.size) > MAX_IMAGE_SIDE:
                raise DataError(str(file), f"larger than {MAX_IMAGE_SIDE} pixels a side")
            if image.mode != _MODES[channels]:
                raise DataError(
                    str(file), f"mode {image.mode}, the spec wants {_MODES[channels]} ({channels})"
                )
            if data.image.resize is not None:
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            elif image.size != (width, height):
                raise DataError(
                    str(file), f"{image.size[0]}x{image.size[1]}, the spec wants {width}x{height}"
                )
            pixels = np.asarray(image, dtype=np.float32)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(str(file), f"unreadable image: {error}") from None
    pixels = pixels.reshape(height, width, channels).transpose(2, 0, 1)
    return pixels / 255.0


def _read_table(data: Data, path: Path) -> tuple[np.ndarray, np.ndarray]:
    assert data.tabular is not None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        columns = _read_csv(data, path)
    elif suffix == ".parquet":
        columns = _read_parquet(data, path)
    else:
        raise DataError(str(path), "a table is a .csv or .parquet file")
    y = columns.pop()
    _check_labels(data, y, str(path), first_row=2 if suffix == ".csv" else 1)
    x = np.stack(columns, axis=1) if len(y) else np.empty((0, len(columns)))
    mean = np.asarray(data.tabular.mean)
    std = np.asarray(data.tabular.std)
    return ((x - mean) / std).astype(np.float32), y


def _read_csv(data: Data, path: Path) -> list[np.ndarray]:
    """The feature columns then the label column, as float64, every cell checked."""
    assert data.tabular is not None
    names = [*data.tabular.columns, data.label]
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [n for n in names if n not in (reader.fieldnames or ())]
            if missing:
                raise DataError(str(path), f"missing column {missing[0]!r}")
            rows = []
            for row in reader:
                rows.append([_cell(row[n], path, reader.line_num, n) for n in names])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(str(path), f"unreadable CSV: {error}") from None
    table = np.asarray(rows, dtype=np.float64).reshape(-1, len(names))
    return list(table.T)


def _cell(text: str | None, path: Path, line: int, column: str) -> float:
    where = f"{path}, row {line}, column {column!r}"
    try:
        value = float(text or "")
    except ValueError:
        raise DataError(where, f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise DataError(where, f"not finite: {text!r}")
    return value


def _read_parquet(data: Data, path: Path) -> list[np.ndarray]:
    assert data.tabular is not None
    names = [*data.tabular.columns, data.label]
    try:
        schema = pq.read_schema(path)
        missing = [n for n in names if n not in schema.names]
        if missing:
            raise DataError(str(path), f"missing column {missing[0]!r}")
        table = pq.read_table(path, columns=names)
    except (OSError, pa.ArrowException) as error:
        raise DataError(str(path), f"unreadable Parquet: {error}") from None
    out = []
    for name in names:
        column = table.column(name)
        kind = column.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise DataError(f"{path}, column {name!r}", f"type {kind} is not numeric")
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}, row {row + 1}, column {name!r}", "missing or not finite")
        out.append(values)
    return out


def _read_npz(spec: TaskSpec, path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = spec.data
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {n: npz[n] for n in ("x", "y") if n in npz.files}
    except (OSError, ValueError) as error:  # ValueError: an object array would need pickle
        raise DataError(str(path), f"unreadable npz (no pickle allowed): {error}") from None
    missing = [n for n in ("x", "y") if n not in arrays]
    if missing:
        raise DataError(str(path), f"missing array {missing[0]!r}")
    x, y = arrays["x"], arrays["y"]
    want = (len(y), *data.shape)
    if y.ndim != 1 or x.shape != want:
        raise DataError(f"{path}, array 'x'", f"shape {list(x.shape)}, want {list(want)}")
    for name, array in (("x", x), ("y", y)):
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise DataError(f"{path}, array {name!r}", f"dtype {array.dtype} is not numeric")
    _check_labels(data, y.astype(np.float64), f"{path}, array 'y'")
    first = spec.model.layers[0]
    if isinstance(first, Embedding):  # int64 data: token ids, the spec checked the pairing
        vocab = first.num_embeddings
        if (
            not np.issubdtype(x.dtype, np.integer)
            or x.min(initial=0) < 0
            or x.max(initial=0) >= vocab
        ):
            raise DataError(f"{path}, array 'x'", f"token ids must be integers in [0, {vocab})")
        return x.astype(np.int64), y.astype(np.float64)
    flat = x.reshape(len(x), -1)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        raise DataError(f"{path}, array 'x', row {int(np.flatnonzero(bad)[0]) + 1}", "not finite")
    return x.astype(np.float32), y.astype(np.float64)
