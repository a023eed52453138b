"""Render workers do not outlive a killed build: each job checks between windows that its parent is
still the process that started it, and exits at once when not."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from buildutil import ecgrender_process

# matplotlib is the slow renderer and one shard per split keeps each worker busy for many seconds.
OPTIONS = ["--db", "demo", "--per-class", "30", "--renderer", "matplotlib", "--shard-size", "1000", "--jobs", "2",
           "--allow-missing-classes"]


def _children(pid: int) -> set[int]:
    children = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children |= {int(c) for c in (task / "children").read_text().split()}
    return children


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until_rendering(process: subprocess.Popen, out: Path, timeout: float = 120) -> set[int]:
    """The build's child processes once a worker has started writing a shard (its temp file exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the build ended before its workers rendered"
        if list(out.glob("images/*.tmp")) and len(_children(process.pid)) >= 2:
            return _children(process.pid)
        time.sleep(0.1)
    raise AssertionError("no worker started rendering")


def test_workers_exit_when_the_build_is_killed(tmp_path):
    out = tmp_path / "o"
    process = ecgrender_process("build", *OPTIONS, "--out", out, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        workers = _wait_until_rendering(process, out)
        os.kill(process.pid, signal.SIGKILL)  # the main process only
        process.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)], "workers kept running after the build was killed"
    finally:
        process.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
