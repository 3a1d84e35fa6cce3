"""MNIST loading, the npz cache, and the partitions among data owners."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from actors.learning import data
from actors.learning.data import (
    NUM_CLASSES,
    Mnist,
    default_cache_path,
    dirichlet_partition,
    iid_partition,
    label_skew,
    load_mnist,
    split_model_owner,
)


def test_shapes_ranges_and_labels(mnist: Mnist) -> None:
    assert mnist.train_images.shape == (60_000, 28, 28)
    assert mnist.test_images.shape == (10_000, 28, 28)
    assert mnist.train_images.dtype == mnist.train_labels.dtype == np.uint8
    assert mnist.train_images.max() == 255
    assert set(np.unique(mnist.train_labels)) == set(range(NUM_CLASSES))
    # The well-known class counts of MNIST's 60k training set (zeros and ones).
    assert np.bincount(mnist.train_labels)[:2].tolist() == [5923, 6742]


def test_samples_are_normalised_float_tensors(mnist: Mnist) -> None:
    samples = mnist.train(np.arange(2_000))
    assert samples.x.shape == (2_000, 1, 28, 28) and len(samples) == 2_000
    assert str(samples.x.dtype) == "torch.float32" and str(samples.y.dtype) == "torch.int64"
    assert abs(float(samples.x.mean())) < 0.1
    assert abs(float(samples.x.std()) - 1.0) < 0.1
    assert mnist.test(500).y.tolist() == mnist.test_labels[:500].tolist()


def test_cache_built_once_then_read_without_pickle(
    tmp_path, monkeypatch: pytest.MonkeyPatch, mnist: Mnist
) -> None:
    path = tmp_path / "nested" / "mnist.npz"
    monkeypatch.setenv(data.ENV_DATA_PATH, str(path))
    assert default_cache_path() == path
    built = load_mnist()
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["mnist.npz"]
    assert np.array_equal(built.train_images, mnist.train_images)
    assert np.array_equal(built.test_labels, mnist.test_labels)
    # A plain npz: one .npy per array, loadable with allow_pickle=False.
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == [
            "test_images.npy",
            "test_labels.npy",
            "train_images.npy",
            "train_labels.npy",
        ]

    def no_pickle() -> None:
        raise AssertionError("the packaged pickle was read again")

    monkeypatch.setattr(data, "read_packaged_mnist", no_pickle)
    assert np.array_equal(load_mnist().train_labels, mnist.train_labels)


def test_corrupt_cache_is_refused(tmp_path) -> None:
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        train_images=np.zeros((10, 28, 28), np.uint8),
        train_labels=np.zeros(10, np.uint8),
        test_images=np.zeros((10, 28, 28), np.uint8),
        test_labels=np.zeros(10, np.uint8),
    )
    with pytest.raises(ValueError, match="train_images"):
        load_mnist(path)


def _assert_disjoint_cover(parts: list[np.ndarray], pool: np.ndarray, sizes: list[int]) -> None:
    assert [len(p) for p in parts] == sizes
    joined = np.concatenate(parts)
    assert len(np.unique(joined)) == len(joined)
    assert np.isin(joined, pool).all()


@pytest.mark.parametrize("alpha", [None, 0.1, 1.0])
def test_partitions_disjoint_sized_and_deterministic(mnist: Mnist, alpha: float | None) -> None:
    labels = mnist.train_labels
    sizes = [1_000, 250, 3_000, 40]  # unequal, as for sample-count weighting

    def split(seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
        rng = np.random.default_rng(seed)
        mo, pool = split_model_owner(labels, 25, rng)
        if alpha is None:
            return mo, iid_partition(pool, sizes, rng)
        return mo, dirichlet_partition(labels, pool, sizes, alpha, rng)

    mo, parts = split(7)
    _assert_disjoint_cover(parts, np.setdiff1d(np.arange(len(labels)), mo), sizes)
    mo_again, parts_again = split(7)
    assert np.array_equal(mo, mo_again)
    assert all(np.array_equal(a, b) for a, b in zip(parts, parts_again, strict=True))
    _, other = split(8)
    assert not np.array_equal(parts[0], other[0])


def test_model_owner_sample_is_balanced_and_disjoint(mnist: Mnist) -> None:
    mo, rest = split_model_owner(mnist.train_labels, 25, np.random.default_rng(0))
    counts = np.bincount(mnist.train_labels[mo], minlength=NUM_CLASSES)
    assert counts.sum() == 25 and counts.min() == 2 and counts.max() == 3
    assert len(rest) == 60_000 - 25 and not np.isin(mo, rest).any()


def test_dirichlet_skew_grows_as_alpha_shrinks(mnist: Mnist) -> None:
    labels = mnist.train_labels
    pool = np.arange(len(labels))
    sizes = [500] * 20

    def skew(alpha: float | None) -> float:
        rng = np.random.default_rng(0)
        if alpha is None:
            return label_skew(labels, iid_partition(pool, sizes, rng))
        return label_skew(labels, dirichlet_partition(labels, pool, sizes, alpha, rng))

    iid, mild, strong = skew(None), skew(100.0), skew(0.1)
    assert iid < 0.08 and mild < 0.1
    assert strong > 0.6
    assert strong > 5 * iid


def test_dirichlet_takes_the_whole_pool_when_digits_run_out() -> None:
    # Few samples per digit and strong skew: DOs exhaust their favourite digits and must be filled
    # from the rest; sizes summing to the pool force every sample to be used exactly once.
    labels = np.repeat(np.arange(NUM_CLASSES), 12)
    pool = np.arange(len(labels))
    sizes = [30, 30, 30, 30]
    parts = dirichlet_partition(labels, pool, sizes, 0.05, np.random.default_rng(3))
    _assert_disjoint_cover(parts, pool, sizes)
    assert np.array_equal(np.sort(np.concatenate(parts)), pool)


def test_partition_rejects_impossible_sizes() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(NUM_CLASSES), 5)
    with pytest.raises(ValueError, match="pool has"):
        iid_partition(np.arange(50), [30, 30], rng)
    with pytest.raises(ValueError, match="positive"):
        dirichlet_partition(labels, np.arange(50), [10, 0], 1.0, rng)
    with pytest.raises(ValueError, match="alpha"):
        dirichlet_partition(labels, np.arange(50), [10], 0.0, rng)
