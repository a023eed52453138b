"""shards.reader: shard URLs per split and decoded samples; damaged shards raise DatasetError naming them."""

import tarfile

import numpy as np
import pytest
import webdataset as wds
from shards_helpers import image_of, make_dataset

from shards import reader
from shards.errors import DatasetError
from shards.reader import iter_samples, split_urls
from shards.writer import encode_png

SHARD = "images/train-000001.tar"


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    return root, make_dataset(root)


def test_split_urls_are_the_split_shards_in_order(dataset):
    root, _ = dataset
    urls = split_urls(root, "train")
    assert urls == [str((root / f"images/train-00000{i}.tar").resolve()) for i in range(3)]
    assert split_urls(root, "test") == [str((root / "images/test-000000.tar").resolve())]


def test_plain_webdataset_reads_a_split_from_its_urls(dataset):
    root, rows = dataset
    # only= keeps webdataset's default handlers away from any other member (they would unpickle a .pyd)
    samples = list(wds.WebDataset(split_urls(root, "val"), shardshuffle=False).decode(only=["cls", "json"]))
    assert [(s["__key__"], s["cls"], s["json"]) for s in samples] == [
        (r["key"], r["label_id"], r) for r in rows if r["split"] == "val"
    ]


def test_iter_samples_yields_every_row_of_the_split_in_manifest_order(dataset):
    root, rows = dataset
    for split in ("train", "val", "test"):
        expected = [r for r in rows if r["split"] == split]
        got = list(iter_samples(root, split))
        assert [(k, label, row) for k, _, label, row in got] == [(r["key"], r["label_id"], r) for r in expected]
        for (_, image, _, _), row in zip(got, expected):
            assert image.dtype == np.uint8 and image.ndim == 2
            np.testing.assert_array_equal(image, image_of(row))


def test_split_without_windows_yields_nothing(tmp_path):
    make_dataset(tmp_path / "ds", per_split=(4, 2, 0))
    assert split_urls(tmp_path / "ds", "test") == [] and list(iter_samples(tmp_path / "ds", "test")) == []


def test_truncated_shard_raises_naming_it(dataset):
    root, _ = dataset
    path = root / SHARD
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DatasetError, match=f"shard .*{SHARD} is truncated"):
        list(iter_samples(root, "train"))


def test_corrupt_member_header_raises_naming_the_shard(dataset):
    root, _ = dataset
    path = root / SHARD
    data = bytearray(path.read_bytes())
    data[1024 + 148 : 1024 + 156] = b"garbage!"  # checksum field of the second member's header
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=f"shard .*{SHARD} holds 1 samples, dataset.json says 3"):
        list(iter_samples(root, "train"))


def test_shard_ending_early_at_a_sample_boundary_raises_naming_it(dataset):
    root, rows = dataset
    path = root / SHARD
    with tarfile.open(path) as tar:
        second = tar.getmember(f"{rows[4]['key']}.cls").offset  # header of the second sample
    data = bytearray(path.read_bytes())
    data[second + 148 : second + 156] = b"garbage!"  # tar stops reading there without an error
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=f"shard .*{SHARD} holds 1 samples, dataset.json says 3"):
        list(iter_samples(root, "train"))


def test_corrupt_png_raises_naming_the_shard(dataset):
    root, rows = dataset
    path = root / SHARD
    data = path.read_bytes()
    start = data.index(b"\x89PNG")
    path.write_bytes(data[:start + 30] + bytes(100) + data[start + 130 :])
    with pytest.raises(DatasetError, match=f"shard .*{SHARD}: member {rows[3]['key']}.png is damaged"):
        list(iter_samples(root, "train"))


def test_unlisted_or_missing_shard_or_no_card_is_refused(dataset):
    root, _ = dataset
    extra = root / "images/val-000001.tar"
    extra.write_bytes((root / "images/val-000000.tar").read_bytes())
    with pytest.raises(DatasetError, match="images/val-000001.tar is on disk but not listed in dataset.json"):
        split_urls(root, "val")
    extra.unlink()
    (root / "images/test-000000.tar").unlink()
    with pytest.raises(DatasetError, match="images/test-000000.tar is listed in dataset.json but missing"):
        list(iter_samples(root, "test"))
    (root / "dataset.json").unlink()
    with pytest.raises(DatasetError, match="dataset.json not found"):
        split_urls(root, "train")


def test_unknown_split_is_refused(dataset):
    root, _ = dataset
    with pytest.raises(DatasetError, match="unknown split 'dev'"):
        list(iter_samples(root, "dev"))


@pytest.mark.parametrize("decoder", ["pyspng", "Pillow (no pyspng wheel)"])
def test_png_decoders_give_the_pixels_and_refuse_damage_alike(decoder, monkeypatch):
    if decoder != "pyspng":
        monkeypatch.setattr(reader, "pyspng", None)
    image = np.random.default_rng(5).integers(0, 256, (31, 45), dtype=np.uint8)
    png = encode_png(image)
    decoded = reader.MEMBER_DECODERS["png"](png)
    assert decoded.dtype == np.uint8 and decoded.shape == image.shape
    np.testing.assert_array_equal(decoded, image)
    for at in (png.index(b"IDAT") + 10, len(png) - 14):  # in the image data, or in its CRC: both refused
        damaged = bytearray(png)
        damaged[at] ^= 0x10
        with pytest.raises(ValueError, match="PNG chunk b'IDAT' at byte 33 is cut short or fails its CRC"):
            reader.MEMBER_DECODERS["png"](bytes(damaged))
