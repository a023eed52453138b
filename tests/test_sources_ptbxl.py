"""ptbxl adapter: labels of every task from scp_codes through scp_statements.csv (hand-computed from the real
statement table), patients, folds, leads, rates 100/500 Hz, --resample, and bad input as one-line errors."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import synth
import wfdb
from scipy.signal import resample_poly

from ecgrender.errors import EcgError
from ecgrender.sources import database_spec, open_source

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
SUPERDIAGNOSTIC = ["NORM", "MI", "STTC", "CD", "HYP"]

# ecg_id -> superdiagnostic span label (the classes of PTBXL_RECORDS' comments in the paper's order);
# 17 and 18 (AFLT, ABQRS, AFIB) have no diagnostic statement.
SUPER_LABELS = {
    1: "NORM", 2: "NORM", 3: "NORM", 4: "NORM", 8: "MI", 26: "STTC", 30: "HYP", 45: "CD;HYP", 50: "MI;CD",
    61: "MI;STTC", 62: "CD", 63: "STTC", 64: "CD;HYP", 65: "NORM", 66: "MI", 67: "NORM",
}

# Hand-computed from tests/data/ptbxl/scp_statements.csv: ecg_id -> span label (None: left out).
# 8 {IMI, ABQRS, SR}: IMI is diagnostic (class MI, subclass IMI), ABQRS form only, SR rhythm only.
# 26 {NST_, DIG, SR}: NST_ (subclass NST_) and DIG (subclass STTC) are diagnostic and form statements.
# 45 {IRBBB, RAO/RAE, RVH, SR}: three diagnostic statements (subclasses of the same names), no form statement.
# 61 {ASMI, ISC_, SR}: ASMI's subclass is AMI. 63 {NDT, SR}: NDT is diagnostic (subclass STTC) and form.
# 17 {AFLT, ABQRS, AFIB}: rhythm and form statements only. 1 {NORM, LVOLT (likelihood 0), SR}.
TASK_LABELS = {
    "subdiagnostic": {8: "IMI", 26: "NST_;STTC", 45: "IRBBB;RAO/RAE;RVH", 61: "AMI;ISC_", 63: "STTC", 50: "IVCD;LMI",
                      64: "LAFB/LPFB;LVH", 17: None},
    "diagnostic": {8: "IMI", 26: "DIG;NST_", 45: "IRBBB;RAO/RAE;RVH", 61: "ASMI;ISC_", 63: "NDT", 64: "LAFB;LVH",
                   17: None},
    "form": {8: "ABQRS", 26: "DIG;NST_", 45: None, 63: "NDT", 17: "ABQRS", 1: "LVOLT", 2: None},
    "rhythm": {8: "SR", 26: "SR", 45: "SR", 2: "SBRAD", 17: "AFIB;AFLT", 18: "AFLT"},
    "all": {8: "ABQRS;IMI;SR", 26: "DIG;NST_;SR", 45: "IRBBB;RAO/RAE;RVH;SR", 17: "ABQRS;AFIB;AFLT", 18: "AFLT",
            1: "LVOLT;NORM;SR"},
}
# Statements per kind in scp_statements.csv (71 rows: 44 diagnostic, 19 form of which 4 also diagnostic,
# 12 rhythm; 23 diagnostic subclasses).
TASK_SIZES = {"subdiagnostic": 23, "diagnostic": 44, "form": 19, "rhythm": 12, "all": 71}


def name(ecg_id: int, fs: int = 100) -> str:
    return synth.ptbxl_record_path(ecg_id, fs)


def by_id(scan) -> dict[int, object]:
    return {int(r.name.rsplit("/", 1)[1].split("_")[0]): r for r in scan.records}


def statement_table() -> list[dict[str, str]]:
    with open(synth.PTBXL_STATEMENTS, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def small_copy(tmp_path, ids=(1, 8), rates=(100,)):
    """A writable PTB-XL folder with a few records of PTBXL_RECORDS."""
    return synth.write_ptbxl(tmp_path / "ptbxl", {k: synth.PTBXL_RECORDS[k] for k in ids}, rates=rates)


def edit_database(root, ecg_id: int, **cells) -> None:
    """Set cells of one row of ptbxl_database.csv (the rest of the file is kept)."""
    path = root / "ptbxl_database.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    for row in rows[1:]:
        if row[0] == str(ecg_id):
            for column, value in cells.items():
                row[header.index(column)] = value
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def one_line_error(call, *expected: str) -> str:
    with pytest.raises(EcgError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message, message
    for text in expected:
        assert text in message, message
    return message


def write_record(root, ecg_id: int, fs: int, signal_mv: np.ndarray, names: list[str]) -> None:
    """Replace a record's files by `signal_mv` (n, leads) stored 16-bit at 1000 per mV with these lead names."""
    path = root / name(ecg_id, fs)
    d = np.round(signal_mv * 1000).astype(np.int32)
    wfdb.wrsamp(path.name, fs=fs, units=["mV"] * len(names), sig_name=names, d_signal=d, fmt=["16"] * len(names),
                adc_gain=[1000.0] * len(names), baseline=[0] * len(names), write_dir=str(path.parent))


