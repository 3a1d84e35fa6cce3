"""Peak memory of a process tree (actors.measure.memory): a fake /proc, then the real one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from actors.measure.memory import PROC, MemoryPeak, descendants, read_memory

MIB = 2**20


def _process(
    proc: Path, pid: int, parent: int, rss_kib: int | None, hwm_kib: int = 0, pss_kib: int = 0
) -> None:
    entry = proc / str(pid)
    entry.mkdir(parents=True, exist_ok=True)
    # a command name with spaces and parentheses, as the kernel allows
    (entry / "stat").write_text(f"{pid} (py (x) y) S {parent} {pid} {pid} 0 -1\n")
    lines = [f"Name:\tproc{pid}", "State:\tS (sleeping)"]
    if rss_kib is not None:
        lines += [f"VmHWM:\t{max(hwm_kib, rss_kib)} kB", f"VmRSS:\t{rss_kib} kB"]
    (entry / "status").write_text("\n".join(lines) + "\n")
    if rss_kib is not None:
        rollup = f"Rss:  {rss_kib} kB\nPss:  {pss_kib or rss_kib} kB\nPss_Anon:  1 kB\n"
        (entry / "smaps_rollup").write_text(rollup)


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    # 100 -> 101, 102; 102 -> 103 (a zombie: no VmRSS); 200 is someone else's
    _process(tmp_path, 100, 1, 1_000)
    _process(tmp_path, 101, 100, 10_000, pss_kib=4_000)
    _process(tmp_path, 102, 100, 20_000, hwm_kib=50_000, pss_kib=8_000)
    _process(tmp_path, 103, 102, None)
    _process(tmp_path, 200, 1, 99_000)
    (tmp_path / "self").mkdir()  # not a pid
    return tmp_path


def test_descendants_are_the_whole_subtree_without_the_root(proc: Path) -> None:
    assert descendants(100, proc) == [101, 102, 103]
    assert descendants(102, proc) == [103]
    assert descendants(101, proc) == []


def test_read_memory_parses_status_and_skips_zombies(proc: Path) -> None:
    m = read_memory(102, proc)
    assert m is not None and (m.rss, m.hwm, m.name) == (20_000 * 1024, 50_000 * 1024, "proc102")
    assert m.pss is None  # only read when asked
    with_pss = read_memory(102, proc, pss=True)
    assert with_pss is not None and with_pss.pss == 8_000 * 1024
    assert read_memory(103, proc) is None
    assert read_memory(999, proc) is None  # exited


def test_the_peak_is_the_largest_sum_and_survives_an_exit(proc: Path) -> None:
    peak = MemoryPeak(100, proc, pss_every=2)
    assert peak.sample() == 30_000 * 1024  # PSS read: 12,000 kB
    _process(proc, 101, 100, 40_000, pss_kib=30_000)  # grows; PSS not read on this sample
    assert peak.sample() == 60_000 * 1024
    shutil.rmtree(proc / "101")  # exits
    assert peak.sample() == 20_000 * 1024  # PSS read: 8,000 kB
    summary = peak.summary({102: "do-1"})
    assert summary == {
        "peak_total_rss_bytes": 60_000 * 1024,
        "peak_processes": 2,
        "peak_total_pss_bytes": 12_000 * 1024,
        "largest_process_rss_bytes": 50_000 * 1024,  # 102's high-water mark beats 101's 40,000
        "largest_process": "do-1",
        "samples": 3,
    }


@pytest.mark.skipif(not (PROC / "self" / "status").exists(), reason="needs Linux /proc")
def test_a_real_child_holding_memory_is_counted() -> None:
    hold = "import sys; b = bytearray(64 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
    hold += "print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        [sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        own = read_memory(child.pid)
        assert own is not None and own.rss >= 64 * MIB
        # this test process may have other children (a node of a session fixture): at least
        peak = MemoryPeak(os.getpid())
        assert child.pid in descendants(os.getpid())
        assert peak.sample() >= own.rss
        summary = peak.summary()
        assert summary["largest_process_rss_bytes"] >= 64 * MIB
        # the child's 64 MiB are its own (anonymous, written): they count in PSS in full
        if (PROC / "self" / "smaps_rollup").exists():
            assert summary["peak_total_pss_bytes"] >= 64 * MIB
    finally:
        child.communicate(b"", timeout=30)
