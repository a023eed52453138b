"""`ecgrender build` on MIT-BIH records (the bundled demo, and the real records of ../shared/data when
present): manifest, Ref-ECG set, shards and card agree with the raw records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import wfdb
from buildutil import ecgrender, tree_bytes

from ecgrender.sources import demo_dir

SHARED_MITDB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mitdb"
COMMON = ["--per-class", "12", "--renderer", "fast", "--jobs", "1", "--shard-size", "10", "--allow-missing-classes"]
SOURCES = {
    "demo": (["--db", "demo"], demo_dir() / "mitdb"),
    "shared-mitdb": (["--db", "mitdb", "--source", SHARED_MITDB], SHARED_MITDB),
}


@pytest.fixture(scope="module", params=sorted(SOURCES))
def mitdb_dataset(request, tmp_path_factory):
    """(dataset dir, build output, options, WFDB dir of the records)."""
    source_options, records_dir = SOURCES[request.param]
    if not records_dir.is_dir():
        pytest.skip(f"{records_dir} is absent (real PhysioNet records are only in the team's ../shared)")
    options = source_options + COMMON
    out = tmp_path_factory.mktemp(request.param) / "dataset"
    result = ecgrender("build", *options, "--out", out)
    assert result.exit_code == 0, result.output
    return out, result.output, options, records_dir


def _manifest(out):
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_build_writes_every_part(mitdb_dataset):
    out, output, _, _ = mitdb_dataset
    assert (out / "dataset.json").is_file() and (out / "refecg.h5").is_file()
    assert sorted(p.name for p in (out / "images").iterdir())[0] == "test-000000.tar"
    assert not (out / ".build").exists()
    assert "dataset complete" in output


def test_manifest_windows_lie_inside_one_rhythm_episode(mitdb_dataset):
    out, _, _, records_dir = mitdb_dataset
    rows = _manifest(out)
    assert {r["label"] for r in rows} == {"N", "AFIB", "B", "T"}
    for record in {r["record"] for r in rows}:
        path = str(records_dir / record)
        n = wfdb.rdheader(path).sig_len
        ann = wfdb.rdann(path, "atr")
        changes = [(s, a.strip("\x00")[1:]) for s, a in zip(ann.sample, ann.aux_note) if a.startswith("(")]
        for r in (r for r in rows if r["record"] == record):
            start, end = int(r["start"]), int(r["start"]) + int(r["length"])
            assert 0 <= start and end <= n
            in_force = [label for s, label in changes if s <= start][-1]
            assert in_force == r["label"]
            assert not any(start < s < end for s, _ in changes), f"{r['key']} crosses a rhythm change"


def test_no_patient_in_two_splits(mitdb_dataset):
    out, _, _, _ = mitdb_dataset
    splits_of = {}
    for r in _manifest(out):
        splits_of.setdefault(r["patient"], set()).add(r["split"])
        assert r["patient"] == ("201" if r["record"] in ("201", "202") else r["record"])
    assert all(len(s) == 1 for s in splits_of.values())


def test_refecg_sums_equal_raw_record_sums(mitdb_dataset):
    out, _, _, records_dir = mitdb_dataset
    rows = _manifest(out)
    with h5py.File(out / "refecg.h5", "r") as h5:
        for split in ("train", "val", "test"):
            expected = [r for r in rows if r["split"] == split]
            keys = [k.decode() if isinstance(k, bytes) else k for k in h5[split]["key"][:]]
            assert keys == [r["key"] for r in expected]
            assert list(h5[split]["y"][:]) == [int(r["label_id"]) for r in expected]
            for r, x in zip(expected[:5], h5[split]["x"][:5]):
                start = int(r["start"])
                raw = wfdb.rdrecord(str(records_dir / r["record"]), sampfrom=start, sampto=start + 1000)
                np.testing.assert_allclose(x, raw.p_signal.sum(axis=1), rtol=1e-5, atol=1e-5)


def test_card_counts_and_verify(mitdb_dataset):
    out, _, options, _ = mitdb_dataset
    card = json.loads((out / "dataset.json").read_text())
    rows = _manifest(out)
    assert card["total"] == len(rows)
    assert card["classes"] == ["N", "AFIB", "B", "T"]
    assert card["n_leads"] == 2 and card["window"]["length"] == 1000 and card["split_by"] == "patient"
    assert sum(sum(c.values()) for c in card["counts"].values()) == len(rows)
    result = ecgrender("verify", out)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_same_seed_same_bytes_and_rerun_is_a_no_op(mitdb_dataset, tmp_path):
    out, _, options, _ = mitdb_dataset
    again = tmp_path / "again"
    assert ecgrender("build", *options, "--out", again).exit_code == 0
    assert tree_bytes(again) == tree_bytes(out)
    result = ecgrender("build", *options, "--out", again)
    assert result.exit_code == 0 and "nothing to do" in result.output


def test_other_seed_other_windows(mitdb_dataset, tmp_path):
    out, _, options, _ = mitdb_dataset
    other = tmp_path / "seed1"
    assert ecgrender("build", *options, "--seed", "1", "--out", other).exit_code == 0
    assert [r["key"] for r in _manifest(other)] != [r["key"] for r in _manifest(out)]


def test_rebuild_from_manifest_reproduces_the_dataset(mitdb_dataset, tmp_path):
    out, _, options, _ = mitdb_dataset
    copy = tmp_path / "copy"
    result = ecgrender("build", *options, "--manifest", out / "manifest.csv", "--out", copy)
    assert result.exit_code == 0, result.output
    original, rebuilt = tree_bytes(out), tree_bytes(copy)
    assert rebuilt.keys() == original.keys()
    assert {k: v for k, v in rebuilt.items() if k != "dataset.json"} == {
        k: v for k, v in original.items() if k != "dataset.json"
    }


def test_every_manifest_row_is_once_in_the_shards_read_with_plain_webdataset(mitdb_dataset):
    import webdataset as wds

    out, _, _, _ = mitdb_dataset
    rows = _manifest(out)
    for split in ("train", "val", "test"):
        urls = sorted(str(p) for p in (out / "images").glob(f"{split}-*.tar"))
        samples = list(wds.WebDataset(urls, shardshuffle=False).decode("l8"))
        expected = [r for r in rows if r["split"] == split]
        assert [s["__key__"] for s in samples] == [r["key"] for r in expected]
        for sample, row in zip(samples, expected):
            assert int(sample["cls"]) == int(row["label_id"])
            assert sample["json"]["key"] == row["key"] and sample["json"]["label"] == row["label"]
            assert sample["png"].shape == (314, 384) and sample["png"].dtype == np.uint8


def test_rebuild_from_a_shuffled_manifest_keeps_every_split_in_its_own_shards(mitdb_dataset, tmp_path):
    import random

    out, _, options, _ = mitdb_dataset
    lines = (out / "manifest.csv").read_text().splitlines()
    body = lines[1:]
    random.Random(0).shuffle(body)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *body]) + "\n")
    copy = tmp_path / "copy"
    result = ecgrender("build", *options, "--manifest", shuffled, "--out", copy)
    assert result.exit_code == 0, result.output
    assert ecgrender("verify", copy).exit_code == 0
    rebuilt = (copy / "manifest.csv").read_text().splitlines()
    assert sorted(rebuilt) == sorted(lines)  # the same rows, now grouped by split
    for split in ("train", "val", "test"):  # in the given order within each split
        assert [r for r in rebuilt if r.endswith("," + split)] == [r for r in body if r.endswith("," + split)]
