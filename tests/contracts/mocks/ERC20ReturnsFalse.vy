# pragma version ~=0.4.3
"""
@title Test token: transferFrom returns false instead of reverting, and moves nothing
"""

# @dev Balance of each account.
balanceOf: public(HashMap[address, uint256])


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    return False


@external
def approve(spender: address, amount: uint256) -> bool:
    return True
