"""manifest.csv: one row per window, the contract every derived file follows (same keys, same order).

This module is the one reader and writer of the manifest schema (`Window`, `COLUMNS`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .errors import DatasetError
from .layout import SPLITS, atomic_path


@dataclass(frozen=True)
class Window:
    """One manifest row: `length` samples from `start`, at the same offset in every lead."""

    key: str
    database: str
    record: str
    patient: str
    start: int
    length: int
    fs: float
    label: str
    label_id: int
    split: str


COLUMNS = tuple(f.name for f in fields(Window))
_INT_COLUMNS = ("start", "length", "label_id")


def write_manifest(path: str | Path, windows: list[Window]) -> None:
    """Write rows in the given order (the order every shard and the h5 file follow), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for w in windows:
            row = asdict(w)
            row["fs"] = repr(float(w.fs))
            writer.writerow(row)


def iter_manifest(path: str | Path) -> Iterator[tuple[int, Window]]:
    """(line number, row) of a manifest, streamed; DatasetError naming the line on a missing column or a
    value of the wrong type (splits are not checked here: see `read_manifest`)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} not found: give the manifest.csv of a dataset")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{path}: lacks columns {sorted(missing)}: expected {list(COLUMNS)}")
        for line, raw in enumerate(reader, start=2):
            try:
                values: dict = {c: raw[c] for c in COLUMNS}
                for c in _INT_COLUMNS:
                    values[c] = int(values[c])
                values["fs"] = float(values["fs"])
            except (TypeError, ValueError) as exc:
                raise DatasetError(f"{path} line {line}: bad value ({exc}); fix or regenerate it") from exc
            yield line, Window(**values)


def read_manifest(path: str | Path) -> list[Window]:
    """Read and check a whole manifest: columns, types, known splits, unique keys, at least one row."""
    rows = []
    keys: set[str] = set()
    for line, row in iter_manifest(path):
        if row.split not in SPLITS:
            raise DatasetError(f"manifest {path} line {line}: split {row.split!r} is not one of {SPLITS}")
        if row.key in keys:
            raise DatasetError(f"manifest {path} line {line}: key {row.key} appears twice; every window needs a unique key")
        keys.add(row.key)
        rows.append(row)
    if not rows:
        raise DatasetError(f"manifest {path} has no rows")
    return rows


def manifest_classes(windows: list[Window], where: str | Path) -> list[str]:
    """Class names in label-id order, checking that labels and ids correspond one to one, ids 0..n-1."""
    pairs = sorted({(w.label, w.label_id) for w in windows}, key=lambda p: p[1])
    classes = [label for label, _ in pairs]
    if len(set(classes)) != len(classes) or [i for _, i in pairs] != list(range(len(classes))):
        raise DatasetError(f"manifest {where}: labels and label ids do not map one to one onto 0..n-1; regenerate it")
    return classes
