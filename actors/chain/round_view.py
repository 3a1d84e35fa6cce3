"""One read of a round's chain state: the market's phase and clock, the round's counters, and
for a group its members' statuses, commitments and result, in one batched request.

The data owner's round driver, the model owner's drive loop and recovery
(`actors.chain.aggregation`) all read a round through `read_round`; nothing else assembles these
views. A read that asks for less (no commitments, no complaint count) costs fewer calls in the
same one request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocol.chain_data import MemberCommitment, member_commitment
from protocol.constants import STATUS_COMMITTED, STATUS_SUBMITTED

if TYPE_CHECKING:
    from actors.chain.market import Market, PhaseInfo

# the round's counters, as `RoundView.counts` names them: (name, view, per round, of the court)
_COUNTS = (
    ("member_count", "member_count", False, False),
    ("round_committed", "round_committed", True, False),
    ("round_settled", "round_settled", True, True),
    ("round_open_complaints", "round_open", True, True),
    ("round_submitted", "round_submitted", True, False),
    ("round_exposed", "round_exposed", True, False),
)
_COMMITMENT_VIEWS = ("mask_pk", "shares_root", "points_digest")


@dataclass(frozen=True, slots=True)
class RoundView:
    """What one request read about round `round` (the phase info is the task's, which may
    have moved past `round`)."""

    round: int
    info: PhaseInfo
    now: int  # the chain's clock (`Chain.timestamp`)
    counts: dict[str, int]  # the round's counters (`_COUNTS`), when asked for
    members: tuple[str, ...] = ()  # the group's members, in on-chain order, when a group was read
    statuses: tuple[int, ...] = ()  # each member's status this round
    result: int | None = None  # the group's result this round
    commitments: tuple[MemberCommitment, ...] | None = None  # committed members, when asked for
    open_against: int | None = None  # open complaints against `against`, when asked for

    def all_committed(self) -> bool:
        """Every member committed this round (the counters were read)."""
        return self.counts["round_committed"] == self.counts["member_count"]

    def all_settled(self) -> bool:
        """Every committed member settled and no complaint is open (the counters were read)."""
        counts = self.counts
        committed = counts["round_committed"]
        return counts["round_settled"] == committed and counts["round_open_complaints"] == 0

    def status_of(self, member: str) -> int:
        lowered = [m.lower() for m in self.members]
        return self.statuses[lowered.index(member.lower())]

    @property
    def submitters(self) -> tuple[int, ...]:
        """The members whose update is complete on-chain, as addresses."""
        return tuple(
            int(m, 16)
            for m, status in zip(self.members, self.statuses, strict=True)
            if status >= STATUS_SUBMITTED
        )


def read_round(
    market: Market,
    task: int,
    round: int,
    *,
    group: int | None = None,
    members: Sequence[str] = (),
    counts: bool = False,
    commitments: bool = False,
    against: str | None = None,
) -> RoundView:
    """Read round `round` of `task` in one request: phase and clock always; the round's
    counters (`counts`); for `group` (whose `members` the caller knows) each member's status
    and the group's result, with the members' commitments (`commitments`); the open
    complaints against `against` (a view of the court)."""
    calls: list[tuple[Any, ...]] = []
    if counts:
        for _, view, per_round, court in _COUNTS:
            args = (task, round) if per_round else (task,)
            calls.append((view, args, market.court) if court else (view, args))
    calls += [("do_status", (task, round, m)) for m in members]
    if commitments:
        calls += [(v, (task, round, m)) for m in members for v in _COMMITMENT_VIEWS]
    if group is not None:
        calls.append(("group_result", (task, round, group)))
    if against is not None:
        calls.append(("open_against", (task, round, against), market.court))
    info, now, values = market.poll(task, calls)
    read = iter(values)  # the values in the order the calls were listed
    counted = {name: next(read) for name, *_ in _COUNTS} if counts else {}
    statuses = tuple(next(read) for _ in members)
    standing = None
    if commitments:
        standing = []
        for member, status in zip(members, statuses, strict=True):
            pk, root, points = (next(read) for _ in _COMMITMENT_VIEWS)
            if status >= STATUS_COMMITTED:
                standing.append(member_commitment(member, pk, root, points))
    return RoundView(
        round=round,
        info=info,
        now=now,
        counts=counted,
        members=tuple(members),
        statuses=statuses,
        result=next(read) if group is not None else None,
        commitments=None if standing is None else tuple(standing),
        open_against=next(read) if against is not None else None,
    )
