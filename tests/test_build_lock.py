"""One build at a time per --out: a second one stops at once, names the holder's pid, touches nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from buildutil import ecgrender, tree_bytes

OPTIONS = ["build", "--db", "demo", "--per-class", "3", "--renderer", "fast", "--jobs", "1", "--allow-missing-classes"]
LOCK = ".ecgrender.lock"
HOLD = (
    "import sys\nfrom pathlib import Path\nfrom ecgrender.outdir import locked_out\n"
    "with locked_out(Path(sys.argv[1])):\n    print('locked', flush=True)\n    sys.stdin.read()\n"
)


@contextlib.contextmanager
def held(out):
    """A separate process holding the build lock of `out` until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked", "the holder could not take the lock"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def _refused(result, holder):
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert message.startswith("error:") and "\n" not in message
    assert f"pid {holder.pid}" in message and "another ecgrender build" in message


def test_second_build_with_force_is_refused_and_touches_nothing(tmp_path):
    out = tmp_path / "o"
    assert ecgrender(*OPTIONS, "--out", out).exit_code == 0
    before = tree_bytes(out)
    with held(out) as holder:
        _refused(ecgrender(*OPTIONS, "--seed", "3", "--force", "--out", out), holder)
    assert tree_bytes(out) == before  # the holder removed its lock file; nothing else changed


def test_second_build_into_a_held_empty_directory_writes_nothing(tmp_path):
    out = tmp_path / "o"
    with held(out) as holder:
        _refused(ecgrender(*OPTIONS, "--out", out), holder)
        assert sorted(p.name for p in out.iterdir()) == [LOCK]
        assert (out / LOCK).read_text().strip() == str(holder.pid)
    assert not any(out.iterdir())


def test_lock_file_of_a_killed_build_neither_blocks_nor_counts_as_foreign_content(tmp_path):
    out = tmp_path / "o"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (out / LOCK).read_text().strip() == str(holder.pid)  # left behind, no longer locked
    result = ecgrender(*OPTIONS, "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "dataset.json").is_file() and not (out / LOCK).exists()
