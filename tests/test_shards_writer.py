"""shards.writer: deterministic, atomic webdataset shards that plain webdataset and tarfile read."""

import hashlib
import io
import json
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image
from shards_helpers import image_of, make_rows

from shards.card import shard_digest
from shards.errors import DatasetError
from shards.writer import encode_png, tar_member, write_shard

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
# sha256 of encode_png's bytes for the fast renderer's golden images (pixels stored in tests/data/golden). They
# change only with the PNG codec (zlib-ng's version or level, docs/format.md "PNG encoding"): then the dataset
# checksums of every build change too, so update them deliberately, once, and say so in docs/format.md.
PNG_SHA256 = {
    "fast_ecg2": "6ec44e9fd0a77cebda70f8f0c0f376a9368aba484dbc95f4725c3cb064e854ed",
    "fast_ecg15": "f28e6af03f00a30e30026a948a3bb0208171832a551b84bdf928231e3fbf8e7b",
    "fast_qrs12": "86a44b1e141a7d34481323dfaf8543841546a105cf75a2903a4fa6742e58e112",
}


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


@pytest.mark.parametrize("name", sorted(PNG_SHA256))
def test_encode_png_bytes_are_pinned(name):
    image = np.asarray(Image.open(GOLDEN / f"{name}.png"))
    png = encode_png(image)
    assert hashlib.sha256(png).hexdigest() == PNG_SHA256[name]
    idat = png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(image.shape[0], image.shape[1] + 1)
    assert (rows[:, 0] == 2).all()  # every row filtered 'Up'; any zlib inflates zlib-ng's stream
    np.testing.assert_array_equal(np.cumsum(rows[:, 1:], axis=0, dtype=np.uint8), image)


def test_shard_bytes_are_pinned_and_hashed_as_written(tmp_path):
    images = [np.asarray(Image.open(GOLDEN / f"{name}.png")) for name in sorted(PNG_SHA256)]
    rows = [{"key": f"100_{1000 * i:09d}", "database": "mitdb", "record": "100", "patient": "100", "start": 1000 * i,
             "length": 1000, "fs": 360.0, "label": "N", "label_id": 0, "split": "train"} for i in range(len(images))]
    digest = write_shard(tmp_path / "s.tar", [(r["key"], image, r["label_id"], r) for r, image in zip(rows, images)])
    assert digest == shard_digest(tmp_path / "s.tar")  # what the card would read back
    assert digest.samples == len(images) and digest.bytes % 10240 == 0
    assert digest.sha256 == "44653fb729846822c2d729e3eb54827ebef39cddfa3b00b8a16a1daad38f6c0a"


@pytest.mark.parametrize("size", [1, 511, 512, 513, 12253])
def test_tar_member_is_the_member_tarfile_writes(size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    info = tarfile.TarInfo("100_000001000.png")
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = size, 0, 0o644, 0, 0, "", ""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    assert buffer.getvalue().startswith(tar_member(info.name, data))


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
    assert write_shard(tmp_path / "b.tar", as_bytes).samples == len(rows)
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
