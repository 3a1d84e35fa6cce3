# pragma version ~=0.4.3
"""
@title Naive update storage: one slot per parameter per data owner (benchmark reference)
@notice The design of public blockchain federated-learning prototypes: every data owner writes
        each parameter of its update into a storage slot of its own, keyed by (data owner,
        parameter index). Not part of the market; bench/paths.py prices it against the event
        path on a real node.
@dev A fresh slot costs a cold zero-to-non-zero SSTORE (22,100 gas) per parameter, whatever
     the value's width.
"""

# @dev Most values per call: at about 22,600 gas each, 1,024 values stay under a 30M-gas block.
MAX_VALUES: constant(uint256) = 1024

# @dev A data owner's value of each parameter, one storage slot each.
update: public(HashMap[address, HashMap[uint256, uint256]])


@external
def submit(offset: uint256, values: DynArray[uint256, MAX_VALUES]):
    """
    @notice Store the caller's parameters `offset .. offset + len(values) - 1`.
    @dev Overwrites what the caller stored at those indices before.
    @param offset Index of the first parameter in `values`.
    @param values One value per parameter.
    """
    index: uint256 = offset
    for value: uint256 in values:
        self.update[msg.sender][index] = value
        index += 1
