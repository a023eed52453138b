"""Bad input to `ecgrender build`: one clear line on stderr, a non-zero exit, nothing looking complete."""

from __future__ import annotations

import shutil

import pytest
from buildutil import ecgrender

from ecgrender.sources import demo_dir


def _fails(*args, expect):
    result = ecgrender(*args)
    assert result.exit_code != 0
    message = result.stderr.strip() if result.exit_code == 2 else result.output
    assert expect in message, message
    return message


@pytest.fixture
def mitdb_copy(tmp_path):
    source = tmp_path / "mitdb"
    shutil.copytree(demo_dir() / "mitdb", source)
    return source


def test_missing_source_directory(tmp_path):
    message = _fails("build", "--db", "mitdb", "--source", tmp_path / "nope", "--out", tmp_path / "o", expect="nope")
    assert message.startswith("error:") and "\n" not in message
    assert not (tmp_path / "o" / "dataset.json").exists()


def test_source_required_for_real_databases(tmp_path):
    _fails("build", "--db", "ptbdb", "--out", tmp_path / "o", expect="--source")


def test_unknown_database(tmp_path):
    result = ecgrender("build", "--db", "foodb", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "foodb" in result.output


def test_unknown_class(tmp_path):
    _fails("build", "--db", "demo", "--classes", "N,XYZ", "--out", tmp_path / "o", expect="XYZ")
    assert not (tmp_path / "o" / "dataset.json").exists()


def test_window_longer_than_every_record(tmp_path):
    _fails("build", "--db", "demo", "--window", "10000000", "--out", tmp_path / "o", expect="window")
    assert not (tmp_path / "o" / "dataset.json").exists()


def test_missing_dat_file_names_it(mitdb_copy, tmp_path):
    dat = sorted(mitdb_copy.glob("*.dat"))[0]
    dat.unlink()
    _fails("build", "--db", "mitdb", "--source", mitdb_copy, "--out", tmp_path / "o", expect=dat.name)
    assert not (tmp_path / "o" / "dataset.json").exists()


def test_unreadable_header_names_it(mitdb_copy, tmp_path):
    header = sorted(mitdb_copy.glob("*.hea"))[0]
    header.write_text("this is not a WFDB header\n")
    _fails("build", "--db", "mitdb", "--source", mitdb_copy, "--out", tmp_path / "o", expect=header.stem)


def test_labels_csv_naming_unknown_record(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("record,label\n999,N\n")
    _fails("build", "--db", "demo", "--labels", labels, "--out", tmp_path / "o", expect="999")


def test_unknown_record_in_subset(tmp_path):
    _fails("build", "--db", "demo", "--records", "101,999", "--out", tmp_path / "o", expect="999")


def test_out_dir_with_foreign_files_is_refused(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    _fails("build", "--db", "demo", "--out", out, expect="not empty")
    assert (out / "thesis.tex").read_text() == "keep me"


def test_manifest_for_another_database(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "key,database,record,patient,start,length,fs,label,label_id,split\n"
        "s_000000000,ptbdb,patient001/s0010_re,patient001,0,1000,1000.0,Myocardial infarction,0,train\n"
    )
    _fails("build", "--db", "demo", "--manifest", manifest, "--out", tmp_path / "o", expect="ptbdb")


def test_settings_change_on_a_finished_dataset_is_refused(tmp_path):
    out = tmp_path / "o"
    base = ["build", "--db", "demo", "--per-class", "4", "--renderer", "fast", "--jobs", "1", "--allow-missing-classes",
            "--out", out]
    assert ecgrender(*base).exit_code == 0
    _fails(*base, "--seed", "7", expect="other settings")


def test_a_build_that_failed_on_bad_options_can_be_rerun_with_good_ones(tmp_path):
    out = tmp_path / "o"
    _fails("build", "--db", "demo", "--classes", "N,XYZ", "--out", out, expect="XYZ")
    result = ecgrender("build", "--db", "demo", "--classes", "N,T", "--per-class", "3", "--renderer", "fast",
                       "--jobs", "1", "--allow-missing-classes", "--out", out)
    assert result.exit_code == 0, result.output


def test_jobs_zero_and_fractions_leaving_no_train_are_refused_before_any_work(tmp_path):
    _fails("build", "--db", "demo", "--jobs", "0", "--out", tmp_path / "a", expect="--jobs")
    _fails("build", "--db", "demo", "--test-fraction", "0.6", "--val-fraction", "0.5", "--out", tmp_path / "b",
           expect="nothing for train")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    result = ecgrender("build", "--db", "demo", "--test-fraction", "0", "--out", tmp_path / "c")
    assert result.exit_code == 2 and "--test-fraction" in result.output


def test_manifest_whose_labels_and_ids_disagree(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "key,database,record,patient,start,length,fs,label,label_id,split\n"
        "101_000000000,demo,101,101,0,1000,360.0,N,1,train\n"
        "101_000001000,demo,101,101,1000,1000,360.0,N,0,train\n"
        "119_000001000,demo,119,119,1000,1000,360.0,T,1,test\n"
    )
    _fails("build", "--db", "demo", "--manifest", manifest, "--out", tmp_path / "o", expect="label ids")
