"""`--labels FILE.csv`: record,label rows (header optional), and one-line errors for a missing,
malformed or contradictory file and for records the database does not have."""

from __future__ import annotations

import pytest

from ecgrender.errors import EcgError
from ecgrender.sources import open_source
from ecgrender.sources.labels import read_labels_csv


def test_rows_with_and_without_header(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("record,label\n201,AFIB\n\npatient001/s0010_re, Healthy control \n")
    b.write_text("I01,Coronary artery disease\r\nI02,Coronary artery disease\r\n")
    assert read_labels_csv(a) == {"201": "AFIB", "patient001/s0010_re": "Healthy control"}
    assert read_labels_csv(b) == {"I01": "Coronary artery disease", "I02": "Coronary artery disease"}


@pytest.mark.parametrize("text, match", [
    ("201,AFIB,extra\n", "line 1"),
    ("record,label\n201,\n", "line 2"),
    ("201,AFIB\n201,N\n", "labelled twice"),
    ("record,label\n", "no record,label rows"),
])
def test_malformed_files(tmp_path, text, match):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(EcgError, match=match) as err:
        read_labels_csv(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(EcgError, match="absent.csv"):
        open_source("demo", None, labels_csv=tmp_path / "absent.csv")


@pytest.mark.parametrize("db, fixture", [("mitdb", "synth_mitdb"), ("ptbdb", "synth_ptbdb"),
                                         ("incartdb", "synth_incartdb")])
def test_unknown_record_names_record_and_file(request, tmp_path, db, fixture):
    path = tmp_path / "labels.csv"
    path.write_text("nosuchrecord,N\n")
    with pytest.raises(EcgError) as err:
        open_source(db, request.getfixturevalue(fixture), labels_csv=path)
    assert "'nosuchrecord'" in str(err.value) and str(path) in str(err.value)


def test_csv_may_name_records_outside_the_selected_subset(synth_mitdb, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("106,bigeminy patient\n201,AF patient\n")
    scan = open_source("mitdb", synth_mitdb, records=["201"], labels_csv=path).scan()
    assert [(r.name, r.spans[0].label) for r in scan.records] == [("201", "AF patient")]
