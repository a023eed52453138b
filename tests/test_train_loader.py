"""The training loader: exact epochs with several workers, clear errors for damaged shards, same keys in both sets."""

import csv
from pathlib import Path

import pytest
import torch
from _train_data import make_dataset

from ecgtrain.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageBatches,
    RefEcgBatches,
    Standardize,
    make_batches,
)
from shards.errors import DatasetError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    # 41 train windows in shards of 6 (7 shards, the last one short): uneven work for the workers.
    return make_dataset(tmp_path_factory.mktemp("loader") / "ds", counts={"train": 41, "val": 8, "test": 9}, per_shard=6)


def manifest_keys(root: Path, split: str) -> list[str]:
    with open(root / "manifest.csv") as f:
        return [r["key"] for r in csv.DictReader(f) if r["split"] == split]


@pytest.mark.parametrize("workers", [0, 2])
def test_every_train_sample_once_per_epoch(dataset, workers):
    batches = ImageBatches(dataset, "train", batch_size=4, workers=workers, train=True, seed=3)
    expected = sorted(manifest_keys(dataset, "train"))
    orders = []
    for _ in range(2):
        epoch = list(batches)
        keys = [k for b in epoch for k in b.keys]
        assert sorted(keys) == expected  # each sample exactly once, nothing resampled
        sizes = [len(b.y) for b in epoch]
        assert all(2 <= s <= 5 for s in sizes) and sizes.count(4) >= len(sizes) - 2, sizes  # never a batch of one
        assert len(epoch) == len(batches)
        for b in epoch:
            assert b.x.dtype == torch.uint8 and b.x.shape[1:] == (48, 64) and len(b.keys) == len(b.y)
        orders.append(keys)
    assert orders[0] != orders[1]  # shards and samples reshuffled each epoch


def test_resumed_loader_continues_the_same_order(dataset):
    full = ImageBatches(dataset, "train", batch_size=4, workers=0, train=True, seed=5)
    list(full)
    second = [k for b in full for k in b.keys]
    resumed = ImageBatches(dataset, "train", batch_size=4, workers=0, train=True, seed=5, start_epoch=1)
    assert [k for b in resumed for k in b.keys] == second


def test_eval_order_is_the_manifest_order_and_workers_are_capped(dataset):
    with pytest.warns(UserWarning, match="using 2 loader worker"):
        batches = ImageBatches(dataset, "test", batch_size=4, workers=3)  # 9 windows in 2 shards
    keys = [k for b in batches for k in b.keys]
    assert sorted(keys) == sorted(manifest_keys(dataset, "test"))


def test_refecg_holds_the_same_windows_and_labels(dataset):
    images = {k: int(y) for b in ImageBatches(dataset, "val", batch_size=3, workers=0) for k, y in zip(b.keys, b.y)}
    signals = RefEcgBatches(dataset, "val", batch_size=3)
    seen = {}
    for b in signals:
        assert b.x.shape[1:] == (1, 1000) and b.x.dtype == torch.float32
        seen.update({k: int(y) for k, y in zip(b.keys, b.y)})
    assert seen == images
    train = RefEcgBatches(dataset, "train", batch_size=4, train=True)
    keys = [k for b in train for k in b.keys]
    assert sorted(keys) == sorted(manifest_keys(dataset, "train"))


def test_standardize_matches_imagenet_normalization():
    x = torch.randint(0, 256, (2, 5, 7), dtype=torch.uint8)
    out = Standardize(image=True)(x)
    ref = (x.float()[:, None].repeat(1, 3, 1, 1) / 255 - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    assert out.shape == (2, 3, 5, 7)
    assert torch.allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize("damage", ["truncate", "garbage_png"])
def test_damaged_shard_error_names_the_shard(tmp_path, damage):
    # With worker processes the same message comes back (tests/test_train_cli.py runs that case).
    root = make_dataset(tmp_path / "ds", counts={"train": 16, "val": 2, "test": 2}, per_shard=4)
    bad = root / "images" / "train-000002.tar"
    data = bytearray(bad.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2 + 100]
    else:
        at = data.index(b"\x89PNG")
        data[at + 16: at + 64] = b"\xff" * 48  # corrupt the IHDR chunk of the first PNG
    bad.write_bytes(bytes(data))
    batches = ImageBatches(root, "train", batch_size=4, workers=0, train=True)
    with pytest.raises(DatasetError, match=r"train-000002\.tar") as info:
        list(batches)
    assert "\n" not in str(info.value) and "rebuild" in str(info.value)


def test_missing_split_is_a_clear_error(tmp_path):
    root = make_dataset(tmp_path / "ds", counts={"train": 4, "val": 2, "test": 0}, per_shard=4)
    with pytest.raises(DatasetError, match="no test windows"):
        ImageBatches(root, "test", batch_size=2)


def test_loader_takes_exactly_the_cards_shards(tmp_path):
    root = make_dataset(tmp_path / "ds", counts={"train": 10, "val": 2, "test": 4}, per_shard=4)
    keys = [k for b in make_batches(root, "train", "imresnet34", batch_size=4, workers=0) for k in b.keys]
    assert sorted(keys) == sorted(manifest_keys(root, "train"))  # 10 samples in 3 shards, as the card says
    copied = root / "images" / "train-000003.tar"  # next free index: a complete shard the card does not list
    copied.write_bytes((root / "images" / "test-000000.tar").read_bytes())
    with pytest.raises(DatasetError, match=r"images/train-000003\.tar is on disk but not listed in dataset\.json") as info:
        make_batches(root, "train", "imresnet34", batch_size=4, workers=0)
    assert "\n" not in str(info.value)
    copied.unlink()
    (root / "images" / "train-000001.tar").unlink()
    with pytest.raises(DatasetError, match=r"images/train-000001\.tar is listed in dataset\.json but missing"):
        make_batches(root, "train", "imresnet34", batch_size=4, workers=0)
