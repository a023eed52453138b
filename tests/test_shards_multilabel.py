"""The multi-label format alone: `.hot` members, the manifest's `targets` column, refecg.h5's (N, C) y, and
what the writers and readers refuse."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from shards_helpers import IMAGE_SHAPE, LENGTH, image_of, reseal_card, signal_of

from shards.card import write_card
from shards.errors import DatasetError
from shards.layout import MANIFEST, REFECG, SPLITS, shard_name
from shards.manifest import COLUMNS, Window, manifest_classes, read_manifest, window_row, write_manifest
from shards.reader import decode_sample, iter_samples
from shards.refecg import RefEcgWriter, read_refecg
from shards.verify import verify_dataset
from shards.writer import encode_png, write_shard

CLASSES = ["NORM", "MI", "STTC", "CD", "HYP"]
OLD_HEADER = "key,database,record,patient,start,length,fs,label,label_id,split"
# (targets, split) of the rows of a small multi-label dataset, in manifest order
ROWS = [("10000", "train"), ("01100", "train"), ("00011", "train"), ("01010", "train"), ("10000", "val"),
        ("00100", "val"), ("00001", "test"), ("11111", "test")]


def label_of(targets: str, classes=CLASSES) -> str:
    return ";".join(c for c, t in zip(classes, targets) if t == "1")


def window(i: int, targets: str = "01100", split: str = "train", **changes) -> Window:
    fields = dict(key=f"records100-00000-{i:05d}_lr_000000000", database="ptbxl",
                  record=f"records100/00000/{i:05d}_lr", patient=str(15000 + i), start=0, length=LENGTH, fs=100.0,
                  label=label_of(targets), label_id=-1, split=split, targets=targets)
    return Window(**{**fields, **changes})


def single(i: int, label_id: int = 0, split: str = "train") -> Window:
    return Window(f"{100 + i}_{i:09d}", "mitdb", str(100 + i), str(100 + i), 1000 * i, LENGTH, 360.0,
                  ["N", "AFIB"][label_id], label_id, split)


def row_dict(w: Window) -> dict:
    return window_row(w)


def raw_members(shard) -> dict[str, dict]:
    """A shard's samples as webdataset gives them to decode_sample: {key: {ext: bytes, __key__, __url__}}."""
    samples: dict[str, dict] = {}
    with tarfile.open(shard) as tar:
        for member in tar:
            key, _, ext = member.name.partition(".")
            samples.setdefault(key, {"__key__": key, "__url__": str(shard)})[ext] = tar.extractfile(member).read()
    return samples


