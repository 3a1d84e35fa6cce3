"""Long fuzzing for a time budget (`just fuzz budget=30m`): every long fuzz target, in this
process, with fresh seeds until its share of the budget ends; a table and a JSON of what each
covered.

The targets: the market's state machine (tests/contracts/stateful/base.py), the random market
calls, the decoders, the replays and the protocol's property tests. The machine is run directly
(deployed once, each example rolled back); the others through pytest in this process, where a
plugin runs each Hypothesis test again and again, each time with a fresh seed and as many
examples as fit in what is left of its share (pytest's per-test timeout is off). Tests without
Hypothesis (the replays) run once.

Failures are kept in Hypothesis's example database under the project (`.hypothesis/examples`),
so the next run tries them first; each prints its shrunk example and the seed that found it:
`just fuzz replay=SEED target=NAME` runs that target with that seed again. Exit status: 0 when
nothing broke, 1 when something did.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.reporting import with_reporter
from hypothesis.statistics import collector
from rich.console import Console
from rich.table import Table

from tests.fuzzing.recorder import Recorder, recording

ROOT = Path(__file__).resolve().parents[2]
DATABASE = DirectoryBasedExampleDatabase(str(ROOT / ".hypothesis" / "examples"))
DEFAULT_OUT = ROOT / "bench" / "results" / "fuzz.json"

# target -> (share of the budget, what runs); "machine" is the market's state machine
TARGETS = {
    "market_stateful": (0.40, "machine"),
    "market_calls": (0.20, "tests/fuzzing/test_market_calls.py"),
    "decoders": (0.15, "tests/fuzzing/test_decoders.py"),
    "replays": (0.0, "tests/fuzzing/test_replays.py"),
    "protocol": (0.25, "tests/protocol"),
}
# the machine's examples: up to this many steps each
MACHINE_STEPS = 200
# a run's first examples size the next run, so that a run ends near its deadline
FIRST_RUN = {"machine": 5, "test": 20}
MAX_RUN = 2_000
# a replay's examples: enough to reach any example a budgeted run got to
REPLAY_EXAMPLES = {"machine": 200, "test": MAX_RUN}


def parse_budget(text: str) -> float:
    """Seconds of `90s`, `15m`, `1h`, `1h30m` or a bare number of seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not text.strip() or parts is None:
        raise argparse.ArgumentTypeError(f"budget {text!r}: use e.g. 90s, 15m, 1h")
    hours, minutes, seconds = (int(p or 0) for p in parts.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def run_settings(base: settings, examples: int, steps: int | None = None) -> settings:
    """One run's settings: `examples` examples, the project's database, no deadline, no
    health check that would stop a long run, and shrinking."""
    extra = {} if steps is None else {"stateful_step_count": steps}
    return settings(
        base,
        max_examples=examples,
        database=DATABASE,
        derandomize=False,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        print_blob=True,
        **extra,
    )


@dataclass
class Failure:
    target: str
    test: str
    seed: int
    report: str


@dataclass
class TargetRun:
    """What one target ran: the recorder's counts, plus Hypothesis's own per test."""

    name: str
    recorder: Recorder
    share: float
    wall: float = 0.0
    tests: Counter = field(default_factory=Counter)  # test -> examples
    runs: int = 0
    events: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    passed_once: list[str] = field(default_factory=list)

    @property
    def examples(self) -> int:
        return sum(self.tests.values())

    @property
    def steps(self) -> int:
        # a property test's step is its example; the machines count their own
        return self.recorder.steps or self.examples

    def as_json(self) -> dict:
        counts = self.recorder.as_json()
        return {
            "examples": self.examples,
            "steps": self.steps,
            "runs": self.runs,
            "wall_s": round(self.wall, 1),
            "budget_s": round(self.share, 1),
            "rules": counts["rules"],
            "never_succeeded": counts["never_succeeded"],
            "phase_sequences": counts["phase_sequences"],
            "tests": dict(sorted(self.tests.items())),
            "events": dict(self.events.most_common()),
            "run_once": self.passed_once,
            "failures": [f.__dict__ for f in self.failures],
        }


class Budgeted:
    """Runs one Hypothesis test again and again with fresh seeds until `deadline` (or once with
    `replay`'s seed), counting its examples and events into `run`."""

    def __init__(self, run: TargetRun, kind: str, replay: int | None) -> None:
        self.run, self.kind, self.replay = run, kind, replay
        self.rng = random.Random()

    def loop(self, test, name: str, deadline: float, call) -> None:
        """`test`: the given-wrapped function; `call()` runs it once."""
        original = (test._hypothesis_internal_use_settings, test._hypothesis_internal_use_seed)
        base = original[0]
        per_example = None
        try:
            while True:
                left = deadline - time.monotonic()
                if self.replay is None and left <= 0 and per_example is not None:
                    return
                if self.replay is not None:
                    examples, seed = REPLAY_EXAMPLES[self.kind], self.replay
                elif per_example is None:
                    examples, seed = FIRST_RUN[self.kind], self.rng.getrandbits(32)
                else:
                    fit = int(left / per_example)
                    examples, seed = max(1, min(fit, MAX_RUN)), self.rng.getrandbits(32)
                test._hypothesis_internal_use_settings = run_settings(base, examples)
                test._hypothesis_internal_use_seed = seed
                # its own key: titanoboa's plugin wraps every test in the same function, whose
                # digest would make all tests share (and prune) one another's failures
                test._hypothesis_internal_database_key = f"omnilytics-fuzz:{name}".encode()
                started, ran = time.monotonic(), self._examples_of(name, call, seed)
                self.run.runs += 1
                if ran is None or self.replay is not None:
                    return
                per_example = max((time.monotonic() - started) / max(ran, 1), 1e-4)
        finally:
            test._hypothesis_internal_use_settings, test._hypothesis_internal_use_seed = original

    def _examples_of(self, name: str, call, seed: int) -> int | None:
        """Run once; the number of examples, or None if the test failed."""
        cases: list = []
        reported: list[str] = []

        def note(stats) -> None:
            for phase in ("reuse-phase", "generate-phase", "shrink-phase"):
                cases.extend(stats.get(phase, {}).get("test-cases", []))

        try:
            with (
                collector.with_value(note),
                with_reporter(reported.append),
                recording(self.run.recorder),
            ):
                call()
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt):
                raise
            # the shrunk example: Hypothesis's report (a machine's steps) and the error's notes
            report = "\n".join([*reported, "".join(traceback.format_exception(error))])
            self.run.failures.append(Failure(self.run.name, name, seed, report))
            return None
        finally:
            self.run.tests[name] += len(cases)
            for case in cases:
                self.run.events.update(case.get("events", []))
        return len(cases)


