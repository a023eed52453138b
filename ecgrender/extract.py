"""Read every manifest window once from its record: the Ref-ECG lead sums and the render staging file.

Each record is read exactly once, by one of `--jobs` threads of the build process (never by the
render backend's workers, which may be on other machines), a few records ahead of the writer at
most, so memory holds a few records and their windows at a time. The staging file is a float32
`.npy` of shape (N, window, n_leads) in manifest order; the render workers slice it, so no worker
re-reads WFDB files. It is deleted when the build completes.

A full disk must be a clean OSError (ENOSPC), never a crash: the staging file's space is reserved
first (os.posix_fallocate) and its rows are written with os.pwrite, not through a memory map (whose
writes on a full disk are a SIGBUS); and refecg.h5 is only started when the disk has room for it,
because HDF5 that runs out of space while closing a file can crash the process (segfault).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import joblib
import numpy as np
from tqdm import tqdm

from shards.layout import SPLITS, atomic_path
from shards.manifest import Window
from shards.refecg import RefEcgWriter

from .errors import EcgError
from .sources.base import Source


def _rows_by_record(windows: list[Window]) -> dict[str, list[int]]:
    by_record: dict[str, list[int]] = defaultdict(list)
    for i, w in enumerate(windows):
        by_record[w.record].append(i)
    return by_record


def extract_windows(
    source: Source,
    windows: list[Window],
    n_leads: int,
    refecg_path: Path,
    staging_path: Path,
    progress: bool = True,
    n_classes: int | None = None,
    noise: Callable[[str, np.ndarray], np.ndarray] | None = None,
    jobs: int = 1,
) -> None:
    """Write `refecg.h5` and the staging array for `windows` (manifest order), reading each record once, in
    `jobs` threads; `n_classes` for a multi-label dataset (y multi-hot); `noise(key, window)`, when given,
    returns the window with noise added, and both outputs (images and lead sums) get the noisy window."""
    length = windows[0].length
    if any(w.length != length for w in windows):
        raise EcgError("manifest mixes window lengths: every row of one dataset needs the same length")
    counts = {s: sum(w.split == s for w in windows) for s in SPLITS}
    index_in_split = {}
    seen = dict.fromkeys(SPLITS, 0)
    for i, w in enumerate(windows):
        index_in_split[i] = seen[w.split]
        seen[w.split] += 1

    by_record = _rows_by_record(windows)
    with atomic_path(staging_path) as tmp, open(tmp, "wb") as staging:
        write_row = _row_writer(staging, (len(windows), length, n_leads), staging_path)
        check_free_space(refecg_path, refecg_bytes(len(windows), length, n_classes or 1))
        with RefEcgWriter(refecg_path, counts, length, n_classes) as refecg:
            records = {record: [windows[i] for i in rows] for record, rows in by_record.items()}
            read = read_records(source, records, n_leads, jobs)
            for record, segments in tqdm(read, total=len(records), desc="read windows", unit="record",
                                         disable=not progress):
                rows, cut = by_record[record], records[record]
                if noise is not None:
                    segments = np.stack([noise(w.key, s).astype(np.float32) for w, s in zip(cut, segments)])
                for i, segment in zip(rows, segments):
                    write_row(i, segment)
                _put_lead_sums(refecg, cut, [index_in_split[i] for i in rows], segments)


def read_records(source: Source, records: dict[str, list[Window]], n_leads: int,
                 jobs: int) -> Iterator[tuple[str, np.ndarray]]:
    """(record, its `windows` as float32 (n, length, n_leads)) for each record, in order; read by `jobs` threads
    (reading is mostly numpy and file work, which runs outside the GIL), a few records ahead at most."""
    workers = joblib.effective_n_jobs(jobs) if jobs < 0 else min(jobs, os.cpu_count() or 1)
    read = joblib.delayed(record_windows)
    results = joblib.Parallel(n_jobs=workers, backend="threading", return_as="generator")(
        read(source, record, windows, n_leads) for record, windows in records.items())
    yield from zip(records, results)


def record_windows(source: Source, record: str, windows: list[Window], n_leads: int) -> np.ndarray:
    """Read `record` and cut `windows` from it: float32 (n, length, n_leads); an EcgError for another number
    of leads or a window outside the record."""
    signal = source.read_signal(record)
    if signal.shape[1] != n_leads:
        raise EcgError(
            f"record {record} has {signal.shape[1]} leads, the dataset has {n_leads}: "
            "build records with the same leads together"
        )
    return cut_windows(signal, record, windows)


def cut_windows(signal: np.ndarray, record: str, windows: list[Window]) -> np.ndarray:
    """The windows of one record's signal (n_samples, n_leads) as float32 (n, length, n_leads); an EcgError
    for a window outside the record."""
    length = windows[0].length
    for w in windows:
        if w.start < 0 or w.start + length > signal.shape[0]:
            raise EcgError(
                f"window {w.key} [{w.start}, {w.start + length}) lies outside record {record} "
                f"({signal.shape[0]} samples): the manifest does not match this source"
            )
    return np.stack([signal[w.start : w.start + length] for w in windows]).astype(np.float32, copy=False)


def _put_lead_sums(refecg: RefEcgWriter, windows: list[Window], rows_in_split: list[int], segments: np.ndarray) -> None:
    """Store the lead sums of one record's windows in refecg.h5, one write per split."""
    sums = segments.sum(axis=2, dtype=np.float32)
    for split in SPLITS:
        pick = [j for j, w in enumerate(windows) if w.split == split]
        if pick:
            refecg.put_rows(split, [rows_in_split[j] for j in pick], sums[pick],
                            [windows[j].targets or windows[j].label_id for j in pick], [windows[j].key for j in pick])


def refecg_bytes(n_windows: int, length: int, n_classes: int = 1) -> int:
    """A generous estimate of refecg.h5's size: x (float32), y (int64 per class), a key per window, HDF5 overhead."""
    return n_windows * (4 * length + 8 * n_classes + 64) + (1 << 16)


def check_free_space(path: Path, needed: int) -> None:
    """OSError(ENOSPC) naming `path` unless its folder's disk has `needed` bytes free."""
    free = shutil.disk_usage(path.parent).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device (needs about {needed} bytes, {free} free)", str(path))


def _row_writer(file, shape: tuple[int, ...], path: Path):
    """Write a float32 `.npy` header for `shape` to `file` and reserve the array's space on disk; returns
    `write_row(i, values)`, which writes row i at its offset with os.pwrite (rows in any order, each once).
    A full disk is an OSError naming `path`."""
    np.lib.format.write_array_header_1_0(file, {"descr": "<f4", "fortran_order": False, "shape": shape})
    file.flush()
    start, row_bytes, fd = file.tell(), int(np.prod(shape[1:])) * 4, file.fileno()
    try:
        os.posix_fallocate(fd, 0, start + shape[0] * row_bytes)
    except OSError as exc:  # a file system that cannot reserve space: the writes below still see a full disk
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc

    def write_row(i: int, values: np.ndarray) -> None:
        data = np.ascontiguousarray(values, dtype="<f4").tobytes()
        offset = start + i * row_bytes
        try:
            while data:  # pwrite may write less than asked
                written = os.pwrite(fd, data, offset)
                data, offset = data[written:], offset + written
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc

    return write_row
