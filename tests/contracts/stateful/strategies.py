"""What the market machine's actors are and what each of its actions draws.

The named accounts, and for every action of `MarketBase` (tests/contracts/stateful/base.py) its
weight and the strategies of its arguments. Hypothesis picks rules uniformly (and switches some
off per example), so the machine has a single `step` rule that picks an action by these weights:
they steer tasks deep into rounds.
"""

import boa
from hypothesis import strategies as st

MODEL_OWNERS = [boa.env.generate_address(f"fuzz_model_owner_{i}") for i in range(2)]
DATA_OWNERS = [boa.env.generate_address(f"fuzz_data_owner_{i}") for i in range(6)]
ATTACKER = boa.env.generate_address("fuzz_attacker")
EVERYONE = [*MODEL_OWNERS, *DATA_OWNERS, ATTACKER]
MAX_TASKS = 4

tasks_idx = st.integers(min_value=0, max_value=2 * MAX_TASKS - 1)
# 0 picks an outsider (the attacker), anything else one of the actors the rule prefers
who_idx = st.integers(min_value=0, max_value=7)

# The two tasks every example starts with (`MarketBase.two_tasks`).
INITIAL_TASKS = dict(
    owners=st.lists(st.sampled_from(MODEL_OWNERS), min_size=2, max_size=2),
    tokens=st.lists(st.integers(0, 2), min_size=2, max_size=2),
    sizes=st.lists(st.integers(2, 3), min_size=2, max_size=2),
    rounds=st.lists(st.sampled_from([1, 2, 3]), min_size=2, max_size=2),
    # 0 the event path, 2 the direct path (its DELIVERY phase and the desk)
    paths=st.lists(st.sampled_from([0, 2]), min_size=2, max_size=2),
)

# What each action draws, and how often it is picked (out of the sum of weights).
ACTIONS = {
    "crowd": (
        6,
        dict(
            i=tasks_idx,
            dropout=st.integers(0, 7),
            k=st.integers(1, 6),
            size=st.integers(1, 3),
            wait=st.sampled_from([None, None, 0]),
        ),
    ),
    "data_owner_acts": (
        5,
        dict(
            i=tasks_idx,
            # complain, answer, refund: the exposed-dealer path (a priced complaint, an answer
            # that bars the dealer from submitting, a refund of an unanswered one); commit_update
            # and answer_challenge: the direct path's commitment and its answer at the desk
            action=st.sampled_from(
                [
                    "register",
                    "commit",
                    "submit",
                    "submit",
                    "unmask",
                    "bond",
                    "complain",
                    "complain",
                    "answer",
                    "answer",
                    "refund",
                    "commit_update",
                    "answer_challenge",
                    "answer_challenge",
                ]
            ),
            who=who_idx,
            flaw=st.integers(0, 11),
            size=st.integers(1, 3),
        ),
    ),
    "model_owner_acts": (
        2,
        dict(
            i=tasks_idx,
            action=st.sampled_from(
                ["publish"] * 3
                + ["open_round"] * 2
                + ["end_task", "reclaim", "set_terms", "challenge", "challenge", "close_delivery"]
            ),
            by_attacker=st.integers(0, 5).map(lambda x: x == 0),
            good=st.integers(0, 5).map(bool),
        ),
    ),
    "advance": (
        2,
        dict(
            i=tasks_idx,
            caller=st.sampled_from(EVERYONE),
            wait=st.sampled_from([None] * 5 + [-1, 0, 5]),
        ),
    ),
    "settle_up": (2, dict(i=tasks_idx, end=st.integers(0, 3))),
    "time_jump": (2, dict(seconds=st.sampled_from([1, 10, 30, 60, 120, 200]))),
    "withdraw": (2, dict(account=st.sampled_from(EVERYONE), token=st.integers(0, 2))),
    "create_task": (
        1,
        dict(
            owner=st.sampled_from(MODEL_OWNERS),
            token=st.integers(0, 2),
            m=st.integers(2, 3),
            extra=st.integers(0, 3),
            t=st.integers(2, 3),
            rounds=st.sampled_from([1, 2, 2]),
            reward=st.integers(1, 10**6),
            bond=st.sampled_from([0, 7, 10**5]),
            d=st.sampled_from([1, 9, 20]),
            data_path=st.sampled_from([0, 0, 2]),
            lane_bits=st.sampled_from([16, 32]),
            # now and then no cap, or one that overflows a 16-bit count lane in any group
            # (3 x 10,923 > 2**15 - 1) and fits a 32-bit one
            sample_cap=st.sampled_from([1_000] * 6 + [10_923, 0]),
            # hostile terms, now and then: a SHARE of 1 or 29 s, below the contract's 30 s floor
            durations=st.tuples(
                st.sampled_from([200, 400, 600]),
                st.sampled_from([200, 400, 600] * 3 + [1]),
                st.sampled_from([200, 400, 600]),
                st.sampled_from([200, 400, 600] * 3 + [29]),
            ),
            bad_value=st.integers(0, 7).map(lambda x: x == 0),
        ),
    ),
}

# the `step` rule's choice: each action name as often as its weight
weighted_actions = st.sampled_from(
    [name for name, (weight, _) in ACTIONS.items() for _ in range(weight)]
)
