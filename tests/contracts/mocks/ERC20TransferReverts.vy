# pragma version ~=0.4.3
"""
@title Test token: pulls work, but every transfer out reverts (a frozen or paused token)
"""

# @dev Balance of each account.
balanceOf: public(HashMap[address, uint256])
# @dev Allowance of each spender per owner.
allowance: public(HashMap[address, HashMap[address, uint256]])


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount


@external
def transfer(to: address, amount: uint256) -> bool:
    raise "mock: transfers frozen"


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True
