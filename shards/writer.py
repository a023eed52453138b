"""Deterministic webdataset shards: same samples in, byte-identical tar out, never half-written."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from zlib_ng import zlib_ng

from .card import ShardDigest
from .errors import DatasetError
from .layout import atomic_path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_ZLIB_LEVEL = 1  # zlib-ng's level 1 (deflate_quick): the same bytes on every CPU (docs/format.md, "PNG encoding")
_FORBIDDEN_IN_KEY = set("./\\") | {chr(c) for c in range(33)} | {chr(127)}
TAR_BLOCK = 512
TAR_RECORD = 20 * TAR_BLOCK  # a tar ends with two zero blocks, padded to whole records (like tar -b20)
# A ustar header after name, mode, ids, size and mtime: checksum (summed as spaces), type regular file, no
# link, magic and version, empty user and group names, no device numbers, no prefix, padding to 512 bytes.
_TAR_TAIL = b"0" + bytes(100) + b"ustar\x0000" + bytes(32 + 32 + 8 + 8 + 155 + 12)
_TAR_TAIL_SUM = sum(_TAR_TAIL) + 8 * ord(" ")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib_ng.crc32(kind + data))


def encode_png(image: np.ndarray) -> bytes:
    """8-bit grey (H, W) array -> PNG bytes: IHDR, one IDAT, IEND; every row with the 'Up' filter.

    Written here rather than through Pillow because it is the build's hot path; deflated by zlib-ng (pinned,
    level 1), whose output does not depend on the CPU (docs/format.md). Any PNG reader decodes it.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2 or 0 in image.shape:
        raise DatasetError(
            f"image must be a non-empty uint8 (H, W) array, got {image.dtype} {image.shape}: convert it to 8-bit grey"
        )
    height, width = image.shape
    rows = np.empty((height, width + 1), dtype=np.uint8)
    rows[:, 0] = 2  # filter type Up: each byte minus the byte above it (mod 256)
    rows[0, 1:] = image[0]
    np.subtract(image[1:], image[:-1], out=rows[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib_ng.compress(rows.tobytes(), PNG_ZLIB_LEVEL))
        + _png_chunk(b"IEND", b"")
    )


def check_key(key: str) -> str:
    """Return `key` if webdataset can use it as a sample key (non-empty ASCII, no dot, slash or blank)."""
    if not isinstance(key, str) or not key or not key.isascii() or _FORBIDDEN_IN_KEY & set(key):
        raise DatasetError(f"sample key {key!r} is not usable: keys need printable ASCII without '.', '/', blanks")
    return key


def encode_row(row: dict) -> bytes:
    """A manifest row as compact JSON with sorted keys (numpy scalars become Python numbers)."""

    def plain(value):
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    try:
        return json.dumps(row, sort_keys=True, separators=(",", ":"), default=plain).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"manifest row {row!r} cannot be stored as JSON ({exc}): pass plain values") from exc


def tar_member(name: str, data: bytes) -> bytes:
    """A regular ustar member (header, data, zero padding to 512 bytes) with fixed metadata: mode 0644, uid/gid 0,
    mtime 0, empty user and group names. The header is what Python's tarfile writes for the same member."""
    encoded = name.encode("ascii")
    if len(encoded) > 100:
        raise ValueError(f"name is {len(encoded)} characters, ustar holds 100")
    if len(data) >= 8**11:
        raise ValueError("member is 8 GiB or more, ustar holds less")
    head = encoded.ljust(100, b"\0") + b"0000644\0" + b"0000000\0" * 2 + b"%011o\0" % len(data) + b"00000000000\0"
    checksum = b"%06o\0 " % (sum(head) + _TAR_TAIL_SUM)
    return head + checksum + _TAR_TAIL + data + bytes(-len(data) % TAR_BLOCK)


def _target_member(key: str, target, row: dict) -> tuple[str, bytes]:
    """`{key}.cls` (a single-label sample's class id) or `{key}.hot` (a multi-label sample's multi-hot string)."""
    if isinstance(target, str):
        if not target or set(target) - {"0", "1"} or row.get("targets") != target:
            raise DatasetError(f"sample {key}: multi-hot target {target!r} must be '0'/'1' characters equal to its "
                               f"manifest row's targets ({row.get('targets')!r})")
        return f"{key}.hot", target.encode("ascii")
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (int, np.integer)) or target < 0:
        raise DatasetError(f"sample {key}: label id {target!r} must be a non-negative integer")
    if row.get("label_id") != target:
        raise DatasetError(f"sample {key}: its manifest row says label_id={row.get('label_id')!r}, not {target!r}; "
                           "pass the row of this window")
    return f"{key}.cls", str(int(target)).encode("ascii")


def _sample_members(key, image, target, row) -> list[tuple[str, bytes]]:
    check_key(key)
    if isinstance(image, (bytes, bytearray, memoryview)):
        png = bytes(image)
        if not png.startswith(PNG_SIGNATURE):
            raise DatasetError(f"sample {key}: image bytes are not a PNG: pass a uint8 array or encode_png() output")
    else:
        png = encode_png(image)
    if row.get("key") != key:
        raise DatasetError(f"sample {key}: its manifest row says key={row.get('key')!r}; pass the row of this window")
    return [_target_member(key, target, row), (f"{key}.json", encode_row(row)), (f"{key}.png", png)]


def write_shard(path: str | Path, samples: Iterable[tuple]) -> ShardDigest:
    """Write samples `(key, png bytes or uint8 (H, W) image, target, row dict)` as one webdataset tar; the
    target is a label id (single-label) or the row's multi-hot `targets` string (multi-label).

    Each sample becomes `{key}.cls` (label id in ASCII) or `{key}.hot` (the multi-hot string, e.g. "01100"),
    `{key}.json` (the row), `{key}.png`, in that order, with fixed member metadata (`tar_member`). The tar is
    written under a temporary name and renamed when complete, so an existing `path` is always a whole shard.
    Returns its sha256, size and number of samples (what `card.shard_digest` reads back), hashed as written.
    """
    path = Path(path)
    sha, size, count = hashlib.sha256(), 0, 0
    seen: set[str] = set()
    with atomic_path(path) as tmp, open(tmp, "wb") as file:

        def put(data: bytes) -> None:
            nonlocal size
            file.write(data)
            sha.update(data)
            size += len(data)

        for key, image, target, row in samples:
            if key in seen:
                raise DatasetError(f"sample key {key!r} appears twice in shard {path}: keys must be unique")
            seen.add(key)
            for name, data in _sample_members(key, image, target, row):
                try:
                    put(tar_member(name, data))
                except ValueError as exc:  # ustar limits, e.g. a name over 100 characters
                    raise DatasetError(f"sample {key}: cannot store {name} in {path} ({exc})") from exc
            count += 1
        if count == 0:
            raise DatasetError(f"shard {path} would be empty: give write_shard at least one sample")
        put(bytes(2 * TAR_BLOCK + -(size + 2 * TAR_BLOCK) % TAR_RECORD))
    return ShardDigest(sha.hexdigest(), size, count)
