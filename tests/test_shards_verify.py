"""shards.verify: a sound dataset passes; each kind of damage is caught and names the file."""

import tarfile

import numpy as np
import pytest
from shards_helpers import (
    LENGTH,
    card_fields,
    edit_card,
    image_of,
    make_dataset,
    write_manifest,
    write_refecg,
)

from shards.card import write_card
from shards.layout import shard_name
from shards.refecg import RefEcgWriter
from shards.verify import verify_dataset
from shards.writer import write_shard

SHARD = "images/train-000001.tar"


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    return root, make_dataset(root)


def flip_byte(path, offset, mask=0xFF):
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def member_offset(path, name):
    with tarfile.open(path) as tar:
        return tar.getmember(name).offset_data


def only(problems, text):
    """The problems mentioning `text`; there must be at least one."""
    found = [p for p in problems if text in p]
    assert found, problems
    return found


def test_sound_dataset_has_no_problems(dataset, capsys):
    root, _ = dataset
    assert verify_dataset(root) == []
    assert verify_dataset(root, progress=True) == []
    assert "verify" in capsys.readouterr().err


def test_flipped_byte_in_an_image_is_caught(dataset):
    root, rows = dataset
    key = [r for r in rows if r["split"] == "train"][3]["key"]  # first sample of train-000001
    flip_byte(root / SHARD, member_offset(root / SHARD, f"{key}.png") + 40)
    problems = verify_dataset(root)
    assert problems == [f"{SHARD}: sha256 differs from dataset.json: the file is corrupt; re-download or rebuild it"]


def test_flipped_byte_in_refecg_and_manifest_is_caught(dataset):
    root, _ = dataset
    flip_byte(root / "refecg.h5", (root / "refecg.h5").stat().st_size - 10)
    flip_byte(root / "manifest.csv", 2, 0x20)  # header "key" -> "keY": no key column
    flip_byte(root / SHARD, 700)  # shards are still checked without a usable manifest
    problems = verify_dataset(root)
    only(problems, f"{SHARD}: sha256 differs")
    only(problems, "refecg.h5: sha256 differs")
    only(problems, "manifest.csv: sha256 differs")
    only(problems, "manifest.csv: lacks columns ['key']")


def test_truncated_shard_is_caught(dataset):
    root, _ = dataset
    path = root / SHARD
    path.write_bytes(path.read_bytes()[:1500])
    problems = verify_dataset(root)
    only(problems, f"{SHARD}: truncated")
    only(problems, f"{SHARD}: 1500 bytes, dataset.json says")


def test_shard_truncated_between_samples_is_caught(dataset):
    root, rows = dataset
    path = root / SHARD
    last = [r for r in rows if r["split"] == "train"][5]["key"]  # last sample of train-000001
    path.write_bytes(path.read_bytes()[: member_offset(path, f"{last}.cls") - 512])
    problems = verify_dataset(root)
    only(problems, f"{SHARD}: truncated")
    only(problems, f"{SHARD}: {path.stat().st_size} bytes, dataset.json says")


def test_missing_shard_is_caught(dataset):
    root, _ = dataset
    (root / SHARD).unlink()
    problems = verify_dataset(root)
    only(problems, f"{SHARD}: listed in dataset.json but missing")
    only(problems, f"{SHARD}: train shards are not numbered")
    only(problems, "images/train-000002.tar: train sample 3 is")


def test_extra_shard_is_caught(dataset):
    root, rows = dataset
    extra = [r for r in rows if r["split"] == "test"][:1]
    write_shard(root / shard_name("test", 1), [(r["key"], image_of(r), r["label_id"], r) for r in extra])
    problems = verify_dataset(root)
    only(problems, "images/test-000001.tar: not listed in dataset.json")
    only(problems, "images/test-000001.tar: sample")


def rewrite(root, rows, manifest_rows=None, refecg_rows=None, shard_rows=None):
    """Rewrite parts from altered rows and re-card, so only the cross-check can see the difference."""
    if manifest_rows is not None:
        write_manifest(root, manifest_rows)
    if refecg_rows is not None:
        write_refecg(root, refecg_rows)
    if shard_rows is not None:
        write_shard(root / SHARD, [(r["key"], image_of(r), r["label_id"], r) for r in shard_rows])
    write_card(root, card_fields(manifest_rows or rows))


def test_reordered_keys_in_refecg_are_caught(dataset):
    root, rows = dataset
    swapped = list(rows)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    rewrite(root, rows, refecg_rows=swapped)
    problems = verify_dataset(root)
    assert problems == [
        f"refecg.h5: /train row 1 is {rows[2]['key']} label {rows[2]['label_id']}, manifest.csv has "
        f"{rows[1]['key']} label {rows[1]['label_id']}: rebuild refecg.h5"
    ]


def test_relabelled_key_in_refecg_is_caught(dataset):
    root, rows = dataset
    relabelled = [dict(r) for r in rows]
    relabelled[-1]["label_id"] = (relabelled[-1]["label_id"] + 1) % 3
    rewrite(root, rows, refecg_rows=relabelled)
    only(verify_dataset(root), "refecg.h5: /test row 1")


def test_manifest_disagreeing_with_shards_and_refecg_is_caught(dataset):
    root, rows = dataset
    reordered = list(rows)
    reordered[3], reordered[4] = reordered[4], reordered[3]  # inside train-000001
    rewrite(root, rows, manifest_rows=reordered)
    problems = verify_dataset(root)
    only(problems, f"{SHARD}: train sample 3 is {rows[3]['key']}, manifest.csv has {rows[4]['key']}")
    only(problems, "refecg.h5: /train row 3")


def test_relabelled_sample_in_a_shard_is_caught(dataset):
    root, rows = dataset
    shard_rows = [dict(r) for r in rows[3:6]]
    shard_rows[1]["label_id"] = (shard_rows[1]["label_id"] + 1) % 3
    rewrite(root, rows, shard_rows=shard_rows)
    assert verify_dataset(root) == [
        f"{SHARD}: sample {rows[4]['key']} has a label or .json row that differs from manifest.csv"
    ]


def test_refecg_with_another_window_length_is_caught(dataset):
    root, rows = dataset
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")}
    with RefEcgWriter(root / "refecg.h5", counts, LENGTH - 1) as h5:
        for split, n in counts.items():
            h5.put_batch(split, 0, np.zeros((n, LENGTH - 1)), [r["label_id"] for r in rows if r["split"] == split],
                         [r["key"] for r in rows if r["split"] == split])
    write_card(root, card_fields(rows))
    only(verify_dataset(root), f"refecg.h5: /train has x float32(7, {LENGTH - 1})")


def test_counts_differing_from_the_card_are_caught(dataset):
    root, rows = dataset
    edit_card(root, lambda card: card["counts"]["val"].update(N=card["counts"]["val"]["N"] + 1))
    only(verify_dataset(root), "dataset.json: counts per split and class differ from manifest.csv")


def test_missing_card_is_the_only_problem(dataset):
    root, _ = dataset
    (root / "dataset.json").unlink()
    problems = verify_dataset(root)
    assert len(problems) == 1 and "dataset.json not found" in problems[0]


def test_refecg_h5_whose_data_cannot_be_read_is_a_problem_not_a_crash(tmp_path):
    make_dataset(tmp_path)
    path = tmp_path / "refecg.h5"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last byte: in the heap of the test split's keys
    path.write_bytes(bytes(data))
    problems = verify_dataset(tmp_path)
    assert any(p.startswith("refecg.h5: /test cannot be read (") for p in problems), problems
