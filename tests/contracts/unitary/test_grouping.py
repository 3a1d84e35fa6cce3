"""Groups are drawn from chain randomness fixed at the close of registration, not by anyone.

Robust combination only helps if poisoners cannot choose to share a group (DESIGN.md §1 G3(b)):
the assignment must be a function of the hash of the block that closed registration (unknown to
every transaction of that block, so nobody can close and see the draw at once), registering in a
chosen order must not put consecutive registrants together more often than chance, and groups
must be balanced.
"""

import boa
import pytest
from eth_utils import keccak

from protocol.constants import PHASE_DRAW, PHASE_SHARE
from tests.contracts.market import shuffle_groups

N = 20
M = 4
# P(two given members share a group) with N members in N/M groups of M: (M - 1) / (N - 1).
CHANCE = (M - 1) / (N - 1)


def _randomness(label: str) -> bytes:
    return keccak(label.encode())


@pytest.fixture(scope="module")
def crowd() -> list[str]:
    """More data owners than the shared fixture has: a task of N of them."""
    accounts = []
    for i in range(N + 3):
        address = boa.env.generate_address(f"grouping_do_{i}")
        boa.env.set_balance(address, 10**24)
        accounts.append(address)
    return accounts


@pytest.fixture
def registered(new_run, crowd):
    """A task with N data owners registered in a chosen order; registration still open."""
    r = new_run(max_dos=N + 3, min_dos=N, group_size=M, threshold=2)
    r.create()
    r.publish(0)
    r.register(crowd[:N])
    return r


def _close(run, randomness: bytes) -> list[list[str]]:
    """Close registration in a block that hashes to `randomness`; the groups drawn."""
    boa.env.time_travel(seconds=run.cfg["register_duration"])
    run.market.advance(run.task)
    run.draw(randomness)
    return run.groups()


def test_groups_are_the_shuffle_of_the_closing_randomness(registered, crowd):
    for label in ("a", "b", "c"):
        with boa.env.anchor():
            randomness = _randomness(label)
            groups = _close(registered, randomness)
            assert groups == shuffle_groups(crowd[:N], randomness, registered.task, M)
            assert registered.market.group_seed(registered.task) == keccak(
                randomness + registered.task.to_bytes(32, "big")
            )


def test_same_randomness_same_groups_other_randomness_other_groups(registered):
    drawn = []
    for label in ("x", "x", "y", "z"):
        with boa.env.anchor():
            drawn.append(_close(registered, _randomness(label)))
    assert drawn[0] == drawn[1]
    assert drawn[0] != drawn[2] and drawn[0] != drawn[3] and drawn[2] != drawn[3]


def test_the_closing_transaction_cannot_see_the_draw(registered):
    """Registration closes into DRAW with no group drawn; in the closing block the draw is not
    ready, so no transaction (a sybil contract's included) both closes and observes it."""
    boa.env.time_travel(seconds=registered.cfg["register_duration"])
    registered.market.advance(registered.task)
    assert registered.market.task_phase(registered.task) == PHASE_DRAW
    assert registered.market.group_count(registered.task) == 0
    assert registered.market.draw_block(registered.task) == boa.env.evm.patch.block_number
    with boa.reverts("rounds: draw not ready"):
        registered.market.advance(registered.task)
    registered.draw(_randomness("closing block"))
    assert registered.market.task_phase(registered.task) == PHASE_SHARE


def test_a_draw_out_of_the_blockhash_window_moves_to_a_later_block(registered):
    """257 blocks after the close the closing block's hash is out of reach: the advance moves
    the draw to its own block (no groups yet), and a block later the groups come from that."""
    boa.env.time_travel(seconds=registered.cfg["register_duration"])
    registered.market.advance(registered.task)
    boa.env.time_travel(blocks=257)
    registered.market.advance(registered.task)
    assert registered.market.task_phase(registered.task) == PHASE_DRAW
    assert registered.market.draw_block(registered.task) == boa.env.evm.patch.block_number
    later = _randomness("a later block")
    registered.draw(later)
    assert registered.market.group_seed(registered.task) == keccak(
        later + registered.task.to_bytes(32, "big")
    )


def test_consecutive_registrants_share_groups_only_by_chance(registered, crowd):
    """Attackers registering back to back (a chosen order) are not grouped more often than chance.

    Over 60 closing blocks, the 19 pairs of consecutive registrants share a group with frequency
    close to (M-1)/(N-1) = 3/19; the four first registrants (a colluding block) never fill a group
    more often than rarely. Fixed labels make the check deterministic; the bound is loose.
    """
    draws, together, colluders_full = 60, 0, 0
    first_four = set(crowd[:M])
    for k in range(draws):
        with boa.env.anchor():
            groups = _close(registered, _randomness(f"draw {k}"))
        where = {do: g for g, group in enumerate(groups) for do in group}
        together += sum(where[crowd[i]] == where[crowd[i + 1]] for i in range(N - 1))
        colluders_full += any(first_four <= set(group) for group in groups)
    frequency = together / (draws * (N - 1))
    assert abs(frequency - CHANCE) < 0.06, (frequency, CHANCE)
    assert colluders_full <= 2  # P = 5 / C(20, 4) ≈ 0.001 per draw


@pytest.mark.parametrize("members", [N, N + 1, N + 3])
def test_group_sizes_are_balanced(new_run, crowd, members):
    r = new_run(max_dos=N + 3, min_dos=N, group_size=M, threshold=2)
    r.create()
    r.publish(0)
    r.register(crowd[:members])
    groups = _close(r, _randomness(f"balanced {members}"))
    sizes = [len(group) for group in groups]
    assert len(groups) == members // M
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= M
    assert sorted(do for group in groups for do in group) == sorted(crowd[:members])
