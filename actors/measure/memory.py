"""Memory of a process tree, read from Linux's /proc: what a swarm's processes hold at peak.

`MemoryPeak.sample` reads the resident set (VmRSS) of every descendant of a root process — a
swarm's model owner, data owners and node — and keeps the largest sum seen, how many processes
made it, and the largest single process by its own high-water mark (VmHWM, which the kernel keeps
per process, so that one is exact; the sums are as good as the sampling rate).

RSS counts a page shared between processes (the torch and numpy libraries every data owner maps)
once per process, so the RSS sum overstates what the machine needs. Every few samples the sampler
also reads each process's proportional set size (Pss in /proc/PID/smaps_rollup: a shared page
split between its sharers), whose sum is what the tree costs the machine. That read walks the
page tables (a few ms per process), hence the lower rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcessMemory:
    """One process's resident memory now and at its peak, in bytes."""

    pid: int
    name: str
    rss: int
    hwm: int
    pss: int | None = None  # read only when asked: it costs more than the rest


def _parent(pid_dir: Path) -> int | None:
    try:
        stat = (pid_dir / "stat").read_text()
    except OSError:  # the process exited between listing and reading
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")"
    fields = stat.rpartition(")")[2].split()
    return int(fields[1]) if len(fields) > 1 else None


def descendants(root: int, proc: Path = PROC) -> list[int]:
    """Every live process below ``root`` (children, their children, ...), not ``root`` itself."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            parent = _parent(entry)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return sorted(found)


def read_memory(pid: int, proc: Path = PROC, *, pss: bool = False) -> ProcessMemory | None:
    """``pid``'s VmRSS and VmHWM (and its Pss if ``pss``), or None if it exited or holds no
    memory (a zombie, a kernel thread)."""
    try:
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    values: dict[str, str] = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        values[key] = value.strip()
    if "VmRSS" not in values:
        return None
    rss = _kib(values["VmRSS"])
    hwm = max(rss, _kib(values.get("VmHWM", "0")))
    return ProcessMemory(pid, values.get("Name", "?"), rss, hwm, _pss(pid, proc) if pss else None)


def _pss(pid: int, proc: Path) -> int | None:
    try:
        rollup = (proc / str(pid) / "smaps_rollup").read_text()
    except OSError:  # exited, or a kernel without smaps_rollup (before 4.14)
        return None
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return _kib(line.partition(":")[2].strip())
    return None


def _kib(value: str) -> int:
    return int(value.split()[0]) * 1024


@dataclass
class MemoryPeak:
    """The peak summed RSS (and PSS) of ``root``'s descendants over `sample` calls, and the
    largest one. PSS is read on every ``pss_every``-th sample, the first included."""

    root: int
    proc: Path = PROC
    pss_every: int = 4
    peak_total: int = 0
    peak_processes: int = 0
    peak_total_pss: int = 0
    largest: ProcessMemory | None = None
    samples: int = 0

    def sample(self) -> int:
        """Read every descendant once; return the summed RSS now."""
        with_pss = self.samples % self.pss_every == 0
        now = [
            m
            for pid in descendants(self.root, self.proc)
            if (m := read_memory(pid, self.proc, pss=with_pss))
        ]
        total = sum(m.rss for m in now)
        self.samples += 1
        if total > self.peak_total:
            self.peak_total, self.peak_processes = total, len(now)
        if with_pss:
            self.peak_total_pss = max(self.peak_total_pss, sum(m.pss or 0 for m in now))
        for m in now:
            if self.largest is None or m.hwm > self.largest.hwm:
                self.largest = m
        return total

    def summary(self, roles: Mapping[int, str] | None = None) -> dict[str, int | str]:
        """The peak as report fields; the largest process named by its role if ``roles`` has it."""
        largest = self.largest
        name = ""
        if largest is not None:
            name = (roles or {}).get(largest.pid, largest.name)
        return {
            "peak_total_rss_bytes": self.peak_total,
            "peak_processes": self.peak_processes,
            "peak_total_pss_bytes": self.peak_total_pss,
            "largest_process_rss_bytes": largest.hwm if largest else 0,
            "largest_process": name,
            "samples": self.samples,
        }
