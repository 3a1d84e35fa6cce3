# pragma version ~=0.4.3
"""
@title Test model owner that tries to re-enter the market while being paid
@notice The tests give it credits (refunds of cancelled tasks it created, in ETH and in a
        token). While its ETH withdrawal pays it, it calls `withdraw(token)` again, which would
        succeed without the market's reentrancy lock, and records whether it did.
"""

interface Market:
    def withdraw(token: address) -> uint256: nonpayable

# @dev The market under attack.
market: public(address)
# @dev Token whose credit the nested call tries to withdraw.
target: public(address)
# @dev Whether the nested `withdraw` succeeded (it must not).
reentered: public(bool)
# @dev Times ETH arrived.
payments: public(uint256)


@deploy
def __init__(market: address, target: address):
    self.market = market
    self.target = target


@external
def attack():
    extcall Market(self.market).withdraw(empty(address))


@external
def withdraw_target():
    extcall Market(self.market).withdraw(self.target)


@external
@payable
def __default__():
    self.payments += 1
    self.reentered = raw_call(
        self.market,
        abi_encode(self.target, method_id=method_id("withdraw(address)")),
        max_outsize=32,
        revert_on_failure=False,
    )[0]
