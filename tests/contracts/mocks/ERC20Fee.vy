# pragma version ~=0.4.3
"""
@title Test token: takes a fee of one unit on every pull (fee-on-transfer)
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
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    # @dev the fee unit is burnt
    self.balanceOf[to] += amount - 1
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True
