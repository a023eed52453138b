"""A build killed with SIGKILL and re-run ends byte-identical to an uninterrupted one; jobs don't matter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from buildutil import ecgrender, ecgrender_process, tree_bytes

KILL_IN_SHARD = Path(__file__).resolve().parent / "kill_in_shard.py"
OPTIONS = ["--db", "demo", "--per-class", "6", "--renderer", "fast", "--shard-size", "4", "--allow-missing-classes"]


def _resume_equals_straight_build(killed, tmp_path, options):
    assert not (killed / "dataset.json").exists(), "a killed build must not look complete"
    result = ecgrender("build", *options, "--jobs", "1", "--out", killed)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output
    straight = tmp_path / "straight"
    result = ecgrender("build", *options, "--jobs", "2", "--out", straight)
    assert result.exit_code == 0, result.output
    assert tree_bytes(killed) == tree_bytes(straight)


def test_killed_while_writing_the_third_shard_resumes_to_the_bytes_of_a_two_job_build(tmp_path):
    killed = tmp_path / "killed"
    run = subprocess.run([sys.executable, str(KILL_IN_SHARD), "3", "build", *OPTIONS, "--jobs", "1", "--out", killed],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    assert len(list((killed / "images").glob("*.tar"))) == 2
    assert len(list((killed / "images").glob("*.tmp"))) == 1  # the third shard, half-written
    _resume_equals_straight_build(killed, tmp_path, OPTIONS)


# matplotlib is the slow renderer: 60 windows in shards of 2 leave about 28 shards to render after the
# kill, far more than the 50 ms polling needs.
SLOW_OPTIONS = ["--db", "demo", "--per-class", "15", "--renderer", "matplotlib", "--shard-size", "2",
                "--allow-missing-classes"]


@pytest.mark.slow
def test_killed_by_a_real_sigkill_resumes_to_the_bytes_of_a_two_job_build(tmp_path):
    killed = tmp_path / "killed"
    process = ecgrender_process("build", *SLOW_OPTIONS, "--jobs", "1", "--out", killed, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and len(list(killed.glob("images/*.tar"))) < 2:
        time.sleep(0.05)
    assert process.poll() is None, "the build ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    _resume_equals_straight_build(killed, tmp_path, SLOW_OPTIONS)


def test_killed_multi_label_build_resumes_to_the_same_bytes(tmp_path, synth_ptbxl):
    """A multi-label manifest does not name its classes: the unfinished build keeps them for the resume."""
    options = ["--db", "ptbxl", "--source", synth_ptbxl, "--fs", "500", "--split-by", "fold", "--shard-size", "8",
               "--allow-missing-classes"]
    killed = tmp_path / "killed"
    run = subprocess.run([sys.executable, str(KILL_IN_SHARD), "2", "build", *map(str, options), "--jobs", "1",
                          "--out", killed], capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    assert (killed / ".build" / "classes.json").is_file()
    _resume_equals_straight_build(killed, tmp_path, options)
