"""Tiny learnable datasets in the real on-disk format (shards package), for the ecgtrain tests.

Two classes of synthetic 2-lead windows: class 0 a slow sine, class 1 a fast one (plus noise).
Images are small (48 x 64) so image models train in seconds on a CPU; the card's render settings
say so, which is also what `predict` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgrender.render import make_renderer
from ecgrender.render.geometry import RenderSpec
from shards.card import write_card
from shards.layout import MANIFEST, REFECG, SPLITS, shard_name
from shards.manifest import COLUMNS as MANIFEST_COLUMNS
from shards.refecg import RefEcgWriter
from shards.writer import write_shard

CLASSES = ["slow", "fast"]
WINDOW = 1000
FS = 360.0
LEADS = ["MLII", "V1"]
SMALL = RenderSpec(dpi=50, frame_h=96, frame_w=128, out_h=48, out_w=64, line_width_pt=1.0)


def synthetic_window(label: int, rng: np.random.Generator) -> np.ndarray:
    """(WINDOW, 2) float32 signal: 2 cycles (class 0) or 12 cycles (class 1) per window, random phase."""
    t = np.arange(WINDOW) / WINDOW
    cycles = 2 if label == 0 else 12
    phase = rng.uniform(0, 2 * np.pi)
    lead = np.sin(2 * np.pi * cycles * t + phase)
    sig = np.stack([lead, 0.5 * lead], axis=1) + 0.05 * rng.standard_normal((WINDOW, 2))
    return sig.astype(np.float32)


def multi_label_window(targets: str, rng: np.random.Generator) -> np.ndarray:
    """(WINDOW, 2) float32: the sum of the windows of the classes set in `targets` ("10" slow, "01" fast, "11" both)."""
    parts = [synthetic_window(label, rng) for label, t in enumerate(targets) if t == "1"]
    return np.sum(parts, axis=0).astype(np.float32)


MULTI_LABEL_TARGETS = ("10", "01", "11")  # window i of a multi-label dataset has targets MULTI_LABEL_TARGETS[i % 3]


def make_dataset(root, counts=None, per_shard: int = 8, seed: int = 0, split_by: str = "record",
                 minority_every: int = 2, multi_label: bool = False) -> Path:
    """Write a complete dataset directory; `counts` = windows per split; every `minority_every`-th window is
    class 1 (2: balanced classes, 10: a 9:1 imbalance). `multi_label`: a multi-label dataset whose windows cycle
    through slow, fast and both (MULTI_LABEL_TARGETS)."""
    counts = counts or {"train": 32, "val": 8, "test": 16}
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    renderer = make_renderer("matplotlib", SMALL)
    rows = {s: [] for s in SPLITS}
    for split in SPLITS:
        for i in range(counts.get(split, 0)):
            if multi_label:
                targets = MULTI_LABEL_TARGETS[i % 3]
                label, label_id = ";".join(c for c, t in zip(CLASSES, targets) if t == "1"), -1
                x = multi_label_window(targets, rng)
                record = f"{split}-{i % 3}-{i // 9}"
            else:
                label_id = int(i % minority_every == minority_every - 1)
                label, targets = CLASSES[label_id], ""
                x = synthetic_window(label_id, rng)
                record = f"{split}-{label}-{i // 8}"  # 4 windows of one class per record
            row = {"key": f"{record}_{i:09d}", "database": "synthetic", "record": record, "patient": record,
                   "start": i, "length": WINDOW, "fs": FS, "label": label, "label_id": label_id, "split": split}
            rows[split].append((row | ({"targets": targets} if multi_label else {}), x))
    n_classes = len(CLASSES) if multi_label else None
    with RefEcgWriter(root / REFECG, {s: len(r) for s, r in rows.items()}, WINDOW, n_classes) as h5:
        for split, items in rows.items():
            for i, (row, x) in enumerate(items):
                h5.put(split, i, x.sum(axis=1), row.get("targets") or row["label_id"], row["key"])
    for split, items in rows.items():
        for shard, lo in enumerate(range(0, len(items), per_shard)):
            write_shard(root / shard_name(split, shard), [(row["key"], renderer.render(x), row.get("targets") or
                                                           row["label_id"], row) for row, x in items[lo:lo + per_shard]])
    columns = MANIFEST_COLUMNS + (("targets",) if multi_label else ())
    with open(root / MANIFEST, "w") as f:
        f.write(",".join(columns) + "\n")
        for items in rows.values():
            for row, _ in items:
                f.write(",".join(str(row[c]) for c in columns) + "\n")
    card = {
        "software_version": "test", "source": {"database": "synthetic", "version": "0"},
        "classes": CLASSES,
        "counts": {s: {c: sum(1 for r, _ in rows[s] if c in r["label"].split(";")) for c in CLASSES} for s in SPLITS},
        "window": {"length": WINDOW, "fs": FS}, "n_leads": len(LEADS), "leads": LEADS, "split_by": split_by,
        "render": SMALL.as_dict(), "renderer": "matplotlib", "seed": seed,
    }
    if multi_label:
        card |= {"label_type": "multi-label", "split_windows": {s: len(rows[s]) for s in SPLITS}}
    write_card(root, card)
    return root


def write_record(directory, name: str = "rec1", seconds: float = 10.0, label: int = 1, seed: int = 1) -> Path:
    """A WFDB record (.hea/.dat) of the synthetic class `label`; returns its path without extension."""
    import wfdb

    rng = np.random.default_rng(seed)
    n = int(seconds * FS) // WINDOW
    sig = np.concatenate([synthetic_window(label, rng) for _ in range(n)])
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=FS, units=["mV", "mV"], sig_name=LEADS, p_signal=sig.astype(np.float64),
                fmt=["16", "16"], adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(directory))
    return directory / name


def fixed_batch(input_kind: str, n: int = 8, seed: int = 0):
    """One small fixed batch as a model takes it: (x, labels), classes alternating 0, 1, ...

    `input_kind` "image": rendered at SMALL (48 x 64) and standardized, float (n, 3, 48, 64);
    "signal": lead sums, float (n, 1, WINDOW).
    """
    import torch

    from ecgtrain.data import Standardize

    rng = np.random.default_rng(seed)
    labels = [i % 2 for i in range(n)]
    windows = [synthetic_window(label, rng) for label in labels]
    if input_kind == "signal":
        x = torch.from_numpy(np.stack([w.sum(axis=1) for w in windows])).unsqueeze(1)
    else:
        renderer = make_renderer("matplotlib", SMALL)
        x = torch.from_numpy(np.stack([renderer.render(w) for w in windows]))
    return Standardize(image=input_kind == "image")(x), torch.tensor(labels)
