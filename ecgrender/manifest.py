"""manifest.csv: one row per window, the contract every derived file follows (same keys, same order)."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .errors import EcgError

SPLITS = ("train", "val", "test")


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


COLUMNS = [f.name for f in fields(Window)]
_INT_COLUMNS = {"start", "length", "label_id"}


def window_key(record: str, start: int) -> str:
    """Stable sample key: record path with '/' -> '-', then the start sample; no dots (webdataset)."""
    return f"{record.replace('/', '-').replace('.', '-')}_{start:09d}"


def write_manifest(path: Path, windows: list[Window]) -> None:
    """Write rows in the given order (the order every shard and the h5 file follow)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for w in windows:
            row = asdict(w)
            row["fs"] = repr(float(w.fs))
            writer.writerow(row)
    tmp.replace(path)


def read_manifest(path: Path) -> list[Window]:
    """Read and check a manifest: columns, types, unique keys, known splits."""
    path = Path(path)
    if not path.is_file():
        raise EcgError(f"manifest {path} not found: give the manifest.csv of a dataset")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise EcgError(f"manifest {path} lacks columns {sorted(missing)}: expected {COLUMNS}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            try:
                values = {c: raw[c] for c in COLUMNS}
                for c in _INT_COLUMNS:
                    values[c] = int(values[c])
                values["fs"] = float(values["fs"])
            except (TypeError, ValueError) as exc:
                raise EcgError(f"manifest {path} line {line}: bad value ({exc}); fix or regenerate it") from exc
            if values["split"] not in SPLITS:
                raise EcgError(f"manifest {path} line {line}: split {values['split']!r} is not one of {SPLITS}")
            rows.append(Window(**values))
    keys = [w.key for w in rows]
    if len(set(keys)) != len(keys):
        raise EcgError(f"manifest {path} has duplicate keys: every window needs a unique key")
    if not rows:
        raise EcgError(f"manifest {path} has no rows")
    return rows


def manifest_classes(windows: list[Window], where: Path) -> list[str]:
    """Class names in label-id order, checking that labels and ids correspond one to one, ids 0..n-1."""
    pairs = {(w.label, w.label_id) for w in windows}
    classes = [label for label, _ in sorted(pairs, key=lambda p: p[1])]
    if len(set(classes)) != len(classes) or [i for _, i in sorted(pairs, key=lambda p: p[1])] != list(
        range(len(classes))
    ):
        raise EcgError(f"manifest {where}: labels and label ids do not map one to one onto 0..n-1; regenerate it")
    return classes
