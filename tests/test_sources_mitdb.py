"""mitdb adapter: rhythm episodes from .atr aux notes, patients (201/202), paced records, --records,
labels CSV, signals in physical units, and each bad input as a one-line EcgError naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import synth
import wfdb

from ecgrender.errors import EcgError
from ecgrender.sources import database_spec, open_source


def _by_name(scan):
    return {r.name: r for r in scan.records}


def test_rhythm_spans_patients_and_paced_exclusion(synth_mitdb):
    scan = open_source("mitdb", synth_mitdb).scan()
    records = _by_name(scan)
    assert scan.database == "mitdb"
    assert scan.excluded == [("102", "paced")]
    assert sorted(records) == ["100", "106", "119", "201", "202", "203"]
    for name, rec in records.items():
        episodes = synth.MITDB_RECORDS[name]
        assert [(s.label, s.start, s.end) for s in rec.spans] == synth.mitdb_spans(episodes)
        assert rec.leads == ["MLII", "V1"] and rec.fs == 360.0
        assert rec.n_samples == sum(int(round(sec * 360)) for _, sec in episodes)
    assert records["202"].patient == "201" and records["201"].patient == "201"
    assert records["106"].patient == "106"
    assert list(database_spec("mitdb").default_classes) == ["N", "AFIB", "B", "T"]


def test_signal_is_float32_physical_units(synth_mitdb):
    source = open_source("mitdb", synth_mitdb)
    signal = source.read_signal("119")
    digital = wfdb.rdrecord(str(synth_mitdb / "119"), physical=False).d_signal
    assert signal.dtype == np.float32 and signal.shape == digital.shape
    np.testing.assert_allclose(signal, (digital - 1024) / 200.0, atol=1e-6)
    assert 0.5 < float(np.ptp(signal[:, 0])) < 5.0  # mV-scale ECG


def test_missing_samples_stay_nan(tmp_path):
    root = synth.write_mitdb(tmp_path, records={"100": [("N", 5)]})
    record = wfdb.rdrecord(str(root / "100"), physical=False)
    record.d_signal[100:110, 0] = -2048  # the format-212 "no sample" value
    record.wrsamp(write_dir=str(root))
    signal = open_source("mitdb", root).read_signal("100")
    assert np.isnan(signal[100:110, 0]).all() and not np.isnan(signal[:100]).any()


def test_records_subset_and_unknown_record(synth_mitdb):
    scan = open_source("mitdb", synth_mitdb, records=["202", "201"]).scan()
    assert [r.name for r in scan.records] == ["202", "201"]
    with pytest.raises(EcgError, match="'999'"):
        open_source("mitdb", synth_mitdb, records=["201", "999"])


def test_records_found_without_records_file(tmp_path):
    root = synth.write_mitdb(tmp_path, records={"105": [("N", 5)], "100": [("N", 5)]}, records_file=False)
    assert [r.name for r in open_source("mitdb", root).scan().records] == ["100", "105"]


def test_labels_csv_replaces_episodes_by_one_record_span(synth_mitdb, tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("record,label\n201,AF patient\n102,paced rhythm\n")
    scan = open_source("mitdb", synth_mitdb, labels_csv=csv_path).scan()
    records = _by_name(scan)
    assert [(s.start, s.end, s.label) for s in records["201"].spans] == [(0, records["201"].n_samples, "AF patient")]
    assert records["102"].spans[0].label == "paced rhythm" and scan.excluded == []
    assert len(records["106"].spans) == 3  # records without a CSV row keep their episodes


@pytest.mark.parametrize("damage, message", [
    ("rm:100.atr", "100.atr"),
    ("rm:100.dat", "100.dat"),
    ("garble:100.hea", "100.hea"),
    ("rm:100.hea", "100.hea"),
])
def test_bad_files_are_one_line_errors_naming_the_file(tmp_path, damage, message):
    root = synth.write_mitdb(tmp_path, records={"100": [("N", 5)]})
    action, name = damage.split(":")
    if action == "rm":
        (root / name).unlink()
    else:
        (root / name).write_text("this is not a header\n")
    with pytest.raises(EcgError) as err:
        source = open_source("mitdb", root)
        source.scan()
        source.read_signal("100")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_source_dir_and_unknown_database(tmp_path):
    with pytest.raises(EcgError, match="nowhere"):
        open_source("mitdb", tmp_path / "nowhere")
    with pytest.raises(EcgError, match="'afdb'"):
        open_source("afdb", tmp_path)
    with pytest.raises(EcgError, match="--source"):
        open_source("mitdb", None)


def _minutes(rec):
    out = {}
    for s in rec.spans:
        out[s.label] = out.get(s.label, 0.0) + (s.end - s.start) / rec.fs / 60
    return out


def test_real_records(shared_data):
    scan = open_source("mitdb", shared_data / "mitdb").scan()
    records = _by_name(scan)
    assert len(records) == 22 and scan.excluded == []
    assert all("MLII" in r.leads and len(r.leads) == 2 for r in records.values())
    assert all(r.fs == 360.0 and r.n_samples == 650000 for r in records.values())
    r201 = records["201"]
    assert r201.patient == "201"
    assert (r201.spans[0].label, r201.spans[0].start) == ("AFIB", 60)
    assert all("\x00" not in s.label and not s.label.startswith("(") for r in records.values() for s in r.spans)
    m201, m119 = _minutes(r201), _minutes(records["119"])
    assert m201["AFIB"] == pytest.approx(10.1, abs=0.1) and m201["T"] == pytest.approx(6.6, abs=0.1)
    assert m119["B"] == pytest.approx(3.9, abs=0.1) and m119["T"] == pytest.approx(3.6, abs=0.1)
    for rec in records.values():  # spans are contiguous and inside the record
        assert all(a.end == b.start for a, b in zip(rec.spans, rec.spans[1:]))
        assert rec.spans[-1].end == rec.n_samples
