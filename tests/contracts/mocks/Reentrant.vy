# pragma version ~=0.4.3
"""
@title Test model owner that tries to re-enter `withdraw` while being paid
@notice It creates an ETH task that gets cancelled (its refund becomes its credit), then
        withdraws; on receiving ETH it calls `withdraw` again and records whether that worked.
"""

interface Market:
    def withdraw(token: address) -> uint256: nonpayable

# @dev The market under attack.
market: public(address)
# @dev Whether the nested `withdraw` succeeded (it must not).
reentered: public(bool)
# @dev Times ETH arrived.
payments: public(uint256)


@deploy
def __init__(market: address):
    self.market = market


@external
@payable
def create(config_calldata: Bytes[1024]):
    raw_call(self.market, config_calldata, value=msg.value)


@external
def attack():
    extcall Market(self.market).withdraw(empty(address))


@external
@payable
def __default__():
    self.payments += 1
    self.reentered = raw_call(
        self.market,
        abi_encode(empty(address), method_id=method_id("withdraw(address)")),
        max_outsize=32,
        revert_on_failure=False,
    )[0]
