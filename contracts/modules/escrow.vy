# pragma version ~=0.4.3
"""
@title Escrow, credits and bonds
@notice Owns every unit of value the market holds: the reward escrow of each task, the
        pull-payment credits of every account, and the bonds data owners post when they register.
        ETH is written as the token `empty(address)`.
@dev Conservation: for every token, the contract's balance equals the sum of credits, the escrow
     of tasks in that token, and the bonds held in it. Value only moves between these three
     buckets, and leaves the contract only through `withdraw`.
"""

from ethereum.ercs import IERC20

# @dev Pull-payment balance per token (`empty(address)` = ETH) and account.
credits: public(HashMap[address, HashMap[address, uint256]])
# @dev Reward escrow of each task not yet credited to a data owner or returned to its model owner.
escrow_remaining: public(HashMap[uint256, uint256])
# @dev Bond a data owner posted for a task and that was not released yet.
bond_of: public(HashMap[uint256, HashMap[address, uint256]])

# @dev A task's escrow came in.
event EscrowDeposited:
    task: indexed(uint256)
    token: indexed(address)
    amount: uint256

# @dev Value moved from a task's escrow or a bond to an account's credits.
event Credited:
    task: indexed(uint256)
    token: indexed(address)
    account: indexed(address)
    amount: uint256

# @dev A data owner's bond came in.
event BondPosted:
    task: indexed(uint256)
    do: indexed(address)
    amount: uint256

# @dev A bond left the bond bucket, to its data owner or, if forfeited, to the model owner.
event BondReleased:
    task: indexed(uint256)
    do: indexed(address)
    to: indexed(address)
    amount: uint256

# @dev Credits left the contract.
event Withdrawn:
    token: indexed(address)
    account: indexed(address)
    amount: uint256


@external
@nonreentrant
def withdraw(token: address) -> uint256:
    """
    @notice Pay out all of the caller's credits in `token`.
    @dev Pull payment: the credit is zeroed before the transfer, and the global reentrancy lock
         covers every entry point that moves value.
    @param token The token to withdraw, `empty(address)` for ETH.
    @return The amount paid out.
    """
    amount: uint256 = self.credits[token][msg.sender]
    assert amount > 0, "escrow: nothing to withdraw"
    self.credits[token][msg.sender] = 0
    log Withdrawn(token=token, account=msg.sender, amount=amount)
    self._send(token, msg.sender, amount)
    return amount


@internal
def _pull(token: address, payer: address, amount: uint256, sent: uint256, rule: String[40]):
    """
    @dev Take `amount` from `payer`: ETH must be exactly the ETH `sent` with the call; a token
         must come with no ETH and is pulled with transferFrom, checked by the balance it added.
    """
    if token == empty(address):
        assert sent == amount, rule
        return
    assert sent == 0, rule
    if amount == 0:
        return
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    ok: bool = False
    response: Bytes[32] = b""
    ok, response = raw_call(
        token,
        abi_encode(payer, self, amount, method_id=method_id("transferFrom(address,address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    assert ok and (len(response) == 0 or convert(response, bool)), "escrow: token transfer failed"
    # @dev the balance check rejects fee-on-transfer tokens, whose escrow would be short
    assert staticcall IERC20(token).balanceOf(self) == before + amount, "escrow: token amount short"


@internal
def _send(token: address, to: address, amount: uint256):
    """
    @dev Transfer out; a token may return nothing (USDT style) or true, never false.
    """
    if token == empty(address):
        ok: bool = raw_call(to, b"", value=amount, revert_on_failure=False)
        assert ok, "escrow: eth transfer failed"
        return
    ok: bool = False
    response: Bytes[32] = b""
    ok, response = raw_call(
        token,
        abi_encode(to, amount, method_id=method_id("transfer(address,uint256)")),
        max_outsize=32,
        revert_on_failure=False,
    )
    assert ok and (len(response) == 0 or convert(response, bool)), "escrow: token transfer failed"


@internal
def _deposit(task: uint256, token: address, payer: address, amount: uint256, sent: uint256):
    """
    @dev Lock a new task's whole reward escrow.
    """
    self._pull(token, payer, amount, sent, "escrow: wrong escrow value")
    self.escrow_remaining[task] = amount
    log EscrowDeposited(task=task, token=token, amount=amount)


@internal
def _pay(task: uint256, token: address, to: address, amount: uint256):
    """
    @dev Move `amount` of a task's escrow to `to`'s credits. Checked subtraction: callers never
         ask for more than is left, and a bug here must revert rather than mint.
    """
    self.escrow_remaining[task] -= amount
    self.credits[token][to] += amount
    log Credited(task=task, token=token, account=to, amount=amount)


@internal
def _post_bond(task: uint256, token: address, do: address, amount: uint256, sent: uint256):
    """
    @dev Take a registering data owner's bond (zero-bond tasks take nothing, and no ETH).
    """
    self._pull(token, do, amount, sent, "escrow: wrong bond value")
    if amount > 0:
        self.bond_of[task][do] = amount
        log BondPosted(task=task, do=do, amount=amount)


@internal
def _release_bond(task: uint256, token: address, do: address, to: address):
    """
    @dev Move a held bond to `to`'s credits.
    """
    amount: uint256 = self.bond_of[task][do]
    assert amount > 0, "escrow: no bond held"
    self.bond_of[task][do] = 0
    self.credits[token][to] += amount
    log BondReleased(task=task, do=do, to=to, amount=amount)
