"""Launch and stop Hardhat's node: a second node implementation beside anvil.

Hardhat 2 (npm `hardhat`; its EDR engine is a native binary inside the package; Hardhat 3 does
not start this way) is installed by `just setup` into `.hardhat/`; `OMNILYTICS_HARDHAT` overrides
the path of its `hardhat` command. Hardhat runs only inside a project: each node gets a temporary
directory holding a minimal `hardhat.config.js` and a link to the `node_modules` that holds
hardhat.

What differs from anvil is found by asking the node, never by its name (`RpcChain`): it has
`hardhat_*` methods where anvil has `anvil_*`, and no `eth_sendRawTransactionSync`.

`python -m actors.chain.hardhat --port 8545` runs one in the foreground (`just chain-hardhat`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from pathlib import Path

from actors.chain.base import NodeUnavailable
from actors.chain.node_process import NodeProcess, free_port

_ROOT = Path(__file__).resolve().parents[2]
_LOCAL_BINS = (
    _ROOT / ".hardhat" / "node_modules" / ".bin" / "hardhat",
    _ROOT / "node_modules" / ".bin" / "hardhat",
)
HARDHAT_CHAIN_ID = 31337
# the dev mnemonic anvil and hardhat share: its first account is anvil's funded dev account
_DEV_MNEMONIC = "test test test test test test test test test test test junk"


def hardhat_binary() -> str | None:
    """Where hardhat is: $OMNILYTICS_HARDHAT, then .hardhat/ and node_modules/ (`just setup`)."""
    explicit = os.environ.get("OMNILYTICS_HARDHAT")
    if explicit:
        return explicit
    for path in _LOCAL_BINS:
        if path.exists():
            return str(path)
    return None


def _config(chain_id: int, hardfork: str | None) -> str:
    """A hardhat.config.js with one funded account (anvil's default key, so tests can share a
    funder) and automining, as anvil starts."""
    network: dict[str, object] = {
        "chainId": chain_id,
        "accounts": {"mnemonic": _DEV_MNEMONIC, "count": 1},
        "mining": {"auto": True},
    }
    if hardfork is not None:
        network["hardfork"] = hardfork
    return f"module.exports = {json.dumps({'networks': {'hardhat': network}})};\n"


class HardhatNode(NodeProcess):
    """A child `hardhat node` on `host` (127.0.0.1 unless told); a context manager that always
    stops it and removes its project directory."""

    kind = "hardhat"

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        chain_id: int = HARDHAT_CHAIN_ID,
        hardfork: str | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        binary = hardhat_binary()
        if binary is None:
            raise NodeUnavailable("hardhat not found: run `just setup` (npm hardhat@2)")
        self.port = port or free_port(host)
        self.chain_id = chain_id
        self._project = tempfile.TemporaryDirectory(prefix="omnilytics-hardhat-")
        project = Path(self._project.name)
        (project / "hardhat.config.js").write_text(_config(chain_id, hardfork))
        # hardhat refuses to run from an installation outside the project (HH12)
        modules = Path(binary).absolute().parent.parent  # node_modules/.bin/hardhat
        (project / "node_modules").symlink_to(modules, target_is_directory=True)
        args = [binary, "node", "--hostname", host, "--port", str(self.port)]
        try:
            super().__init__(
                args, f"http://{host}:{self.port}", startup_timeout=startup_timeout, cwd=project
            )
        except NodeUnavailable:
            self._project.cleanup()
            raise

    def stop(self) -> None:
        super().stop()
        self._project.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="run Hardhat's node in the foreground")
    parser.add_argument("--port", type=int, default=8545)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--chain-id", type=int, default=HARDHAT_CHAIN_ID)
    args = parser.parse_args()
    with HardhatNode(args.port, host=args.host, chain_id=args.chain_id) as node:
        print(f"hardhat node at {node.url} (chain id {node.chain_id}); Ctrl-C stops it")
        with contextlib.suppress(KeyboardInterrupt):
            node.wait()


if __name__ == "__main__":
    main()
