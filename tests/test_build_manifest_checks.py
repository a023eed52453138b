"""`--manifest` rows that disagree with their records (fs, samples, lead count, the leads of the dataset
the manifest comes from) are refused before anything is written, naming the manifest line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import synth
import wfdb
from buildutil import ecgrender

from ecgrender.sources import demo_dir

HEADER = "key,database,record,patient,start,length,fs,label,label_id,split\n"
GOOD = ["101_000001000,mitdb,101,101,1000,1000,360.0,N,0,train", "119_000002000,mitdb,119,119,2000,1000,360.0,N,0,test"]


@pytest.fixture
def source(tmp_path):
    """The demo's MIT-BIH excerpts plus record 300: three leads, all in rhythm N."""
    root = shutil.copytree(demo_dir() / "mitdb", tmp_path / "src")
    n = 20 * synth.MITDB_FS
    mv, _ = synth.ecg_like([("N", 0, n)], n, synth.MITDB_FS, 3, seed=1)
    wfdb.wrsamp("300", fs=synth.MITDB_FS, units=["mV"] * 3, sig_name=["MLII", "V1", "V5"],
                d_signal=np.round(mv * 200 + 1024).astype(np.int32), fmt=["212"] * 3, adc_gain=[200.0] * 3,
                baseline=[1024] * 3, write_dir=str(root))
    wfdb.wrann("300", "atr", np.array([0]), symbol=["+"], aux_note=["(N"], fs=synth.MITDB_FS, write_dir=str(root))
    (root / "RECORDS").write_text((root / "RECORDS").read_text() + "300\n")
    return root


def _refused(source, tmp_path, rows, *expected):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(HEADER + "".join(f"{row}\n" for row in rows))
    out = tmp_path / "o"
    result = ecgrender("build", "--db", "mitdb", "--source", source, "--manifest", manifest, "--jobs", "1",
                       "--out", out)
    assert result.exit_code == 2, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error:") and str(manifest) in message, message
    assert all(e in message for e in expected), message
    assert not any(p.name != ".ecgrender.lock" for p in out.iterdir())  # nothing written


def test_fs_that_differs_from_the_record(source, tmp_path):
    _refused(source, tmp_path, [GOOD[0], GOOD[1].replace(",360.0,", ",500.0,")], "line 3", "500", "360")


def test_window_outside_the_record(source, tmp_path):
    _refused(source, tmp_path, ["101_000042500,mitdb,101,101,42500,1000,360.0,N,0,train", GOOD[1]],
             "line 2", "43200 samples")


def test_record_with_another_lead_count(source, tmp_path):
    _refused(source, tmp_path, [*GOOD, "300_000000100,mitdb,300,300,100,1000,360.0,N,0,val"],
             "line 4", "3 leads", "line 2")


def test_leads_other_than_the_card_next_to_the_manifest(source, tmp_path):
    dataset = tmp_path / "dataset"
    options = ["--db", "mitdb", "--records", "101,119", "--classes", "N", "--per-class", "4", "--jobs", "1",
               "--allow-missing-classes"]
    assert ecgrender("build", *options, "--source", source, "--out", dataset).exit_code == 0
    hea = source / "101.hea"
    hea.write_text(hea.read_text().replace(" V1\n", " V2\n"))
    result = ecgrender("build", "--db", "mitdb", "--source", source, "--manifest", dataset / "manifest.csv",
                       "--jobs", "1", "--allow-missing-classes", "--out", tmp_path / "copy")
    assert result.exit_code == 2, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert "leads MLII, V1" in message and "MLII, V2/V1" in message, message
    assert not (tmp_path / "copy" / "manifest.csv").exists()
