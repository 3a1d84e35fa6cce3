"""The market's state machine: rules, ledger and invariants (what each action draws:
`strategies.py`; the tests that run it: `test_market_stateful.py`, `test_mutant.py`).

Several model owners, data owners and an attacker drive many concurrent ETH and ERC-20 tasks
through random phases, time jumps, dropouts, and invalid and duplicate messages. Some tasks take
the direct data path (docs/interfaces.md §3c, §11): delivery terms, commitments at the desk, the
DELIVERY phase's paid challenges, answers (right, wrong and partial), silence and its exclusion.

A plain Python model predicts whether each call must succeed (then it is made and the model
updated) or revert, and with which reason (then it must revert with it). A ledger of credits,
escrow and bonds (and the court's deposits, the desk's challenge fees) is updated with each
successful call; the invariants compare it with the contracts after every step, and the rewards
and fees the contracts' `Credited` events paid with the ledger.

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

from protocol.commitments import chunk_digest, direct_digest, model_digest
from protocol.constants import (
    DATA_PATH_DIRECT,
    GROUP_FAILED,
    GROUP_FINALIZED,
    GROUP_PENDING,
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    MIN_DURATION,
    PHASE_CANCELLED,
    PHASE_DELIVERY,
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
    Challenge,
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
    MODEL_OWNERS,
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

# a desk challenge's state in the ledger, by `challenge_state`'s numbers
CHALLENGE_STATES = {
    "open": Challenge.OPEN,
    "answered": Challenge.ANSWERED,
    "missed": Challenge.MISSED,
}

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
    # the direct path: the challenge fee (0 until the terms are set), what each data owner
    # committed at the desk, its challenge and its answer so far
    fee: int = 0
    committed_words: dict = field(default_factory=dict)  # (round, do) -> words committed
    challenges: dict = field(default_factory=dict)  # (round, do) -> "open" | "answered" | "missed"
    answers: dict = field(default_factory=dict)  # (round, do) -> (chunks, words, digest)
    delivery_done: set = field(default_factory=set)  # rounds whose DELIVERY the owner closed

    @property
    def direct(self) -> bool:
        return self.cfg["data_path"] == DATA_PATH_DIRECT

    def open_challenges(self, round: int) -> list:
        return [d for (r, d), s in self.challenges.items() if r == round and s == "open"]

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
        # the desk's ledger: credits (fees earned by answers or returned on silence) and the
        # fees of open challenges; and whom the desk's `Credited` events paid each challenge's
        # fee, per (task, round, data owner)
        self.desk_credits: dict[tuple[str, str], int] = {}
        self.fees_held: dict[int, int] = {}
        self.fee_paid: dict[tuple[int, int, str], list[str]] = {}
        # tasks a step acted on: the per-member invariants read the contract for these only
        self.touched: set[int] = set()
        # the same for the desk's per-challenge views (`challenge_fees_are_paid_once`)
        self.desk_touched: set[int] = set()

    # -- helpers -------------------------------------------------------------------------------

    def _now(self) -> int:
        return boa.env.timestamp

    def _task(self, i: int) -> TaskModel:
        """Even `i` prefer tasks still running (most messages are about them), odd any task."""
        live = [t for t in self.tasks if t.phase not in (PHASE_ENDED, PHASE_CANCELLED)]
        pool = live if live and i % 2 == 0 else self.tasks
        task = pool[(i // 2) % len(pool)]
        self.touched.add(task.id)
        self.desk_touched.add(task.id)
        return task

    def _resolved_task(self, i: int) -> TaskModel:
        """Even `i` prefer tasks between rounds, odd `i` tasks over; else any task."""
        wanted = (PHASE_ROUND_DONE,) if i % 2 == 0 else (PHASE_ENDED, PHASE_CANCELLED)
        pool = [t for t in self.tasks if t.phase in wanted] or self.tasks
        task = pool[(i // 2) % len(pool)]
        self.touched.add(task.id)
        self.desk_touched.add(task.id)
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

    def _pay_in(self, token: str, payer: str, amount: int, to=None) -> int:
        """Approve a token pull by `to` (the market by default), or return the ETH value to
        send."""
        if token == ETH:
            return amount
        self._token(token).approve((to or self.market).address, amount, sender=payer)
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
        if fn.contract is self.desk:
            # the court and the market have a `settle`, an `answer` and a `withdraw` too
            name = f"desk.{name}"
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
    def two_tasks(self, owners, tokens, sizes, rounds, paths):
        """Every example starts with two tasks, so that no example is spent without any."""
        for owner, token, m, r, path in zip(owners, tokens, sizes, rounds, paths, strict=True):
            self.create_task(
                owner, token, m, 2, m, r, 10**4, 10**5, 9, path, 32, 1_000, (400,) * 4, False
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
        data_path,
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
            data_path=data_path,
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
        elif action == "commit_update":
            pool = [m for m in t.members if t.st(m) == STATUS_COMMITTED]
            self._commit_update(t, self._pick(t, who, pool), flaw)
        elif action == "answer_challenge":
            self._answer_challenge(t, self._pick(t, who, t.open_challenges(t.round)), flaw, size)
        else:
            pool = [m for m in t.members if (t.id, m) in self.bonds]
            self._release_bond(t, self._pick(t, who, pool), by_attacker=flaw % 2 == 0)

    def crowd(self, i, dropout, k, size, wait):
        """Everyone acts as the phase asks, but one dropout (or only `k` register/unmask);
        then the phase is closed if it is complete, or sometimes after waiting for its deadline."""
        t = self._task(i)
        if t.phase == PHASE_REGISTER:
            # a direct task starts on the model hash alone; now and then it has no terms, and
            # its data owners then post their updates on-chain
            if t.direct and not t.fee and dropout != 7:
                if dropout == 6:
                    self._set_terms(t, t.owner, good=False)
                self._set_terms(t, t.owner, good=True)
                if k == 6:
                    self._set_terms(t, t.owner, good=True)  # terms already set
            if not t.direct and t.digest.get(0) != t.cfg["model_hash"]:
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
            if k <= 2 and t.members:
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
            # SETTLE is over: anyone may refund a complaint its dealer left unanswered
            if any(state == "open" for state in t.complaints.values()):
                self._refund(t)
            for n, do in enumerate(list(t.members)):
                if t.direct and t.fee and n != k and t.st(do) == STATUS_COMMITTED:
                    # one member (the k-th) posts on-chain anyway, which a challenge refuses
                    if n != dropout:
                        self._commit_update(t, do, flaw=99)
                    continue
                while n != dropout and t.st(do) == STATUS_COMMITTED:
                    before = t.words_in.get((t.round, do), 0)
                    self._submit(t, do, size, flaw=99)
                    if t.words_in.get((t.round, do), 0) == before:
                        break  # refused as the model predicted (deadline passed)
        elif t.phase == PHASE_DELIVERY:
            if self._deliver(t, dropout, k, size):
                wait = 0
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
                if not t.direct:
                    self._publish(t, t.owner, good=True)
                self._open_round(t, t.owner, good=True)

    # the answers the crowd's first challenged data owner tries, by `k` (flaws of
    # `_answer_challenge`; 99 the whole update): k = 5 leaves a partial answer, silent in effect
    CROWD_ANSWERS: ClassVar[dict] = {
        1: (99,),
        2: (2, 3, 99),
        3: (1, 5, 4, 99),
        4: (0, 99),
        5: (1,),
    }

    def _deliver(self, t: TaskModel, dropout: int, k: int, size: int) -> bool:
        """DELIVERY as the crowd plays it: the model owner challenges up to `size` direct
        submitters (none for k = 6) and each challenged data owner answers, the first one as
        `CROWD_ANSWERS[k]` says, except that for `dropout` >= 4 one of them stays silent. With no
        challenge open, the owner closes DELIVERY for an odd k. Returns whether the crowd then
        waits for the deadline (`dropout` >= 5), so that silence is settled."""
        direct = [
            do
            for do in t.members
            if t.st(do) == STATUS_SUBMITTED
            and (t.round, do) in t.committed_words
            and (t.round, do) not in t.challenges
        ]
        picked, spare = direct[: size if k < 6 else 0], direct[size:]
        for do in picked:
            self._challenge_do(t, t.owner, do, good=True)
        # the owner's refused moves: a second challenge, an early close with challenges open,
        # a wrong fee, a challenge of an update posted on-chain
        if picked and k == 2:
            self._challenge_do(t, t.owner, picked[0], good=True)
            self._close_delivery(t, t.owner, good=True)
        if spare and k == 4:
            self._challenge_do(t, t.owner, spare[0], good=False)
        on_chain = [do for do in t.members if t.words_in.get((t.round, do), 0)]
        if on_chain and k == 3:
            self._challenge_do(t, t.owner, on_chain[0], good=True)
        for n, do in enumerate(t.open_challenges(t.round)):
            if dropout >= 4 and n == dropout % 3:
                continue
            for flaw in self.CROWD_ANSWERS[k] if n == 0 and k in self.CROWD_ANSWERS else (99,):
                self._answer_challenge(t, do, flaw=flaw, size=1)
        if k % 2 and not t.open_challenges(t.round):
            self._close_delivery(t, t.owner, good=True)
            if spare and k == 1:
                self._challenge_do(t, t.owner, spare[0], good=True)  # closed
        return dropout >= 5

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
            # the challenge fees each party earned or got back at the desk
            for account in [t.owner, *t.members]:
                if self.desk_credits.get((t.token, account)):
                    self._desk_withdraw(t.token, account)

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
        if self.desk_credits.get((address, account)):
            self._desk_withdraw(address, account)
        amount = self.credits.get((address, account), 0)
        before = self._balance(address, account)
        refused = "escrow: nothing to withdraw" if amount == 0 else None
        self._call(refused, self.market.withdraw, address, sender=account)
        if amount > 0:
            self.credits[(address, account)] = 0
            assert self._balance(address, account) == before + amount

    def _desk_withdraw(self, token: str, account: str) -> None:
        """`account` takes out the challenge fees the desk credited it (some are owed)."""
        fees = self.desk_credits[(token, account)]
        before = self._balance(token, account)
        self._call(None, self.desk.withdraw, token, sender=account)
        self.desk_credits[(token, account)] = 0
        assert self._balance(token, account) == before + fees

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
            (
                not t.direct and t.digest.get(target) != model_hash,
                "commitments: model hash mismatch",
            ),
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

    # -- the direct path: terms, commitments, challenges, answers -----------------------------

    def _set_terms(self, t: TaskModel, sender: str, good: bool) -> None:
        """The model owner's channel key, endpoint and challenge fee; a bad one breaks one of
        the three (which one follows the step count)."""
        flaw = None if good else self.steps % 3
        key = bytes(32) if flaw == 0 else keccak(b"channel" + t.owner.encode())
        endpoint = "" if flaw == 1 else "mo.example:4000"
        fee = 0 if flaw == 2 else t.cfg["reward_per_do"] // 2 + 1
        refused = _first(
            (sender != t.owner, "delivery: not the model owner"),
            (t.phase != PHASE_REGISTER, "delivery: wrong phase"),
            (self._now() >= t.deadline, "delivery: deadline passed"),
            (not t.direct, "delivery: not a direct task"),
            (t.fee != 0, "delivery: terms already set"),
            (flaw == 0, "delivery: empty channel key"),
            (flaw == 1, "delivery: empty endpoint"),
            (flaw == 2, "delivery: zero fee"),
        )
        self._call(refused, self.desk.set_terms, t.id, key, endpoint, fee, sender=sender)
        if refused is None:
            t.fee = fee

    def _update_words(self, t: TaskModel, do: str) -> list[int]:
        """The masked words `do` delivers off-chain in the current round."""
        return [
            int.from_bytes(keccak(f"direct/{t.id}/{t.round}/{do}/{k}".encode()), "big")
            for k in range(t.words)
        ]

    def _commit_update(self, t: TaskModel, do: str, flaw: int) -> None:
        """Flaws: 0 a wrong word count, 1 an empty digest."""
        words = self._update_words(t, do)
        digest = bytes(32) if flaw == 1 else direct_digest(words)
        count = t.words + (flaw == 0)
        refused = _first(
            (t.phase != PHASE_SUBMIT, "delivery: wrong phase"),
            (self._now() >= t.deadline, "delivery: deadline passed"),
            (t.fee == 0, "delivery: no terms"),
            (flaw == 0, "delivery: wrong word count"),
            (flaw == 1, "delivery: empty digest"),
            (t.words_in.get((t.round, do), 0) > 0, "delivery: update begun on-chain"),
            (t.st(do) == STATUS_NONE, "rounds: not committed"),
            (t.st(do) != STATUS_COMMITTED, "rounds: already submitted"),
            ((t.round, do) in t.exposed, "rounds: shares exposed"),
        )
        self._call(refused, self.desk.commit_update, t.id, t.round, digest, count, sender=do)
        if refused is None:
            t.status[(t.round, do)] = STATUS_SUBMITTED
            t.committed_words[(t.round, do)] = words

    def _challenge(self, t: TaskModel, sender: str, good: bool) -> None:
        """The owner challenges a direct submitter not challenged yet (else any member);
        `good` False pays a wrong fee."""
        pool = (
            [do for (r, do) in t.committed_words if r == t.round and (r, do) not in t.challenges]
            or t.members
            or MODEL_OWNERS
        )
        self._challenge_do(t, sender, pool[self.steps % len(pool)], good)

    def _challenge_do(self, t: TaskModel, sender: str, do: str, good: bool) -> None:
        fee = t.fee
        value = self._pay_in(t.token, sender, fee, to=self.desk) + (not good)
        refused = _first(
            (sender != t.owner, "delivery: not the model owner"),
            (t.phase != PHASE_DELIVERY, "delivery: wrong phase"),
            (self._now() >= t.deadline, "delivery: deadline passed"),
            (t.round in t.delivery_done, "delivery: closed"),
            (t.st(do) != STATUS_SUBMITTED, "delivery: not a submitter"),
            (t.words_in.get((t.round, do), 0) > 0, "delivery: update on-chain"),
            ((t.round, do) in t.challenges, "delivery: already challenged"),
            (not good, "delivery: wrong fee"),
        )
        self._call(refused, self.desk.challenge, t.id, t.round, do, value=value, sender=sender)
        if refused is None:
            t.challenges[(t.round, do)] = "open"
            self.fees_held[t.id] = self.fees_held.get(t.id, 0) + fee

    def _answer_challenge(self, t: TaskModel, do: str, flaw: int, size: int) -> None:
        """The challenged data owner posts a chunk of its committed words at the desk.
        Flaws: 0 the whole update with one word altered, 1 its first `size` words (a partial
        answer; the digest fixes one chunk, so a later rest cannot complete it), 2 an empty
        chunk, 3 a chunk index past the answer's, 5 the whole update after what was posted
        (too many words, if anything was); otherwise the whole update in chunk 0 (4 continues a
        partial answer with the rest instead, when there is one)."""
        key = (t.round, do)
        words = list(t.committed_words.get(key) or self._update_words(t, do))
        chunks, received, prev = t.answers.get(key, (0, 0, bytes(32)))
        index = 0
        if flaw == 0:
            words[0] ^= 1
        elif flaw == 1:
            words = words[: max(1, min(size, len(words) - 1))]
        elif flaw == 2:
            words = []
        elif flaw == 3:
            index = chunks + 1
        elif flaw == 4 and 0 < received < len(words):
            index, words = chunks, words[received:]
        elif flaw == 5:
            index = chunks
        if index == 0:
            chunks, received, prev = 0, 0, bytes(32)
        digest = chunk_digest(prev, words) if words else prev
        total = received + len(words)
        committed = t.committed_words.get(key)
        expected = direct_digest(committed) if committed else None
        refused = _first(
            (t.phase != PHASE_DELIVERY, "delivery: wrong phase"),
            (self._now() >= t.deadline, "delivery: deadline passed"),
            (t.challenges.get(key) != "open", "delivery: no open challenge"),
            (not words, "delivery: empty chunk"),
            (index != chunks, "delivery: wrong chunk index"),
            (total > t.words, "delivery: too many words"),
            (
                total == t.words and digest != expected,
                "delivery: digest mismatch",
            ),
        )
        self._call(refused, self.desk.answer, t.id, t.round, index, words, sender=do)
        if refused is not None:
            return
        t.answers[key] = (chunks + 1, total, digest)
        if total < t.words:
            return
        assert self._credited(self.desk) == [(t.id, t.token, do, t.fee)]
        t.challenges[key] = "answered"
        self._pay_fee(t, do, do)

    def _close_delivery(self, t: TaskModel, sender: str, good: bool) -> None:
        refused = _first(
            (sender != t.owner, "delivery: not the model owner"),
            (t.phase != PHASE_DELIVERY, "delivery: wrong phase"),
            (self._now() >= t.deadline, "delivery: deadline passed"),
            (bool(t.open_challenges(t.round)), "delivery: challenges open"),
        )
        self._call(refused, self.desk.close_delivery, t.id, t.round, sender=sender)
        if refused is None:
            t.delivery_done.add(t.round)

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
        # a direct task starts on the model hash alone (its bytes are served off-chain)
        published = t.direct or t.digest.get(0) == cfg["model_hash"]
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
        elif t.phase == PHASE_DELIVERY:
            # the desk's `settle` decides: the deadline, or the owner closed it
            ok = over or t.round in t.delivery_done
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
        elif t.phase == PHASE_SUBMIT and t.direct:
            self._enter(t, PHASE_DELIVERY, cfg["submit_duration"])
        elif t.phase in (PHASE_SUBMIT, PHASE_DELIVERY):
            if t.phase == PHASE_DELIVERY:
                self._settle_challenges(t)
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

    def _settle_challenges(self, t: TaskModel) -> None:
        """DELIVERY closed: every open challenge is missed, its fee goes back to the model
        owner (one `Credited` event each, from the desk) and its data owner is a committed
        non-submitter again."""
        missed = t.open_challenges(t.round)
        paid = [(e.task, e.token, e.account, e.amount) for e in events(self.market, "Credited")]
        assert paid == [(t.id, t.token, t.owner, t.fee)] * len(missed)
        logged = [e.do for e in events(self.market, "ChallengeMissed")]
        assert sorted(logged) == sorted(missed)
        for do in missed:
            t.challenges[(t.round, do)] = "missed"
            t.status[(t.round, do)] = STATUS_COMMITTED
            self._pay_fee(t, do, t.owner)
        if missed:
            # the desk's `settle` is called by the market's advance, never by the machine: its
            # line in the recorder counts the closes that excluded a silent data owner
            event("silence excluded")
            self.recorder.success("desk.settle (silence)")

    def _pay_fee(self, t: TaskModel, do: str, to: str) -> None:
        """A challenge's fee leaves the held fees for `to`'s desk credit."""
        self.fees_held[t.id] -= t.fee
        self.desk_credits[(t.token, to)] = self.desk_credits.get((t.token, to), 0) + t.fee
        self.fee_paid.setdefault((t.id, t.round, do), []).append(to)

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
    def desk_value_is_conserved(self):
        """The desk holds exactly its credits and the fees of open challenges."""
        for token in self.token_addresses:
            credits = sum(v for (tok, _), v in self.desk_credits.items() if tok == token)
            held = sum(self.fees_held.get(t.id, 0) for t in self.tasks if t.token == token)
            assert self._balance(token, self.desk.address) == credits + held
        for (token, account), amount in self.desk_credits.items():
            assert self.desk.credits(token, account) == amount

    @invariant()
    @precondition(lambda self: self.changed)
    def challenge_fees_are_paid_once(self):
        """Each challenge's fee is held while it is open, then paid exactly once: to the data
        owner that answered, who stays a submitter (and is paid its reward if its group
        finalizes), or back to the model owner when it went unanswered, whose data owner is a
        committed non-submitter from DELIVERY's close on (before UNMASK) and is never paid. The
        ledger for every task; the desk's and the market's views for the tasks this step
        touched."""
        open_fees: dict[int, int] = {}
        for t in self.tasks:
            read = t.id in self.desk_touched
            for (round, do), state in t.challenges.items():
                paid = self.fee_paid.get((t.id, round, do), [])
                if state == "open":
                    assert paid == [] and (t.phase, t.round) == (PHASE_DELIVERY, round)
                    open_fees[t.id] = open_fees.get(t.id, 0) + t.fee
                elif state == "answered":
                    assert paid == [do] and t.st(do, round) >= STATUS_SUBMITTED
                else:
                    assert paid == [t.owner] and t.st(do, round) == STATUS_COMMITTED
                if not read:
                    continue
                assert self.desk.challenge_state(t.id, round, do) == CHALLENGE_STATES[state]
                status = self.market.do_status(t.id, round, do)
                if state == "answered":
                    assert status in (STATUS_SUBMITTED, STATUS_UNMASKED)
                elif state == "missed":
                    assert status == STATUS_COMMITTED
                    assert not self.market.is_credited(t.id, round, do)
            if read and t.direct and t.rounds_opened:
                open_now = len(t.open_challenges(t.round))
                assert self.desk.round_open(t.id, t.round) == open_now
        assert {k: v for k, v in self.fees_held.items() if v} == open_fees
        self.desk_touched.clear()

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
            for (token, account), amount in self.desk_credits.items():
                if amount:
                    before = self._balance(token, account)
                    assert self.desk.withdraw(token, sender=account) == amount
                    assert self._balance(token, account) == before + amount
            for token in self.token_addresses:
                left = sum(escrow[t.id] for t in self.tasks if t.token == token)
                left += sum(
                    v for (task, _), v in self.bonds.items() if self.tasks[task - 1].token == token
                )
                assert self._balance(token, self.market.address) == left
                held = sum(self.fees_held.get(t.id, 0) for t in self.tasks if t.token == token)
                assert self._balance(token, self.desk.address) == held
