"""incartdb adapter: `<diagnoses>` -> record label through the documented mapping, `# patient N` ->
patient, records without `<diagnoses>` left out unless a labels CSV names them."""

from __future__ import annotations

import numpy as np
import pytest
import synth

from ecgrender.errors import EcgError
from ecgrender.sources import database_spec, open_source
from ecgrender.sources.incartdb import diagnosis_class

# The six `<diagnoses>` texts found in the 75 INCART headers.
REAL_DIAGNOSES = {
    "Coronary artery disease, arterial hypertension": "Coronary artery disease",
    "Coronary artery disease, arterial hypertension, left ventricular hypertrophy": "Coronary artery disease",
    "Acute MI": "Myocardial infarction",
    "Earlier MI": "Myocardial infarction",
    "Transient ischemic attack": "Transient ischemic attack",
    "Sinus node dysfunction": "Sinus node dysfunction",
}


def test_mapping_covers_the_real_diagnoses():
    assert {d: diagnosis_class(d) for d in REAL_DIAGNOSES} == REAL_DIAGNOSES
    assert set(REAL_DIAGNOSES.values()) == set(list(database_spec("incartdb").default_classes))


def test_labels_patients_and_exclusions(synth_incartdb):
    scan = open_source("incartdb", synth_incartdb).scan()
    records = {r.name: r for r in scan.records}
    assert scan.excluded == [("I08", "no <diagnoses> in header"), ("I09", "no <diagnoses> in header")]
    for name, rec in records.items():
        patient, _, _, diagnoses, _ = synth.INCARTDB_RECORDS[name]
        assert rec.patient == f"patient{patient:02d}"
        assert rec.spans[0].label == REAL_DIAGNOSES[diagnoses]
        assert len(rec.leads) == 12 and rec.fs == 257.0 and rec.spans[0].end == rec.n_samples
    assert records["I01"].patient == records["I02"].patient == "patient01"


def test_signal_shape_and_units(synth_incartdb):
    signal = open_source("incartdb", synth_incartdb).read_signal("I03")
    assert signal.dtype == np.float32 and signal.shape == (5140, 12)
    assert 0.3 < float(np.ptp(signal[:, 1])) < 5.0


def test_labels_csv_labels_records_without_diagnoses(synth_incartdb, tmp_path):
    csv_path = tmp_path / "physician.csv"
    csv_path.write_text("record,label\nI08,Ventricular ectopy\nI01,Ventricular ectopy\n")
    scan = open_source("incartdb", synth_incartdb, labels_csv=csv_path).scan()
    records = {r.name: r for r in scan.records}
    assert records["I08"].spans[0].label == "Ventricular ectopy" and records["I08"].patient == "patient04"
    assert records["I01"].spans[0].label == "Ventricular ectopy"
    assert scan.excluded == [("I09", "no <diagnoses> in header")]


def test_unknown_diagnoses_and_missing_patient_are_errors(tmp_path):
    root = synth.write_incartdb(tmp_path, records={"I30": (14, 41, "F", "Brugada syndrome", "VT")}, seconds=5)
    with pytest.raises(EcgError, match=r"I30.*Brugada syndrome"):
        open_source("incartdb", root).scan()
    hea = root / "I30.hea"
    hea.write_text(hea.read_text().replace("# patient 14\n", ""))
    with pytest.raises(EcgError, match=r"I30\.hea.*patient"):
        open_source("incartdb", root).scan()
