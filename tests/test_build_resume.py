"""A build killed with SIGKILL and re-run ends byte-identical to an uninterrupted one; jobs don't matter."""

from __future__ import annotations

import os
import signal
import time

from buildutil import ecgrender, ecgrender_process, tree_bytes

# matplotlib is the slow renderer: the build lasts long enough to be killed mid-render.
OPTIONS = ["--db", "demo", "--per-class", "10", "--renderer", "matplotlib", "--shard-size", "4"]


def _kill_when_shards_appear(out, n_shards, timeout=120):
    process = ecgrender_process("build", *OPTIONS, "--jobs", "1", "--out", out, start_new_session=True,
                                stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((out / "images").glob("*.tar"))) >= n_shards if (out / "images").is_dir() else False:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the build ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_kill_and_resume_equals_uninterrupted_build_with_two_jobs(tmp_path):
    killed = tmp_path / "killed"
    _kill_when_shards_appear(killed, n_shards=2)
    assert not (killed / "dataset.json").exists(), "a killed build must not look complete"
    result = ecgrender("build", *OPTIONS, "--jobs", "1", "--out", killed)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output

    straight = tmp_path / "straight"
    result = ecgrender("build", *OPTIONS, "--jobs", "2", "--out", straight)
    assert result.exit_code == 0, result.output
    assert tree_bytes(killed) == tree_bytes(straight)
