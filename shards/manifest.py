"""manifest.csv: one row per window, the contract every derived file follows (same keys, same order).

This module is the one reader and writer of the manifest schema (`Window`, `COLUMNS`). A multi-label
dataset's rows have `label` = their classes joined with ';' in class order, `label_id` = -1 and the
extra column `targets`: the multi-hot vector as one '0'/'1' character per class (`TARGETS`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, fields
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
    targets: str = ""  # multi-label datasets only: '0'/'1' per class, e.g. "01100"

    @property
    def multi_label(self) -> bool:
        return bool(self.targets)

    @property
    def classes(self) -> list[str]:
        """The window's classes: its label, or a multi-label window's labels joined in `label`."""
        return self.label.split(SEPARATOR) if self.targets else [self.label]


TARGETS = "targets"
COLUMNS = tuple(f.name for f in fields(Window) if f.name != TARGETS)  # every manifest has these
MULTI_LABEL_ID = -1  # label_id of a multi-label row
SEPARATOR = ";"  # joins a multi-label row's classes in `label`
_INT_COLUMNS = ("start", "length", "label_id")


def window_row(w: Window) -> dict:
    """A row as a dict of its manifest columns (`targets` only for multi-label rows): the `.json` of a sample."""
    row = {name: getattr(w, name) for name in COLUMNS}
    if w.targets:
        row[TARGETS] = w.targets
    return row


def multi_hot(classes_of_row: list[str] | set[str], classes: list[str]) -> str:
    """The `targets` string of a row with these classes: '1' where the class is present, in class order."""
    return "".join("1" if c in classes_of_row else "0" for c in classes)


def multi_label_row_problem(w: Window, classes: list[str]) -> str | None:
    """What is wrong with a multi-label row against the dataset's classes (None when it is sound)."""
    if w.label_id != MULTI_LABEL_ID:
        return f"label_id {w.label_id} (multi-label rows have {MULTI_LABEL_ID})"
    if len(w.targets) != len(classes) or set(w.targets) - {"0", "1"} or "1" not in w.targets:
        return f"targets {w.targets!r} is not a multi-hot vector of {len(classes)} classes with a 1"
    expected = SEPARATOR.join(c for c, t in zip(classes, w.targets) if t == "1")
    if w.label != expected:
        return f"label {w.label!r} disagrees with targets {w.targets} ({expected!r})"
    return None


def write_manifest(path: str | Path, windows: list[Window]) -> None:
    """Write rows in the given order (the order every shard and the h5 file follow), atomically."""
    multi = any(w.targets for w in windows)
    if multi and not all(w.targets for w in windows):
        raise DatasetError(f"{path}: some rows have targets and some not: a dataset is single- or multi-label")
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS + ((TARGETS,) if multi else ()), lineterminator="\n")
        writer.writeheader()
        for w in windows:
            row = window_row(w)
            row["fs"] = repr(float(w.fs))
            writer.writerow(row)


def iter_manifest(path: str | Path) -> Iterator[tuple[int, Window]]:
    """(line number, row) of a manifest, streamed; DatasetError naming the line on a missing column or a
    value of the wrong type (splits are not checked here: see `read_manifest`). The `targets` column is
    read when the manifest has it (multi-label)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} not found: give the manifest.csv of a dataset")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{path}: lacks columns {sorted(missing)}: expected {list(COLUMNS)}")
        columns = COLUMNS + ((TARGETS,) if TARGETS in (reader.fieldnames or []) else ())
        for line, raw in enumerate(reader, start=2):
            try:
                values: dict = {c: raw[c] for c in columns}
                if None in values.values():
                    raise ValueError("the row has fewer fields than the header")
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


def manifest_classes(windows: list[Window], where: str | Path, classes: list[str] | None = None) -> list[str]:
    """Class names in label-id order, checking that labels and ids correspond one to one, ids 0..n-1.

    A multi-label manifest does not name its classes by itself: `classes` (the card's or the build's) are
    returned after checking every row against them (`multi_label_row_problem`)."""
    if windows and windows[0].targets:
        if classes is None:
            raise DatasetError(f"manifest {where} is multi-label: its classes come from the dataset card")
        for w in windows:
            problem = multi_label_row_problem(w, classes)
            if problem:
                raise DatasetError(f"manifest {where}: window {w.key}: {problem}; regenerate it")
        return list(classes)
    pairs = sorted({(w.label, w.label_id) for w in windows}, key=lambda p: p[1])
    classes = [label for label, _ in pairs]
    if len(set(classes)) != len(classes) or [i for _, i in pairs] != list(range(len(classes))):
        raise DatasetError(f"manifest {where}: labels and label ids do not map one to one onto 0..n-1; regenerate it")
    return classes
