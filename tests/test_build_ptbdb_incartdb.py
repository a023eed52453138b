"""`ecgrender build` on PTB (15 leads, record labels) and INCART (12 leads, 257 Hz), written by wfdb in
their exact formats, and on the real PTB record where present."""

from __future__ import annotations

import csv
import json

from buildutil import ecgrender


def _build(tmp_path, *options, per_class=3):
    out = tmp_path / "dataset"
    result = ecgrender("build", *options, "--per-class", per_class, "--jobs", "1", "--split-by", "window",
                       "--allow-missing-classes", "--out", out)
    assert result.exit_code == 0, result.output
    assert ecgrender("verify", out).exit_code == 0
    with open(out / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return json.loads((out / "dataset.json").read_text()), rows, result.output


def test_ptbdb_build_has_15_leads_and_record_labels(synth_ptbdb, tmp_path):
    card, rows, output = _build(tmp_path, "--db", "ptbdb", "--source", synth_ptbdb)
    assert card["n_leads"] == 15 and card["leads"][-3:] == ["vx", "vy", "vz"]
    assert card["window"] == {"length": 1000, "fs": 1000.0}
    assert "Healthy control" in card["classes"] and "Myocardial infarction" in card["classes"]
    assert {r["patient"] for r in rows if r["record"].startswith("patient001/")} == {"patient001"}
    assert "patient106/s0030_re" in output and "n/a" in output  # left out, and said so


def test_incartdb_build_has_12_leads_and_patient_ids(synth_incartdb, tmp_path):
    card, rows, output = _build(tmp_path, "--db", "incartdb", "--source", synth_incartdb)
    assert card["n_leads"] == 12 and card["window"]["fs"] == 257.0
    assert {r["patient"] for r in rows if r["record"] in ("I01", "I02")} <= {"patient1", "patient01"}
    assert len({r["patient"] for r in rows if r["record"] in ("I01", "I02")}) == 1
    assert "I08" in output  # no <diagnoses>: left out, and said so


def test_incartdb_labels_csv_brings_records_in(synth_incartdb, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("record,label\nI08,Coronary artery disease\nI09,Coronary artery disease\n")
    _, rows, _ = _build(tmp_path, "--db", "incartdb", "--source", synth_incartdb, "--labels", labels, per_class=60)
    assert {"I08", "I09"} <= {r["record"] for r in rows}


def test_real_ptb_record_builds(shared_data, tmp_path):
    card, rows, _ = _build(tmp_path, "--db", "ptbdb", "--source", shared_data / "ptbdb")
    assert card["classes"] == ["Myocardial infarction"] and card["n_leads"] == 15
    assert {r["record"] for r in rows} == {"patient001/s0010_re"}
