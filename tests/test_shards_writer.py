"""shards.writer: deterministic, atomic webdataset shards that plain webdataset and tarfile read."""

import io
import json
import tarfile

import numpy as np
import pytest
import webdataset as wds
from PIL import Image
from shards_helpers import image_of, make_rows

from shards.errors import DatasetError
from shards.writer import encode_png, write_shard


def samples(rows):
    return [(r["key"], image_of(r), r["label_id"], r) for r in rows]


def test_encode_png_is_deterministic_grey_and_lossless():
    image = np.random.default_rng(1).integers(0, 256, (31, 45), dtype=np.uint8)
    png = encode_png(image)
    assert png == encode_png(image.copy())
    decoded = Image.open(io.BytesIO(png))
    assert decoded.mode == "L" and decoded.info == {}  # no time, text or dpi chunks
    assert b"tIME" not in png and b"tEXt" not in png and b"pHYs" not in png
    np.testing.assert_array_equal(np.asarray(decoded), image)


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 3), np.uint8), np.zeros((0, 4), np.uint8)]
)
def test_encode_png_rejects_non_grey_images(bad):
    with pytest.raises(DatasetError, match="uint8"):
        encode_png(bad)


def test_same_samples_give_byte_identical_shards(tmp_path):
    rows = make_rows()
    write_shard(tmp_path / "a.tar", samples(rows))
    as_bytes = [(k, encode_png(img), lab, r) for k, img, lab, r in samples(rows)]
    assert write_shard(tmp_path / "b.tar", as_bytes) == len(rows)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_member_metadata_and_order_are_fixed(tmp_path):
    rows = make_rows()[:2]
    write_shard(tmp_path / "s.tar", samples(rows))
    with tarfile.open(tmp_path / "s.tar") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [f"{r['key']}.{e}" for r in rows for e in ("cls", "json", "png")]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode, m.isreg()) for m in members} == {
            (0, 0, 0, "", "", 0o644, True)
        }
        first = rows[0]
        assert tar.extractfile(f"{first['key']}.cls").read() == str(first["label_id"]).encode()
        assert tar.extractfile(f"{first['key']}.json").read() == json.dumps(
            first, sort_keys=True, separators=(",", ":")
        ).encode()
        png = tar.extractfile(f"{first['key']}.png").read()
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), image_of(first))


def test_plain_webdataset_decodes_the_shard(tmp_path):
    rows = make_rows()
    write_shard(tmp_path / "s.tar", samples(rows))
    url = str(tmp_path / "s.tar")
    plain = list(wds.WebDataset(url, shardshuffle=False).decode())
    assert [s["__key__"] for s in plain] == [r["key"] for r in rows]
    assert [s["cls"] for s in plain] == [r["label_id"] for r in rows]
    assert [s["json"] for s in plain] == rows
    assert all(s["png"].startswith(b"\x89PNG") for s in plain)
    grey = list(wds.WebDataset(url, shardshuffle=False).decode("l8"))
    for sample, row in zip(grey, rows):
        np.testing.assert_array_equal(sample["png"], image_of(row))


def test_failure_midway_leaves_no_tar(tmp_path):
    rows = make_rows()

    def failing():
        yield from samples(rows)[:3]
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError):
        write_shard(tmp_path / "s.tar", failing())
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_an_existing_complete_shard(tmp_path):
    rows = make_rows()
    write_shard(tmp_path / "s.tar", samples(rows))
    before = (tmp_path / "s.tar").read_bytes()
    bad = samples(rows)
    bad[2] = (bad[2][0], np.zeros((3, 3), np.float64), bad[2][2], bad[2][3])
    with pytest.raises(DatasetError):
        write_shard(tmp_path / "s.tar", bad)
    assert (tmp_path / "s.tar").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.tar"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: ("a.b", *s[1:3], {**s[3], "key": "a.b"}), "not usable"),
        (lambda s: (s[0], s[1], s[2], {**s[3], "label_id": s[2] + 1}), "manifest row says"),
        (lambda s: (s[0], s[1], -1, {**s[3], "label_id": -1}), "non-negative"),
        (lambda s: (s[0], b"GIF89a", *s[2:]), "not a PNG"),
        (lambda s: ("x" * 120, *s[1:3], {**s[3], "key": "x" * 120}), "cannot store"),
    ],
)
def test_bad_samples_raise_dataset_error(tmp_path, change, message):
    sample = samples(make_rows())[0]
    with pytest.raises(DatasetError, match=message):
        write_shard(tmp_path / "s.tar", [change(sample)])
    assert list(tmp_path.iterdir()) == []


def test_duplicate_keys_and_empty_shards_are_refused(tmp_path):
    sample = samples(make_rows())[0]
    with pytest.raises(DatasetError, match="twice"):
        write_shard(tmp_path / "s.tar", [sample, sample])
    with pytest.raises(DatasetError, match="empty"):
        write_shard(tmp_path / "s.tar", [])
    assert list(tmp_path.iterdir()) == []
