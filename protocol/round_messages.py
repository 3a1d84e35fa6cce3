"""The round machine's vocabulary: a data owner's states in a round, what it may wait for, the
events an actor feeds it and the actions it returns (``protocol.round`` has the machine,
``protocol.round_rules`` the rules that turn one into the other)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

from protocol.chain_data import (
    MemberCommitment,
)
from protocol.constants import (
    MAX_CHUNK_WORDS,
)
from protocol.encoding import QuantConfig
from protocol.messages import ShareDelivery

RandBytes = Callable[[int], bytes]  # the machine's only source of randomness


class State(StrEnum):
    """Where a DO stands in one round."""

    REGISTERED = "registered"  # registered for the task; waiting for the share phase
    SHARED = "shared"  # dealt and committed shares; collecting peers' shares, awaiting submit
    SUBMITTED = "submitted"  # masked update posted; waiting for the unmask phase
    UNMASKED = "unmasked"  # one share per committed member revealed; waiting for the result
    DONE = "done"  # the group finalized with our update in it (we are credited)
    FAILED = "failed"  # the round ended without our update in an aggregate
    ERROR = "error"  # a protocol error; the machine accepts nothing more


TERMINAL: Final = frozenset({State.DONE, State.FAILED, State.ERROR})


class Fact(StrEnum):
    """What a machine can be waiting for: a chain fact (the event that carries it), or the
    local update."""

    SHARE_PHASE = "share phase"  # SharePhaseOpened
    SETTLE = "settle"  # SettleDue: the standing commitments while SETTLE is open
    COMMITMENTS = "commitments"  # SharesCommittedOnChain: once SHARE and SETTLE closed
    SUBMIT_PHASE = "submit phase"  # SubmitPhaseOpened
    UPDATE = "local update"  # LocalUpdateReady (from the trainer, not the chain)
    UNMASK_PHASE = "unmask phase"  # UnmaskPhaseOpened: who submitted
    RESULT = "group result"  # GroupFinalized or GroupFailed


@dataclass(frozen=True, slots=True)
class Waiting:
    """What the machine needs next, in the order to feed it, and the chain time at which a
    ``DeadlineTick`` matters (None: no deadline of its own). An actor restored from a
    snapshot reads this instead of keeping its own record of what it fed."""

    facts: tuple[Fact, ...]
    deadline: int | None = None


# ---------------------------------------------------------------------------------------------
# Events (in)


@dataclass(frozen=True, slots=True)
class RoundOpened:
    """The round's fixed parameters, known once registration closed and groups are drawn."""

    task: int
    round: int
    members: tuple[int, ...]  # the group's member list, in on-chain order
    threshold: int
    me: int
    model_hash: bytes  # the public model this round trains (the update must be computed on it)
    quant: QuantConfig
    d: int
    chunk_words: int = MAX_CHUNK_WORDS


@dataclass(frozen=True, slots=True)
class SharePhaseOpened:
    """The chain entered SHARE: deal and commit now."""


@dataclass(frozen=True, slots=True)
class ShareReceived:
    """A decoded ``ShareDelivery`` that arrived on the authenticated channel of ``sender``."""

    sender: int
    delivery: ShareDelivery


@dataclass(frozen=True, slots=True)
class SettleDue:
    """In SETTLE: every member committed so far, as the chain holds it. The machine files its
    complaints at once if it holds every committed dealer's shares or ``cutoff`` is None;
    otherwise it waits for late deliveries until a ``DeadlineTick`` reaches ``cutoff`` (chain
    time; the court takes complaints only in SETTLE's first half)."""

    commitments: tuple[MemberCommitment, ...]
    cutoff: int | None = None


@dataclass(frozen=True, slots=True)
class ComplaintsAgainstUs:
    """In SETTLE, the holders whose complaints against us are open on the court, in the order
    to answer them."""

    holders: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SharesCommittedOnChain:
    """At SHARE close: every group member that committed, with its mask key and shares root."""

    commitments: tuple[MemberCommitment, ...]


@dataclass(frozen=True, slots=True, eq=False)
class LocalUpdateReady:
    """The trained update as ``d`` ring lanes (``protocol.weighting.encode_weighted`` clips,
    weights and quantizes it: the one path from floats to lanes)."""

    update: npt.NDArray[np.generic]


@dataclass(frozen=True, slots=True)
class SubmitPhaseOpened:
    """The chain entered SUBMIT; ``deadline`` is when it may be closed (chain time)."""

    deadline: int


@dataclass(frozen=True, slots=True)
class UnmaskPhaseOpened:
    """At SUBMIT close: the members whose submissions are complete on-chain."""

    submitted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GroupFinalized:
    """The group's ``t``-th unmask message landed; ``credited`` are its submitters."""

    credited: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GroupFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class DeadlineTick:
    """The chain's clock (block timestamp) reached ``now``: sent when it passes the machine's
    ``waiting().deadline`` (the end of a wait for late deliveries, the submit deadline)."""

    now: int


Event = (
    RoundOpened
    | SharePhaseOpened
    | ShareReceived
    | SettleDue
    | ComplaintsAgainstUs
    | SharesCommittedOnChain
    | LocalUpdateReady
    | SubmitPhaseOpened
    | UnmaskPhaseOpened
    | GroupFinalized
    | GroupFailed
    | DeadlineTick
)
EVENT_TYPES: Final = Event.__args__


# ---------------------------------------------------------------------------------------------
# Actions (out)


@dataclass(frozen=True, slots=True)
class SendShares:
    """Send ``delivery`` to group member ``to`` over its authenticated channel."""

    to: int
    delivery: ShareDelivery


@dataclass(frozen=True, slots=True)
class PostCommitment:
    """Call ``commit_shares(task, round, mask_public, shares_root, points)``."""

    mask_public: bytes
    shares_root: bytes
    points: bytes


@dataclass(frozen=True, slots=True)
class PostSettle:
    """Call the court's ``settle(task, round, accused)``: complaints against these dealers."""

    accused: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PostAnswer:
    """Call the court's ``answer(task, round, holder, [seed_share, seed_blind, key_share,
    key_blind], seed_proof, key_proof, points)``: publish ``holder``'s two shares and blinds to
    settle its complaint."""

    holder: int
    seed_share: bytes
    seed_blind: bytes
    key_share: bytes
    key_blind: bytes
    seed_proof: tuple[bytes, ...]
    key_proof: tuple[bytes, ...]
    points: bytes


@dataclass(frozen=True, slots=True)
class PostChunk:
    """Call ``submit(task, round, chunk_index, words)``; chunks go in index order."""

    chunk_index: int
    words: Sequence[int]  # the packed words (`PackedWords`: their calldata bytes)


@dataclass(frozen=True, slots=True)
class Reveal:
    """One entry of the court's ``unmask``: a share of ``dealer``'s secret ``kind``, its blind,
    its Merkle proof, and the dealer's points as delivered (the court checks them against the
    dealer's ``points_digest``, then the share with the Pedersen check)."""

    dealer: int
    kind: int
    share: bytes
    blind: bytes
    proof: tuple[bytes, ...]
    points: bytes


@dataclass(frozen=True, slots=True)
class PostUnmask:
    """Call the court's ``unmask(task, round, reveals)``: one entry per committed member, in
    member order."""

    reveals: tuple[Reveal, ...]


@dataclass(frozen=True, slots=True)
class Done:
    """Our update is in the group's aggregate; nothing more to do this round."""


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


Action = (
    SendShares | PostCommitment | PostSettle | PostAnswer | PostChunk | PostUnmask | Done | Failed
)
