"""The market tests' fixtures (accounts, contracts, tasks), for the contract fuzzing here."""

from tests.contracts.fixtures.accounts import *  # noqa: F403
from tests.contracts.fixtures.contracts import *  # noqa: F403
from tests.contracts.fixtures.tasks import *  # noqa: F403
