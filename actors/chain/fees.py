"""EIP-1559 fees from the node, the user's overrides, and the bump that replaces a stuck
transaction.

The priority fee (the tip) is what the node suggests (`eth_maxPriorityFeePerGas`), else the
median of the last blocks' median rewards (`eth_feeHistory`), else `_FALLBACK_TIP`: a node may
lack either method, and which one it has is remembered. The fee cap is twice the next block's
base fee (the last `baseFeePerGas` of `eth_feeHistory`, else `eth_gasPrice`) plus the tip, which
outlasts six full blocks of 12.5% rises. `--max-fee` and `--priority-fee` replace either.

A transaction still pending `replace_after` seconds after it was sent is sent again with the same
nonce and both fees raised by `_BUMP` (a node's pool takes a replacement only if both rise by at
least 10%: geth's `txpool.pricebump`), but never above a `--max-fee` the user set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from actors.chain.jsonrpc import METHOD_NOT_FOUND, quantity

# the tip when the node suggests none: 1 gwei, what geth's and anvil's suggestions start from
_FALLBACK_TIP = 10**9
# how many past blocks' rewards make the tip's median when the node has no suggestion
_HISTORY_BLOCKS = 5
# a replacement's fees over the stuck one's: 12.5%, above the pools' 10% minimum
_BUMP_NUM, _BUMP_DEN = 9, 8
# seconds a transaction may stay pending before it is replaced (a node that mines by itself)
REPLACE_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class FeeOverrides:
    """Fees per gas in wei the user set (`--max-fee`, `--priority-fee`); None: ask the node."""

    max_fee: int | None = None
    priority_fee: int | None = None


@dataclass(frozen=True, slots=True)
class Fees:
    """The two fees per gas (wei) a type-2 or type-3 transaction carries."""

    max_fee: int
    priority_fee: int

    def fields(self) -> dict[str, int]:
        return {"maxFeePerGas": self.max_fee, "maxPriorityFeePerGas": self.priority_fee}


def _method_missing(error: Exception) -> bool:
    response = getattr(error, "rpc_response", None) or {}
    code = (response.get("error") or {}).get("code")
    return code in METHOD_NOT_FOUND or "not supported" in str(error).lower()


@dataclass
class FeeOracle:
    """Fees for the next transaction, read from the node through `rpc(method, params)`."""

    rpc: Callable[[str, list[Any]], Any]
    overrides: FeeOverrides = field(default_factory=FeeOverrides)
    replace_after: float = REPLACE_AFTER
    # which of the node's methods answered (None: not asked yet)
    _has_suggestion: bool | None = None
    _has_history: bool | None = None
    _cached: Fees | None = None

    def current(self, refresh: bool = True) -> Fees:
        """The fees to send with now; without `refresh`, the last ones read, if any."""
        if refresh or self._cached is None:
            self._cached = self._read()
        return self._cached

    def _read(self) -> Fees:
        wanted = self.overrides
        if wanted.max_fee is not None and wanted.priority_fee is not None:
            return Fees(wanted.max_fee, wanted.priority_fee)
        base, rewards = self._history()
        tip = wanted.priority_fee
        if tip is None:
            tip = self._suggested_tip()
            if tip is None:
                tip = int(median(rewards)) if rewards else _FALLBACK_TIP
        if wanted.max_fee is not None:
            return Fees(wanted.max_fee, min(tip, wanted.max_fee))
        return Fees(2 * base + tip, tip)

    def _history(self) -> tuple[int, list[int]]:
        """The next block's base fee, and the median rewards of the last blocks (if any)."""
        from web3.exceptions import Web3RPCError

        if self._has_history is not False:
            try:
                history = self.rpc("eth_feeHistory", [hex(_HISTORY_BLOCKS), "latest", [50]])
                self._has_history = True
                rewards = [quantity(r[0]) for r in history.get("reward") or [] if r]
                return quantity(history["baseFeePerGas"][-1]), [r for r in rewards if r > 0]
            except Web3RPCError as error:
                if not _method_missing(error):
                    raise
                self._has_history = False
        return quantity(self.rpc("eth_gasPrice", [])), []

    def _suggested_tip(self) -> int | None:
        from web3.exceptions import Web3RPCError

        if self._has_suggestion is False:
            return None
        try:
            tip = quantity(self.rpc("eth_maxPriorityFeePerGas", []))
        except Web3RPCError as error:
            if not _method_missing(error):
                raise
            self._has_suggestion = False
            return None
        self._has_suggestion = True
        return tip

    def bumped(self, stuck: Fees) -> Fees | None:
        """The fees that replace a transaction stuck with `stuck`, at least what the node asks
        now; None if that would pass the user's `--max-fee` (the transaction then waits)."""
        now = self.current()
        tip = max(_bump(stuck.priority_fee), now.priority_fee)
        cap = max(_bump(stuck.max_fee), now.max_fee, tip)
        ceiling = self.overrides.max_fee
        if ceiling is not None and cap > ceiling:
            if _bump(stuck.max_fee) > ceiling:
                return None
            cap = ceiling
        return Fees(cap, min(tip, cap))


def _bump(wei: int) -> int:
    return wei * _BUMP_NUM // _BUMP_DEN + 1
