"""What `task create` and `join` show while they run: each step of the party as a line on
stderr (rich), every step in the log file of its state directory (`actor.log`), and while the
task waits for a deadline, a countdown to it, so that a two-minute wait does not look hung.

The countdown is a rich `Live` line (only on a terminal; transient) that a daemon thread
refreshes twice a second, reading the task's phase and deadline from the chain every few
seconds. The parties' own tasks never wait for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from protocol.constants import Phase

if TYPE_CHECKING:
    from actors.chain.market import Market, PhaseInfo

log = logging.getLogger("omnilytics.progress")

# seconds between two reads of the phase for the countdown
_PHASE_POLL = 3.0


def ether(wei: int) -> str:
    return f"{Decimal(wei) / Decimal(10**18):f} ETH"


def _phase_name(value: int) -> str:
    return Phase(value).name if value in set(Phase) else str(value)


def describe(what: str, fields: dict[str, object]) -> str | None:
    """One party's step as a sentence, or None for steps not worth a line of their own."""
    round_ = fields.get("round")
    shown = int(round_) + 1 if isinstance(round_, int) else round_
    match what:
        case "task_created":
            return f"task {fields['task']} created, {ether(int(fields['escrow']))} in escrow"
        case "resumed" if "task" in fields:  # the model owner's task
            return f"resumed task {fields['task']} after {fields['applied']} rounds"
        case "resumed":  # a data owner's round
            return f"round {shown} resumed from its saved state ({fields.get('state')})"
        case "registered":
            return f"registered; peers reach us at {fields['endpoint']}"
        case "round_opened" | "opening":
            return f"round {shown} opened"
        case "groups_fixed":
            return f"groups fixed: {fields['groups']}"
        case "advanced" | "phase":
            return f"round {shown}: {_phase_name(int(fields['phase']))}"
        case "round_done":
            after = fields.get("accuracy_after")
            accuracy = f", accuracy {after:.1%}" if isinstance(after, float) else ""
            return f"round {shown} done: {fields['finalized']} groups finalized{accuracy}"
        case "withdrew" | "withdrew_court" | "refunded":
            return f"{what.replace('_', ' from the ')} {ether(int(fields['amount']))}"
        case "node_unavailable":
            return f"the node does not answer, trying again: {fields['error']}"
        case "cancelled":
            return "the task was cancelled"
    return None


class Progress:
    """The observer a party reports to, and the countdown for its task (once it has one)."""

    def __init__(self, market: Market, task: int | None = None) -> None:
        self.market = market
        self.task = task
        self.console = Console(stderr=True)
        self._phase: PhaseInfo | None = None
        self._read_at = 0.0

    def observe(self, role: str, who: str, what: str, **fields: object) -> None:
        log.info("%s %s %s", role, what, " ".join(f"{k}={v}" for k, v in fields.items()))
        if what == "task_created":
            self.task = int(fields["task"])
        line = describe(what, fields)
        if line is not None:
            self.console.print(escape(line), highlight=False)
        if what in ("advanced", "phase", "round_opened"):
            self._read_at = 0.0  # the deadline moved: read it again

    def _countdown(self) -> Text:
        if self.task is None:
            return Text("creating the task ...")
        now = time.time()
        if now - self._read_at > _PHASE_POLL:
            self._read_at = now
            try:
                self._phase = self.market.phase(self.task)
            except Exception as error:  # a countdown never stops the party: say why, go on
                return Text(f"task {self.task}: cannot read its phase ({error.__class__.__name__})")
        info = self._phase
        if info is None:
            return Text("")
        left = int(info.deadline - now)
        when = f"{left // 60}:{left % 60:02d} to its deadline" if left > 0 else "deadline passed"
        return Text(
            f"task {self.task} · round {info.round + 1} · {_phase_name(info.phase)} · {when}",
            style="dim",
        )

    @contextmanager
    def shown(self) -> Iterator[Progress]:
        """Show the countdown (on a terminal) while the block runs."""
        if not self.console.is_terminal:
            yield self
            return
        stop = threading.Event()
        with Live(self._countdown(), console=self.console, transient=True) as live:

            def refresh() -> None:
                while not stop.wait(0.5):
                    live.update(self._countdown())

            thread = threading.Thread(target=refresh, daemon=True, name="countdown")
            thread.start()
            try:
                yield self
            finally:
                stop.set()
                thread.join(2)
