"""What a fuzz target covered: examples and steps run, each rule's successes and reverts by
reason, and the distinct phase sequences its tasks went through.

Rules call the active recorder (`recorder()`), which the fuzz runner (`tests/fuzzing/runner.py`)
swaps per target; in the default suite each target gets the one of its own name. A "rule" is
whatever a target calls by name: a contract entry point for the market machines.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from protocol import constants

# Phase names from protocol.constants, so they follow any renumbering there.
PHASE_NAMES = {
    value: name.removeprefix("PHASE_")
    for name, value in vars(constants).items()
    if name.startswith("PHASE_") and isinstance(value, int)
}


def phase_name(phase: int) -> str:
    return PHASE_NAMES.get(phase, f"PHASE_{phase}")


@dataclass
class RuleStats:
    successes: int = 0
    reverts: Counter = field(default_factory=Counter)

    @property
    def calls(self) -> int:
        return self.successes + sum(self.reverts.values())


@dataclass
class Recorder:
    """Counts of one fuzz target; `as_json` is its entry in the runner's JSON."""

    name: str
    examples: int = 0
    steps: int = 0
    rules: dict[str, RuleStats] = field(default_factory=dict)
    sequences: Counter = field(default_factory=Counter)

    def success(self, rule: str) -> None:
        self.rules.setdefault(rule, RuleStats()).successes += 1

    def revert(self, rule: str, reason: str) -> None:
        self.rules.setdefault(rule, RuleStats()).reverts[reason or "(no reason)"] += 1

    def example(self, steps: int, sequences: list[tuple[int, ...]] = ()) -> None:
        """One example ended after `steps` steps; `sequences`: each task's phases, in order."""
        self.examples += 1
        self.steps += steps
        for phases in sequences:
            self.sequences[" > ".join(phase_name(p) for p in phases)] += 1

    def never_succeeded(self) -> list[str]:
        return sorted(name for name, stats in self.rules.items() if stats.successes == 0)

    def least_fired(self, k: int = 3) -> list[tuple[str, int]]:
        """The `k` rules with the fewest successes."""
        ranked = sorted(self.rules.items(), key=lambda item: (item[1].successes, item[0]))
        return [(name, stats.successes) for name, stats in ranked[:k]]

    def as_json(self) -> dict:
        return {
            "examples": self.examples,
            "steps": self.steps,
            "rules": {
                name: {
                    "calls": stats.calls,
                    "successes": stats.successes,
                    "reverts": dict(stats.reverts.most_common()),
                }
                for name, stats in sorted(self.rules.items())
            },
            "never_succeeded": self.never_succeeded(),
            "phase_sequences": dict(self.sequences.most_common()),
        }


_recorders: dict[str, Recorder] = {}
_active: list[Recorder] = []


def recorder(name: str) -> Recorder:
    """The recorder rules of target `name` report to: the runner's while it runs that target,
    else one kept per name for this process (the default suite prints from it)."""
    if _active:
        return _active[-1]
    return _recorders.setdefault(name, Recorder(name))


class recording:
    """Route every rule's report to `rec` inside the block (the runner, per target)."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def __enter__(self) -> Recorder:
        _active.append(self.rec)
        return self.rec

    def __exit__(self, *exc) -> None:
        _active.remove(self.rec)
