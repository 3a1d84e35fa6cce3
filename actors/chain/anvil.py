"""Launch and stop a local anvil node (the project's real chain for swarms and gas figures).

anvil comes from npm (`@foundry-rs/anvil`, installed by `just setup` into node_modules/);
`OMNILYTICS_ANVIL` overrides the binary's path.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import requests

from actors.chain.base import NodeUnavailable

_LOCAL_BIN = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "anvil"


def anvil_binary() -> str | None:
    """Where anvil is: $OMNILYTICS_ANVIL, then node_modules/.bin, then PATH."""
    explicit = os.environ.get("OMNILYTICS_ANVIL")
    if explicit:
        return explicit
    if _LOCAL_BIN.exists():
        return str(_LOCAL_BIN)
    return shutil.which("anvil")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class AnvilNode:
    """A child anvil process on `host` (127.0.0.1 unless told); a context manager that always
    stops it."""

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
        self.url = f"http://{host}:{self.port}"
        args = [binary, "--host", host, "--port", str(self.port), "--silent"]
        args += ["--accounts", "1"]
        if block_time is not None:
            args += ["--block-time", str(block_time)]
        args += list(extra_args)
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        self._wait_ready(startup_timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr
                err = stderr.read().decode(errors="replace").strip() if stderr else ""
                code = self._process.returncode
                raise NodeUnavailable(f"anvil exited with {code}: {err}")
            try:
                if requests.post(self.url, json=payload, timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise NodeUnavailable(f"anvil did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        """Stop the node (idempotent)."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
