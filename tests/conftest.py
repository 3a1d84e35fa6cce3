"""Shared test settings: hypothesis profiles (ci: bounded budget; dev: long fuzzing; debug), the
session's garbage collector as an actor's process has it (`actors.entry.collector`), and the
summary lines tests record (`record_property("summary", ...)`), printed at the end."""

import contextlib
import os

from hypothesis import HealthCheck, Phase, Verbosity, settings

from actors.entry.collector import freeze_setup, rare_full_collections

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile(
    "dev",
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "debug",
    max_examples=20,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    verbosity=Verbosity.verbose,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The suite's process holds every collected module and test (the compiler, the EVM, torch): full
# collections over that heap took a third of the contract and protocol tests' time (731 s
# against 469 s for the same 771 tests).
_collector = contextlib.ExitStack()


def pytest_collection_finish(session):
    _collector.enter_context(rare_full_collections())
    freeze_setup()


def pytest_sessionfinish(session, exitstatus):
    _collector.close()


def pytest_terminal_summary(terminalreporter):
    """Print what tests recorded as ``record_property("summary", line)`` (the stateful
    machine's steps): a test's own prints stay in its worker under pytest-xdist."""
    lines = [
        value
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if report.when == "call"
        for name, value in report.user_properties
        if name == "summary"
    ]
    if lines:
        terminalreporter.section("summaries")
        for line in lines:
            terminalreporter.write_line(line)
