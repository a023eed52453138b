"""Batches for training and evaluation: webdataset image shards and the Ref-ECG `refecg.h5`.

Image pipeline (one per split, one copy per DataLoader worker):
  the card's shard list -> seeded shard permutation (same on every rank and worker, new each epoch)
  -> split_by_node (DDP ranks) -> split_by_worker -> checked tar members (shards.reader.shard_samples)
  -> sample shuffle buffer (train) -> explicit decoders (shards.reader.decode_sample: PNG -> uint8
  (H, W), int label) -> batches of uint8 in the workers. Nothing in a shard is unpickled.
Each shard goes to exactly one (rank, worker) per epoch and nothing is resampled, so an epoch
shows every sample exactly once. With the class-balanced sampler (`balanced=True`, train only) a
repeat stage before the shuffle buffer emits each sample as often as that epoch's counts say
(`BalancedCounts`: the same counts on every rank and worker), so an epoch still holds exactly N
samples. Workers end their epoch with one short batch each; the main process merges those short
batches (`_exact_batches`), so a rank sees ceil(n / batch) batches and never a batch of one
(BatchNorm needs two samples in training mode).
The float conversion, grey -> 3 channels and ImageNet standardization run on the device
(`Standardize`) after a non-blocking uint8 copy: 4x fewer bytes cross the bus and the CPU
workers only decode PNGs.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import webdataset as wds

from shards import layout
from shards.card import is_multi_label, read_card
from shards.errors import DatasetError
from shards.manifest import read_manifest
from shards.reader import decode_sample, shard_digests, shard_samples, split_shards
from shards.refecg import read_refecg

from .models.registry import get_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SHUFFLE_BUFFER = 2000
SAMPLER_STREAM = 2  # seed stream of the balanced sampler's counts (0, 1: the shard and sample shuffles)


@dataclass
class Batch:
    """One batch on the host: `x` uint8 (B, H, W) images or float32 (B, 1, L) signals; `y` int64 (B,) class
    ids, or float32 (B, C) multi-hot targets of a multi-label dataset."""

    x: torch.Tensor
    y: torch.Tensor
    keys: list[str]

    def pin_memory(self) -> Batch:
        """Page-locked copy (used by DataLoader's pin_memory thread)."""
        return Batch(self.x.pin_memory(), self.y.pin_memory(), self.keys)


@dataclass(frozen=True)
class CardInfo:
    """The fields of a dataset card (dataset.json) the trainer uses."""

    classes: list
    database: str
    window: int
    n_leads: int
    leads: list
    split_by: str
    fs: float | None
    renderer: str
    render: dict
    multi_label: bool = False  # the card's label_type: BCE-with-logits and sigmoid outputs (docs/training.md)
    split_windows: dict | None = None  # multi-label: windows per split (counts are per class)


def _stream_seed(seed: int, stream: int) -> int:
    """Seed of one shuffle stream. webdataset's detshuffle seeds with seed + epoch, so streams are
    spaced 2**20 epochs apart per seed and stream: no two (seed, stream, epoch) share an order."""
    return (seed * 2 + stream) << 20


def balanced_counts(labels, seed: int, epoch: int) -> np.ndarray:
    """Repeat count of each sample in one epoch of the class-balanced sampler.

    len(labels) draws with replacement, a sample's probability proportional to 1 / (its class's
    count), seeded by (seed, epoch): each class present is drawn len(labels) / C times in
    expectation. The counts are >= 0 and sum to len(labels).
    """
    labels = np.asarray(labels)
    _, inverse, per_class = np.unique(labels, return_inverse=True, return_counts=True)
    p = 1.0 / per_class[inverse]
    rng = np.random.default_rng([SAMPLER_STREAM, epoch, seed % 2**64])
    drawn = rng.choice(len(labels), size=len(labels), p=p / p.sum())
    return np.bincount(drawn, minlength=len(labels))


@dataclass(frozen=True)
class BalancedCounts:
    """The train windows (manifest order) and seed of `--balance sampler`; `counts(epoch)` is {key: repeats}."""

    keys: tuple[str, ...]
    labels: tuple[int, ...]
    seed: int

    @classmethod
    def from_manifest(cls, root, seed: int) -> BalancedCounts:
        """The train keys and label ids of the dataset's manifest.csv."""
        rows = [w for w in read_manifest(Path(root) / layout.MANIFEST) if w.split == "train"]
        return cls(tuple(w.key for w in rows), tuple(w.label_id for w in rows), seed)

    def counts(self, epoch: int) -> dict[str, int]:
        """{key: times the window is shown in `epoch`}; the same on every rank and worker."""
        return dict(zip(self.keys, balanced_counts(self.labels, self.seed, epoch).tolist()))

    def check_size(self, n_samples: int, what: str) -> None:
        """DatasetError unless the manifest's train windows number `n_samples` (the size of `what`)."""
        if len(self.keys) != n_samples:
            raise DatasetError(f"manifest.csv lists {len(self.keys)} train windows, {what} holds {n_samples}: "
                               "run `ecgrender verify` on the dataset, then rebuild it")


def _repeat_samples(src, counts: dict[str, int]):
    """Each raw sample `counts[key]` times (0: skipped)."""
    for sample in src:
        key = sample["__key__"]
        if key not in counts:
            raise DatasetError(f"shard {sample.get('__url__', '?')}: sample {key} is not a train window of "
                               "manifest.csv: run `ecgrender verify` on the dataset, then rebuild it")
        for _ in range(counts[key]):
            yield sample


class RepeatSamples(wds.PipelineStage):
    """webdataset stage of the balanced sampler: each sample as often as its count for the epoch.

    Like `wds.detshuffle` the stage counts its own epochs (one per `run`, starting at `epoch` + 1),
    so persistent workers draw new counts every epoch and a resumed run continues the sequence.
    """

    def __init__(self, balanced: BalancedCounts, epoch: int = -1):
        self.balanced, self.epoch = balanced, epoch

    def run(self, src):
        self.epoch += 1
        return _repeat_samples(src, self.balanced.counts(self.epoch))


def card_info(card: dict) -> CardInfo:
    """The trainer's fields of a dataset card (docs/format.md)."""
    try:
        return CardInfo(list(card["classes"]), card["source"]["database"], int(card["window"]["length"]),
                        int(card["n_leads"]), list(card["leads"]), card["split_by"], card["window"].get("fs"),
                        card["renderer"], dict(card["render"]), is_multi_label(card),
                        card.get("split_windows"))
    except (KeyError, TypeError, ValueError) as exn:
        raise DatasetError(f"dataset card lacks a field the trainer needs ({exn}): rebuild with `ecgrender build`") from None


def _decode(sample: dict, n_targets: int | None = None) -> tuple[np.ndarray, int | np.ndarray, str]:
    """webdataset raw sample -> (uint8 (H, W) image, label id or multi-hot vector, key), with the format's
    explicit decoders; `n_targets`: the card's class count for a multi-label dataset (None: single-label)."""
    key, image, target, _ = decode_sample(sample)
    if (n_targets is None) != isinstance(target, int) or (n_targets is not None and len(target) != n_targets):
        want = "a .cls class id" if n_targets is None else f"a .hot vector of {n_targets} classes"
        raise DatasetError(f"shard {sample.get('__url__', '?')}: sample {key} does not hold {want} as dataset.json "
                           "says: run `ecgrender verify` on the dataset, then re-download or rebuild it")
    return image, target, key


def targets_tensor(labels) -> torch.Tensor:
    """Class ids -> int64 (B,); multi-hot vectors -> float32 (B, C) (what BCE-with-logits takes)."""
    if isinstance(labels[0], np.ndarray):
        return torch.from_numpy(np.stack(labels).astype(np.float32))
    return torch.tensor(labels, dtype=torch.int64)


def _collate(samples: list) -> Batch:
    images, labels, keys = zip(*samples)
    return Batch(torch.from_numpy(np.stack(images)), targets_tensor(labels), list(keys))


def _unwrap(exn: DatasetError) -> DatasetError:
    """DataLoader re-raises a worker's error with its traceback; keep the one-line message."""
    text = str(exn)
    marker = "DatasetError: "
    return DatasetError(text.rsplit(marker, 1)[-1].strip() if marker in text else text)


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    """[lo, hi) chunks of `size`; a last chunk of one joins the chunk before it."""
    bounds = list(range(0, n, size)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return list(zip(bounds[:-1], bounds[1:]))


def _exact_batches(source, batch_size: int, pin: bool):
    """Pass full batches through; merge the workers' short end-of-epoch batches.

    The last full batch is held back and merged with the short ones; the merged remainder is
    cut into batches of `batch_size`, a final batch of one joining the one before it. No sample
    is dropped or repeated and no batch has a single sample (unless the split has one).
    """
    held, short = None, []
    try:
        for batch in source:
            if len(batch.y) < batch_size:
                short.append(batch)
                continue
            if held is not None:
                yield held
            held = batch
    except DatasetError as exn:
        raise _unwrap(exn) from None
    tail = ([held] if held is not None else []) + short
    if len(tail) == 1:
        yield tail[0]
        return
    if not tail:
        return
    x = torch.cat([b.x for b in tail])
    y = torch.cat([b.y for b in tail])
    keys = [k for b in tail for k in b.keys]
    for lo, hi in _chunks(len(y), batch_size):
        yield Batch(x[lo:hi].pin_memory() if pin else x[lo:hi], y[lo:hi], keys[lo:hi])


def dist_info() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group, (0, 1) when not distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ImageBatches:
    """Iterable over the batches of one split; each `iter()` is one exact epoch.

    `workers` DataLoader workers are persistent, so the shard permutation advances by one
    epoch at each iteration; `start_epoch` makes a resumed run continue the same sequence.
    With fewer shards on this rank than workers, the extra workers would idle: the worker
    count is lowered to the shard count (with a warning). `balanced` (train only): each epoch
    repeats or skips samples by the class-balanced counts (`BalancedCounts`), still N samples.
    """

    def __init__(self, root, split: str, batch_size: int, workers: int = 4, train: bool = False,
                 seed: int = 0, start_epoch: int = 0, pin_memory: bool = False, balanced: bool = False):
        root = Path(root)
        shards = split_shards(root, split)  # exactly the card's shards, with their sample counts
        urls = [url for url, _ in shards]
        if not urls:
            raise DatasetError(f"dataset {root} has no {split} windows (images/{split}-*.tar): rebuild it with "
                               "more patients or records, or a larger --test-fraction / --val-fraction")
        rank, world = dist_info()
        per_rank = len(urls[rank::world])
        self.workers = min(workers, per_rank)
        if per_rank == 0:
            warnings.warn(f"{split}: {len(urls)} shard(s) for {world} ranks, rank {rank} gets none "
                          "(DDP's join lets it wait; rebuild with smaller shards to use every GPU)", stacklevel=2)
        elif self.workers < workers:
            warnings.warn(f"{split}: {per_rank} shard(s) on this rank, using {self.workers} loader worker(s) instead of {workers}", stacklevel=2)
        self.n_samples = sum(n for _, n in shards)
        self.batch_size = batch_size
        self.pin_memory = pin_memory
        stages = [wds.SimpleShardList(urls)]
        if train:
            # Full permutation of the shard list, seeded by (seed, epoch): identical on every rank and worker.
            stages.append(wds.detshuffle(len(urls), len(urls), seed=_stream_seed(seed, 0), epoch=start_epoch - 1))
        stages += [wds.split_by_node, wds.split_by_worker, shard_samples(dict(shards), shard_digests(root, split))]
        if train and balanced:
            counts = BalancedCounts.from_manifest(root, seed)
            counts.check_size(self.n_samples, f"dataset.json's {split} shards")
            stages.append(RepeatSamples(counts, epoch=start_epoch - 1))
        if train:
            stages.append(wds.detshuffle(SHUFFLE_BUFFER, SHUFFLE_BUFFER // 2, seed=_stream_seed(seed, 1), epoch=start_epoch - 1))
        card = read_card(root)
        n_targets = len(card["classes"]) if is_multi_label(card) else None
        stages += [wds.map(functools.partial(_decode, n_targets=n_targets)), wds.batched(batch_size, collation_fn=_collate, partial=True)]  # last batch of a worker may be short
        pipeline = wds.DataPipeline(*stages)
        self.loader = wds.WebLoader(
            pipeline, batch_size=None, num_workers=self.workers, pin_memory=pin_memory,
            persistent_workers=self.workers > 0, prefetch_factor=4 if self.workers > 0 else None,
        )

    def __len__(self) -> int:
        """Batches per epoch on this rank (exact for one rank; the share of the shards otherwise)."""
        _, world = dist_info()
        return max(1, len(_chunks(math.ceil(self.n_samples / world), self.batch_size)))

    def __iter__(self):
        return _exact_batches(iter(self.loader), self.batch_size, self.pin_memory)


class RefEcgBatches:
    """Batches of Ref-ECG signals (B, 1, L) from `refecg.h5`; same windows and keys as the images.

    Train order is a seeded permutation per epoch, split by rank under DDP. `balanced` (train
    only): the permutation is of the epoch's index list with the balanced sampler's repeats.
    """

    def __init__(self, root, split: str, batch_size: int, train: bool = False, seed: int = 0,
                 start_epoch: int = 0, pin_memory: bool = False, balanced: bool = False):
        x, y, keys = read_refecg(Path(root) / layout.REFECG, split)
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64 if np.ndim(y) == 1 else np.float32))
        self.keys = [k.decode() if isinstance(k, bytes) else str(k) for k in keys]
        self.n_samples = len(self.y)
        self.batch_size, self.train, self.seed, self.epoch = batch_size, train, seed, start_epoch
        self.pin_memory = pin_memory
        self.balanced = BalancedCounts.from_manifest(root, seed) if train and balanced else None
        if self.balanced is not None:
            self.balanced.check_size(self.n_samples, f"{layout.REFECG}'s {split} rows")

    def __len__(self) -> int:
        _, world = dist_info()
        return max(1, len(_chunks(math.ceil(self.n_samples / world), self.batch_size)))

    def _index(self) -> torch.Tensor:
        """The epoch's rows: each once, or repeated by the balanced sampler's counts."""
        if self.balanced is None:
            return torch.arange(self.n_samples)
        counts = self.balanced.counts(self.epoch)
        missing = [k for k in self.keys if k not in counts]
        if missing:
            raise DatasetError(f"{layout.REFECG}: window {missing[0]} is not a train window of manifest.csv: "
                               "run `ecgrender verify` on the dataset, then rebuild it")
        return torch.from_numpy(np.repeat(np.arange(self.n_samples), [counts[k] for k in self.keys]))

    def _order(self) -> torch.Tensor:
        rank, world = dist_info()
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
            index = self._index()
            order = index[torch.randperm(len(index), generator=g)]
            self.epoch += 1
        else:
            order = torch.arange(self.n_samples)
        return order[rank::world]

    def __iter__(self):
        order = self._order()
        for lo, hi in _chunks(len(order), self.batch_size):
            idx = order[lo:hi]
            x = self.x[idx]
            yield Batch(x.pin_memory() if self.pin_memory else x, self.y[idx], [self.keys[i] for i in idx.tolist()])


class Standardize(torch.nn.Module):
    """Device-side input preparation for a batch copied as-is from the host.

    Images: uint8 (B, H, W) -> float (B, 3, H, W), grey copied to 3 channels, ImageNet
    mean/std, channels_last when asked. Signals pass through unchanged.
    """

    scale: torch.Tensor  # buffers, registered in __init__
    shift: torch.Tensor

    def __init__(self, image: bool, channels_last: bool = False):
        super().__init__()
        self.image, self.channels_last = image, channels_last
        std = torch.tensor(IMAGENET_STD)
        self.register_buffer("scale", (1.0 / (255.0 * std)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", (-torch.tensor(IMAGENET_MEAN) / std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.image:
            return x.float()
        x = torch.addcmul(self.shift, x.unsqueeze(1).float(), self.scale)  # (B, 3, H, W)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def make_batches(root, split: str, model_name: str, batch_size: int, workers: int = 4, train: bool = False,
                 seed: int = 0, start_epoch: int = 0, pin_memory: bool = False, balanced: bool = False):
    """The loader a model needs (its registry entry says): refecg.h5 rows for signal models, image shards
    otherwise. `balanced`: the class-balanced sampler (train only, `--balance sampler`)."""
    if get_model(model_name).input == "signal":
        return RefEcgBatches(root, split, batch_size, train, seed, start_epoch, pin_memory, balanced)
    return ImageBatches(root, split, batch_size, workers, train, seed, start_epoch, pin_memory, balanced)