# --- labels ---------------------------------------------------------------------------------------------------


def test_superdiagnostic_labels_of_every_record(synth_ptbxl):
    scan = open_source("ptbxl", synth_ptbxl).scan()
    assert scan.database == "ptbxl"
    assert {k: [(s.start, s.end, s.label) for s in r.spans] for k, r in by_id(scan).items()} == {
        k: [(0, 1000, label)] for k, label in SUPER_LABELS.items()}
    assert scan.excluded == [(name(17), "no superdiagnostic statement"), (name(18), "no superdiagnostic statement")]
    assert [r.name for r in scan.records] == [name(k) for k in sorted(SUPER_LABELS)]  # the table's order


def test_superdiagnostic_is_the_default_task_in_the_papers_order(synth_ptbxl):
    source = open_source("ptbxl", synth_ptbxl)
    assert list(source.default_classes) == SUPERDIAGNOSTIC
    assert list(open_source("ptbxl", synth_ptbxl, task="superdiagnostic").default_classes) == SUPERDIAGNOSTIC
    spec = database_spec("ptbxl")
    assert list(spec.default_classes) == SUPERDIAGNOSTIC and spec.multi_label and set(spec.options) == {"fs", "task"}


@pytest.mark.parametrize("task", sorted(TASK_LABELS))
def test_task_labels_hand_computed_from_the_statement_table(synth_ptbxl, task):
    scan = open_source("ptbxl", synth_ptbxl, task=task).scan()
    records = by_id(scan)
    excluded = dict(scan.excluded)
    for ecg_id, label in TASK_LABELS[task].items():
        if label is None:
            assert ecg_id not in records
            assert excluded[name(ecg_id)] == f"no {task} statement"
        else:
            assert [(s.start, s.end, s.label) for s in records[ecg_id].spans] == [(0, 1000, label)], ecg_id
    assert set(records) | {int(n.rsplit("/", 1)[1][:5]) for n in excluded} == set(synth.PTBXL_RECORDS)


@pytest.mark.parametrize("task", sorted(TASK_SIZES))
def test_default_classes_of_each_task_are_its_statements_sorted(synth_ptbxl, task):
    table = statement_table()
    if task == "all":
        expected = {row[""] for row in table}
    elif task == "subdiagnostic":
        expected = {row["diagnostic_subclass"] for row in table if row["diagnostic"]}
    else:
        expected = {row[""] for row in table if row[task]}
    classes = list(open_source("ptbxl", synth_ptbxl, task=task).default_classes)
    assert classes == sorted(expected) and len(classes) == TASK_SIZES[task]
    if task == "subdiagnostic":
        assert classes[-1] == "_AVB"  # plain string order: '_' sorts after the letters


