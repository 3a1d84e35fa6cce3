"""The benchmark's reference contracts (bench/contracts/): naive slots and packed accumulation.

They are not part of the market, but their gas figures are only worth quoting if they do what
they claim: one slot per parameter per data owner, and lane-wise sums modulo 2^k.
"""

from pathlib import Path

import boa
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.encoding import pack_lanes, unpack_lanes

CONTRACTS = Path(__file__).resolve().parents[2] / "bench" / "contracts"


@pytest.fixture(scope="session")
def naive_deployer():
    return boa.load_partial(str(CONTRACTS / "NaiveStorage.vy"))


@pytest.fixture(scope="session")
def accumulator_deployer():
    return boa.load_partial(str(CONTRACTS / "PackedAccumulator.vy"))


@pytest.fixture(scope="session")
def naive(naive_deployer):
    return naive_deployer.deploy()


@pytest.fixture(scope="session", params=(16, 32))
def accumulator(request, accumulator_deployer):
    return accumulator_deployer.deploy(request.param)


@pytest.fixture(scope="session")
def data_owners() -> list[str]:
    return [boa.env.generate_address(f"bench_data_owner_{i}") for i in range(2)]


def _sum(accumulator, words: int, d: int) -> np.ndarray:
    stored = [accumulator.group_sum(i) for i in range(words)]
    return unpack_lanes(stored, d, accumulator.LANE_BITS())


# naive storage


def test_naive_stores_each_parameter_in_its_own_slot(naive, data_owners):
    alice, bob = data_owners
    naive.submit(0, [7, 8, 9], sender=alice)
    naive.submit(3, [10], sender=alice)
    naive.submit(1, [2**256 - 1], sender=bob)
    assert [naive.update(alice, i) for i in range(5)] == [7, 8, 9, 10, 0]
    assert [naive.update(bob, i) for i in range(3)] == [0, 2**256 - 1, 0]


def test_naive_resubmission_overwrites(naive, data_owners):
    alice = data_owners[0]
    naive.submit(5, [1, 2], sender=alice)
    naive.submit(5, [3], sender=alice)
    assert (naive.update(alice, 5), naive.update(alice, 6)) == (3, 2)


# packed accumulation


def test_accumulator_rejects_other_lane_widths(accumulator_deployer):
    for lane_bits in (0, 8, 64):
        with boa.reverts("accumulator: bad lane bits"):
            accumulator_deployer.deploy(lane_bits)


def test_accumulator_high_bits(accumulator):
    lane_bits = accumulator.LANE_BITS()
    lanes = 256 // lane_bits
    expected = sum(1 << (lane_bits * i + lane_bits - 1) for i in range(lanes))
    assert accumulator.HIGH_BITS() == expected


def test_accumulator_known_answer_with_wrap_around(accumulator):
    k = accumulator.LANE_BITS()
    top = 2**k - 1
    half = 2 ** (k - 1)
    lanes = 256 // k
    # per lane: carry out of the top lane, carry out of lane 0, both high bits set, no carry
    first = np.array([top, 1, half, 5] + [top] * (lanes - 4), dtype=np.uint64)
    second = np.array([1, top, half, 6] + [top] * (lanes - 4), dtype=np.uint64)
    expected = [0, 0, 0, 11] + [top - 1] * (lanes - 4)
    accumulator.add(0, list(pack_lanes(first, k)))
    accumulator.add(0, list(pack_lanes(second, k)))
    assert _sum(accumulator, 1, lanes).tolist() == expected


def test_accumulator_all_ones_words_wrap_every_lane(accumulator):
    # 2^256 - 1 is -1 in every lane: three additions leave -3 in every lane
    for _ in range(3):
        accumulator.add(0, [2**256 - 1])
    k = accumulator.LANE_BITS()
    assert _sum(accumulator, 1, 256 // k).tolist() == [2**k - 3] * (256 // k)


def test_accumulator_adds_at_offsets(accumulator):
    accumulator.add(2, [1, 2])
    accumulator.add(3, [40])
    assert [accumulator.group_sum(i) for i in range(5)] == [0, 0, 1, 42, 0]


@given(
    lane_bits=st.sampled_from((16, 32)),
    d=st.integers(1, 70),
    seeds=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
)
def test_accumulator_matches_the_sum_modulo_2k(accumulator_deployer, lane_bits, d, seeds):
    accumulator = accumulator_deployer.deploy(lane_bits)
    updates = [
        np.random.default_rng(seed).integers(0, 2**lane_bits, d, dtype=np.uint64) for seed in seeds
    ]
    for update in updates:
        words = list(pack_lanes(update, lane_bits))  # boa takes arrays as lists
        # two chunks, as a data owner would send a long update
        cut = len(words) // 2
        if cut:
            accumulator.add(0, words[:cut])
        accumulator.add(cut, words[cut:])
    expected = sum(u.astype(object) for u in updates) % 2**lane_bits
    words = -(-d // (256 // lane_bits))
    assert _sum(accumulator, words, d).tolist() == expected.tolist()
