"""A local dev node as a child process: started, awaited until it answers JSON-RPC, stopped.

`AnvilNode` and `HardhatNode` differ only in how they are launched; both are context managers
that always stop their node.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import requests

from actors.chain.base import NodeUnavailable


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class NodeProcess:
    """A node process listening on `url`; raises NodeUnavailable if it exits or stays silent
    for `startup_timeout` seconds."""

    kind = "node"

    def __init__(
        self,
        args: Sequence[str],
        url: str,
        *,
        startup_timeout: float,
        cwd: Path | None = None,
    ) -> None:
        self.url = url
        self._process = subprocess.Popen(
            list(args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd=cwd,
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
                raise NodeUnavailable(f"{self.kind} exited with {code}: {err}")
            try:
                if requests.post(self.url, json=payload, timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise NodeUnavailable(f"{self.kind} did not answer on {self.url} within {timeout} s")

    def wait(self) -> int:
        """Block until the node exits; its exit code."""
        return self._process.wait()

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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# the dev nodes this project can start for a run (`--chain anvil`, `--chain hardhat`)
LOCAL_NODES = ("anvil", "hardhat")


def start_local_node(kind: str) -> NodeProcess:
    """Start a fresh dev node of `kind` (one of LOCAL_NODES) on a free loopback port."""
    if kind == "anvil":
        from actors.chain.anvil import AnvilNode

        return AnvilNode()
    if kind == "hardhat":
        from actors.chain.hardhat import HardhatNode

        return HardhatNode()
    raise ValueError(f"unknown dev node {kind!r}: {' or '.join(LOCAL_NODES)}")
