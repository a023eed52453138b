"""Small real-shaped datasets written with the shards writers, for the shards tests."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np

from shards.card import CARD_DIGEST, card_digest, read_card, write_card
from shards.layout import MANIFEST, REFECG, SPLITS, shard_name
from shards.manifest import COLUMNS as MANIFEST_COLUMNS
from shards.refecg import RefEcgWriter
from shards.writer import write_shard

CLASSES = ["N", "AFIB", "B"]
LENGTH = 40
IMAGE_SHAPE = (12, 16)


def make_rows(per_split=(7, 3, 2), seed=0) -> list[dict]:
    """Manifest rows ordered train, val, test, with labels drawn at random (mitdb-like keys)."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, n in zip(SPLITS, per_split):
        for _ in range(n):
            record, start = str(100 + len(rows) % 5), 1000 * len(rows)
            label_id = int(rng.integers(len(CLASSES)))
            rows.append(
                {
                    "key": f"{record}_{start:09d}",
                    "database": "mitdb",
                    "record": record,
                    "patient": record,
                    "start": start,
                    "length": LENGTH,
                    "fs": 360.0,
                    "label": CLASSES[label_id],
                    "label_id": label_id,
                    "split": split,
                }
            )
    return rows


def image_of(row: dict) -> np.ndarray:
    """A fixed random grey image per window (stands in for a rendered ECG)."""
    return np.random.default_rng(row["start"]).integers(0, 256, IMAGE_SHAPE, dtype=np.uint8)


def signal_of(row: dict) -> np.ndarray:
    return np.random.default_rng(row["start"] + 1).standard_normal(LENGTH).astype(np.float32)


def write_manifest(root: Path, rows: list[dict]) -> None:
    """manifest.csv as ecgrender writes it (fs as repr(float))."""
    with open(root / MANIFEST, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r, "fs": repr(float(r["fs"]))} for r in rows)


def write_refecg(root: Path, rows: list[dict]) -> None:
    counts = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    with RefEcgWriter(root / REFECG, counts, LENGTH) as h5:
        for split in SPLITS:
            for i, r in enumerate(r for r in rows if r["split"] == split):
                h5.put(split, i, signal_of(r), r["label_id"], r["key"])


def write_shards(root: Path, rows: list[dict], shard_size=3) -> None:
    (root / "images").mkdir(exist_ok=True)
    for split in SPLITS:
        split_rows = [r for r in rows if r["split"] == split]
        for index, first in enumerate(range(0, len(split_rows), shard_size)):
            chunk = split_rows[first : first + shard_size]
            write_shard(root / shard_name(split, index), ((r["key"], image_of(r), r["label_id"], r) for r in chunk))


def card_fields(rows: list[dict]) -> dict:
    counts = {s: {c: sum(r["split"] == s and r["label"] == c for r in rows) for c in CLASSES} for s in SPLITS}
    return {
        "software_version": "0.1.0",
        "source": {"database": "mitdb", "version": "1.0.0"},
        "classes": list(CLASSES),
        "counts": counts,
        "window": {"length": LENGTH, "fs": 360.0},
        "total": len(rows),
        "n_leads": 2,
        "leads": ["MLII", "V1"],
        "split_by": "patient",
        "render": {"out_h": IMAGE_SHAPE[0], "out_w": IMAGE_SHAPE[1]},
        "seed": 7,
        "renderer": "test",
    }


def make_dataset(root: Path, per_split=(7, 3, 2), shard_size=3) -> list[dict]:
    """A complete dataset directory: manifest, refecg.h5, shards, then the card. Returns its rows."""
    root.mkdir(parents=True, exist_ok=True)
    rows = make_rows(per_split)
    write_manifest(root, rows)
    write_refecg(root, rows)
    write_shards(root, rows, shard_size)
    write_card(root, card_fields(rows))
    return rows


def edit_card(root: Path, change, resign: bool = True) -> None:
    """Edit dataset.json in place with `change(card)`; with `resign`, recompute card_sha256 as an attacker
    who controls the card would (so only what verify re-derives can catch the edit)."""
    path = root / "dataset.json"
    card = json.loads(path.read_text())
    change(card)
    if resign:
        card[CARD_DIGEST] = card_digest(card)
    path.write_text(json.dumps(card, indent=2, sort_keys=True))


def reseal_card(root: Path) -> None:
    """Rewrite the card of a tampered dataset so every digest matches the files (the attacker's card)."""
    card = read_card(root)
    write_card(root, {k: v for k, v in card.items() if k not in ("format_version", "files", CARD_DIGEST)})


def add_member(shard: Path, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, at: int = 3) -> None:
    """Insert a member (by default after the first sample's three members) into a shard, keeping the rest."""
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    extra = tarfile.TarInfo(name)
    extra.type, extra.size = kind, len(data) if kind == tarfile.REGTYPE else 0
    if kind == tarfile.SYMTYPE:
        extra.linkname = "/etc/passwd"
    members.insert(at, (extra, data))
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, content in members:
            tar.addfile(member, io.BytesIO(content) if member.isreg() else None)
