"""protocol/ stays sans-IO: importing all of it loads no event loop, chain client, EVM or torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# trio (actors' event loop), web3 (JSON-RPC client), boa (titanoboa's EVM), torch (training)
BANNED = ("trio", "web3", "boa", "torch")

_PROBE = """
import importlib, json, pkgutil, sys
import protocol
names = sorted(m.name for m in pkgutil.walk_packages(protocol.__path__, "protocol."))
for name in names:
    importlib.import_module(name)
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))
print(json.dumps({"modules": names, "banned": loaded}))
"""


def test_protocol_imports_none_of_the_io_libraries() -> None:
    # A fresh interpreter: this test process has imported half the project already.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *BANNED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    expected = {f"protocol.{p.stem}" for p in (ROOT / "protocol").glob("*.py")} - {
        "protocol.__init__"
    }
    assert set(report["modules"]) == expected  # every module was imported
    assert report["banned"] == []
