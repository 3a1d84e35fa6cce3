"""Drive the market contract from tests: task configs, and a `TaskRun` that plays one task.

`TaskRun` owns what the actors of a task know off-chain (which shares each dealer dealt, what
each data owner submitted) and calls the contract as those actors would, with the byte formats
of docs/interfaces.md built by `protocol.commitments`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import boa
from eth_utils import keccak

from protocol.commitments import DealtShares, deal_commitment, model_digest
from protocol.constants import (
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    STATUS_COMMITTED,
    STATUS_NONE,
    STATUS_SUBMITTED,
)
from protocol.shamir import FIELD_ORDER, Dealing, random_secret, split_secret

ETH = "0x0000000000000000000000000000000000000000"
COURT_SOURCE = Path(__file__).resolve().parents[2] / "contracts" / "SharesCourt.vy"
DESK_SOURCE = COURT_SOURCE.with_name("DeliveryDesk.vy")

# Field order of the contract's TaskConfig struct (docs/interfaces.md §7).
CONFIG_FIELDS = (
    "model_hash",
    "spec_hash",
    "d",
    "lane_bits",
    "scale_bits",
    "clip_norm_micro",
    "sample_cap",
    "rounds",
    "max_dos",
    "min_dos",
    "group_size",
    "threshold",
    "reward_per_do",
    "bond",
    "token",
    "register_duration",
    "share_duration",
    "submit_duration",
    "unmask_duration",
    "data_path",
)

MODEL_BYTES = b"public model, round 0"
DURATION = 100
# keccak256 of no spec: the tests' tasks publish none
NO_SPEC_HASH = keccak(b"")


def events(contract, name: str) -> list:
    """Events called `name` of the contract's last transaction."""
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def model_bytes(round: int) -> bytes:
    """The public model the tests publish for `round`."""
    return MODEL_BYTES if round == 0 else f"public model, round {round}".encode()


def digest_of(*chunks: bytes) -> bytes:
    """Running model digest after publishing `chunks` in order."""
    digest = bytes(32)
    for chunk in chunks:
        digest = model_digest(digest, chunk)
    return digest


def config(**overrides) -> dict:
    """A small valid task: d = 20 lanes of 32 bits (3 words), 2 rounds, 4..6 DOs, m = t = 2, no
    spec."""
    base = {
        "model_hash": digest_of(MODEL_BYTES),
        "spec_hash": NO_SPEC_HASH,
        "d": 20,
        "lane_bits": 32,
        "scale_bits": 16,
        "clip_norm_micro": 1_000_000,
        "sample_cap": 1_000,
        "rounds": 2,
        "max_dos": 6,
        "min_dos": 4,
        "group_size": 2,
        "threshold": 2,
        "reward_per_do": 10**15,
        "bond": 10**14,
        "token": ETH,
        "register_duration": DURATION,
        "share_duration": DURATION,
        "submit_duration": DURATION,
        "unmask_duration": DURATION,
        "data_path": 0,
    }
    unknown = set(overrides) - set(base)
    assert not unknown, f"unknown config fields {unknown}"
    base.update(overrides)
    return base


def as_struct(cfg: dict) -> tuple:
    """The config as the contract's struct argument."""
    return tuple(cfg[name] for name in CONFIG_FIELDS)


def escrow_of(cfg: dict) -> int:
    return cfg["reward_per_do"] * cfg["max_dos"] * cfg["rounds"]


