"""Deterministic webdataset shards: same samples in, byte-identical tar out, never half-written."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DatasetError
from .layout import commit, discard, temp_path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COMPRESS_LEVEL = 6  # zlib level; fixed so a given Pillow/zlib build gives the same bytes
_FORBIDDEN_IN_KEY = set("./\\") | {chr(c) for c in range(33)} | {chr(127)}


def encode_png(image: np.ndarray) -> bytes:
    """8-bit grey (H, W) array -> PNG bytes (mode L, fixed compression, no timestamp or text chunks)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2 or 0 in image.shape:
        raise DatasetError(
            f"image must be a non-empty uint8 (H, W) array, got {image.dtype} {image.shape}: convert it to 8-bit grey"
        )
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(
        buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False
    )
    return buffer.getvalue()


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


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info, io.BytesIO(data)


def _sample_members(key, image, label_id, row) -> list[tuple[str, bytes]]:
    check_key(key)
    if isinstance(image, (bytes, bytearray, memoryview)):
        png = bytes(image)
        if not png.startswith(PNG_SIGNATURE):
            raise DatasetError(f"sample {key}: image bytes are not a PNG: pass a uint8 array or encode_png() output")
    else:
        png = encode_png(image)
    if isinstance(label_id, (bool, np.bool_)) or not isinstance(label_id, (int, np.integer)) or label_id < 0:
        raise DatasetError(f"sample {key}: label id {label_id!r} must be a non-negative integer")
    if row.get("key") != key or row.get("label_id") != label_id:
        raise DatasetError(
            f"sample {key}: its manifest row says key={row.get('key')!r} label_id={row.get('label_id')!r}; "
            f"pass the row of this window"
        )
    return [
        (f"{key}.cls", str(int(label_id)).encode("ascii")),
        (f"{key}.json", encode_row(row)),
        (f"{key}.png", png),
    ]


def write_shard(path: str | Path, samples: Iterable[tuple]) -> int:
    """Write samples `(key, png bytes or uint8 (H, W) image, label_id, row dict)` as one webdataset tar.

    Each sample becomes `{key}.cls` (label id in ASCII), `{key}.json` (the row), `{key}.png`, in that
    order, with fixed member metadata (mtime 0, uid/gid 0, no user names, mode 0644). The tar is written
    to `path` + '.tmp' and renamed when complete, so an existing `path` is always a whole shard.
    Returns the number of samples written.
    """
    path = Path(path)
    tmp = temp_path(path)
    count = 0
    seen: set[str] = set()
    try:
        with open(tmp, "wb") as file, tarfile.open(fileobj=file, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for key, image, label_id, row in samples:
                if key in seen:
                    raise DatasetError(f"sample key {key!r} appears twice in shard {path}: keys must be unique")
                seen.add(key)
                for name, data in _sample_members(key, image, label_id, row):
                    try:
                        tar.addfile(*_member(name, data))
                    except ValueError as exc:  # USTAR limits, e.g. a name over 100 characters
                        raise DatasetError(f"sample {key}: cannot store {name} in {path} ({exc})") from exc
                count += 1
            if count == 0:
                raise DatasetError(f"shard {path} would be empty: give write_shard at least one sample")
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    return count
