"""ptbdb adapter: 15 leads from .dat + .xyz, patient = folder, `Reason for admission` -> PhysioNet's 9
diagnostic classes, n/a left out, RECORDS or globbing, labels CSV, and bad input errors."""

from __future__ import annotations

import numpy as np
import pytest
import synth
import wfdb

from ecgrender.errors import EcgError
from ecgrender.sources import database_spec, demo_dir, open_source
from ecgrender.sources.ptbdb import diagnostic_class

# Every `Reason for admission` value in the 549 PTB headers and its PhysioNet class.
REAL_REASONS = {
    "Myocardial infarction": "Myocardial infarction",
    "Cardiomyopathy": "Cardiomyopathy/Heart failure",
    "Heart failure (NYHA 2)": "Cardiomyopathy/Heart failure",
    "Heart failure (NYHA 3)": "Cardiomyopathy/Heart failure",
    "Heart failure (NYHA 4)": "Cardiomyopathy/Heart failure",
    "Bundle branch block": "Bundle branch block",
    "Dysrhythmia": "Dysrhythmia",
    "Hypertrophy": "Myocardial hypertrophy",
    "Valvular heart disease": "Valvular heart disease",
    "Myocarditis": "Myocarditis",
    "Stable angina": "Miscellaneous",
    "Unstable angina": "Miscellaneous",
    "Palpitation": "Miscellaneous",
    "Healthy control": "Healthy control",
}


def test_every_real_reason_maps_to_one_of_the_nine_classes():
    assert {r: diagnostic_class(r) for r in REAL_REASONS} == REAL_REASONS
    assert set(REAL_REASONS.values()) == set(list(database_spec("ptbdb").default_classes)) and len(list(database_spec("ptbdb").default_classes)) == 9
    assert diagnostic_class("n/a") is None


def test_labels_patients_leads_and_na_exclusion(synth_ptbdb):
    scan = open_source("ptbdb", synth_ptbdb).scan()
    records = {r.name: r for r in scan.records}
    assert scan.excluded == [("patient106/s0030_re", "no diagnosis (Reason for admission: n/a)")]
    assert {n: r.spans[0].label for n, r in records.items()} == {
        n: REAL_REASONS[reason] for n, reason in synth.PTBDB_RECORDS.items() if reason != "n/a"}
    for name, rec in records.items():
        assert rec.patient == name.split("/")[0]
        assert rec.leads == synth.PTBDB_LEADS and rec.fs == 1000.0
        assert [(s.start, s.end) for s in rec.spans] == [(0, rec.n_samples)]
    assert records["patient001/s0014lre"].patient == "patient001"


def test_signal_has_all_15_leads_in_mv(synth_ptbdb):
    signal = open_source("ptbdb", synth_ptbdb).read_signal("patient002/s0015lre")
    raw = wfdb.rdrecord(str(synth_ptbdb / "patient002" / "s0015lre"), physical=False)
    assert signal.dtype == np.float32 and signal.shape == (raw.sig_len, 15)
    np.testing.assert_allclose(signal, raw.d_signal / 2000.0, atol=1e-6)


def test_globbing_without_records_file(tmp_path):
    root = synth.write_ptbdb(tmp_path, records={"patient002/s0015lre": "Dysrhythmia",
                                                "patient001/s0010_re": "Myocarditis"}, records_file=False)
    names = [r.name for r in open_source("ptbdb", root).scan().records]
    assert names == ["patient001/s0010_re", "patient002/s0015lre"]


def test_labels_csv_completes_and_overrides(synth_ptbdb, tmp_path):
    csv_path = tmp_path / "physician.csv"
    csv_path.write_text("patient106/s0030_re,Healthy control\npatient001/s0010_re,Cardiomyopathy/Heart failure\n")
    records = {r.name: r for r in open_source("ptbdb", synth_ptbdb, labels_csv=csv_path).scan().records}
    assert records["patient106/s0030_re"].spans[0].label == "Healthy control"
    assert records["patient001/s0010_re"].spans[0].label == "Cardiomyopathy/Heart failure"
    assert records["patient001/s0014lre"].spans[0].label == "Myocardial infarction"


def test_unknown_reason_is_reported_with_record_and_string(tmp_path):
    root = synth.write_ptbdb(tmp_path, records={"patient009/s0001_re": "Sarcoidosis"})
    with pytest.raises(EcgError, match=r"patient009/s0001_re.*Sarcoidosis"):
        open_source("ptbdb", root).scan()
    (tmp_path / "labels.csv").write_text("patient009/s0001_re,Miscellaneous\n")
    scan = open_source("ptbdb", root, labels_csv=tmp_path / "labels.csv").scan()
    assert scan.records[0].spans[0].label == "Miscellaneous"


@pytest.mark.parametrize("missing", ["s0010_re.xyz", "s0010_re.dat"])
def test_missing_signal_file_is_named(tmp_path, missing):
    root = synth.write_ptbdb(tmp_path, records={"patient001/s0010_re": "Myocardial infarction"})
    (root / "patient001" / missing).unlink()
    with pytest.raises(EcgError, match=missing.replace(".", r"\.")) as err:
        open_source("ptbdb", root).scan()
    assert "\n" not in str(err.value)


def test_unknown_record_in_subset(synth_ptbdb):
    with pytest.raises(EcgError, match="patient999/s9999_re"):
        open_source("ptbdb", synth_ptbdb, records=["patient999/s9999_re"])


def test_bundled_ptb_record_offline():
    scan = open_source("ptbdb", demo_dir() / "ptbdb").scan()
    (rec,) = scan.records
    assert (rec.name, rec.patient, rec.spans[0].label) == ("patient001/s0010_re", "patient001", "Myocardial infarction")
    assert rec.leads[-3:] == ["vx", "vy", "vz"] and len(rec.leads) == 15 and rec.n_samples == 38400


def test_real_record_matches_wfdb(shared_data):
    source = open_source("ptbdb", shared_data / "ptbdb")
    (rec,) = source.scan().records
    assert rec.spans[0].label == "Myocardial infarction" and rec.fs == 1000.0
    expected = wfdb.rdrecord(str(shared_data / "ptbdb" / "patient001" / "s0010_re")).p_signal.astype(np.float32)
    np.testing.assert_array_equal(source.read_signal(rec.name), expected)
