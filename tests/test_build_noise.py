"""`ecgrender build --manifest M --noise SPEC`: noisy copies of a dataset's windows, images and Ref-ECG matched."""

from __future__ import annotations

import numpy as np
import pytest
from buildutil import ecgrender, refused, tree_bytes
from synth import write_nstdb

from ecgrender.noise import WindowNoise, parse_noise_spec
from ecgrender.sources import open_source
from shards.card import file_digest, read_card
from shards.manifest import read_manifest
from shards.refecg import read_refecg
from shards.verify import verify_dataset

CLEAN = ["--db", "demo", "--split-by", "window", "--per-class", "8", "--shard-size", "8", "--jobs", "1"]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("noise") / "clean"
    result = ecgrender("build", *CLEAN, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def _noisy(clean, out, *options):
    result = ecgrender("build", "--db", "demo", "--manifest", clean / "manifest.csv", "--shard-size", "8",
                       "--jobs", "1", "--out", out, *options)
    assert result.exit_code == 0, result.output + result.stderr
    return out


def test_noisy_test_set_holds_the_clean_test_keys_and_its_lead_sums_are_the_noisy_signal(clean, tmp_path):
    noisy = _noisy(clean, tmp_path / "noisy", "--noise", "gauss:6,pl:12", "--seed", "5")
    assert verify_dataset(noisy) == []
    clean_test = [w for w in read_manifest(clean / "manifest.csv") if w.split == "test"]
    assert [w.key for w in read_manifest(noisy / "manifest.csv")] == [w.key for w in clean_test]
    card = read_card(noisy)
    assert card["noise"]["components"] == [{"type": "gauss", "snr_db": 6.0, "origin": "synthetic"},
                                           {"type": "pl", "snr_db": 12.0, "origin": "synthetic"}]
    assert card["noise"]["seed"] == 5 and card["noise"]["splits"] == ["test"] and card["noise"]["mains_hz"] == 60
    assert card["noise"]["of_card_sha256"] == file_digest(clean / "dataset.json")[0]  # the clean card it copies
    assert sum(card["counts"]["train"].values()) == sum(card["counts"]["val"].values()) == 0
    x, _, keys = read_refecg(noisy / "refecg.h5", "test")
    assert keys == [w.key for w in clean_test]
    source = open_source("demo", None)
    noise = WindowNoise(parse_noise_spec("gauss:6,pl:12"), clean_test[0].fs, seed=5, mains_hz=60)
    for w, sums in zip(clean_test, x):
        window = source.read_signal(w.record)[w.start:w.start + w.length]
        expected = noise(w.key, window).astype(np.float32).sum(axis=1, dtype=np.float32)
        assert np.array_equal(sums, expected), w.key
    clean_x, _, _ = read_refecg(clean / "refecg.h5", "test")
    assert not np.allclose(x, clean_x)


def test_same_seed_same_bytes_other_seed_other_images(clean, tmp_path):
    a = tree_bytes(_noisy(clean, tmp_path / "a", "--noise", "bw:6", "--seed", "1"))
    b = tree_bytes(_noisy(clean, tmp_path / "b", "--noise", "bw:6", "--seed", "1"))
    c = tree_bytes(_noisy(clean, tmp_path / "c", "--noise", "bw:6", "--seed", "2"))
    assert a == b
    shards = [k for k in a if k.endswith(".tar")]
    assert shards and all(a[k] != c[k] for k in shards)


def test_infinite_snr_over_every_split_rebuilds_the_clean_dataset_byte_for_byte(clean, tmp_path):
    noisy = _noisy(clean, tmp_path / "inf", "--noise", "gauss:inf", "--noise-splits", "train,val,test")
    a, b = tree_bytes(clean), tree_bytes(noisy)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == ["dataset.json"]  # only the card says it is a (zero-)noise copy
    card_a, card_b = read_card(clean), read_card(noisy)
    assert "noise" not in card_a["build"]  # builds without --noise keep the settings they had before it existed
    assert {k for k in card_a.keys() | card_b.keys() if card_a.get(k) != card_b.get(k)} <= {
        "noise", "build", "command", "card_sha256", "split_by"}


def test_real_nstdb_noise_is_recorded_with_its_files(clean, tmp_path):
    nstdb = write_nstdb(tmp_path / "nstdb")
    noisy = _noisy(clean, tmp_path / "em", "--noise", "em:6,gauss:20", "--noise-source", nstdb)
    noise = read_card(noisy)["noise"]
    assert [c["origin"] for c in noise["components"]] == ["nstdb", "synthetic"]
    assert set(noise["noise_source_files"]) == {"em.hea", "em.dat"}
    assert read_card(noisy)["build"]["noise_source_sha256"] == noise["noise_source_files"]


@pytest.mark.parametrize("options,expected", [
    (["--noise", "bw:6"], "--noise makes noisy copies of a dataset's windows: give its manifest with --manifest"),
    (["--noise-splits", "test"], "--noise-splits and --noise-source go with --noise SPEC"),
])
def test_noise_options_without_their_partners_are_refused(tmp_path, options, expected):
    refused(ecgrender("build", "--db", "demo", "--out", tmp_path / "x", *options), expected)


@pytest.mark.parametrize("options,expected", [
    (["--noise", "hum:6"], "unknown noise type 'hum'; choose from bw, ma, em, pl, gauss"),
    (["--noise", "bw:loud"], "SNR 'loud' of bw is not a number"),
    (["--noise", "bw:6", "--noise-splits", "tset"], "--noise-splits 'tset' is not a split"),
    (["--noise", "gauss:6", "--noise-source", "NSTDB"], "real noise for bw, ma, em only"),
    (["--noise", "ma:6", "--noise-source", "NSTDB"], "lacks record ma (ma.hea)"),
])
def test_bad_noise_input_is_a_one_line_error_and_writes_nothing(clean, tmp_path, options, expected):
    nstdb = write_nstdb(tmp_path / "nstdb", records=("bw",))
    options = [str(nstdb) if o == "NSTDB" else o for o in options]
    out = tmp_path / "bad"
    refused(ecgrender("build", "--db", "demo", "--manifest", clean / "manifest.csv", "--out", out, *options), expected)
    assert not (out / "dataset.json").exists()


def test_noise_that_cannot_serve_the_windows_is_refused_before_anything_is_written(clean, tmp_path):
    nstdb = write_nstdb(tmp_path / "nstdb", seconds=1.0)  # 360 samples: shorter than a 1,000-sample window
    out = tmp_path / "short"
    refused(ecgrender("build", "--db", "demo", "--manifest", clean / "manifest.csv", "--out", out,
                      "--noise", "em:6", "--noise-source", nstdb), "is shorter than a window (1000 samples)")
    assert not (out / "manifest.csv").exists() and not (out / ".build").exists()
