"""Read a dataset's image shards: shard URLs per split for a webdataset pipeline, or decoded samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import webdataset as wds

from .card import read_card
from .errors import DatasetError
from .layout import (
    SAMPLE_EXTENSIONS,
    check_shard_end,
    check_split,
    shard_paths,
    shard_split,
)


def split_shards(root: str | Path, split: str) -> list[tuple[str, int]]:
    """(absolute path, number of samples) of each shard of `split`, in order, as dataset.json lists them.

    Requires the card (a dataset without one is incomplete) and the shards it lists to be exactly those
    on disk; an empty list means the split holds no windows.
    """
    check_split(split)
    root = Path(root).resolve()
    files = read_card(root)["files"]
    on_disk = [p.relative_to(root).as_posix() for p in shard_paths(root, split)]
    listed = sorted(rel for rel in files if shard_split(rel) == split)
    if on_disk != listed:
        missing = sorted(set(listed) - set(on_disk))
        extra = sorted(set(on_disk) - set(listed))
        raise DatasetError(
            f"{root}: {split} shards differ from {root.name}/dataset.json (missing {missing}, unlisted {extra}): "
            f"run ecgrender verify, then re-download or rebuild"
        )
    return [(str(root / rel), files[rel]["samples"]) for rel in listed]


def split_urls(root: str | Path, split: str) -> list[str]:
    """Absolute paths of the shards of `split`, in order, for `webdataset.WebDataset` (see split_shards)."""
    return [url for url, _ in split_shards(root, split)]


def _message(exc: BaseException) -> str:
    """One line naming the failing member (webdataset's DecodingError) and the root cause."""
    where = f"{exc.key}.{exc.k}: " if isinstance(exc, wds.autodecode.DecodingError) else ""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc.args[0]) if exc.args else ""
    return f"{where}{type(exc).__name__}: {text}".replace("\n", " ")


def iter_samples(root: str | Path, split: str) -> Iterator[tuple[str, np.ndarray, int, dict]]:
    """Decoded samples of `split` in shard order: (key, grey uint8 (H, W) image, label id, manifest row).

    Built on plain webdataset (`decode("l8")`); a truncated or corrupt shard, a sample lacking one of
    its .cls/.json/.png members, or a shard with fewer samples than the card says raises DatasetError
    naming the shard.
    """
    for url, expected in split_shards(root, split):
        check_shard_end(url)
        samples = iter(wds.WebDataset(url, shardshuffle=False, empty_check=False).decode("l8"))
        count = 0
        while True:
            try:
                sample = next(samples)
            except StopIteration:
                break
            except Exception as exc:  # tar, PNG, JSON and webdataset errors alike mean a damaged shard
                raise DatasetError(f"shard {url} is corrupt ({_message(exc)}): re-download or rebuild it") from exc
            missing = [ext for ext in SAMPLE_EXTENSIONS if ext not in sample]
            if missing:
                raise DatasetError(
                    f"shard {url}: sample {sample['__key__']} lacks {missing}: re-download or rebuild the shard"
                )
            count += 1
            yield sample["__key__"], sample["png"], sample["cls"], sample["json"]
        if count != expected:
            raise DatasetError(
                f"shard {url} holds {count} samples, dataset.json says {expected}: re-download or rebuild it"
            )