def test_every_listed_statement_counts_whatever_its_likelihood(synth_ptbxl):
    # ecg 1 lists LVOLT with likelihood 0.0, ecg 8 ABQRS with 0.0: both are form labels
    records = by_id(open_source("ptbxl", synth_ptbxl, task="form").scan())
    assert records[1].spans[0].label == "LVOLT" and records[8].spans[0].label == "ABQRS"


# --- patients, folds, leads, rates --------------------------------------------------------------------------


def test_patients_folds_and_record_geometry_at_100_hz(synth_ptbxl):
    scan = open_source("ptbxl", synth_ptbxl, fs=100, task="all").scan()
    records = by_id(scan)
    assert set(records) == set(synth.PTBXL_RECORDS)
    for ecg_id, (patient, _, fold) in synth.PTBXL_RECORDS.items():
        record = records[ecg_id]
        assert record.name == name(ecg_id, 100) and record.name.endswith("_lr")
        assert record.patient == str(int(patient)) and record.fold == fold
        assert record.leads == LEADS
        assert (record.fs, record.n_samples) == (100.0, 1000)
        assert [(s.start, s.end) for s in record.spans] == [(0, 1000)]
    assert records[1].patient == "15709"
    assert [k for k, r in records.items() if r.patient == "13619"] == [17, 18, 26]
    assert {r.fold for r in records.values()} == set(range(1, 11))


def test_500_hz_records_have_5000_samples(synth_ptbxl):
    source = open_source("ptbxl", synth_ptbxl, fs=500)
    records = by_id(source.scan())
    assert set(records) == set(SUPER_LABELS)
    for ecg_id, record in records.items():
        assert record.name == name(ecg_id, 500) and record.name.endswith("_hr")
        assert (record.fs, record.n_samples) == (500.0, 5000)
        assert [(s.start, s.end, s.label) for s in record.spans] == [(0, 5000, SUPER_LABELS[ecg_id])]
    assert source.read_signal(name(45, 500)).shape == (5000, 12)


@pytest.mark.parametrize("fs", [100, 500])
def test_read_signal_is_wfdbs_physical_signal(synth_ptbxl, fs):
    source = open_source("ptbxl", synth_ptbxl, fs=fs)
    signal = source.read_signal(name(26, fs))
    raw = wfdb.rdrecord(str(synth_ptbxl / name(26, fs)))
    assert raw.sig_name == synth.PTBXL_LEADS  # stored as AVR, AVL, AVF
    assert signal.dtype == np.float32 and signal.shape == (10 * fs, 12)
    np.testing.assert_array_equal(signal, raw.p_signal.astype(np.float32))


def test_leads_stored_in_another_order_come_back_in_the_standard_order(tmp_path):
    root = small_copy(tmp_path, ids=(1,))
    original = wfdb.rdrecord(str(root / name(1))).p_signal
    write_record(root, 1, 100, original[:, ::-1], synth.PTBXL_LEADS[::-1])
    source = open_source("ptbxl", root)
    (record,) = source.scan().records
    assert record.leads == LEADS
    np.testing.assert_allclose(source.read_signal(name(1)), original, atol=1e-6)


def test_record_lacking_a_lead_is_left_out_with_the_lead_named(tmp_path):
    root = small_copy(tmp_path, ids=(1, 8))
    original = wfdb.rdrecord(str(root / name(1))).p_signal
    write_record(root, 1, 100, original[:, :11], synth.PTBXL_LEADS[:11])
    source = open_source("ptbxl", root)
    scan = source.scan()
    assert [r.name for r in scan.records] == [name(8)]
    ((excluded, why),) = scan.excluded
    assert excluded == name(1) and "V6" in why
    one_line_error(lambda: source.read_signal(name(1)), "V6")


# --- resampling ------------------------------------------------------------------------------------------------


