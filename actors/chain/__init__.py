"""Chain access for the actors: one interface, three backends.

- `BoaChain`: the embedded titanoboa EVM (default; no server, instant).
- `RpcChain`: any JSON-RPC node through web3.py, signing locally with private keys.
- `AnvilNode`: launches a local anvil node for `RpcChain` (tests, swarms, gas figures).
"""

from actors.chain.base import (
    Chain,
    ChainError,
    Event,
    Receipt,
    TransactionReverted,
)
from actors.chain.boa_backend import BoaChain

__all__ = [
    "BoaChain",
    "Chain",
    "ChainError",
    "Event",
    "Receipt",
    "TransactionReverted",
]
