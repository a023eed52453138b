"""`ecgrender build --db demo`: manifest, Ref-ECG set, shards and card agree with the raw records."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest
import wfdb

from ecgrender.sources import demo_dir
from buildutil import ecgrender, tree_bytes

OPTIONS = ["--db", "demo", "--per-class", "12", "--renderer", "fast", "--jobs", "1", "--shard-size", "10"]


@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "dataset"
    result = ecgrender("build", *OPTIONS, "--out", out)
    assert result.exit_code == 0, result.output
    return out, result.output


def _manifest(out):
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_build_writes_every_part(demo_dataset):
    out, output = demo_dataset
    assert (out / "dataset.json").is_file() and (out / "refecg.h5").is_file()
    assert sorted(p.name for p in (out / "images").iterdir())[0] == "test-000000.tar"
    assert not (out / ".build").exists()
    assert "dataset complete" in output


def test_manifest_windows_lie_inside_one_rhythm_episode(demo_dataset):
    out, _ = demo_dataset
    rows = _manifest(out)
    assert {r["label"] for r in rows} == {"N", "AFIB", "B", "T"}
    for record in {r["record"] for r in rows}:
        path = str(demo_dir() / "mitdb" / record)
        n = wfdb.rdheader(path).sig_len
        ann = wfdb.rdann(path, "atr")
        changes = [(s, a.strip("\x00")[1:]) for s, a in zip(ann.sample, ann.aux_note) if a.startswith("(")]
        for r in (r for r in rows if r["record"] == record):
            start, end = int(r["start"]), int(r["start"]) + int(r["length"])
            assert 0 <= start and end <= n
            in_force = [label for s, label in changes if s <= start][-1]
            assert in_force == r["label"]
            assert not any(start < s < end for s, _ in changes), f"{r['key']} crosses a rhythm change"


def test_no_patient_in_two_splits(demo_dataset):
    out, _ = demo_dataset
    splits_of = {}
    for r in _manifest(out):
        splits_of.setdefault(r["patient"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits_of.values())


def test_refecg_sums_equal_raw_record_sums(demo_dataset):
    out, _ = demo_dataset
    rows = _manifest(out)
    with h5py.File(out / "refecg.h5", "r") as h5:
        for split in ("train", "val", "test"):
            expected = [r for r in rows if r["split"] == split]
            keys = [k.decode() if isinstance(k, bytes) else k for k in h5[split]["key"][:]]
            assert keys == [r["key"] for r in expected]
            assert list(h5[split]["y"][:]) == [int(r["label_id"]) for r in expected]
            for r, x in zip(expected[:5], h5[split]["x"][:5]):
                start = int(r["start"])
                raw = wfdb.rdrecord(str(demo_dir() / "mitdb" / r["record"]), sampfrom=start, sampto=start + 1000)
                np.testing.assert_allclose(x, raw.p_signal.sum(axis=1), rtol=1e-5, atol=1e-5)


def test_card_counts_and_verify(demo_dataset):
    out, _ = demo_dataset
    card = json.loads((out / "dataset.json").read_text())
    rows = _manifest(out)
    assert card["total"] == len(rows)
    assert card["classes"] == ["N", "AFIB", "B", "T"]
    assert card["n_leads"] == 2 and card["window"] == 1000 and card["split_by"] == "patient"
    assert sum(sum(c.values()) for c in card["counts"].values()) == len(rows)
    result = ecgrender("verify", out)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_same_seed_same_bytes_and_rerun_is_a_no_op(demo_dataset, tmp_path):
    out, _ = demo_dataset
    again = tmp_path / "again"
    assert ecgrender("build", *OPTIONS, "--out", again).exit_code == 0
    assert tree_bytes(again) == tree_bytes(out)
    result = ecgrender("build", *OPTIONS, "--out", again)
    assert result.exit_code == 0 and "nothing to do" in result.output


def test_other_seed_other_windows(demo_dataset, tmp_path):
    out, _ = demo_dataset
    other = tmp_path / "seed1"
    assert ecgrender("build", *OPTIONS, "--seed", "1", "--out", other).exit_code == 0
    assert [r["key"] for r in _manifest(other)] != [r["key"] for r in _manifest(out)]


def test_rebuild_from_manifest_reproduces_the_dataset(demo_dataset, tmp_path):
    out, _ = demo_dataset
    copy = tmp_path / "copy"
    result = ecgrender("build", *OPTIONS, "--manifest", out / "manifest.csv", "--out", copy)
    assert result.exit_code == 0, result.output
    original, rebuilt = tree_bytes(out), tree_bytes(copy)
    assert rebuilt.keys() == original.keys()
    assert {k: v for k, v in rebuilt.items() if k != "dataset.json"} == {
        k: v for k, v in original.items() if k != "dataset.json"
    }