def test_resample_500_to_100_hz_scales_lengths_and_filters_like_resample_poly(synth_ptbxl):
    source = open_source("ptbxl", synth_ptbxl, fs=500, resample=100)
    records = by_id(source.scan())
    assert set(records) == set(SUPER_LABELS)
    for ecg_id, record in records.items():
        assert record.name == name(ecg_id, 500)
        assert (record.fs, record.n_samples) == (100.0, 1000)
        assert [(s.start, s.end, s.label) for s in record.spans] == [(0, 1000, SUPER_LABELS[ecg_id])]
        assert record.patient == str(int(synth.PTBXL_RECORDS[ecg_id][0]))
        assert record.fold == synth.PTBXL_RECORDS[ecg_id][2]
    signal = source.read_signal(name(45, 500))
    assert signal.dtype == np.float32 and signal.shape == (1000, 12)
    at_500 = open_source("ptbxl", synth_ptbxl, fs=500).read_signal(name(45, 500))
    expected = resample_poly(at_500.astype(np.float64), 1, 5, axis=0)
    np.testing.assert_allclose(signal, expected, atol=1e-5)


def test_resample_to_the_stored_rate_changes_nothing(synth_ptbxl):
    plain = open_source("ptbxl", synth_ptbxl)
    same = open_source("ptbxl", synth_ptbxl, resample=100)
    assert [(r.name, r.fs, r.n_samples, r.spans) for r in same.scan().records] == [
        (r.name, r.fs, r.n_samples, r.spans) for r in plain.scan().records]
    np.testing.assert_array_equal(same.read_signal(name(8)), plain.read_signal(name(8)))


def test_resample_keeps_a_slow_sine_and_removes_what_would_alias(tmp_path):
    root = small_copy(tmp_path, ids=(1,), rates=(500,))
    t = np.arange(5000) / 500
    signal = np.tile(0.2 * np.sin(2 * np.pi * 1.0 * t)[:, None], (1, 12))
    signal[:, 0] = np.sin(2 * np.pi * 2.0 * t)  # 2 Hz: well inside the 50 Hz band of 100 Hz
    signal[:, 1] = np.sin(2 * np.pi * 120.0 * t)  # 120 Hz: decimating without a filter would alias it to 20 Hz
    write_record(root, 1, 500, signal, synth.PTBXL_LEADS)
    out = open_source("ptbxl", root, fs=500, resample=100).read_signal(name(1, 500))
    assert out.shape == (1000, 12)
    middle = slice(100, 900)  # away from the filter's edge effects
    t100 = np.arange(1000) / 100
    np.testing.assert_allclose(out[middle, 0], np.sin(2 * np.pi * 2.0 * t100[middle]), atol=0.01)
    assert np.abs(out[middle, 1]).max() < 0.02
    assert np.abs(signal[::5, 1][middle]).max() > 0.5  # what plain decimation would have kept


def test_resample_mitdb_to_250_hz_scales_every_span_boundary(synth_mitdb):
    plain = open_source("mitdb", synth_mitdb).scan()
    source = open_source("mitdb", synth_mitdb, resample=250)
    resampled = source.scan()
    assert resampled.excluded == plain.excluded
    assert [r.name for r in resampled.records] == [r.name for r in plain.records]
    for before, after in zip(plain.records, resampled.records):
        assert before.fs == 360.0 and after.fs == 250.0
        assert after.n_samples == math.ceil(before.n_samples * 250 / 360)
        assert (after.patient, after.leads) == (before.patient, before.leads)
        assert [(s.start, s.end, s.label) for s in after.spans] == [
            (round(s.start * 250 / 360), round(s.end * 250 / 360), s.label) for s in before.spans]
    first = resampled.records[0]
    assert first.spans[0].start == 5  # 7 samples at 360 Hz
    assert source.read_signal(first.name).shape == (first.n_samples, 2)


# --- bad input -------------------------------------------------------------------------------------------------


def test_missing_database_table(tmp_path):
    root = small_copy(tmp_path)
    (root / "ptbxl_database.csv").unlink()
    one_line_error(lambda: open_source("ptbxl", root), str(root / "ptbxl_database.csv"), "not found")


def test_missing_statement_table(tmp_path):
    root = small_copy(tmp_path)
    (root / "scp_statements.csv").unlink()
    one_line_error(lambda: open_source("ptbxl", root), str(root / "scp_statements.csv"), "not found")


