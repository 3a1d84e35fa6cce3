"""Fixtures for the learning tests: MNIST loaded once per session, torch on one thread."""

from __future__ import annotations

import pytest

from actors.learning.data import Mnist, load_mnist
from actors.learning.train import use_threads


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    # Determinism checks compare runs in this process, and the machine's cores are shared.
    use_threads(1)


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    return load_mnist()
