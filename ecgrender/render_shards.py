"""Render manifest windows into webdataset shards in parallel (joblib), resumably.

One job renders one shard: it slices its windows from the staging array, renders them with a
renderer of its own, and writes the tar under a temporary name renamed when complete. A shard that
exists is complete, so a re-run renders only the missing ones. Shard contents depend only on their
rows, so any number of jobs, any backend and any interruption give byte-identical shards.

A job in a worker process whose parent dies (the build was killed) stops before its next window: it
remembers its parent's pid when it starts and exits at once (os._exit) when the parent changes, so
no orphaned worker goes on rendering. The parent is the build for loky workers, a nanny for dask
workers. A job run in the build's own process (--jobs 1, threads) does not check: a build whose shell
went away (nohup) goes on.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import joblib
import numpy as np
from tqdm import tqdm

from shards.card import ShardDigest
from shards.layout import IMAGES, SPLITS, shard_name
from shards.manifest import Window, window_row
from shards.writer import encode_png, write_shard

from .errors import EcgError
from .render import make_renderer
from .render.geometry import RenderSpec


def auto_shard_size(n_split: int) -> int:
    """Samples per shard: about 64 shards per split for loader workers, 32 to 1,000 samples each."""
    return min(1000, max(32, math.ceil(n_split / 64)))


def plan_shards(windows: list[Window], shard_size: int | None) -> list[tuple[str, str, int, int]]:
    """(shard relative path, split, first row, end row) for every shard, in manifest order."""
    order = [SPLITS.index(w.split) for w in windows]
    if order != sorted(order):
        raise EcgError("manifest rows are not grouped train, val, test: shards take each split's rows in a run")
    shards = []
    start = 0
    for split in SPLITS:
        n = sum(w.split == split for w in windows)
        size = shard_size or auto_shard_size(n)
        for index, first in enumerate(range(0, n, size)):
            shards.append((shard_name(split, index), split, start + first, start + min(first + size, n)))
        start += n
    return shards


def exit_if_orphaned(parent: int | None) -> None:
    """End this process at once (no cleanup, no result) when its parent is no longer `parent` (None: never)."""
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def _render_shard(staging_path: str, rows: list[dict], first: int, out_path: str, renderer: str, spec: dict,
                  build_pid: int) -> ShardDigest:
    """Job body: render rows [first, first + len(rows)) of the staging array into one shard; returns its digest."""
    parent = os.getppid() if os.getpid() != build_pid else None
    windows = np.load(staging_path, mmap_mode="r")
    draw = make_renderer(renderer, RenderSpec(**spec))

    def samples():
        for offset, row in enumerate(rows):
            exit_if_orphaned(parent)
            image = draw.render(np.asarray(windows[first + offset]))
            yield row["key"], encode_png(image), row.get("targets") or row["label_id"], row

    try:
        return write_shard(Path(out_path), samples())
    except OSError as exc:  # a file object's write names no file: name the shard (full disk, permissions)
        raise OSError(exc.errno, exc.strerror, exc.filename or out_path) from exc


def render_shards(
    root: Path,
    windows: list[Window],
    staging_path: Path,
    renderer: str,
    spec: RenderSpec,
    shard_size: int | None,
    jobs: int,
    progress: bool = True,
) -> dict[str, ShardDigest]:
    """Render every missing shard of `root`; returns the digests of the shards written now, by relative path
    (hashed as they were written, for the card). The caller holds `root` (build.locked_out), so temp files
    left by a killed build can be removed before."""
    (root / IMAGES).mkdir(parents=True, exist_ok=True)
    todo = [s for s in plan_shards(windows, shard_size) if not (root / s[0]).exists()]
    total = sum(end - first for _, _, first, end in todo)
    if not todo:
        return {}
    tasks = (
        joblib.delayed(_render_shard)(
            str(staging_path), [window_row(w) for w in windows[first:end]], first, str(root / name), renderer, spec.as_dict(),
            os.getpid(),
        )
        for name, _split, first, end in todo
    )
    digests = {}
    with tqdm(total=total, desc=f"render ({renderer}, {jobs} jobs)", unit="img", disable=not progress) as bar:
        for (name, *_), digest in zip(todo, joblib.Parallel(n_jobs=jobs, return_as="generator")(tasks)):
            digests[name] = digest
            bar.update(digest.samples)
    return digests