def test_truncated_scp_codes_cell(tmp_path):
    root = small_copy(tmp_path)
    edit_database(root, 8, scp_codes="{'NORM': 100.0")
    one_line_error(lambda: open_source("ptbxl", root), "ptbxl_database.csv line 3", "ecg_id 8", "scp_codes")


def test_scp_codes_cell_is_never_run_as_code(tmp_path):
    root = small_copy(tmp_path)
    marker = tmp_path / "ran"
    edit_database(root, 1, scp_codes=f"__import__('os').system('touch {marker}')")
    one_line_error(lambda: open_source("ptbxl", root), "ptbxl_database.csv line 2", "ecg_id 1", "scp_codes")
    assert not marker.exists()


@pytest.mark.parametrize("cell", ["['NORM', 'SR']", "{'NORM': '100'}", "{'NORM': True}", "{1: 100.0}"])
def test_scp_codes_cell_that_is_no_statement_likelihood_dictionary(tmp_path, cell):
    root = small_copy(tmp_path)
    edit_database(root, 1, scp_codes=cell)
    one_line_error(lambda: open_source("ptbxl", root), "ecg_id 1", "scp_codes")


def test_statement_missing_from_the_statement_table(tmp_path):
    root = small_copy(tmp_path)
    edit_database(root, 8, scp_codes="{'IMI': 35.0, 'XYZQ': 0.0}")
    source = open_source("ptbxl", root)
    one_line_error(source.scan, "ecg_id 8", "'XYZQ'", "scp_statements.csv")


@pytest.mark.parametrize("fold", ["11", "0"])
def test_fold_outside_1_to_10(tmp_path, fold):
    root = small_copy(tmp_path)
    edit_database(root, 8, strat_fold=fold)
    one_line_error(lambda: open_source("ptbxl", root), "ptbxl_database.csv line 3", "ecg_id 8",
                   f"strat_fold {fold}")


def test_patient_id_that_is_not_a_number(tmp_path):
    root = small_copy(tmp_path)
    edit_database(root, 8, patient_id="nan")
    one_line_error(lambda: open_source("ptbxl", root), "ecg_id 8", "patient_id")


def test_infinite_patient_id_is_a_one_line_error(tmp_path):
    root = small_copy(tmp_path)
    edit_database(root, 8, patient_id="inf")
    one_line_error(lambda: open_source("ptbxl", root), "ecg_id 8", "patient_id")


def test_record_listed_twice_in_the_database_table(tmp_path):
    root = small_copy(tmp_path)
    path = root / "ptbxl_database.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, lines[1].replace("15709.0", "99999.0", 1)]) + "\n", encoding="utf-8")
    one_line_error(lambda: open_source("ptbxl", root).scan(), name(1))


@pytest.mark.parametrize("fs", [250, 1000])
def test_rate_other_than_100_or_500(synth_ptbxl, fs):
    one_line_error(lambda: open_source("ptbxl", synth_ptbxl, fs=fs), f"--fs {fs}", "100", "500")


def test_unknown_task(synth_ptbxl):
    message = one_line_error(lambda: open_source("ptbxl", synth_ptbxl, task="arrhythmia"), "'arrhythmia'")
    for task in ("superdiagnostic", "subdiagnostic", "diagnostic", "form", "rhythm", "all"):
        assert task in message


def test_selected_records_without_a_statement_of_the_task(synth_ptbxl):
    source = open_source("ptbxl", synth_ptbxl, records=[name(17), name(18)])
    one_line_error(source.scan, "superdiagnostic", "--task")
    # the same records do have rhythm statements
    rhythm = open_source("ptbxl", synth_ptbxl, records=[name(17), name(18)], task="rhythm").scan()
    assert [r.spans[0].label for r in rhythm.records] == ["AFIB;AFLT", "AFLT"]


def test_records_subset_names_records_of_the_chosen_rate(synth_ptbxl):
    source = open_source("ptbxl", synth_ptbxl, records=[name(45), name(8)])
    assert [r.name for r in source.scan().records] == [name(45), name(8)]
    one_line_error(lambda: open_source("ptbxl", synth_ptbxl, records=[name(8, 500)]), name(8, 500))


