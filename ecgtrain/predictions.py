"""predictions.csv: each evaluated window's key, record, patient, true and predicted class id and class
probabilities (one `p_CLASS` column per class), written by `evaluate`, read by `compare --paired`.

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
PREFIX = "p_"


@dataclass
class Predictions:
    """One run's predictions on one split, in file order."""

    classes: list[str]
    keys: list[str]
    records: list[str]
    patients: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray


def write_predictions(path, classes: list[str], keys: list[str], records: list[str], patients: list[str],
                      y_true, proba: np.ndarray) -> None:
    """Write predictions.csv atomically; the prediction is the argmax of `proba` (N, C)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*COLUMNS, *(PREFIX + c for c in classes)])
        for row in zip(keys, records, patients, np.asarray(y_true).tolist(), proba.argmax(1).tolist(), proba.tolist()):
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
    probs = header[len(COLUMNS):]
    if tuple(header[:len(COLUMNS)]) != COLUMNS or not probs or not all(c.startswith(PREFIX) for c in probs):
        raise TrainError(f"{path} is not a predictions file (header {header[:8]}): {redo}")
    classes = [c.removeprefix(PREFIX) for c in probs]
    try:
        y = np.array([[int(r[3]), int(r[4])] for r in rows], dtype=np.int64).reshape(-1, 2)
    except (IndexError, ValueError) as exc:
        raise TrainError(f"{path}: a row lacks a class id ({exc}): {redo}") from None
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise TrainError(f"{path}: class ids outside 0..{len(classes) - 1}: {redo}")
    keys = [r[0] for r in rows]
    if len(set(keys)) != len(keys):
        raise TrainError(f"{path}: a window key appears twice: {redo}")
    return Predictions(classes, keys, [r[1] for r in rows], [r[2] for r in rows], y[:, 0], y[:, 1])
