"""Fixtures of the market contract tests, split into plugin modules under `fixtures/`."""

from tests.contracts.fixtures.accounts import *  # noqa: F403
from tests.contracts.fixtures.contracts import *  # noqa: F403
from tests.contracts.fixtures.tasks import *  # noqa: F403