def test_labels_csv_does_not_apply(synth_ptbxl, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(f"record,label\n{name(1)},MI\n")
    one_line_error(lambda: open_source("ptbxl", synth_ptbxl, labels_csv=labels), "--labels", "ptbxl")


def test_fs_and_task_apply_to_ptbxl_only(synth_mitdb):
    one_line_error(lambda: open_source("mitdb", synth_mitdb, fs=100), "--fs applies to --db ptbxl")
    one_line_error(lambda: open_source("mitdb", synth_mitdb, task="rhythm"), "--task applies to --db ptbxl")
    assert open_source("mitdb", synth_mitdb, fs=None, task=None).database == "mitdb"  # None: not given


def test_missing_signal_file_of_a_listed_record(tmp_path):
    root = small_copy(tmp_path)
    (root / f"{name(8)}.dat").unlink()
    one_line_error(open_source("ptbxl", root).scan, "00008_lr.dat", "not found")


def test_500_hz_records_missing_when_only_100_hz_was_fetched(tmp_path):
    root = small_copy(tmp_path, rates=(100,))  # its RECORDS lists the 100 Hz records only, as after a fetch
    one_line_error(lambda: open_source("ptbxl", root, fs=500), "lists no record of ptbxl_database.csv at 500 Hz")
    (root / "RECORDS").unlink()  # without a RECORDS file every record of the table is expected
    one_line_error(open_source("ptbxl", root, fs=500).scan, f"{name(1, 500)}.hea")


def test_records_file_selects_what_was_fetched(tmp_path):
    root = small_copy(tmp_path, ids=(1, 8, 45), rates=(100,))
    kept = [name(8, 100), name(1, 100)]  # 45 left out of RECORDS
    (root / "RECORDS").write_text("".join(f"{r}\n" for r in kept))
    assert sorted(r.name for r in open_source("ptbxl", root).scan().records) == sorted(kept)


# The 13 real rows of ../shared/data/ptbxl/ptbxl_database_head.csv: ecg_id -> (patient, fold, superdiagnostic
# classes), hand-read from their scp_codes (17 and 18: AFLT/ABQRS/AFIB only, no diagnostic statement).
REAL_HEAD = {
    "1": ("15709", 3, {"NORM"}), "2": ("13243", 2, {"NORM"}), "3": ("20372", 5, {"NORM"}), "4": ("17014", 3, {"NORM"}),
    "7": ("16193", 7, {"NORM"}), "8": ("11275", 9, {"MI"}), "9": ("18792", 10, {"NORM"}), "17": ("13619", 9, set()),
    "18": ("13619", 9, set()), "26": ("13619", 9, {"STTC"}), "30": ("19053", 9, {"HYP"}),
    "45": ("18794", 1, {"CD", "HYP"}), "50": ("16961", 7, {"MI", "CD"}),
}


def test_real_database_rows_parse_with_their_quoting(shared_data, tmp_path):
    from ecgrender.sources.ptbxl import read_database, read_statements, record_classes

    real = shared_data / "ptbxl"
    if not (real / "ptbxl_database_head.csv").is_file():
        pytest.skip(f"{real} holds no PTB-XL metadata")
    (tmp_path / "ptbxl_database.csv").write_bytes((real / "ptbxl_database_head.csv").read_bytes())
    (tmp_path / "scp_statements.csv").write_bytes((real / "scp_statements.csv").read_bytes())
    statements = read_statements(tmp_path)
    assert len(statements) == 71
    entries = read_database(tmp_path, 100)
    got = {e.ecg_id: (e.patient, e.fold, record_classes(e.codes, statements, "superdiagnostic", e.ecg_id))
           for e in entries}
    assert got == REAL_HEAD
    first = entries[0]
    assert first.record == "records100/00000/00001_lr" and first.codes == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}
    assert read_database(tmp_path, 500)[0].record == "records500/00000/00001_hr"