def rewrite_tar(shard, change) -> None:
    """Rewrite a tar with `change(members)` applied to its [(TarInfo, bytes)] list."""
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    members = change(members)
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, data in members:
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def make_multilabel_dataset(root) -> list[Window]:
    """A complete multi-label dataset written with the shards writers (manifest, refecg.h5, shards, card)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [window(i, targets, split) for i, (targets, split) in enumerate(ROWS)]
    write_manifest(root / MANIFEST, rows)
    counts = {s: sum(w.split == s for w in rows) for s in SPLITS}
    with RefEcgWriter(root / REFECG, counts, LENGTH, n_classes=len(CLASSES)) as h5:
        for split in SPLITS:
            for i, w in enumerate(w for w in rows if w.split == split):
                h5.put(split, i, signal_of({"start": i}), w.targets, w.key)
    (root / "images").mkdir()
    for split in SPLITS:
        write_shard(root / shard_name(split, 0), ((w.key, image_of({"start": k}), w.targets, row_dict(w))
                                                  for k, w in enumerate(rows) if w.split == split))
    per_class = {s: dict.fromkeys(CLASSES, 0) for s in SPLITS}
    for w in rows:
        for c, t in zip(CLASSES, w.targets):
            per_class[w.split][c] += int(t)
    write_card(root, {
        "software_version": "test", "source": {"database": "ptbxl", "version": "1.0.3"}, "classes": CLASSES,
        "counts": per_class, "window": {"length": LENGTH, "fs": 100.0}, "n_leads": 12,
        "leads": [f"L{i}" for i in range(12)],
        "split_by": "fold", "render": {"out_h": IMAGE_SHAPE[0], "out_w": IMAGE_SHAPE[1]}, "seed": 0,
        "renderer": "test", "label_type": "multi-label",
    })
    return rows


# --- shards ----------------------------------------------------------------------------------------------------


def test_multi_label_sample_round_trips_as_a_hot_member(tmp_path):
    w = window(1, "01100")
    image = np.arange(48, dtype=np.uint8).reshape(6, 8)
    shard = tmp_path / "s.tar"
    assert write_shard(shard, [(w.key, image, "01100", row_dict(w))]).samples == 1
    with tarfile.open(shard) as tar:
        assert [m.name for m in tar] == [f"{w.key}.hot", f"{w.key}.json", f"{w.key}.png"]
        assert tar.extractfile(f"{w.key}.hot").read() == b"01100"
    key, decoded, target, row = decode_sample(raw_members(shard)[w.key])
    assert key == w.key and row == row_dict(w) and row["targets"] == "01100"
    assert isinstance(target, np.ndarray) and target.dtype == np.uint8
    np.testing.assert_array_equal(target, [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(decoded, image)


def test_single_label_sample_still_has_a_cls_member(tmp_path):
    w = single(1, label_id=1)
    shard = tmp_path / "s.tar"
    write_shard(shard, [(w.key, encode_png(np.zeros((4, 4), np.uint8)), 1, row_dict(w))])
    with tarfile.open(shard) as tar:
        assert [m.name.rsplit(".", 1)[1] for m in tar] == ["cls", "json", "png"]
    _, _, target, row = decode_sample(raw_members(shard)[w.key])
    assert target == 1 and "targets" not in row


def test_sample_with_both_a_cls_and_a_hot_is_refused(tmp_path):
    w = window(1, "01100")
    shard = tmp_path / "s.tar"
    write_shard(shard, [(w.key, image_of({"start": 0}), "01100", row_dict(w))])
    sample = {**raw_members(shard)[w.key], "cls": b"1"}
    with pytest.raises(DatasetError, match="both a .cls and a .hot") as err:
        decode_sample(sample)
    assert str(shard) in str(err.value) and w.key in str(err.value)


def test_sample_with_neither_a_cls_nor_a_hot_is_refused(tmp_path):
    w = window(1, "01100")
    shard = tmp_path / "s.tar"
    write_shard(shard, [(w.key, image_of({"start": 0}), "01100", row_dict(w))])
    sample = raw_members(shard)[w.key]
    del sample["hot"]
    with pytest.raises(DatasetError, match="no .cls or .hot") as err:
        decode_sample(sample)
    assert str(shard) in str(err.value) and w.key in str(err.value)


@pytest.mark.parametrize("data", [b"0120", b"01 10", b"", b"\xff1", b"1.0"])
def test_hot_member_with_other_characters_is_refused(tmp_path, data):
    w = window(1, "01100")
    shard = tmp_path / "s.tar"
    write_shard(shard, [(w.key, image_of({"start": 0}), "01100", row_dict(w))])
    sample = {**raw_members(shard)[w.key], "hot": data}
    with pytest.raises(DatasetError) as err:
        decode_sample(sample)
    message = str(err.value)
    assert str(shard) in message and f"{w.key}.hot" in message and "\n" not in message


@pytest.mark.parametrize("target", ["01000", "0110", "011000", "01120", "", " 01100"])
def test_write_shard_refuses_a_target_other_than_the_rows(tmp_path, target):
    w = window(1, "01100")
    shard = tmp_path / "s.tar"
    with pytest.raises(DatasetError, match=w.key):
        write_shard(shard, [(w.key, image_of({"start": 0}), target, row_dict(w))])
    assert not shard.exists() and list(tmp_path.iterdir()) == []


def test_write_shard_refuses_mixing_up_single_and_multi_label(tmp_path):
    multi, one = window(1, "01100"), single(2)
    with pytest.raises(DatasetError, match=multi.key):
        write_shard(tmp_path / "a.tar", [(multi.key, image_of({"start": 0}), 0, row_dict(multi))])
    with pytest.raises(DatasetError, match=multi.key):
        write_shard(tmp_path / "b.tar", [(multi.key, image_of({"start": 0}), np.array([0, 1, 1, 0, 0]),
                                          row_dict(multi))])
    with pytest.raises(DatasetError, match=one.key):
        write_shard(tmp_path / "c.tar", [(one.key, image_of({"start": 0}), "1", row_dict(one))])
    assert list(tmp_path.iterdir()) == []


# --- manifest --------------------------------------------------------------------------------------------------


def test_multi_label_manifest_round_trips_its_targets(tmp_path):
    rows = [window(i, targets, split) for i, (targets, split) in enumerate(ROWS)]
    write_manifest(tmp_path / MANIFEST, rows)
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    assert lines[0] == OLD_HEADER + ",targets"
    assert lines[1].endswith(",NORM,-1,train,10000")
    back = read_manifest(tmp_path / MANIFEST)
    assert back == rows
    assert [w.targets for w in back] == [t for t, _ in ROWS] and all(w.multi_label for w in back)
    assert manifest_classes(back, tmp_path / MANIFEST, CLASSES) == CLASSES


def test_single_label_manifest_has_exactly_the_old_columns(tmp_path):
    rows = [single(0, 0), single(1, 1, "val"), single(2, 0, "test")]
    write_manifest(tmp_path / MANIFEST, rows)
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    assert lines[0] == OLD_HEADER and lines[0].split(",") == list(COLUMNS)
    assert all(line.count(",") == 9 for line in lines)
    back = read_manifest(tmp_path / MANIFEST)
    assert back == rows and not any(w.multi_label for w in back)
    assert manifest_classes(back, tmp_path / MANIFEST) == ["N", "AFIB"]


def test_manifest_mixing_rows_with_and_without_targets_is_refused(tmp_path):
    path = tmp_path / MANIFEST
    for rows in ([window(1), single(2)], [single(2), window(1)]):
        with pytest.raises(DatasetError, match="single- or multi-label"):
            write_manifest(path, rows)
        assert list(tmp_path.iterdir()) == []


def test_multi_label_manifest_needs_its_classes(tmp_path):
    rows = [window(1, "01100"), window(2, "10000")]
    with pytest.raises(DatasetError, match="classes come from the dataset card"):
        manifest_classes(rows, tmp_path / MANIFEST)
    assert manifest_classes(rows, tmp_path / MANIFEST, CLASSES) == CLASSES


@pytest.mark.parametrize(("changes", "expected"), [
    ({"label": "MI"}, "disagrees with targets"),  # targets 01100 are MI;STTC
    ({"label": "STTC;MI"}, "disagrees with targets"),  # class order
    ({"targets": "0110", "label": "MI;STTC"}, "not a multi-hot vector of 5 classes"),
    ({"targets": "00000", "label": ""}, "not a multi-hot vector"),
    ({"targets": "01200", "label": "MI"}, "not a multi-hot vector"),
    ({"label_id": 1}, "label_id 1"),
])
def test_multi_label_row_inconsistent_with_the_classes_is_refused(tmp_path, changes, expected):
    rows = [window(1, "10000"), window(2, **{"targets": "01100", **changes}), window(3, "00001")]
    with pytest.raises(DatasetError) as err:
        manifest_classes(rows, tmp_path / MANIFEST, CLASSES)
    message = str(err.value)
    assert rows[1].key in message and expected in message and str(tmp_path / MANIFEST) in message
    assert rows[0].key not in message


# --- refecg.h5 -------------------------------------------------------------------------------------------------


def test_refecg_writer_with_classes_writes_multi_hot_y(tmp_path):
    path = tmp_path / REFECG
    counts = {"train": 3, "val": 0, "test": 1}
    with RefEcgWriter(path, counts, 4, n_classes=5) as h5:
        h5.put_batch("train", 1, np.ones((2, 4)), ["00011", "11111"], ["b", "c"])
        h5.put("train", 0, np.zeros(4), "10000", "a")
        h5.put("test", 0, np.full(4, 2.0), "01000", "d")
    x, y, keys = read_refecg(path, "train")
    assert y.dtype == np.int64 and y.shape == (3, 5) and keys == ["a", "b", "c"]
    np.testing.assert_array_equal(y, [[1, 0, 0, 0, 0], [0, 0, 0, 1, 1], [1, 1, 1, 1, 1]])
    assert x.shape == (3, 4)
    _, y_val, _ = read_refecg(path, "val")
    assert y_val.shape == (0, 5)
    _, y_test, keys_test = read_refecg(path, "test")
    np.testing.assert_array_equal(y_test, [[0, 1, 0, 0, 0]])
    assert keys_test == ["d"]


def test_refecg_writer_without_classes_keeps_label_ids(tmp_path):
    path = tmp_path / REFECG
    with RefEcgWriter(path, {"train": 2}, 4) as h5:
        h5.put_batch("train", 0, np.zeros((2, 4)), [1, 0], ["a", "b"])
    _, y, _ = read_refecg(path, "train")
    assert y.shape == (2,) and y.tolist() == [1, 0]


@pytest.mark.parametrize("target", ["0100", "010000"])
def test_refecg_writer_refuses_a_target_of_another_length(tmp_path, target):
    path = tmp_path / REFECG
    with pytest.raises(DatasetError, match="is not 5 characters 0 or 1"):
        with RefEcgWriter(path, {"train": 1}, 4, n_classes=5) as h5:
            h5.put("train", 0, np.zeros(4), target, "a")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", ["01200", "01x00"])
def test_refecg_writer_refuses_a_target_that_is_not_multi_hot(tmp_path, target):
    with pytest.raises(DatasetError, match=f"multi-hot target '{target}' is not 5 characters 0 or 1"):
        with RefEcgWriter(tmp_path / REFECG, {"train": 1}, 4, n_classes=5) as h5:
            h5.put("train", 0, np.zeros(4), target, "a")


# --- a whole multi-label dataset -----------------------------------------------------------------------------


def test_multi_label_dataset_reads_back_and_verifies(tmp_path):
    root = tmp_path / "ds"
    rows = make_multilabel_dataset(root)
    assert verify_dataset(root) == []
    for split in SPLITS:
        mine = [w for w in rows if w.split == split]
        got = list(iter_samples(root, split))
        assert [key for key, *_ in got] == [w.key for w in mine]
        for (_, image, target, row), w in zip(got, mine):
            assert target.dtype == np.uint8 and "".join(map(str, target.tolist())) == w.targets
            assert row == row_dict(w) and image.shape == IMAGE_SHAPE
        _, y, keys = read_refecg(root / REFECG, split)
        assert keys == [w.key for w in mine]
        np.testing.assert_array_equal(y, [[int(t) for t in w.targets] for w in mine])


def test_shard_sample_with_both_targets_is_refused_by_reader_and_verify(tmp_path):
    root = tmp_path / "ds"
    rows = make_multilabel_dataset(root)
    key = rows[0].key
    shard = root / shard_name("train", 0)

    def add_cls(members):
        extra = tarfile.TarInfo(f"{key}.cls")
        return [(extra, b"0"), *members]

    rewrite_tar(shard, add_cls)
    reseal_card(root)
    with pytest.raises(DatasetError, match="both a .cls and a .hot") as err:
        list(iter_samples(root, "train"))
    assert "train-000000.tar" in str(err.value)
    problems = verify_dataset(root)
    assert any(p.startswith("images/train-000000.tar") and key in p and "both" in p for p in problems), problems


def test_verify_catches_y_of_another_width(tmp_path):
    root = tmp_path / "ds"
    rows = make_multilabel_dataset(root)
    counts = {s: sum(w.split == s for w in rows) for s in SPLITS}
    with RefEcgWriter(root / REFECG, counts, LENGTH) as h5:  # single-label y (N,)
        for split in SPLITS:
            for i, w in enumerate(w for w in rows if w.split == split):
                h5.put(split, i, signal_of({"start": i}), 0, w.key)
    reseal_card(root)
    problems = verify_dataset(root)
    assert any(p.startswith("refecg.h5: /train") and "y int64(4, 5)" in p for p in problems), problems
