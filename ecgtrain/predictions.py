"""predictions.csv: each evaluated window's key, record, patient, true and predicted class id and class
probabilities (one `p_CLASS` column per class), written by `evaluate`, read by `compare --paired`. A
multi-label run writes `targets` (the multi-hot string, e.g. 01100) instead of the two class ids, and
sigmoid probabilities.

Plain CSV through the csv module: a run directory from elsewhere is data, never code.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shards.layout import atomic_path

from .errors import TrainError

COLUMNS = ("key", "record", "patient", "label_id", "predicted")
MULTI_LABEL_COLUMNS = ("key", "record", "patient", "targets")
PREFIX = "p_"


@dataclass
class Predictions:
    """One run's predictions on one split, in file order."""

    classes: list[str]
    keys: list[str]
    records: list[str]
    patients: list[str]
    y_true: np.ndarray  # (N,) class ids, or (N, C) 0/1 targets of a multi-label run
    y_pred: np.ndarray  # (N,) predicted class ids (argmax); multi-label: (N, C) probabilities >= 0.5
    proba: np.ndarray  # (N, C) class probabilities as written (6 significant digits)

    @property
    def multi_label(self) -> bool:
        return self.y_true.ndim == 2


def write_predictions(path, classes: list[str], keys: list[str], records: list[str], patients: list[str],
                      y_true, proba: np.ndarray) -> None:
    """Write predictions.csv atomically; the prediction is the argmax of `proba` (N, C). `y_true` (N, C) 0/1
    targets make it a multi-label file (targets column, no class ids)."""
    y_true = np.asarray(y_true)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        if y_true.ndim == 2:
            writer.writerow([*MULTI_LABEL_COLUMNS, *(PREFIX + c for c in classes)])
            for key, record, patient, t, p in zip(keys, records, patients, y_true.astype(int).tolist(), proba.tolist()):
                writer.writerow([key, record, patient, "".join(map(str, t)), *(f"{v:.6g}" for v in p)])
            return
        writer.writerow([*COLUMNS, *(PREFIX + c for c in classes)])
        for row in zip(keys, records, patients, y_true.tolist(), proba.argmax(1).tolist(), proba.tolist()):
            writer.writerow([*row[:5], *(f"{p:.6g}" for p in row[5])])


def read_predictions(path) -> Predictions:
    """Read predictions.csv; TrainError naming the file (and what is wrong) when it is not one."""
    path = Path(path)
    redo = "write it again with `ecgtrain evaluate RUN`"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header, *rows = list(csv.reader(f)) or [[]]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TrainError(f"{path} is not a readable CSV file ({exc}): {redo}") from None
    columns = MULTI_LABEL_COLUMNS if tuple(header[:len(MULTI_LABEL_COLUMNS)]) == MULTI_LABEL_COLUMNS else COLUMNS
    probs = header[len(columns):]
    if tuple(header[:len(columns)]) != columns or not probs or not all(c.startswith(PREFIX) for c in probs):
        raise TrainError(f"{path} is not a predictions file (header {header[:8]}): {redo}")
    classes = [c.removeprefix(PREFIX) for c in probs]
    keys = [r[0] for r in rows]
    if len(set(keys)) != len(keys):
        raise TrainError(f"{path}: a window key appears twice: {redo}")
    try:
        proba = np.array([[float(v) for v in r[len(columns):]] for r in rows], dtype=np.float64).reshape(-1, len(classes))
        if columns == MULTI_LABEL_COLUMNS:
            if any(len(r[3]) != len(classes) or set(r[3]) - {"0", "1"} for r in rows):
                raise ValueError(f"a targets value is not {len(classes)} characters 0 or 1")
            y_true = np.array([[int(ch) for ch in r[3]] for r in rows], dtype=np.int64).reshape(-1, len(classes))
            return Predictions(classes, keys, [r[1] for r in rows], [r[2] for r in rows], y_true,
                               (proba >= 0.5).astype(np.int64), proba)
        y = np.array([[int(r[3]), int(r[4])] for r in rows], dtype=np.int64).reshape(-1, 2)
    except (IndexError, ValueError) as exc:
        raise TrainError(f"{path}: a row lacks a value or has a bad one ({exc}): {redo}") from None
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise TrainError(f"{path}: class ids outside 0..{len(classes) - 1}: {redo}")
    return Predictions(classes, keys, [r[1] for r in rows], [r[2] for r in rows], y[:, 0], y[:, 1], proba)
