"""The swarm's launcher waits for its processes with bounds (stand-in processes, no node): data
owners still running `collect_grace` seconds after the model owner's process ended the task are
named, and a process that failed is named with the last line of its log, in one line."""

import subprocess
import sys
from pathlib import Path

import pytest

from actors.entry.scenario import Scenario
from actors.entry.swarm import Swarm, SwarmError


def _process(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


def _swarm(tmp_path: Path) -> Swarm:
    swarm = Swarm(Scenario(dos=2), chain=None, state_dir=tmp_path, sample_memory=False)
    swarm.mo = _process("pass")
    return swarm


def test_data_owners_still_running_after_the_task_ended_are_named(tmp_path: Path) -> None:
    swarm = _swarm(tmp_path)
    swarm.dos = {0: _process("pass"), 1: _process("import time; time.sleep(60)")}
    try:
        with pytest.raises(SwarmError, match=r"^do-1 not finished 0.5 s after the model owner"):
            swarm.wait(timeout=30, collect_grace=0.5)
    finally:
        swarm.stop()
    assert swarm.dos[1].returncode is not None  # stopped, not left behind


def test_a_failed_process_is_named_in_one_line(tmp_path: Path) -> None:
    swarm = _swarm(tmp_path)
    (tmp_path / "do-0.out").write_text("Traceback (most recent call last):\n  ...\nValueError: x\n")
    swarm.dos = {0: _process("raise SystemExit(3)")}
    swarm.dos[0].wait()
    with pytest.raises(SwarmError) as raised:
        swarm.wait(timeout=30)
    assert str(raised.value) == f"do-0 exited with 3: ValueError: x (log: {tmp_path / 'do-0.out'})"
