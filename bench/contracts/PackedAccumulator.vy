# pragma version ~=0.4.3
"""
@title Packed storage accumulation of a group sum (benchmark reference)
@notice Keeps a group's sum of masked updates in storage, one packed word per slot (8 lanes of
        32 bits, or 16 of 16, laid out as in docs/interfaces.md §2): each call adds a chunk of a
        data owner's packed words lane-wise, modulo 2^k. Not part of the market, whose updates
        live in events; bench/paths.py prices this design against them on a real node.
@dev Lanes are added with SWAR arithmetic, `((a & ~H) + (b & ~H)) ^ ((a ^ b) & H)` with `H` the
     lanes' high bits: the low bits of each lane add without leaving it, and the high bit is
     their carry XOR both high bits, which drops each lane's carry out (the wrap modulo 2^k).
"""

# @dev Most words per call: at about 5,600 gas per already non-zero word, 4,096 words stay under
#      a 30M-gas block (first writes cost about 22,700 gas a word: send fewer).
MAX_WORDS: constant(uint256) = 4096

# @dev Lane width in bits, 16 or 32.
LANE_BITS: public(immutable(uint256))
# @dev The most significant bit of every lane.
HIGH_BITS: public(immutable(uint256))

# @dev The group sum, one packed word per index.
group_sum: public(HashMap[uint256, uint256])


@deploy
def __init__(lane_bits: uint256):
    """
    @param lane_bits Lane width in bits, 16 or 32.
    """
    assert lane_bits == 16 or lane_bits == 32, "accumulator: bad lane bits"
    LANE_BITS = lane_bits
    # (2^256 - 1) / (2^k - 1) is the sum of 2^(k*i) over the lanes: a 1 in each lane's low bit
    HIGH_BITS = (max_value(uint256) // ((1 << lane_bits) - 1)) << (lane_bits - 1)


@external
def add(offset: uint256, words: DynArray[uint256, MAX_WORDS]):
    """
    @notice Add packed words lane-wise, modulo 2^k, into the group sum at `offset ..`.
    @param offset Index of the first word of `words` in the update.
    @param words The chunk's packed words.
    """
    high: uint256 = HIGH_BITS
    low: uint256 = ~high
    index: uint256 = offset
    for word: uint256 in words:
        total: uint256 = self.group_sum[index]
        # cannot overflow: each lane's low bits sum to at most 2^k - 2, so no carry leaves its
        # lane, not even the top one's; the wrap modulo 2^k is the XOR on the high bits
        self.group_sum[index] = unsafe_add(total & low, word & low) ^ ((total ^ word) & high)
        index += 1
