"""`ecgrender build` split options: time splits, split files, and builds refused for empty splits or
missing classes unless --allow-missing-classes."""

from __future__ import annotations

import json

import pytest
from buildutil import ecgrender

from shards.manifest import read_manifest

# the synthetic mitdb records with windows (102 is paced and left out by the adapter)
FILE_SPLITS = {"100": "train", "106": "test", "119": "train", "201": "train", "202": "test", "203": "val"}


def _ok(*args):
    result = ecgrender(*args)
    assert result.exit_code == 0, result.output + result.stderr
    return result.output


def _refused(*args) -> str:
    """The one `error:` line of a build that exits 2 (progress bars share stderr)."""
    result = ecgrender(*args)
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.exit_code == 2 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def _shares_samples(rows) -> bool:
    return any(a.record == b.record and a.split != b.split and a.start <= b.start < a.start + a.length
               for a in rows for b in rows)


def test_time_split_on_the_demo(tmp_path):
    out = _ok("build", "--db", "demo", "--split-by", "time", "--per-class", "40", "--out", tmp_path / "d")
    assert "windows next to split boundaries" in out
    rows = read_manifest(tmp_path / "d" / "manifest.csv")
    assert not _shares_samples(rows)
    for record in {w.record for w in rows}:
        for label in {w.label for w in rows}:
            mine = sorted((w.start, w.split) for w in rows if w.record == record and w.label == label)
            order = [s for _, s in mine]
            assert order == sorted(order, key=["train", "val", "test"].index), (record, label, order)
    assert json.loads((tmp_path / "d" / "dataset.json").read_text())["split_by"] == "time"


def test_split_file_puts_each_record_where_the_file_says(synth_mitdb, tmp_path):
    split_file = tmp_path / "splits.csv"
    split_file.write_text("record,split\n" + "".join(f"{r},{s}\n" for r, s in FILE_SPLITS.items()))
    _ok("build", "--db", "mitdb", "--source", synth_mitdb, "--split-file", split_file, "--allow-missing-classes",
        "--out", tmp_path / "d")
    rows = read_manifest(tmp_path / "d" / "manifest.csv")
    assert {(w.record, w.split) for w in rows} == set(FILE_SPLITS.items())
    card = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert card["split_by"] == "record"  # 201 and 202 are one patient, in train and test: the card says so
    assert card["build"]["split_by"] == "file" and card["build"]["split_file_sha256"]


def test_bad_split_files_are_refused_before_anything_is_written(synth_mitdb, tmp_path):
    split_file = tmp_path / "splits.csv"
    for rows, expect in [
        ({**FILE_SPLITS, "999": "test"}, "names record '999', which is not in the mitdb source"),
        ({**FILE_SPLITS, "203": "holdout"}, "split 'holdout' is not one of train, val, test"),
        ({k: v for k, v in FILE_SPLITS.items() if k != "119"}, "record 119 has windows but no row in the split file"),
    ]:
        split_file.write_text("record,split\n" + "".join(f"{r},{s}\n" for r, s in rows.items()))
        message = _refused("build", "--db", "mitdb", "--source", synth_mitdb, "--split-file", split_file,
                           "--out", tmp_path / "d")
        assert expect in message
        assert not (tmp_path / "d" / "manifest.csv").exists()
    # the shipped DS1/DS2 lists name records this small source lacks
    message = _refused("build", "--db", "mitdb", "--source", synth_mitdb, "--split-file", "mitdb-ds1-ds2",
                       "--out", tmp_path / "d")
    assert "mitdb-ds1-ds2 names record '101', which is not in the mitdb source" in message


@pytest.mark.parametrize("split_by", ["patient", "window"])
def test_a_build_with_an_empty_split_is_refused_unless_allowed(synth_mitdb, tmp_path, split_by):
    args = ["build", "--db", "mitdb", "--source", synth_mitdb, "--records", "100", "--split-by", split_by,
            "--per-class", "2", "--out", tmp_path / "d"]
    message = _refused(*args)
    assert "is empty" in message and "--allow-missing-classes" in message
    assert not (tmp_path / "d" / "dataset.json").exists() and not (tmp_path / "d" / "manifest.csv").exists()
    out = _ok(*args, "--allow-missing-classes")
    assert "(allowed by --allow-missing-classes)" in out


def test_a_class_missing_from_a_split_is_refused(synth_mitdb, tmp_path):
    # three patients (100, 201+202, 203) cannot give every split both N and AFIB
    message = _refused("build", "--db", "mitdb", "--source", synth_mitdb, "--records", "100,201,202,203",
                       "--classes", "N,AFIB", "--out", tmp_path / "d")
    assert "has no window in" in message and "patients carry it" in message
    assert not (tmp_path / "d" / "manifest.csv").exists()