class BudgetPlugin:
    """pytest plugin: each Hypothesis test of a target loops for an even slice of what is left
    of the target's share when it starts (fixtures and run-once tests come out of it); a test
    without Hypothesis runs once, before the target's Hypothesis tests."""

    def __init__(self, runs: dict[str, TargetRun], paths: dict[str, str], replay, start):
        self.runs, self.paths, self.replay = runs, paths, replay
        self.ends: dict[str, float] = {}
        for name in paths:
            start += runs[name].share
            self.ends[name] = start
        self.waiting: dict[str, list[str]] = {name: [] for name in paths}

    def _target(self, nodeid: str) -> str:
        return next(name for name, prefix in self.paths.items() if nodeid.startswith(prefix))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items) -> None:
        order = list(self.paths)
        items.sort(key=lambda item: (order.index(self._target(item.nodeid)), _is_given(item)))
        for item in items:
            if _is_given(item):
                self.waiting[self._target(item.nodeid)].append(item.nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem):
        if not _is_given(pyfuncitem):
            return None  # pytest runs it once
        name = self._target(pyfuncitem.nodeid)
        run, waiting = self.runs[name], self.waiting[name]
        started = time.monotonic()
        deadline = started + max(self.ends[name] - started, 0) / len(waiting)
        waiting.remove(pyfuncitem.nodeid)
        test = pyfuncitem.obj
        kwargs = {a: pyfuncitem.funcargs[a] for a in pyfuncitem._fixtureinfo.argnames}
        try:
            Budgeted(run, "test", self.replay).loop(
                test, pyfuncitem.nodeid, deadline, lambda: test(**kwargs)
            )
        finally:
            run.wall += time.monotonic() - started
        return True

    def pytest_runtest_logreport(self, report) -> None:
        run = self.runs[self._target(report.nodeid)]
        if report.failed:
            run.failures.append(Failure(run.name, report.nodeid, 0, str(report.longrepr)))
        elif report.when == "call" and report.nodeid not in run.tests:
            run.passed_once.append(report.nodeid)


def _is_given(item) -> bool:
    return hasattr(getattr(item, "obj", None), "hypothesis")


