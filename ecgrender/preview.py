"""`ecgrender preview`: a labelled grid of stored images, one row per class (like the paper's Fig. 2)."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from shards.card import read_card
from shards.layout import SPLITS, atomic_path
from shards.reader import iter_samples

from .errors import EcgError

CELL_IN = (2.2, 1.9)  # inches per image cell (width, height); a stored image is 384 x 314
DPI = 100


def pick_samples(root, classes: list[str], per_class: int, splits: tuple[str, ...], seed: int) -> list[list[tuple]]:
    """Per class, `per_class` samples `(key, image, row)` drawn uniformly with `seed` (reservoir sampling).

    Reads the chosen splits once, keeping at most `per_class` images per class in memory; a class
    with fewer samples keeps all of them. A multi-label sample is a candidate of each of its classes.
    Returned samples keep their stream (shard) order.
    """
    rng = random.Random(seed)
    seen = [0] * len(classes)
    kept: list[list[tuple[int, tuple]]] = [[] for _ in classes]
    order = 0
    for split in splits:
        for key, image, target, row in iter_samples(root, split):
            ids = [target] if isinstance(target, int) else np.flatnonzero(target).tolist()
            width_ok = isinstance(target, int) or len(target) == len(classes)
            if not width_ok or not all(0 <= i < len(classes) for i in ids):
                raise EcgError(
                    f"sample {key} in {root} has target {target} but the card lists {len(classes)} classes: "
                    "run `ecgrender verify` on the dataset"
                )
            for label_id in ids:
                seen[label_id] += 1
                if len(kept[label_id]) < per_class:
                    kept[label_id].append((order, (key, image, row)))
                else:
                    slot = rng.randrange(seen[label_id])
                    if slot < per_class:
                        kept[label_id][slot] = (order, (key, image, row))
            order += 1
    return [[sample for _, sample in sorted(chosen, key=lambda item: item[0])] for chosen in kept]


def write_preview(dataset_root, out_png, per_class: int = 4, split: str | None = None, seed: int = 0) -> Path:
    """Draw `per_class` random samples of every class of a dataset (one row per class) into `out_png`.

    `split` is one of train/val/test, or None for all splits. Each image is titled with its record and
    key, each row with its class and how many samples it has. The PNG is written under a temporary
    name and renamed when complete. Returns the path written.
    """
    root = Path(dataset_root)
    if per_class < 1:
        raise EcgError(f"per_class is {per_class}: ask for at least one sample per class")
    if split is not None and split not in SPLITS:
        raise EcgError(f"unknown split {split!r}: use one of {', '.join(SPLITS)} or none for all")
    card = read_card(root)
    classes = list(card["classes"])
    splits = SPLITS if split is None else (split,)
    chosen = pick_samples(root, classes, per_class, splits, seed)
    if not any(chosen):
        where = "any split" if split is None else f"split {split!r}"
        raise EcgError(f"dataset {root} has no samples in {where}: check it with `ecgrender verify {root}`")
    counts = {name: sum(card["counts"].get(s, {}).get(name, 0) for s in splits) for name in classes}

    fig = Figure(figsize=(CELL_IN[0] * per_class + 0.6, CELL_IN[1] * len(classes) + 0.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(f"{card['source']['database']} - {split or 'all splits'} - renderer {card['renderer']}")
    axes = fig.subplots(len(classes), per_class, squeeze=False)
    for row_axes, name, samples in zip(axes, classes, chosen):
        for col, ax in enumerate(row_axes):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(col < len(samples))
            if col < len(samples):
                key, image, row = samples[col]
                ax.imshow(image, cmap="gray", vmin=0, vmax=255)
                extra = f"\n{row['label']}" if row.get("targets") else ""  # a multi-label window's classes
                ax.set_title(f"{row.get('record', '?')}\n{key}{extra}", fontsize=7)
            elif col == 0:
                ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
        label = "\n".join(textwrap.wrap(name, 16))
        row_axes[0].set_ylabel(f"{label}\n({counts[name]} windows)", fontsize=9)

    out = Path(out_png)
    if not out.parent.is_dir():
        raise EcgError(f"folder {out.parent} of the preview {out} does not exist: create it or pick another -o")
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return out
