"""A full disk, a read-only disk or an --out below a file: one `error:` line naming the path, exit 2, no
traceback or crash; after freeing space the same command resumes to the bytes of an undisturbed build.

The disks are small tmpfs mounts (root only: skipped where mounting is not permitted)."""

from __future__ import annotations

import contextlib
import subprocess

import pytest
from buildutil import ecgrender, ecgrender_run, error_lines, tree_bytes

OPTIONS = ["build", "--db", "demo", "--per-class", "6", "--renderer", "fast", "--shard-size", "5", "--jobs", "2",
           "--allow-missing-classes"]


def _mount(*args):
    try:
        return subprocess.run(["mount", *args], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command on this system")


@contextlib.contextmanager
def tmpfs(mountpoint, size_kb):
    """A tmpfs of `size_kb` KiB mounted on `mountpoint` for the block; always unmounted after."""
    mountpoint.mkdir(exist_ok=True)
    done = _mount("-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mountpoint))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): these tests need root")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def _remount(mountpoint, option):
    done = _mount("-o", f"remount,{option}", str(mountpoint))
    assert done.returncode == 0, done.stderr


def _one_error_line(stderr, *expected):
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = error_lines(stderr)
    assert len(errors) == 1 and all(e in errors[0] for e in expected), errors
    return errors[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "dataset"
    result = ecgrender(*OPTIONS, "--out", out)
    assert result.exit_code == 0, result.output
    return tree_bytes(out)


# 120 KiB: the staging array does not fit (extract); 400 KiB: the shards do not (render workers).
@pytest.mark.parametrize("size_kb", [120, 400])
def test_full_disk_is_one_error_line_and_a_rerun_resumes_to_the_same_bytes(size_kb, tmp_path, reference):
    with tmpfs(tmp_path / "disk", size_kb) as disk:
        out = disk / "dataset"
        failed = ecgrender_run(*OPTIONS, "--out", out)
        assert failed.returncode == 2, (failed.returncode, failed.stderr[-3000:])  # not 135 (SIGBUS) or 139
        _one_error_line(failed.stderr, str(out), "No space left on device", "free space", "rerun")
        assert not (out / "dataset.json").exists()
        _remount(disk, "size=8m")
        result = ecgrender(*OPTIONS, "--out", out)
        assert result.exit_code == 0, result.output
        assert "resuming" in result.output
        assert tree_bytes(out) == reference


def test_out_below_a_regular_file(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    result = ecgrender(*OPTIONS, "--out", tmp_path / "file" / "dataset")
    assert result.exit_code == 2
    _one_error_line(result.stderr, str(tmp_path / "file" / "dataset"), "Not a directory")


def test_out_on_a_read_only_disk(tmp_path):
    with tmpfs(tmp_path / "disk", 1024) as disk:
        (disk / "existing").mkdir()
        _remount(disk, "ro")
        for out in (disk / "new", disk / "existing"):
            result = ecgrender(*OPTIONS, "--out", out)
            assert result.exit_code == 2
            _one_error_line(result.stderr, str(out), "Read-only file system", "read-write")
