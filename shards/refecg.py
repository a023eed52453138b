"""refecg.h5: the Ref-ECG 1-D set, /{split}/x float32 (N, window), /{split}/y int64 (N,) label ids, or (N, C)
multi-hot targets of a multi-label dataset, /{split}/key."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from . import FORMAT_VERSION
from .errors import DatasetError
from .layout import SPLITS, check_split, commit, discard, temp_path

KEY_DTYPE = h5py.string_dtype("utf-8")  # variable-length UTF-8: plain h5py reads it with .asstr()


class RefEcgWriter:
    """Write refecg.h5 slot by slot with flat memory; the file appears only when every slot is filled.

    `counts[split]` rows of `length` samples are reserved per split (all SPLITS exist, possibly empty);
    `n_classes` makes y multi-hot (N, n_classes) for a multi-label dataset (targets given as '0'/'1' strings).
    `x` rows go straight to disk; labels and keys are kept (small) and written on close, so the file's
    bytes do not depend on the order of `put` calls. Used as a context manager: on a clean exit the
    temp file is renamed to `path`; on an exception it is deleted.
    """

    def __init__(self, path: str | Path, counts: dict[str, int], length: int, n_classes: int | None = None):
        unknown = set(counts) - set(SPLITS)
        if unknown:
            raise DatasetError(f"refecg.h5: unknown splits {sorted(unknown)}: use {', '.join(SPLITS)}")
        if length <= 0 or any(n < 0 for n in counts.values()):
            raise DatasetError(f"refecg.h5: window length {length} must be positive and counts {counts} not negative")
        self.path = Path(path)
        self.length = int(length)
        self.counts = {split: int(counts.get(split, 0)) for split in SPLITS}
        self._tmp = temp_path(self.path)
        self._file: h5py.File | None = None
        self._x: dict[str, h5py.Dataset] = {}
        self.n_classes = n_classes
        shape = (lambda n: (n,)) if n_classes is None else (lambda n: (n, n_classes))
        self._y = {split: np.full(shape(n), -1, dtype=np.int64) for split, n in self.counts.items()}
        self._keys = {split: np.full(n, None, dtype=object) for split, n in self.counts.items()}

    def __enter__(self) -> RefEcgWriter:
        self._file = h5py.File(self._tmp, "w")
        self._file.attrs["format_version"] = FORMAT_VERSION
        self._file.attrs["window"] = self.length
        for split, n in self.counts.items():
            group = self._file.create_group(split)
            self._x[split] = group.create_dataset("x", shape=(n, self.length), dtype=np.float32)
        return self

    def _check_rows(self, split: str, rows: np.ndarray) -> None:
        check_split(split)
        if self._file is None:
            raise DatasetError(f"{self.path}: RefEcgWriter.put outside its 'with' block")
        if rows.size and (rows.min() < 0 or rows.max() >= self.counts[split]):
            raise DatasetError(
                f"{self.path}: rows {rows.min()}..{rows.max()} outside {split} (size {self.counts[split]})"
            )
        if np.unique(rows).size != rows.size:
            raise DatasetError(f"{self.path}: a {split} row is given twice in one call; give each row once")

    def put(self, split: str, index: int, x: np.ndarray, label, key: str) -> None:
        """Store one window: `x` float32 (length,) lead sum, its label id (multi-label: its targets string) and
        manifest key."""
        self.put_batch(split, index, np.asarray(x)[None, :], [label], [key])

    def put_batch(self, split: str, start: int, x: np.ndarray, label_ids, keys) -> None:
        """Store consecutive windows from row `start`: `x` (n, length), n label ids and n keys."""
        self.put_rows(split, np.arange(start, start + len(x)), x, label_ids, keys)

    def put_rows(self, split: str, rows, x: np.ndarray, label_ids, keys) -> None:
        """Store windows at the given rows of `split` (distinct, in any order): `x` (n, length), n label ids and
        n keys. One call for many rows writes them to the file at once, much faster than a call per row."""
        rows, x = np.asarray(rows, dtype=np.int64), np.asarray(x)
        n = len(rows)
        if x.ndim != 2 or x.shape != (n, self.length) or len(label_ids) != n or len(keys) != n:
            raise DatasetError(
                f"{self.path}: batch of x {x.shape}, {len(label_ids)} labels, {len(keys)} keys "
                f"does not match {n} rows of window length {self.length}"
            )
        self._check_rows(split, rows)
        if not n:
            return
        order = np.argsort(rows)
        self._x[split][rows[order]] = x[order].astype(np.float32, copy=False)  # h5py writes increasing rows
        if self.n_classes is not None:
            bad = next((t for t in label_ids if not isinstance(t, str) or len(t) != self.n_classes
                        or set(t) - {"0", "1"}), None)
            if bad is not None:
                raise DatasetError(f"{self.path}: multi-hot target {bad!r} is not {self.n_classes} characters 0 or 1")
            label_ids = [[int(ch) for ch in t] for t in label_ids]
        self._y[split][rows] = np.asarray(label_ids, dtype=np.int64)
        self._keys[split][rows] = [str(k) for k in keys]

    def __exit__(self, exc_type, exc, tb) -> None:
        file = self._file
        if file is None:
            return
        if exc_type is not None:
            file.close()
            discard(self._tmp)
            return
        try:
            for split in SPLITS:
                missing = np.flatnonzero(self._keys[split] == None)  # noqa: E711 (element-wise)
                if missing.size:
                    raise DatasetError(
                        f"{self.path}: {missing.size} {split} rows never written (first: row {missing[0]}); "
                        f"every manifest window needs a put"
                    )
                group = file[split]
                group.create_dataset("y", data=self._y[split])
                group.create_dataset("key", data=self._keys[split], dtype=KEY_DTYPE)
            file.close()
            commit(self._tmp, self.path)
        except BaseException:
            file.close()
            discard(self._tmp)
            raise


def read_refecg(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load one split: x float32 (N, window), y int64 (N,) or (N, C) multi-hot, keys (N strings), in manifest
    order."""
    check_split(split)
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} not found: a dataset's Ref-ECG set is its refecg.h5 (rebuild or re-download)")
    try:
        with h5py.File(path, "r") as f:
            group = f[split]
            return group["x"][...], group["y"][...], list(group["key"].asstr()[...])
    except (OSError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: cannot read /{split} ({exc}): rebuild or re-download refecg.h5") from exc
