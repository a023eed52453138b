"""Read every manifest window once from its record: the Ref-ECG lead sums and the render staging file.

Records are read one at a time (each exactly once), so memory holds one record plus one output row
at a time. The staging file is a float32 `.npy` of shape (N, window, n_leads) in manifest order; the
render workers slice it, so no worker re-reads WFDB files. It is deleted when the build completes.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from shards.layout import SPLITS
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
) -> None:
    """Write `refecg.h5` and the staging array for `windows` (manifest order), reading each record once."""
    length = windows[0].length
    if any(w.length != length for w in windows):
        raise EcgError("manifest mixes window lengths: every row of one dataset needs the same length")
    counts = {s: sum(w.split == s for w in windows) for s in SPLITS}
    index_in_split = {}
    seen = dict.fromkeys(SPLITS, 0)
    for i, w in enumerate(windows):
        index_in_split[i] = seen[w.split]
        seen[w.split] += 1

    tmp = staging_path.with_name(staging_path.name + ".tmp")
    staging = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(windows), length, n_leads))
    by_record = _rows_by_record(windows)
    try:
        with RefEcgWriter(refecg_path, counts, length) as refecg:
            for record, rows in tqdm(by_record.items(), desc="read windows", unit="record", disable=not progress):
                signal = source.read_signal(record)
                if signal.shape[1] != n_leads:
                    raise EcgError(
                        f"record {record} has {signal.shape[1]} leads, the dataset has {n_leads}: "
                        "build records with the same leads together"
                    )
                for i in rows:
                    w = windows[i]
                    if w.start < 0 or w.start + length > signal.shape[0]:
                        raise EcgError(
                            f"window {w.key} [{w.start}, {w.start + length}) lies outside record {record} "
                            f"({signal.shape[0]} samples): the manifest does not match this source"
                        )
                    segment = signal[w.start : w.start + length]
                    staging[i] = segment
                    refecg.put(w.split, index_in_split[i], segment.sum(axis=1, dtype=np.float32), w.label_id, w.key)
        staging.flush()
        del staging
        tmp.replace(staging_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
