"""The `--out` directory of a build: one build at a time holds it, a killed build's leftovers go, and a
failing disk or permission is one line.

A build takes an exclusive, non-blocking flock on a hidden lock file inside `--out` for its whole
run; temp files left by a killed build are removed only while holding it (docs/build.md).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from shards.layout import CARD, IMAGES, MANIFEST, REFECG, TEMP_SUFFIX

from .errors import EcgError

LOCK = ".ecgrender.lock"  # flock'ed by the build that holds --out; holds its pid


@contextlib.contextmanager
def locked_out(out: Path) -> Iterator[None]:
    """Hold `out` (created if missing) for one build: an exclusive, non-blocking flock on `out/LOCK`,
    which holds this process's pid. A second build fails at once with an EcgError naming the holder.
    The lock file is removed on release (a killed build leaves it, unlocked: the next build takes it)."""
    if out.exists() and not out.is_dir():
        raise EcgError(f"--out {out} is a file: give a directory")
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    fd = _acquire(path, out)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # still locked: a build that opens it now finds it gone and opens a new one
        os.close(fd)


def _acquire(path: Path, out: Path) -> int:
    """Open and flock `path`; retry when the file was replaced meanwhile (its holder removed it)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise EcgError(
                f"--out {out} is in use by another ecgrender build (pid {holder}): wait for it to end, "
                "or choose another --out"
            ) from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def remove_stale_temps(out: Path) -> None:
    """Delete temp files a killed build left next to the dataset's files (only under the lock)."""
    for pattern in (f"{CARD}.*{TEMP_SUFFIX}", f"{MANIFEST}.*{TEMP_SUFFIX}", f"{REFECG}.*{TEMP_SUFFIX}",
                    f"{IMAGES}/*{TEMP_SUFFIX}"):
        for stale in out.glob(pattern):
            stale.unlink()


def disk_error(exc: OSError, out: Path) -> EcgError:
    """One line for an OSError met while building: the file, the reason, and what to do before rerunning."""
    path = exc.filename or out
    reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
    rerun = "then rerun the same command (it resumes)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = f"free space on that disk, {rerun}"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        todo = f"fix its permissions (or mount it read-write), {rerun}"
    elif exc.errno == errno.ENOTDIR:
        todo = "a part of that path is a file: choose another --out"
    else:
        todo = f"free space or fix permissions, {rerun}"
    return EcgError(f"build stopped at {path}: {reason}; {todo}")
