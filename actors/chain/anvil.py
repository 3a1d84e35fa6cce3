"""Launch and stop a local anvil node (the project's real chain for swarms and gas figures).

anvil comes from npm (`@foundry-rs/anvil`, installed by `just setup` into node_modules/);
`OMNILYTICS_ANVIL` overrides the binary's path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from actors.chain.base import NodeUnavailable
from actors.chain.node_process import NodeProcess, free_port

_LOCAL_BIN = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "anvil"


def anvil_binary() -> str | None:
    """Where anvil is: $OMNILYTICS_ANVIL, then node_modules/.bin, then PATH."""
    explicit = os.environ.get("OMNILYTICS_ANVIL")
    if explicit:
        return explicit
    if _LOCAL_BIN.exists():
        return str(_LOCAL_BIN)
    return shutil.which("anvil")


class AnvilNode(NodeProcess):
    """A child anvil process on `host` (127.0.0.1 unless told); a context manager that always
    stops it."""

    kind = "anvil"

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        block_time: float | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 20.0,
    ) -> None:
        binary = anvil_binary()
        if binary is None:
            raise NodeUnavailable("anvil not found: run `just setup` (npm @foundry-rs/anvil)")
        self.port = port or free_port(host)
        args = [binary, "--host", host, "--port", str(self.port), "--silent"]
        args += ["--accounts", "1"]
        if block_time is not None:
            args += ["--block-time", str(block_time)]
        args += list(extra_args)
        super().__init__(args, f"http://{host}:{self.port}", startup_timeout=startup_timeout)
