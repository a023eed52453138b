"""File names inside a dataset directory, the one way every writer replaces a file, and the shard end check."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tarfile
from collections.abc import Iterator
from pathlib import Path

from .errors import DatasetError

CARD = "dataset.json"
MANIFEST = "manifest.csv"
REFECG = "refecg.h5"
IMAGES = "images"
SPLITS = ("train", "val", "test")
TEMP_SUFFIX = ".tmp"
SAMPLE_EXTENSIONS = ("cls", "hot", "json", "png")  # member types of a sample, in the order a shard stores them
TARGET_EXTENSIONS = ("cls", "hot")  # a sample has exactly one: class id (single-label) or multi-hot (multi-label)

_END_OF_ARCHIVE = 2 * tarfile.BLOCKSIZE  # a complete tar ends with two zero blocks
_SHARD = re.compile(rf"^{IMAGES}/({'|'.join(SPLITS)})-\d{{6}}\.tar$")


def check_split(split: str) -> str:
    """Return `split` if it is one of SPLITS, else raise DatasetError."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    return split


def shard_name(split: str, index: int) -> str:
    """Relative path of shard `index` of `split`: images/{split}-{index:06d}.tar."""
    check_split(split)
    if not 0 <= index <= 999_999:
        raise DatasetError(f"shard index {index} out of range 0..999999: use a larger --shard-size")
    return f"{IMAGES}/{split}-{index:06d}.tar"


def shard_split(rel: str) -> str | None:
    """The split of a dataset-relative shard path such as 'images/train-000003.tar'; None for other files."""
    match = _SHARD.match(rel)
    return match.group(1) if match else None


def shard_paths(root: str | Path, split: str) -> list[Path]:
    """The complete shards of `split` under root/images, sorted by index (temp files are not shards)."""
    check_split(split)
    images = Path(root) / IMAGES
    if not images.is_dir():
        return []
    return sorted(p for p in images.iterdir() if p.is_file() and shard_split(f"{IMAGES}/{p.name}") == split)


def check_shard_end(path: str | Path) -> None:
    """Raise DatasetError unless the file ends like a complete tar (two zero blocks), e.g. after truncation."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(size - _END_OF_ARCHIVE, 0))
        tail = f.read()
    if size % tarfile.BLOCKSIZE or len(tail) < _END_OF_ARCHIVE or tail.strip(b"\0"):
        raise DatasetError(f"shard {path} is truncated (no tar end marker): re-download or rebuild it")


def temp_path(path: str | Path) -> Path:
    """A fresh name to write `path` under until it is complete: same directory, unique to this process
    and call (pid and a random token), ending in TEMP_SUFFIX. Two writers never share a temp file."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def is_dataset_file(rel: str) -> bool:
    """True for a dataset-relative path the card lists: not the card, not a temp file, nothing hidden
    (a path part starting with '.', such as a build's work directory)."""
    return rel != CARD and not rel.endswith(TEMP_SUFFIX) and not any(part.startswith(".") for part in rel.split("/"))


def commit(tmp: Path, path: Path) -> None:
    """Make the closed file `tmp` durable (fsync), rename it to `path` in one atomic step, and make the
    rename durable (fsync of the directory)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fd = os.open(Path(path).parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(tmp: Path) -> None:
    """Remove an unfinished temp file, if it exists."""
    Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Write `path` all at once: yields a temp path to write and close; on a clean exit it is committed
    (fsync, rename), on an exception removed. A reader sees the old file, or the whole new one."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to `path` through `atomic_path`."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