def update_words(cfg: dict) -> int:
    lanes = 256 // cfg["lane_bits"]
    return -(-cfg["d"] // lanes)


def share_value(dealer: str, holder: str, kind: int, round: int, salt: bytes = b"") -> bytes:
    """A deterministic 32-byte value off every dealing: a share the dealer never dealt."""
    return keccak(b"share" + bytes.fromhex(dealer[2:] + holder[2:]) + bytes([kind, round]) + salt)


def seeded_randbytes(label: bytes):
    """Deterministic randomness for a dealing: tests replay the same shares."""
    counter = iter(range(1 << 30))
    return lambda n: b"".join(
        keccak(label + next(counter).to_bytes(4, "big")) for _ in range(-(-n // 32))
    )[:n]


def dealing(dealer: str, round: int, threshold: int, holders: int) -> tuple[Dealing, Dealing]:
    """The real Pedersen dealings of `dealer` in `round`: self seed, then mask key."""
    randbytes = seeded_randbytes(b"dealing" + bytes.fromhex(dealer[2:]) + bytes([round]))
    return tuple(
        split_secret(random_secret(randbytes), threshold, holders, randbytes) for _ in range(2)
    )


def shares_by_position(seed: Dealing, key: Dealing, holders: int) -> dict:
    """`(position, kind) -> (share, blind)` of a dealer's two dealings."""
    return {
        (p, kind): (dealt.shares[p], dealt.blinds[p])
        for p in range(holders)
        for kind, dealt in ((KIND_SELF_SEED, seed), (KIND_MASK_KEY, key))
    }


def share_tree(task: int, round: int, dealer: str, members: Sequence[str], shares: dict):
    """The Merkle tree a dealer commits to over `shares` (as `shares_by_position` lays them)."""
    n = len(members)
    return deal_commitment(
        task,
        round,
        int(dealer, 16),
        [int(a, 16) for a in members],
        [shares[(p, KIND_SELF_SEED)][0] for p in range(n)],
        [shares[(p, KIND_MASK_KEY)][0] for p in range(n)],
        seed_blinds=[shares[(p, KIND_SELF_SEED)][1] for p in range(n)],
        key_blinds=[shares[(p, KIND_MASK_KEY)][1] for p in range(n)],
    )


def shuffle_groups(members: Sequence[str], block_hash: bytes, task: int, m: int) -> list[list[str]]:
    """The groups the contract must draw (registry.vy) from the hash of the block that closed
    registration: Fisher–Yates, then balanced cuts."""
    from eth_abi import encode

    seed = keccak(encode(["bytes32", "uint256"], [block_hash, task]))
    order = list(members)
    for i in range(len(order) - 1, 0, -1):
        j = int.from_bytes(keccak(encode(["bytes32", "uint256"], [seed, i])), "big") % (i + 1)
        order[i], order[j] = order[j], order[i]
    groups = len(order) // m
    base, larger = divmod(len(order), groups)
    out, pos = [], 0
    for g in range(groups):
        size = base + (1 if g < larger else 0)
        out.append(order[pos : pos + size])
        pos += size
    return out


@dataclass
class TaskRun:
    """One task as its model owner and data owners play it, one call per contract action."""

    market: object
    owner: str
    cfg: dict
    task: int = 0
    token: object = None
    dealt: dict = field(default_factory=dict)  # (round, dealer) -> (DealtShares, shares)
    points: dict = field(default_factory=dict)  # (round, dealer) -> Pedersen commitments
    _court: object = None
    _desk: object = None

    # -- model owner -------------------------------------------------------------------------

    def create(self, value: int | None = None) -> int:
        if self.token is not None and value is None:
            self.token.approve(self.market.address, escrow_of(self.cfg), sender=self.owner)
            value = 0
        elif value is None:
            value = escrow_of(self.cfg)
        self.task = self.market.create_task(
            as_struct(self.cfg), b"", value=value, sender=self.owner
        )
        return self.task

    def publish(self, round: int = 0, data: bytes | None = None) -> None:
        self.desk.publish_model(self.task, round, data or model_bytes(round), sender=self.owner)

    def open_round(self, round: int) -> None:
        self.publish(round)
        self.market.open_round(self.task, round, digest_of(model_bytes(round)), sender=self.owner)

    # -- data owners ---------------------------------------------------------------------------

    def register(self, dos: Iterable[str]) -> None:
        for do in dos:
            if self.token is not None:
                self.token.approve(self.market.address, self.cfg["bond"], sender=do)
                value = 0
            else:
                value = self.cfg["bond"]
            self.market.register(
                self.task,
                keccak(do.encode()),
                f"127.0.0.1:{int(do, 16) % 60000}",
                value=value,
                sender=do,
            )

    def groups(self) -> list[list[str]]:
        count = self.market.group_count(self.task)
        return [list(self.market.group_members(self.task, g)) for g in range(count)]

    def group_of(self, do: str) -> list[str]:
        return list(self.market.group_members(self.task, self.market.group_of(self.task, do)))

    def first_of_groups(self, count: int | None = None) -> list[str]:
        """The first `count` (default `t`) members of every group: enough to finalize each."""
        count = self.cfg["threshold"] if count is None else count
        return [do for group in self.groups() for do in group[:count]]

    def round(self) -> int:
        return self.market.current_round(self.task)

    def deal(
        self, do: str, round: int | None = None, corrupt: tuple[str, int] | None = None
    ) -> DealtShares:
        """The commitment `do` posts: real Pedersen shares (share and blind), one leaf per
        (holder, kind), a root. `corrupt = (holder, kind)`: that one share is off the committed
        polynomial (yet in the tree), as a cheating dealer would deal it."""
        round = self.round() if round is None else round
        members = self.group_of(do)
        seed, key = dealing(do, round, self.cfg["threshold"], len(members))
        shares = shares_by_position(seed, key, len(members))
        if corrupt is not None:
            where = (members.index(corrupt[0]), corrupt[1])
            share, blind = shares[where]
            shifted = (int.from_bytes(share, "big") + 1) % FIELD_ORDER
            shares[where] = (shifted.to_bytes(32, "big"), blind)
        dealt = share_tree(self.task, round, do, members, shares)
        self.dealt[(round, do)] = (dealt, shares)
        self.points[(round, do)] = seed.commitments + key.commitments
        return dealt

    def commit(self, do: str, corrupt: tuple[str, int] | None = None) -> None:
        dealt = self.deal(do, corrupt=corrupt)
        self.market.commit_shares(
            self.task,
            self.round(),
            keccak(b"mask" + do.encode()),
            dealt.root,
            self.points[(self.round(), do)],
            sender=do,
        )

    def answer_args(self, dealer: str, holder: str) -> tuple:
        """What `dealer` sends to answer `holder`'s complaint: shares and blinds, proofs, points."""
        round = self.round()
        dealt, shares = self.dealt[(round, dealer)]
        p = self.group_of(dealer).index(holder)
        return (
            self.task,
            round,
            holder,
            [*shares[(p, KIND_SELF_SEED)], *shares[(p, KIND_MASK_KEY)]],
            dealt.proof(p, KIND_SELF_SEED),
            dealt.proof(p, KIND_MASK_KEY),
            self.points[(round, dealer)],
        )

    def words(self, do: str, round: int | None = None) -> list[int]:
        """The masked update `do` submits: any words; the contract only hashes and emits them."""
        round = self.round() if round is None else round
        n = update_words(self.cfg)
        return [int.from_bytes(keccak(f"{do}/{round}/{i}".encode()), "big") for i in range(n)]

    def submit(self, do: str, chunk_words: int = 2) -> list[list[int]]:
        words = self.words(do)
        chunks = [words[i : i + chunk_words] for i in range(0, len(words), chunk_words)]
        for index, chunk in enumerate(chunks):
            self.market.submit(self.task, self.round(), index, chunk, sender=do)
        return chunks

    def reveals(self, holder: str, round: int | None = None) -> list[tuple]:
        """The unmask message of `holder`: one share per committed member, in member order."""
        round = self.round() if round is None else round
        members = self.group_of(holder)
        position = members.index(holder)
        out = []
        for dealer in members:
            status = self.market.do_status(self.task, round, dealer)
            if status == STATUS_NONE:
                continue
            kind = KIND_SELF_SEED if status >= STATUS_SUBMITTED else KIND_MASK_KEY
            dealt, shares = self.dealt[(round, dealer)]
            share, blind = shares[(position, kind)]
            points = self.points[(round, dealer)]
            out.append((dealer, kind, share, blind, dealt.proof(position, kind), points))
        return out

    def unmask(self, holder: str) -> None:
        """`holder`'s unmask message, through the court (which checks every share)."""
        self.court.unmask(self.task, self.round(), self.reveals(holder), sender=holder)

    # -- phases --------------------------------------------------------------------------------

    @property
    def court(self):
        """The market's court, one object per run (so `events(run.court, ...)` reads the last
        call made through it, the market's logs of that call included)."""
        if self._court is None:
            self._court = boa.load_partial(str(COURT_SOURCE)).at(self.market.COURT())
        return self._court

    @property
    def desk(self):
        """The market's delivery desk (public models, direct deliveries), one object per run."""
        if self._desk is None:
            self._desk = boa.load_partial(str(DESK_SOURCE)).at(self.market.DESK())
        return self._desk

    def settle_all(self, complaints: dict | None = None) -> None:
        """In SETTLE: every committed member settles (with `complaints[holder]` = dealers it
        accuses, default none); with no complaint open the market moves on to SUBMIT."""
        complaints = complaints or {}
        round = self.round()
        court = self.court
        for group in self.groups():
            for holder in group:
                if self.market.do_status(self.task, round, holder) != STATUS_COMMITTED:
                    continue
                if court.settled(self.task, round, holder):
                    continue
                accused = complaints.get(holder, ())
                mask = sum(1 << group.index(d) for d in accused)
                self.settle(holder, mask, len(accused))
        self.market.advance(self.task)

    def settle(self, holder: str, mask: int, complaints: int | None = None) -> None:
        """`holder` files complaints (bit `p`: the member at group position `p`) with their
        deposit, `reward_per_do` each (approved to the court for a token task)."""
        count = bin(mask).count("1") if complaints is None else complaints
        deposit = count * self.cfg["reward_per_do"]
        court = self.court
        if self.token is not None:
            self.token.approve(court.address, deposit, sender=holder)
            deposit = 0
        court.settle(self.task, self.round(), mask, value=deposit, sender=holder)

    def deposit(self, mask: int) -> int:
        """The ETH a holder sends with complaints `mask` (bit `p`: position `p`)."""
        return bin(mask).count("1") * self.cfg["reward_per_do"]

    def close_registration(self, block_hash: bytes | None = None) -> None:
        """From REGISTER (full, or at its deadline): DRAW, then the draw a block later."""
        self.advance_after_deadline()
        self.draw(block_hash)

    def draw(self, block_hash: bytes | None = None) -> None:
        """In DRAW: the next block draws the groups from the closing block's hash
        (`block_hash`; titanoboa's fixed one by default)."""
        target = self.market.draw_block(self.task)
        boa.env.time_travel(blocks=max(0, target + 1 - boa.env.evm.patch.block_number))
        if block_hash is not None:
            boa.env.evm.patch.prev_hashes = [block_hash, *list(boa.env.evm.patch.prev_hashes)[1:]]
        self.market.advance(self.task)

    def advance_after_deadline(self) -> None:
        boa.env.time_travel(seconds=max(0, self.market.deadline(self.task) - boa.env.timestamp))
        self.market.advance(self.task)

    def start(self, dos: Sequence[str]) -> None:
        """Create, publish round 0, register `dos` and close registration: round 0 in SHARE."""
        self.create()
        self.publish(0)
        self.register(dos)
        self.close_registration()

    def play_round(
        self,
        committers: Iterable[str],
        submitters: Iterable[str],
        unmaskers: Iterable[str] | None = None,
    ) -> None:
        """From SHARE: the given data owners commit, submit and unmask (default: the first `t`
        of each group); SHARE, SETTLE (no complaints) and SUBMIT close at their deadlines."""
        for do in committers:
            self.commit(do)
        self.advance_after_deadline()
        self.advance_after_deadline()
        for do in submitters:
            self.submit(do)
        self.advance_after_deadline()
        for do in self.first_of_groups() if unmaskers is None else unmaskers:
            self.unmask(do)
