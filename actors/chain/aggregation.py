"""Each group's aggregate of a round, recovered by anyone from chain data alone.

The model owner uses this to learn; `omnilytics swarm` uses it from the outside to check the
model owner's numbers; nothing here needs a secret or an actor's state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from actors.chain.codec import checksum
from actors.chain.market import Market
from actors.chain.round_view import read_round
from protocol.chain_data import ChainDataError, Submission
from protocol.commitments import split_chunks
from protocol.constants import DATA_PATH_DIRECT, GROUP_FINALIZED
from protocol.errors import RecoveryError
from protocol.recovery import GroupAggregate, recover_group_aggregate


@dataclass
class RoundAggregates:
    """What a round revealed: an aggregate per finalized group, and why the others have none."""

    aggregates: dict[int, GroupAggregate] = field(default_factory=dict)
    failed: list[int] = field(default_factory=list)  # groups that did not finalize on-chain
    errors: dict[int, str] = field(default_factory=dict)  # finalized, yet no aggregate


def recover_round(
    market: Market,
    task: int,
    round: int,
    delivered: Mapping[int, Sequence[int]] | None = None,
) -> RoundAggregates:
    """Recover every finalized group's aggregate of `round` from events and views; events that
    break the chain-data schema (a faulty node) leave every finalized group with that error.

    On a direct task the updates nobody challenged are not on-chain: `delivered` holds the
    ones the model owner received (checked against their committed digests again here, like
    the words of any submission), and the answered challenges' words are read from the desk."""
    config = market.config(task)
    unreadable = None
    try:
        submissions = market.submissions(task, round)
        if config.data_path == DATA_PATH_DIRECT:
            submissions.update(market.answered_updates(task, round))
            for do, words in (delivered or {}).items():
                if do not in submissions:
                    digest = market.update_digest(task, round, checksum(do))
                    submissions[do] = Submission(tuple(split_chunks(words)), digest)
        revealed = market.revealed_shares(task, round)
        points = {int(do, 16): data for do, data in market.dealt_points(task, round).items()}
    except ChainDataError as error:
        unreadable = f"unreadable chain data: {error}"
    result = RoundAggregates()
    count = market.group_count(task)
    groups = market.views([("group_members", (task, group)) for group in range(count)])
    for group, members in enumerate(groups):
        # the group's statuses, commitments and result in one read (`actors.chain.round_view`)
        view = read_round(market, task, round, group=group, members=members, commitments=True)
        if view.result != GROUP_FINALIZED:
            result.failed.append(group)
            continue
        if unreadable is not None:
            result.errors[group] = unreadable
            continue
        statuses = {int(m, 16): status for m, status in zip(members, view.statuses, strict=True)}
        keys = {c.member: c.mask_public for c in view.commitments or ()}
        try:
            result.aggregates[group] = recover_group_aggregate(
                members=list(statuses),
                threshold=config.threshold,
                statuses=statuses,
                mask_public_keys=keys,
                points={a: p for a, p in points.items() if a in statuses},
                submissions={a: s for a, s in submissions.items() if a in statuses},
                reveals=[r for r in revealed if r.holder in statuses],
                task=task,
                round=round,
                quant=config.quant,
                d=config.d,
            )
        except RecoveryError as error:
            result.errors[group] = str(error)
    return result
