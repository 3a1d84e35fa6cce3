"""Keep freed memory in a process that trains, instead of handing it back to the kernel.

glibc's malloc serves a large request with a fresh `mmap` and returns it with `munmap` when it
is freed; below that size it serves the heap, and trims the heap's free top back to the kernel
once it passes a threshold. Both thresholds start small (128 KiB) and move with what the
process frees. A training step of a small network makes activations of a few MiB, frees them
at the end of the step and asks for the same again at the next one, so a fresh worker process
gives those pages back and faults them in again, zeroed, every few steps: a data owner's round
on the MNIST spec took 20,000-140,000 page faults in a training process, and 0.8-1.0 s of CPU
where the same training took 0.64-0.74 s with none in a process whose thresholds had already
grown. Ten trainings on two training processes took 13.9-15.2 s of CPU over two rounds with
`keep_freed_memory()`, against 17.7-18.1 s without, with the same updates bit for bit.

`keep_freed_memory()` fixes the thresholds: requests under `MMAP_THRESHOLD` come from the heap,
and the heap keeps up to `TRIM_THRESHOLD` of free memory at its top. The process then stays at
its peak heap: the demo's peak memory, summed over its processes, stayed at 1.4-1.5 GiB. Only
glibc (Linux) has these knobs; elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

MMAP_THRESHOLD = 32 << 20  # bytes: glibc's largest on 64-bit
TRIM_THRESHOLD = 256 << 20  # bytes
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Fix this process's malloc thresholds (above); whether it could."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