def run_machine(run: TargetRun, deadline: float, replay: int | None) -> None:
    """The market's state machine, deployed once, for its share."""
    import boa
    from hypothesis.stateful import get_state_machine_test

    from tests.contracts.stateful.base import MarketBase, deploy

    class MarketMachine(MarketBase):
        target = run.name

    started = time.monotonic()
    with boa.env.anchor():
        MarketMachine.deployment = deploy(
            ROOT / "contracts" / "DataMarket.vy",
            ROOT / "contracts" / "SharesCourt.vy",
            "fuzz_runner_deployer",
        )
        test = get_state_machine_test(
            MarketMachine, settings=run_settings(settings.default, 1, MACHINE_STEPS)
        )
        Budgeted(run, "machine", replay).loop(test, "market_stateful", deadline, test)
    run.wall += time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzzing.runner", description=__doc__)
    parser.add_argument("--budget", type=parse_budget, default=parse_budget("10m"))
    parser.add_argument("--replay", type=int, help="run once with this seed")
    parser.add_argument("--target", help=f"only these targets ({', '.join(TARGETS)}), or a test")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    names = args.target.split(",") if args.target else list(TARGETS)
    chosen = {n: t for n, t in TARGETS.items() if n in names}
    selected = None
    if args.target and not chosen:  # a test's id: its target, only that test
        chosen = {n: t for n, t in TARGETS.items() if args.target.startswith(t[1])}
        selected = [args.target]
    if not chosen:
        parser.error(f"no target {args.target!r}: {', '.join(TARGETS)} or a test id")
    total = sum(share for share, _ in chosen.values()) or 1.0
    start = time.monotonic()
    runs = {
        name: TargetRun(name, Recorder(name), args.budget * share / total)
        for name, (share, _) in chosen.items()
    }
    console = Console(stderr=True)
    mode = f"replay of seed {args.replay}" if args.replay is not None else f"{args.budget:.0f} s"
    console.print(f"fuzz: {', '.join(runs)} ({mode})")

    at = start
    if "market_stateful" in runs:
        at += runs["market_stateful"].share
        run_machine(runs["market_stateful"], at, args.replay)
    paths = {name: path for name, (_, path) in chosen.items() if path != "machine"}
    if paths:
        plugin = BudgetPlugin(runs, paths, args.replay, at)
        options = ["-q", "-p", "no:cacheprovider", "--timeout=0", "-m", "slow or not slow"]
        options += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
        code = pytest.main([*options, *(selected or paths.values())], plugins=[plugin])
        if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            # a collection error, an interrupt: the targets did not run, which is no pass
            for name in paths:
                runs[name].failures.append(Failure(name, paths[name], 0, f"pytest: {code!r}"))

    report(console, runs, args.budget, time.monotonic() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "budget_s": args.budget,
        "replay": args.replay,
        "wall_s": round(time.monotonic() - start, 1),
        "ok": not any(run.failures for run in runs.values()),
        "rows": [{"target": name, **run.as_json()} for name, run in runs.items()],
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    console.print(f"fuzz: wrote {args.out}")
    return 0 if out["ok"] else 1


def report(console: Console, runs: dict[str, TargetRun], budget: float, wall: float) -> None:
    """The table of every target, its rules that never succeeded, and each failure."""
    table = Table(title=f"fuzz: {wall:.0f} s of a {budget:.0f} s budget")
    for column in ("target", "examples", "steps", "wall s", "rules", "never succeeded", "phases"):
        left = column in ("target", "never succeeded")
        table.add_column(column, justify="left" if left else "right")
    for run in runs.values():
        counts = run.recorder.as_json()
        never = ", ".join(counts["never_succeeded"]) or "-"
        table.add_row(
            run.name + (" [red]FAILED[/]" if run.failures else ""),
            f"{run.examples:,}",
            f"{run.steps:,}",
            f"{run.wall:.0f}",
            str(len(counts["rules"])),
            f"[yellow]{never}[/]" if counts["never_succeeded"] else never,
            str(len(counts["phase_sequences"])),
        )
    console.print(table)
    for run in runs.values():
        rules = run.recorder.rules
        if not rules:
            continue
        detail = Table(title=f"{run.name}: rules (successes, reverts by reason)")
        detail.add_column("rule")
        detail.add_column("successes", justify="right")
        detail.add_column("reverts")
        for name, stats in sorted(rules.items(), key=lambda item: item[1].successes):
            reasons = ", ".join(f"{r} {n}" for r, n in stats.reverts.most_common(4))
            more = len(stats.reverts) - 4
            flag = " [yellow](never succeeded)[/]" if stats.successes == 0 else ""
            detail.add_row(
                name + flag, f"{stats.successes:,}", reasons + (f", +{more}" if more > 0 else "")
            )
        console.print(detail)
    for run in runs.values():
        for failure in run.failures:
            console.rule(f"[red]{failure.target}: {failure.test}")
            console.print(failure.report, markup=False, highlight=False)
            if failure.seed:
                console.print(
                    f"replay: just fuzz replay={failure.seed} target={_short(failure)}",
                    markup=False,
                )


def _short(failure: Failure) -> str:
    return failure.target if failure.target == "market_stateful" else failure.test


if __name__ == "__main__":
    sys.exit(main())
