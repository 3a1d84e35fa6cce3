"""A training process keeps the memory it frees (actors.learning.heap): a block of a training
step's size comes from the heap, not from a fresh mmap, and freeing it leaves the heap as
large as it was. Each check runs in a fresh interpreter (malloc's thresholds are per process),
beside the same steps without `keep_freed_memory()`, which show what it changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

_PROBE = """
import ctypes, json, sys
from actors.learning.heap import keep_freed_memory

class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
libc.mallinfo2.restype = Info
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
size = 8 << 20  # a training step's activations: a few MiB
before = libc.mallinfo2()
block = libc.malloc(size)
ctypes.memset(block, 1, size)
during = libc.mallinfo2()
libc.free(block)
after = libc.mallinfo2()
print(json.dumps({"kept": kept, "mapped": during.hblkhd - before.hblkhd,
                  "heap_during": during.arena, "heap_after": after.arena}))
"""


def _probe(mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_freed_block_stays_in_the_process() -> None:
    plain, kept = _probe("plain"), _probe("keep")
    # without it: the block is a fresh mapping, given back when freed
    assert plain["mapped"] >= 8 << 20
    # with it: the block comes from the heap, and the heap keeps it when it is freed
    assert kept["kept"] is True
    assert kept["mapped"] == 0
    assert kept["heap_during"] >= 8 << 20
    assert kept["heap_after"] == kept["heap_during"]
