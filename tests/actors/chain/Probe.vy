# pragma version ~=0.4.3
"""A tiny contract for chain-client tests: a counter, a payable deposit and events."""

# @dev emitted on every bump
event Bumped:
    who: indexed(address)
    by: uint256
    words: DynArray[uint256, 4096]

# @dev the counter
count: public(uint256)


@external
@payable
def bump(by: uint256, words: DynArray[uint256, 4096]):
    """
    @notice Add `by` to the counter and echo the words in an event.
    """
    assert by > 0, "probe: zero bump"
    self.count += by
    log Bumped(who=msg.sender, by=by, words=words)


@external
@view
def total_of(xs: DynArray[uint256, 16]) -> uint256:
    """
    @notice Sum of `xs`.
    """
    s: uint256 = 0
    for x: uint256 in xs:
        s += x
    return s


@external
@view
def checked(x: uint256) -> uint256:
    """
    @notice `x`, or a revert for zero (a view's revert reason reaches the caller).
    """
    assert x > 0, "probe: zero"
    return x
