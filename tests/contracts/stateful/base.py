"""The market's state machine: rules, ledger and invariants (what each action draws:
`strategies.py`; the tests that run it: `test_market_stateful.py`, `test_mutant.py`).

Several model owners, data owners and an attacker drive many concurrent ETH and ERC-20 tasks
through random phases, time jumps, dropouts, and invalid and duplicate messages.

A plain Python model predicts whether each call must succeed (then it is made and the model
updated) or revert, and with which reason (then it must revert with it). A ledger of credits,
escrow and bonds is updated with each successful call; the invariants compare it with the
contract after every step, and the rewards the contract's `Credited` events paid, per (task,
round, data owner), with the ledger.

The contracts are deployed once per test (`deploy`) and every example runs inside
`boa.env.anchor()`, so each starts from that snapshot and leaves nothing behind. Every call is
reported to the target's recorder (tests/fuzzing/recorder.py): successes and reverts by reason
per entry point, steps, and the phases each task went through as the contract reports them.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import boa
from boa.contracts.base_evm_contract import BoaError
from eth_utils import keccak
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from protocol.commitments import model_digest
from protocol.constants import (
    GROUP_FAILED,
    GROUP_FINALIZED,
    GROUP_PENDING,
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    MIN_DURATION,
    PHASE_CANCELLED,
    PHASE_DRAW,
    PHASE_ENDED,
    PHASE_REGISTER,
    PHASE_ROUND_DONE,
    PHASE_SETTLE,
    PHASE_SHARE,
    PHASE_SUBMIT,
    PHASE_UNMASK,
    STATUS_COMMITTED,
    STATUS_NONE,
    STATUS_SUBMITTED,
    STATUS_UNMASKED,
)
from protocol.shamir import random_secret, split_secret
from tests.contracts.market import (
    ETH,
    as_struct,
    config,
    digest_of,
    events,
    model_bytes,
    seeded_randbytes,
    share_tree,
    shares_by_position,
)
from tests.contracts.stateful.strategies import (
    ACTIONS,
    ATTACKER,
    DATA_OWNERS,
    EVERYONE,
    INITIAL_TASKS,
    MAX_TASKS,
    weighted_actions,
)
from tests.fuzzing.recorder import Recorder, recorder

ROOT = Path(__file__).resolve().parents[3]
MOCKS = ROOT / "tests" / "contracts" / "mocks"
FUNDS = 10**24
TOKENS = [boa.load_partial(str(MOCKS / f"{name}.vy")) for name in ("ERC20", "ERC20NoReturn")]


@dataclass(frozen=True)
class Deployment:
    """The contracts one machine runs against, deployed once per test."""

    market: object
    court: object
    desk: object
    tokens: list


def deploy(market_source: Path, court_source: Path, deployer_name: str) -> Deployment:
    """Compile and deploy the market (with its court) and the mock tokens, fund and mint to
    every actor. `deployer_name`: an account of each test's own, so that contracts created (and
    rolled back) by different tests never share an address, which titanoboa would otherwise
    confuse in its address registry."""
    deployer = boa.env.generate_address(deployer_name)
    for account in EVERYONE:
        boa.env.set_balance(account, FUNDS)
    court = boa.load_partial(str(court_source)).deploy(sender=deployer)
    desk_source = market_source.with_name("DeliveryDesk.vy")
    desk = boa.load_partial(str(desk_source)).deploy(sender=deployer)
    market = boa.load_partial(str(market_source)).deploy(
        court.address, desk.address, sender=deployer
    )
    tokens = [partial.deploy(sender=deployer) for partial in TOKENS]
    for token in tokens:
        for account in EVERYONE:
            token.mint(account, FUNDS)
    return Deployment(market, court, desk, tokens)


def _first(*checks: tuple[bool, str]) -> str | None:
    """The reason of the first check that refuses the call (the contract's order), or None."""
    return next((reason for refused, reason in checks if refused), None)


# phases in which a model owner may reclaim
RESOLVED = (PHASE_ROUND_DONE, PHASE_ENDED, PHASE_CANCELLED)

# the market's entry points that may move a task's phase (the recorder follows them)
PHASE_MOVERS = frozenset({"create_task", "advance", "unmask", "open_round", "end_task"})

# what each `flaw` (0..3) of an unmask message breaks first, as `_unmask` spoils it
UNMASK_FLAWS = (
    "commitments: bad proof",
    "commitments: wrong kind",
    "commitments: missing reveal",
    "commitments: wrong dealer",
)


def revert_reason(error: BoaError) -> str:
    """The reason string (or `# dev:` comment) of the frame that reverted."""
    frame = error.stack_trace.last_frame
    if isinstance(frame, str):
        return frame
    if frame.dev_reason is not None:
        return frame.dev_reason.reason_str
    return frame.pretty_vm_reason or ""


@dataclass
class TaskModel:
    """What the contract must hold for one task, kept by hand."""

    id: int
    owner: str
    cfg: dict
    token: str
    deadline: int
    phase: int = PHASE_REGISTER
    round: int = 0
    rounds_opened: int = 0
    members: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    digest: dict = field(default_factory=dict)  # round -> published model digest
    status: dict = field(default_factory=dict)  # (round, do) -> STATUS_*
    words_in: dict = field(default_factory=dict)  # (round, do) -> words submitted
    chunks: dict = field(default_factory=dict)  # (round, do) -> chunks submitted
    unmasks: dict = field(default_factory=dict)  # (round, group) -> accepted unmask messages
    result: dict = field(default_factory=dict)  # (round, group) -> GROUP_*
    commits: dict = field(default_factory=dict)  # do -> rounds it committed in
    settled: set = field(default_factory=set)  # (round, do) that settled (no complaints here)
    dealt: dict = field(default_factory=dict)  # (round, do) -> (DealtShares, shares, points)
    draw_block: int = 0  # in DRAW: the block whose hash draws the groups
    # (round, dealer, holder) -> "open" | "answered" | "refunded": complaints with deposits
    complaints: dict = field(default_factory=dict)
    exposed: set = field(default_factory=set)  # (round, dealer) that answered a complaint

    @property
    def words(self) -> int:
        lanes = 256 // self.cfg["lane_bits"]
        return -(-self.cfg["d"] // lanes)

    def st(self, do: str, round: int | None = None) -> int:
        return self.status.get((self.round if round is None else round, do), STATUS_NONE)

    def group_index(self, do: str) -> int:
        return next(g for g, members in enumerate(self.groups) if do in members)

    def open_against(self, round: int, dealer: str) -> int:
        return sum(
            1
            for (r, d, _), state in self.complaints.items()
            if (r, d) == (round, dealer) and state == "open"
        )

    def submitted(self, members) -> list:
        return [do for do in members if self.st(do) >= STATUS_SUBMITTED]


class MarketBase(RuleBasedStateMachine):
    """Run it as Curve's tests do: set `deployment` (and `target`, the recorder's name) on a
    subclass, then `run_state_machine_as_test(subclass, settings=...)`."""

    deployment: ClassVar[Deployment]
    target: ClassVar[str] = "market_stateful"

    def __init__(self):
        super().__init__()
        # each example starts from the deployment's snapshot and leaves nothing behind
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.recorder: Recorder = recorder(self.target)
        self.steps = 0
        # per task, the phases it went through (the recorder's phase sequences)
        self.phases: dict[int, list[int]] = {}
        self.moved: set[int] = set()
        # whether the last step changed the chain (a successful call): a reverted call or a
        # time jump changes nothing the invariants read, so they are not recomputed after one
        self.changed = True
        self.market = self.deployment.market
        self.court = self.deployment.court
        self.desk = self.deployment.desk
        self.tokens = self.deployment.tokens
        self.token_addresses = [ETH, *(t.address for t in self.tokens)]
        self.tasks: list[TaskModel] = []
        # the ledger: every unit of value the market holds is in exactly one of these
        self.credits: dict[tuple[str, str], int] = {}
        self.escrow: dict[int, int] = {}
        self.bonds: dict[tuple[int, str], int] = {}
        self.credited: dict[tuple[int, int, str], int] = {}
        # the court's own ledger: credits (deposits paid out or refunded) and deposits held
        self.court_credits: dict[tuple[str, str], int] = {}
        self.deposits: dict[int, int] = {}
        # every share made public by an unmask: (task, round, dealer, kind) -> holders
        self.public_shares: dict[tuple[int, int, str, int], set] = {}
        # the rewards the contract's `Credited` events paid, per (task, round, data owner)
        self.credited_events: dict[tuple[int, int, str], int] = {}
        # tasks a step acted on: the per-member invariants read the contract for these only
        self.touched: set[int] = set()

    # -- helpers -------------------------------------------------------------------------------

    def _now(self) -> int:
        return boa.env.timestamp

    def _task(self, i: int) -> TaskModel:
        """Even `i` prefer tasks still running (most messages are about them), odd any task."""
        live = [t for t in self.tasks if t.phase not in (PHASE_ENDED, PHASE_CANCELLED)]
        pool = live if live and i % 2 == 0 else self.tasks
        task = pool[(i // 2) % len(pool)]
        self.touched.add(task.id)
        return task

    def _resolved_task(self, i: int) -> TaskModel:
        """Even `i` prefer tasks between rounds, odd `i` tasks over; else any task."""
        wanted = (PHASE_ROUND_DONE,) if i % 2 == 0 else (PHASE_ENDED, PHASE_CANCELLED)
        pool = [t for t in self.tasks if t.phase in wanted] or self.tasks
        task = pool[(i // 2) % len(pool)]
        self.touched.add(task.id)
        return task

    def _credited(self, contract=None) -> list[tuple]:
        """(task, token, account, amount) of each `Credited` event of the last call to
        `contract` (the market by default)."""
        logs = events(contract or self.market, "Credited")
        return [(e.task, e.token, e.account, e.amount) for e in logs]

    def _credit(self, token: str, account: str, amount: int) -> None:
        self.credits[(token, account)] = self.credits.get((token, account), 0) + amount

    def _token(self, address: str):
        return next(t for t in self.tokens if t.address == address)

    def _pay_in(self, token: str, payer: str, amount: int) -> int:
        """Approve a token pull, or return the ETH value to send."""
        if token == ETH:
            return amount
        self._token(token).approve(self.market.address, amount, sender=payer)
        return 0

    def _enter(self, t: TaskModel, phase: int, duration: int) -> None:
        t.phase, t.deadline = phase, self._now() + duration

    def _finish_round(self, t: TaskModel) -> None:
        if t.round + 1 == t.cfg["rounds"]:
            self._enter(t, PHASE_ENDED, 0)
        else:
            self._enter(t, PHASE_ROUND_DONE, t.cfg["register_duration"])

    def _open(self, t: TaskModel, round: int) -> None:
        t.round = round
        t.rounds_opened = round + 1
        self._enter(t, PHASE_SHARE, t.cfg["share_duration"])

    def _reclaimable(self, t: TaskModel) -> int:
        if t.phase in (PHASE_ENDED, PHASE_CANCELLED):
            return self.escrow[t.id]
        if t.phase != PHASE_ROUND_DONE:
            return 0
        cfg = t.cfg
        return self.escrow[t.id] - cfg["reward_per_do"] * cfg["max_dos"] * (
            cfg["rounds"] - t.round - 1
        )

    def _pick(self, t: TaskModel, who: int, preferred: list) -> str:
        """An actor for a rule: mostly one of `preferred` (e.g. the members that may act),
        sometimes another data owner of the task, or the attacker."""
        if who == 0:
            return ATTACKER
        pool = preferred if preferred and who > 2 else (t.members or DATA_OWNERS)
        return pool[who % len(pool)]

    def _call(self, refused: str | None, fn, *args, **kwargs):
        """Call `fn`: it must succeed if `refused` is None, else revert with that reason."""
        name = fn.func_t.name
        self._observe()
        if refused is None:
            result = fn(*args, **kwargs)
            self.changed = True
            if name in PHASE_MOVERS:
                self.moved.add(result if name == "create_task" else args[0])
            # `--hypothesis-show-statistics`: in how many examples each call succeeded
            event(f"{name} succeeded")
            self.recorder.success(name)
            return result
        with boa.reverts(refused):
            fn(*args, **kwargs)
        self.recorder.revert(name, refused)
        return None

    # -- rules ---------------------------------------------------------------------------------
    # Few rules, each with a weighted choice of what to do: Hypothesis picks rules uniformly (and
    # switches some off per example), so weights inside the rules steer tasks deep into rounds.

    @initialize(**INITIAL_TASKS)
    def two_tasks(self, owners, tokens, sizes, rounds):
        """Every example starts with two tasks, so that no example is spent without any."""
        for owner, token, m, r in zip(owners, tokens, sizes, rounds, strict=True):
            self.create_task(
                owner, token, m, 2, m, r, 10**4, 10**5, 9, 32, 1_000, (400,) * 4, False
            )

    @rule(action=weighted_actions, data=st.data())
    def step(self, action, data):
        """One action of some actor, picked by weight. A single rule on purpose: Hypothesis's
        swarm testing switches rules off per example, which would starve tasks of progress."""
        if action == "create_task" and len(self.tasks) >= MAX_TASKS:
            action = "time_jump"
        self.steps += 1
        self.changed = False
        _, strategies = ACTIONS[action]
        getattr(self, action)(**{name: data.draw(s, label=name) for name, s in strategies.items()})
        self._observe()

    def create_task(
        self,
        owner,
        token,
        m,
        extra,
        t,
        rounds,
        reward,
        bond,
        d,
        lane_bits,
        sample_cap,
        durations,
        bad_value,
    ):
        max_dos = m + extra
        cfg = config(
            d=d,
            lane_bits=lane_bits,
            scale_bits=lane_bits // 2,
            sample_cap=sample_cap,
            rounds=rounds,
            max_dos=max_dos,
            min_dos=m + extra // 2,
            group_size=m,
            threshold=min(t, m),
            reward_per_do=reward,
            bond=bond,
            token=self.token_addresses[token],
            register_duration=durations[0],
            share_duration=durations[1],
            submit_duration=durations[2],
            unmask_duration=durations[3],
        )
        escrow = reward * max_dos * rounds
        value = self._pay_in(cfg["token"], owner, escrow)
        if bad_value:
            value += 1
        refused = _first(
            # a count lane that could wrap in a group of 2m - 1 members
            (
                not 1 <= sample_cap * (2 * m - 1) < 2 ** (lane_bits - 1),
                "rounds: bad sample cap",
            ),
            # the attacker's hostile terms: a phase too short to act in (forfeits every bond)
            (min(durations) < MIN_DURATION, "rounds: bad duration"),
            (bad_value, "escrow: wrong escrow value"),
        )
        task = self._call(
            refused, self.market.create_task, as_struct(cfg), b"", value=value, sender=owner
        )
        if task is not None:
            assert task == len(self.tasks) + 1
            deadline = self._now() + cfg["register_duration"]
            self.tasks.append(TaskModel(task, owner, cfg, cfg["token"], deadline))
            self.escrow[task] = escrow

    def model_owner_acts(self, i, action, by_attacker, good):
        """The model owner (or the attacker in its place) publishes, opens, ends or reclaims."""
        t = self._task(i)
        sender = ATTACKER if by_attacker else t.owner
        getattr(self, f"_{action}")(t, sender, good)

    def data_owner_acts(self, i, action, who, flaw, size):
        """One data owner (or the attacker) sends one message, sometimes flawed (`flaw` < 4)."""
        t = self._task(i)
        if action == "register":
            self._register(t, self._pick(t, who, DATA_OWNERS), flaw)
        elif action == "commit":
            pool = [m for m in t.members if t.st(m) == STATUS_NONE]
            self._commit(t, self._pick(t, who, pool), flaw)
        elif action == "submit":
            pool = [m for m in t.members if t.st(m) == STATUS_COMMITTED]
            self._submit(t, self._pick(t, who, pool), size, flaw)
        elif action == "unmask":
            pool = [m for m in t.members if t.st(m) == STATUS_SUBMITTED]
            self._unmask(t, self._pick(t, who, pool), flaw)
        elif action == "complain":
            pool = [m for m in t.members if t.st(m) == STATUS_COMMITTED]
            self._complain(t, self._pick(t, who, pool), who)
        elif action == "answer":
            pool = [d for (r, d, _), st_ in t.complaints.items() if r == t.round and st_ == "open"]
            self._answer(t, self._pick(t, who, pool))
        elif action == "refund":
            self._refund(t)
        else:
            pool = [m for m in t.members if (t.id, m) in self.bonds]
            self._release_bond(t, self._pick(t, who, pool), by_attacker=flaw % 2 == 0)

    def crowd(self, i, dropout, k, size, wait):
        """Everyone acts as the phase asks, but one dropout (or only `k` register/unmask);
        then the phase is closed if it is complete, or sometimes after waiting for its deadline."""
        t = self._task(i)
        if t.phase == PHASE_REGISTER:
            if t.digest.get(0) != t.cfg["model_hash"]:
                self._publish(t, t.owner, good=True)
            # k > 2: fill the task, so registration closes early
            for do in [do for do in DATA_OWNERS if do not in t.members][: k if k < 3 else 6]:
                self._register(t, do, flaw=99)
        elif t.phase == PHASE_DRAW:
            boa.env.time_travel(blocks=1)  # the draw waits for a block after the closing one
        elif t.phase == PHASE_SHARE:
            for n, do in enumerate(list(t.members)):
                if n != dropout and t.st(do) == STATUS_NONE:
                    self._commit(t, do, flaw=99)
        elif t.phase == PHASE_SETTLE:
            if k == 1 and t.members:
                # one holder complains; the dealer answers (and sits the round out), or, for
                # size 3, stays silent and is excluded when SETTLE closes
                self._complain(t, t.members[0], who=size)
                accused = [
                    d for (r, d, _), s_ in t.complaints.items() if r == t.round and s_ == "open"
                ]
                if accused and size != 3:
                    self._answer(t, accused[0])
            for n, do in enumerate(list(t.members)):
                if n != dropout and t.st(do) == STATUS_COMMITTED:
                    self._settle(t, do)
        elif t.phase == PHASE_SUBMIT:
            for n, do in enumerate(list(t.members)):
                while n != dropout and t.st(do) == STATUS_COMMITTED:
                    before = t.words_in.get((t.round, do), 0)
                    self._submit(t, do, size, flaw=99)
                    if t.words_in.get((t.round, do), 0) == before:
                        break  # refused as the model predicted (deadline passed)
        elif t.phase == PHASE_UNMASK:
            for do in [m for m in t.members if t.st(m) == STATUS_SUBMITTED][:k]:
                self._unmask(t, do, flaw=99)
        if t.phase not in (PHASE_ENDED, PHASE_CANCELLED):
            self._advance(t, ATTACKER, wait)
        if t.phase == PHASE_ROUND_DONE:
            # the round is resolved (maybe by this very advance): the owner acts at once, before
            # other tasks' deadlines let its window pass; mostly it opens the next round
            if dropout < 3:
                self.settle_up_task(t, end=True)
            else:
                self._publish(t, t.owner, good=True)
                self._open_round(t, t.owner, good=True)

    def settle_up(self, i, end):
        """A model owner settles up once a round is resolved: `crowd` mostly reopens rounds
        (and a window to open one soon passes), so `end_task` and `reclaim` need this path."""
        self.settle_up_task(self._resolved_task(i), end=end > 0)

    def settle_up_task(self, t: TaskModel, end: bool) -> None:
        """Between rounds the owner reclaims what no data owner can be owed any more and, if
        `end`, ends the task; once the task is over it reclaims the rest, and every bond still
        held is released."""
        if t.phase == PHASE_ROUND_DONE:
            self._reclaim(t, t.owner, good=True)
            if end:
                self._end_task(t, t.owner, good=True)
        if any(state == "open" for state in t.complaints.values()):
            self._refund(t)
        if t.phase in (PHASE_ENDED, PHASE_CANCELLED):
            self._reclaim(t, t.owner, good=True)
            for do in [m for m in t.members if (t.id, m) in self.bonds]:
                self._release_bond(t, do, by_attacker=False)

    def advance(self, i, caller, wait):
        """Anyone advances, after waiting until `wait` seconds from the deadline (None: now)."""
        self._advance(self._task(i), caller, wait)

    def withdraw(self, account, token):
        address = self.token_addresses[token]
        owed = self.court_credits.get((address, account), 0)
        if owed:
            before = self._balance(address, account)
            self._call(None, self.court.withdraw, address, sender=account)
            self.court_credits[(address, account)] = 0
            assert self._balance(address, account) == before + owed
        amount = self.credits.get((address, account), 0)
        before = self._balance(address, account)
        refused = "escrow: nothing to withdraw" if amount == 0 else None
        self._call(refused, self.market.withdraw, address, sender=account)
        if amount > 0:
            self.credits[(address, account)] = 0
            assert self._balance(address, account) == before + amount

    def time_jump(self, seconds):
        boa.env.time_travel(seconds=seconds)

    # -- model owner actions: predict, call, update the model ----------------------------------

    def _publish(self, t: TaskModel, sender: str, good: bool) -> None:
        target = t.round + 1 if t.phase == PHASE_ROUND_DONE else 0
        data = model_bytes(target) if good else b"junk"
        refused = _first(
            (sender != t.owner, "delivery: not the model owner"),
            (t.phase not in (PHASE_REGISTER, PHASE_ROUND_DONE), "delivery: wrong phase"),
            (self._now() >= t.deadline, "delivery: deadline passed"),
        )
        self._call(refused, self.desk.publish_model, t.id, target, data, sender=sender)
        if refused is None:
            t.digest[target] = model_digest(t.digest.get(target, bytes(32)), data)

    def _open_round(self, t: TaskModel, sender: str, good: bool) -> None:
        target = t.round + 1
        model_hash = digest_of(model_bytes(target)) if good else keccak(b"unpublished")
        refused = _first(
            (sender != t.owner, "rounds: not the model owner"),
            (t.phase != PHASE_ROUND_DONE, "rounds: wrong phase"),
            (self._now() >= t.deadline, "rounds: deadline passed"),
            (t.digest.get(target) != model_hash, "commitments: model hash mismatch"),
        )
        self._call(refused, self.market.open_round, t.id, target, model_hash, sender=sender)
        if refused is None:
            self._open(t, target)

    def _end_task(self, t: TaskModel, sender: str, good: bool) -> None:
        refused = _first(
            (sender != t.owner, "rounds: not the model owner"),
            (t.phase != PHASE_ROUND_DONE, "rounds: wrong phase"),
            (self._now() >= t.deadline, "rounds: deadline passed"),
        )
        self._call(refused, self.market.end_task, t.id, sender=sender)
        if refused is None:
            self._enter(t, PHASE_ENDED, 0)

    def _reclaim(self, t: TaskModel, sender: str, good: bool) -> None:
        amount = self._reclaimable(t)
        refused = _first(
            (sender != t.owner, "rounds: not the model owner"),
            (
                t.phase not in (PHASE_ROUND_DONE, PHASE_ENDED, PHASE_CANCELLED),
                "escrow: round unresolved",
            ),
            (amount == 0, "escrow: nothing to reclaim"),
        )
        if self._call(refused, self.market.reclaim, t.id, sender=sender) is not None:
            assert self._credited() == [(t.id, t.token, t.owner, amount)]
            self.escrow[t.id] -= amount
            self._credit(t.token, t.owner, amount)

    # -- data owner actions: `flaw` 0..3 spoils the message, anything else leaves it valid -----

    def _register(self, t: TaskModel, do: str, flaw: int) -> None:
        """Flaws: 0 the model owner registers itself, 1 a wrong bond."""
        if flaw == 0:
            do = t.owner
        bond = t.cfg["bond"]
        value = self._pay_in(t.token, do, bond) + (flaw == 1)
        refused = _first(
            (t.phase != PHASE_REGISTER, "rounds: wrong phase"),
            (self._now() >= t.deadline, "rounds: deadline passed"),
            (do == t.owner, "registry: owner cannot register"),
            (do in t.members, "registry: already registered"),
            (len(t.members) >= t.cfg["max_dos"], "registry: task full"),
            (flaw == 1, "escrow: wrong bond value"),
        )
        key, endpoint = keccak(do.encode()), "127.0.0.1:1"
        self._call(refused, self.market.register, t.id, key, endpoint, value=value, sender=do)
        if refused is None:
            t.members.append(do)
            if bond:
                self.bonds[(t.id, do)] = bond

    def _settle(self, t: TaskModel, do: str) -> None:
        """A committed member settles with no complaint (complaints: tests/contracts/unitary)."""
        half = t.cfg["share_duration"] // 2
        refused = _first(
            (t.phase != PHASE_SETTLE, "court: wrong phase"),
            (self._now() >= t.deadline, "court: deadline passed"),
            (self._now() + half >= t.deadline, "court: complaints closed"),
            (t.st(do) != STATUS_COMMITTED, "court: not committed"),
            ((t.round, do) in t.settled, "court: already settled"),
        )
        self._call(refused, self.court.settle, t.id, t.round, 0, sender=do)
        if refused is None:
            t.settled.add((t.round, do))

    def _complain(self, t: TaskModel, holder: str, who: int) -> None:
        """A holder files one complaint, with its deposit, against a committed dealer of its
        group (true or false: the court cannot tell, the deposit prices it)."""
        group = t.groups[t.group_index(holder)] if holder in t.members and t.groups else []
        dealers = [d for d in group if d != holder and t.st(d) == STATUS_COMMITTED]
        if not dealers:
            return
        dealer = dealers[who % len(dealers)]
        reward = t.cfg["reward_per_do"]
        half = t.cfg["share_duration"] // 2
        refused = _first(
            (t.phase != PHASE_SETTLE, "court: wrong phase"),
            (self._now() >= t.deadline, "court: deadline passed"),
            (self._now() + half >= t.deadline, "court: complaints closed"),
            (t.st(holder) != STATUS_COMMITTED, "court: not committed"),
            ((t.round, holder) in t.settled, "court: already settled"),
            (1 + t.cfg["threshold"] > len(group), "court: too many complaints"),
        )
        value = reward
        if t.token != ETH:
            self._token(t.token).approve(self.court.address, reward, sender=holder)
            value = 0
        mask = 1 << group.index(dealer)
        self._call(refused, self.court.settle, t.id, t.round, mask, value=value, sender=holder)
        if refused is None:
            t.settled.add((t.round, holder))
            t.complaints[(t.round, dealer, holder)] = "open"
            self.deposits[t.id] = self.deposits.get(t.id, 0) + reward

    def _answer(self, t: TaskModel, dealer: str) -> None:
        """The accused dealer answers: it is paid the deposit and may not submit this round."""
        holders = [
            h
            for (r, d, h), st_ in t.complaints.items()
            if (r, d) == (t.round, dealer) and st_ == "open"
        ]
        if not holders or (t.round, dealer) not in t.dealt:
            return
        holder = holders[0]
        dealt, shares, points = t.dealt[(t.round, dealer)]
        p = t.groups[t.group_index(dealer)].index(holder)
        refused = _first(
            (t.phase != PHASE_SETTLE, "court: wrong phase"),
            (self._now() >= t.deadline, "court: deadline passed"),
        )
        args = (
            t.id,
            t.round,
            holder,
            [*shares[(p, KIND_SELF_SEED)], *shares[(p, KIND_MASK_KEY)]],
            dealt.proof(p, KIND_SELF_SEED),
            dealt.proof(p, KIND_MASK_KEY),
            points,
        )
        self._call(refused, self.court.answer, *args, sender=dealer)
        if refused is None:
            t.complaints[(t.round, dealer, holder)] = "answered"
            t.exposed.add((t.round, dealer))
            reward = t.cfg["reward_per_do"]
            self.deposits[t.id] -= reward
            key = (t.token, dealer)
            self.court_credits[key] = self.court_credits.get(key, 0) + reward

    def _refund(self, t: TaskModel) -> None:
        """Anyone refunds the deposit of a complaint its dealer never answered, once SETTLE of
        its round is over."""
        for (round, dealer, holder), state in list(t.complaints.items()):
            if state != "open":
                continue
            over = t.round > round or t.phase not in (PHASE_SHARE, PHASE_SETTLE)
            refused = None if over else "court: settle not over"
            self._call(refused, self.court.refund, t.id, round, dealer, holder, sender=ATTACKER)
            if refused is None:
                t.complaints[(round, dealer, holder)] = "refunded"
                reward = t.cfg["reward_per_do"]
                self.deposits[t.id] -= reward
                key = (t.token, holder)
                self.court_credits[key] = self.court_credits.get(key, 0) + reward
            return

    def _commit(self, t: TaskModel, do: str, flaw: int) -> None:
        """Flaws: 0 the wrong round, 1 an empty root."""
        round = t.round + (flaw == 0)
        refused = _first(
            (t.phase != PHASE_SHARE, "rounds: wrong phase"),
            (flaw == 0, "rounds: wrong round"),
            (self._now() >= t.deadline, "rounds: deadline passed"),
            (do not in t.members, "registry: not a member"),
            (t.st(do) != STATUS_NONE, "rounds: already committed"),
            (flaw == 1, "commitments: empty shares root"),
        )
        dealt, shares, root = None, {}, keccak(b"not a tree")
        points = bytes(128 * t.cfg["threshold"])
        if do in t.members and t.groups:
            members = t.groups[t.group_index(do)]
            # real Pedersen dealings, seeded: the court checks every revealed share against them
            randbytes = seeded_randbytes(b"%d/%d/" % (t.id, round) + bytes.fromhex(do[2:]))
            dealings = {
                kind: split_secret(
                    random_secret(randbytes), t.cfg["threshold"], len(members), randbytes
                )
                for kind in (KIND_SELF_SEED, KIND_MASK_KEY)
            }
            shares = shares_by_position(
                dealings[KIND_SELF_SEED], dealings[KIND_MASK_KEY], len(members)
            )
            dealt = share_tree(t.id, round, do, members, shares)
            root = bytes(32) if flaw == 1 else dealt.root
            points = dealings[KIND_SELF_SEED].commitments + dealings[KIND_MASK_KEY].commitments
        mask = keccak(b"mask" + do.encode())
        self._call(refused, self.market.commit_shares, t.id, round, mask, root, points, sender=do)
        if refused is None:
            t.status[(round, do)] = STATUS_COMMITTED
            t.dealt[(round, do)] = (dealt, shares, points)
            t.commits[do] = t.commits.get(do, 0) + 1

    def _submit(self, t: TaskModel, do: str, size: int, flaw: int) -> None:
        """Flaws: 0 skips a chunk index, 1 overflows the update, 2 is empty, 3 replays a chunk."""
        key = (t.round, do)
        received = t.words_in.get(key, 0)
        size = max(1, min(size, t.words - received))
        words = [
            int.from_bytes(keccak(f"{t.id}/{key}/{received + k}".encode()), "big")
            for k in range(size)
        ]
        index = t.chunks.get(key, 0) + (flaw == 0) - (flaw == 3 and key in t.chunks)
        if flaw == 1:
            words += [0] * (t.words - received - len(words) + 1)
        elif flaw == 2:
            words = []
        refused = _first(
            (t.phase != PHASE_SUBMIT, "rounds: wrong phase"),
            (self._now() >= t.deadline, "rounds: deadline passed"),
            (t.st(do) == STATUS_NONE, "rounds: not committed"),
            (t.st(do) != STATUS_COMMITTED, "rounds: already submitted"),
            ((t.round, do) in t.exposed, "rounds: shares exposed"),
            (index != t.chunks.get(key, 0), "rounds: wrong chunk index"),
            (flaw == 2, "rounds: empty chunk"),
            (flaw == 1, "rounds: too many words"),
        )
        self._call(refused, self.market.submit, t.id, t.round, index, words, sender=do)
        if refused is None:
            t.chunks[key] = index + 1
            t.words_in[key] = received + len(words)
            if t.words_in[key] == t.words:
                t.status[key] = STATUS_SUBMITTED

    def _reveals(self, t: TaskModel, holder: str) -> list:
        if holder not in t.members or not t.groups:
            return []
        members = t.groups[t.group_index(holder)]
        position = members.index(holder)
        out = []
        for dealer in members:
            status = t.st(dealer)
            if status == STATUS_NONE:
                continue
            kind = KIND_SELF_SEED if status >= STATUS_SUBMITTED else KIND_MASK_KEY
            dealt, shares, points = t.dealt[(t.round, dealer)]
            share, blind = shares[(position, kind)]
            out.append((dealer, kind, share, blind, dealt.proof(position, kind), points))
        return out

    def _unmask(self, t: TaskModel, do: str, flaw: int) -> None:
        """Flaws: 0 an altered share, 1 the other secret's kind, 2 a missing reveal, 3 two
        dealers swapped."""
        reveals = self._reveals(t, do)
        spoiled = len(reveals) > 1 and flaw < 4
        if spoiled and flaw == 0:
            dealer, kind, share, blind, proof, points = reveals[-1]
            reveals[-1] = (dealer, kind, keccak(share), blind, proof, points)
        elif spoiled and flaw == 1:
            dealer, kind, share, blind, proof, points = reveals[0]
            reveals[0] = (dealer, 1 - kind, share, blind, proof, points)
        elif spoiled and flaw == 2:
            reveals = reveals[:-1]
        elif spoiled:
            reveals[0], reveals[1] = reveals[1], reveals[0]
        # the contract reads a non-member's group as group 0
        group = t.group_index(do) if do in t.members and t.groups else 0
        refused = _first(
            (t.phase != PHASE_UNMASK, "court: wrong phase"),
            (self._now() >= t.deadline, "court: deadline passed"),
            (t.st(do) == STATUS_UNMASKED, "rounds: already unmasked"),
            (t.st(do) != STATUS_SUBMITTED, "rounds: not a submitter"),
            (t.result.get((t.round, group)) != GROUP_PENDING, "rounds: group not pending"),
            (spoiled, UNMASK_FLAWS[min(flaw, 3)]),
        )
        self._call(refused, self.court.unmask, t.id, t.round, reveals, sender=do)
        if refused is not None:
            return
        for e in events(self.court, "ShareRevealed"):
            key = (t.id, t.round, e.dealer, e.kind)
            self.public_shares.setdefault(key, set()).add(e.holder)
        for task, token, account, amount in self._credited(self.court):
            assert (task, token, amount) == (t.id, t.token, t.cfg["reward_per_do"])
            key = (task, t.round, account)
            self.credited_events[key] = self.credited_events.get(key, 0) + 1
        g = t.group_index(do)
        t.status[(t.round, do)] = STATUS_UNMASKED
        t.unmasks[(t.round, g)] = t.unmasks.get((t.round, g), 0) + 1
        if t.unmasks[(t.round, g)] < t.cfg["threshold"]:
            return
        t.result[(t.round, g)] = GROUP_FINALIZED
        for member in t.submitted(t.groups[g]):
            self.escrow[t.id] -= t.cfg["reward_per_do"]
            self._credit(t.token, member, t.cfg["reward_per_do"])
            key = (t.id, t.round, member)
            self.credited[key] = self.credited.get(key, 0) + 1
        if all(t.result[(t.round, k)] != GROUP_PENDING for k in range(len(t.groups))):
            self._finish_round(t)

    def _release_bond(self, t: TaskModel, do: str, by_attacker: bool) -> None:
        amount = self.bonds.get((t.id, do), 0)
        refused = _first(
            (t.phase not in (PHASE_ENDED, PHASE_CANCELLED), "escrow: task not over"),
            (amount == 0, "escrow: no bond held"),
        )
        sender = ATTACKER if by_attacker else do
        self._call(refused, self.market.release_bond, t.id, do, sender=sender)
        if refused is None:
            del self.bonds[(t.id, do)]
            to = do if t.commits.get(do, 0) == t.rounds_opened else t.owner
            self._credit(t.token, to, amount)

    # -- anyone --------------------------------------------------------------------------------

    def _advance(self, t: TaskModel, caller: str, wait: int | None) -> None:
        if wait is not None and t.deadline + wait > self._now():
            boa.env.time_travel(seconds=t.deadline + wait - self._now())
        over = self._now() >= t.deadline
        cfg = t.cfg
        published = t.digest.get(0) == cfg["model_hash"]
        committed = [do for do in t.members if t.st(do) >= STATUS_COMMITTED]
        block = boa.env.evm.patch.block_number
        if t.phase == PHASE_REGISTER:
            ok = over or (len(t.members) == cfg["max_dos"] and published)
        elif t.phase == PHASE_DRAW:
            # a chain of block hashes, so the closing block's stays readable for 256 blocks
            boa.env.evm.patch.prev_hashes = [
                keccak(b"block %d" % n) for n in range(block - 1, max(-1, block - 257), -1)
            ]
            ok = True
        elif t.phase == PHASE_SHARE:
            ok = over or len(committed) == len(t.members)
        elif t.phase == PHASE_SETTLE:
            settled = [do for do in committed if (t.round, do) in t.settled]
            still_open = sum(t.open_against(t.round, d) for d in committed)
            ok = over or (len(settled) == len(committed) and still_open == 0)
        elif t.phase == PHASE_SUBMIT:
            exposed = [do for do in committed if (t.round, do) in t.exposed]
            ok = over or len(t.submitted(t.members)) + len(exposed) == len(committed)
        else:
            ok = over and t.phase in (PHASE_UNMASK, PHASE_ROUND_DONE)
        refused = _first(
            (t.phase in (PHASE_ENDED, PHASE_CANCELLED), "rounds: task over"),
            (not ok, "rounds: phase not over"),
            # no transaction can close registration and see the draw (a grinder's attempt)
            (t.phase == PHASE_DRAW and block <= t.draw_block, "rounds: draw not ready"),
        )
        self._call(refused, self.market.advance, t.id, sender=caller)
        if refused is not None:
            return
        if t.phase == PHASE_REGISTER:
            if len(t.members) < cfg["min_dos"] or not published:
                assert self._credited() == [(t.id, t.token, t.owner, self.escrow[t.id])]
                self._enter(t, PHASE_CANCELLED, 0)
                self._credit(t.token, t.owner, self.escrow[t.id])
                self.escrow[t.id] = 0
                return
            t.draw_block = block
            self._enter(t, PHASE_DRAW, 0)
        elif t.phase == PHASE_DRAW:
            if block - t.draw_block > 256:
                t.draw_block = block  # out of BLOCKHASH's reach: drawn from this block's hash
                return
            t.groups = [
                list(self.market.group_members(t.id, g))
                for g in range(self.market.group_count(t.id))
            ]
            self._check_groups(t)
            self._open(t, 0)
        elif t.phase == PHASE_SHARE:
            self._enter(t, PHASE_SETTLE, cfg["share_duration"])
        elif t.phase == PHASE_SETTLE:
            for dealer in committed:
                if t.open_against(t.round, dealer):
                    # excluded: its commitment is taken back, so its bond is forfeited
                    t.status[(t.round, dealer)] = STATUS_NONE
                    t.commits[dealer] -= 1
            self._enter(t, PHASE_SUBMIT, cfg["submit_duration"])
        elif t.phase == PHASE_SUBMIT:
            pending = 0
            for g, members in enumerate(t.groups):
                if len(t.submitted(members)) < cfg["threshold"]:
                    t.result[(t.round, g)] = GROUP_FAILED
                else:
                    t.result[(t.round, g)] = GROUP_PENDING
                    pending += 1
            if pending:
                self._enter(t, PHASE_UNMASK, cfg["unmask_duration"])
            else:
                self._finish_round(t)
        elif t.phase == PHASE_UNMASK:
            for g in range(len(t.groups)):
                if t.result[(t.round, g)] == GROUP_PENDING:
                    t.result[(t.round, g)] = GROUP_FAILED
            self._finish_round(t)
        else:
            self._enter(t, PHASE_ENDED, 0)

    def _check_groups(self, t: TaskModel) -> None:
        """Groups partition the members into `n // m` groups, sizes balanced, larger first."""
        n, m = len(t.members), t.cfg["group_size"]
        sizes = [len(g) for g in t.groups]
        assert len(sizes) == n // m
        assert sorted(do for g in t.groups for do in g) == sorted(t.members)
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)

    def _observe(self) -> None:
        """Note the phase of each task a call may have moved, as the contract reports it. Read
        before the next call, not right after one: the rule may still read that call's logs."""
        for task in self.moved:
            phase = self.market.task_phase_of(task)[0]
            seen = self.phases.setdefault(task, [])
            if not seen or seen[-1] != phase:
                seen.append(phase)
        self.moved.clear()

    def teardown(self):
        self.recorder.example(self.steps, [tuple(p) for p in self.phases.values()])
        self._anchor.__exit__(None, None, None)

    # -- invariants ----------------------------------------------------------------------------

    def _balance(self, token: str, account: str) -> int:
        if token == ETH:
            return boa.env.get_balance(account)
        return self._token(token).balanceOf(account)

    @invariant()
    @precondition(lambda self: self.changed)
    def value_is_conserved(self):
        for token in self.token_addresses:
            credits = sum(v for (tok, _), v in self.credits.items() if tok == token)
            escrow = sum(self.escrow[t.id] for t in self.tasks if t.token == token)
            bonds = sum(
                v for (task, _), v in self.bonds.items() if self.tasks[task - 1].token == token
            )
            assert self._balance(token, self.market.address) == credits + escrow + bonds
        for (token, account), amount in self.credits.items():
            assert self.market.credits(token, account) == amount
        for t in self.tasks:
            assert self.market.escrow_remaining(t.id) == self.escrow[t.id]
            for do in t.members:
                assert self.market.bond_of(t.id, do) == self.bonds.get((t.id, do), 0)

    @invariant()
    @precondition(lambda self: self.changed)
    def court_value_is_conserved(self):
        """The court holds exactly the deposits of open complaints and its credits."""
        for token in self.token_addresses:
            credits = sum(v for (tok, _), v in self.court_credits.items() if tok == token)
            held = sum(self.deposits.get(t.id, 0) for t in self.tasks if t.token == token)
            assert self._balance(token, self.court.address) == credits + held
        for (token, account), amount in self.court_credits.items():
            assert self.court.credits(token, account) == amount

    @invariant()
    @precondition(lambda self: self.changed)
    def phases_match(self):
        for t in self.tasks:
            assert self.market.task_phase_of(t.id) == (t.phase, t.round, t.deadline)
            assert self.market.rounds_opened(t.id) == t.rounds_opened

    @invariant()
    @precondition(lambda self: self.changed)
    def credited_iff_submitter_of_finalized_group(self):
        """The ledger for every task; the contract's per-member views for the tasks this step
        touched (a task is compared in full whenever it is acted on)."""
        for t in self.tasks:
            for round in range(t.rounds_opened):
                for g, members in enumerate(t.groups):
                    finalized = t.result.get((round, g)) == GROUP_FINALIZED
                    for do in members:
                        paid = finalized and t.st(do, round) >= STATUS_SUBMITTED
                        assert self.credited.get((t.id, round, do), 0) == int(paid)
                        # exactly one `Credited` event paid it, in the group's t-th unmask
                        assert self.credited_events.get((t.id, round, do), 0) == int(paid)
                        if t.id in self.touched:
                            assert self.market.is_credited(t.id, round, do) == paid
                            assert self.market.do_status(t.id, round, do) == t.st(do, round)
                    if t.id in self.touched:
                        result = t.result.get((round, g), GROUP_PENDING)
                        assert self.market.group_result(t.id, round, g) == result
        # and no reward event went to anyone else (a non-member, an unopened round)
        assert sum(self.credited_events.values()) == sum(self.credited.values())
        self.touched.clear()

    @invariant()
    @precondition(lambda self: self.changed)
    def owner_cannot_take_what_is_owed(self):
        for t in self.tasks:
            assert self.market.reclaimable(t.id) == self._reclaimable(t)
            if t.phase in (
                PHASE_REGISTER,
                PHASE_DRAW,
                PHASE_SHARE,
                PHASE_SETTLE,
                PHASE_SUBMIT,
                PHASE_UNMASK,
            ):
                assert self.market.reclaimable(t.id) == 0

    @invariant()
    @precondition(lambda self: self.changed)
    def no_update_follows_from_public_shares_outside_an_aggregate(self):
        """What the chain made public never rebuilds an individual update: a submitter's mask
        key shares are never revealed, and its seed is public (t shares) only once its group
        finalized, i.e. inside an aggregate of at least t submitters."""
        for (task, round, dealer, kind), holders in self.public_shares.items():
            t = self.tasks[task - 1]
            submitted = t.st(dealer, round) >= STATUS_SUBMITTED
            if kind == KIND_MASK_KEY:
                assert not submitted
            elif len(holders) >= t.cfg["threshold"]:
                g = t.group_index(dealer)
                assert submitted and t.result.get((round, g)) == GROUP_FINALIZED
                submitters = [d for d in t.groups[g] if t.st(d, round) >= STATUS_SUBMITTED]
                assert len(submitters) >= t.cfg["threshold"]

    @invariant()
    @precondition(lambda self: self.changed)
    def everyone_owed_can_withdraw(self):
        """Owners reclaim all they can, then every credit is withdrawn; all inside an anchor."""
        with boa.env.anchor():
            owed = dict(self.credits)
            escrow = dict(self.escrow)
            for t in self.tasks:
                amount = self._reclaimable(t)
                if amount:
                    assert self.market.reclaim(t.id, sender=t.owner) == amount
                    owed[(t.token, t.owner)] = owed.get((t.token, t.owner), 0) + amount
                    escrow[t.id] -= amount
            for (token, account), amount in owed.items():
                if amount:
                    before = self._balance(token, account)
                    assert self.market.withdraw(token, sender=account) == amount
                    assert self._balance(token, account) == before + amount
            for token in self.token_addresses:
                left = sum(escrow[t.id] for t in self.tasks if t.token == token)
                left += sum(
                    v for (task, _), v in self.bonds.items() if self.tasks[task - 1].token == token
                )
                assert self._balance(token, self.market.address) == left
