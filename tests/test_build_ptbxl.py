"""`ecgrender build --db ptbxl`: multi-label datasets end to end (manifest targets, card, .hot members, refecg.h5
y), --split-by fold and its folds, --fs, --task, --classes, --resample, and what verify catches."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tarfile
from collections import Counter

import numpy as np
import pytest
import synth
from buildutil import ecgrender, error_lines, refused, tree_bytes
from shards_helpers import edit_card, reseal_card

from shards.layout import SPLITS
from shards.reader import iter_samples
from shards.refecg import read_refecg

CLASSES = ["NORM", "MI", "STTC", "CD", "HYP"]
# ecg_id -> multi-hot superdiagnostic targets in CLASSES order (the classes of PTBXL_RECORDS' comments);
# 17 and 18 have no diagnostic statement.
TARGETS = {
    1: "10000", 2: "10000", 3: "10000", 4: "10000", 8: "01000", 26: "00100", 30: "00001", 45: "00011",
    50: "01010", 61: "01100", 62: "00010", 63: "00100", 64: "00011", 65: "10000", 66: "01000", 67: "10000",
}
FOLD_SPLIT = {**dict.fromkeys(range(1, 9), "train"), 9: "val", 10: "test"}  # PTB-XL's recommended split


def name(ecg_id: int, fs: int = 100) -> str:
    return synth.ptbxl_record_path(ecg_id, fs)


def ecg_id(record: str) -> int:
    return int(record.rsplit("/", 1)[1][:5])


def fold(record: str) -> int:
    return synth.PTBXL_RECORDS[ecg_id(record)][2]


def build(source, out, *options):
    return ecgrender("build", "--db", "ptbxl", "--source", source, "--out", out, "--jobs", 1, *options)


def built(source, out, *options) -> tuple[dict, list[dict], str]:
    result = build(source, out, *options)
    assert result.exit_code == 0, result.output + result.stderr
    return card_of(out), manifest_of(out), result.output


def card_of(out) -> dict:
    return json.loads((out / "dataset.json").read_text())


def manifest_of(out) -> list[dict]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def fold_split(record: str, val=(9,), test=(10,)) -> str:
    f = fold(record)
    return "test" if f in test else "val" if f in val else "train"


@pytest.fixture(scope="module")
def fold_dataset(synth_ptbxl, tmp_path_factory):
    """The superdiagnostic dataset of the synthetic tree at 100 Hz, split by fold (read-only)."""
    out = tmp_path_factory.mktemp("ptbxl-fold") / "dataset"
    result = build(synth_ptbxl, out, "--split-by", "fold", "--allow-missing-classes")
    assert result.exit_code == 0, result.output + result.stderr
    return out, result.output


@pytest.fixture
def dataset_copy(fold_dataset, tmp_path):
    out = tmp_path / "dataset"
    shutil.copytree(fold_dataset[0], out)
    return out


# --- the default build: superdiagnostic, 100 Hz, split by fold -----------------------------------------------


def test_fold_build_rows_are_whole_records_with_hand_computed_targets(fold_dataset):
    out, _ = fold_dataset
    rows = manifest_of(out)
    assert list(rows[0]) == ["key", "database", "record", "patient", "start", "length", "fs", "label", "label_id",
                             "split", "targets"]
    assert sorted(ecg_id(r["record"]) for r in rows) == sorted(TARGETS)  # one window per record, 17/18 left out
    for row in rows:
        k = ecg_id(row["record"])
        assert row["record"] == name(k) and row["database"] == "ptbxl"
        assert (row["start"], row["length"], row["fs"]) == ("0", "1000", "100.0")
        assert row["targets"] == TARGETS[k], k
        assert row["label"] == ";".join(c for c, t in zip(CLASSES, TARGETS[k]) if t == "1")
        assert row["label_id"] == "-1"
        assert row["patient"] == str(int(synth.PTBXL_RECORDS[k][0]))
        assert row["split"] == FOLD_SPLIT[fold(row["record"])], k
    assert [r["split"] for r in rows] == sorted((r["split"] for r in rows), key=SPLITS.index)  # train, val, test
    patients: dict[str, set] = {}
    for row in rows:
        patients.setdefault(row["patient"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in patients.values())


def test_fold_build_card(fold_dataset):
    out, output = fold_dataset
    card = card_of(out)
    assert card["label_type"] == "multi-label" and card["split_by"] == "fold"
    assert card["classes"] == CLASSES
    expected = {s: dict.fromkeys(CLASSES, 0) for s in SPLITS}
    for k, targets in TARGETS.items():
        for c, t in zip(CLASSES, targets):
            expected[FOLD_SPLIT[synth.PTBXL_RECORDS[k][2]]][c] += t == "1"
    assert card["counts"] == expected
    assert expected["train"] == {"NORM": 4, "MI": 3, "STTC": 2, "CD": 3, "HYP": 1}  # by hand
    assert card["split_windows"] == {"train": 10, "val": 3, "test": 3} and card["total"] == 16
    assert card["window"] == {"length": 1000, "fs": 100.0}
    assert card["leads"] == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    assert card["n_leads"] == 12
    source = card["source"]
    assert (source["database"], source["version"], source["records"]) == ("ptbxl", "1.0.3", 16)
    assert (source["task"], source["fs"]) == ("superdiagnostic", 100)
    assert source["records_left_out"] == {"no superdiagnostic statement": 2}
    assert "resampled_to_hz" not in source
    assert {"ptbxl_database.csv", "scp_statements.csv", f"{name(1)}.hea", f"{name(1)}.dat"} <= set(source["files"])
    assert "left out 2 record(s): no superdiagnostic statement" in output


def test_fold_build_verifies(fold_dataset):
    out, _ = fold_dataset
    result = ecgrender("verify", out)
    assert result.exit_code == 0, result.output + result.stderr
    assert "OK" in result.output


def test_every_shard_sample_has_a_hot_member_equal_to_its_row(fold_dataset):
    out, _ = fold_dataset
    rows = {r["key"]: r for r in manifest_of(out)}
    seen = []
    for split in SPLITS:
        for key, image, target, row in iter_samples(out, split):
            assert isinstance(target, np.ndarray) and target.dtype == np.uint8 and target.shape == (5,)
            assert "".join(map(str, target.tolist())) == rows[key]["targets"]
            assert row["targets"] == rows[key]["targets"] and row["label_id"] == -1 and row["split"] == split
            assert image.dtype == np.uint8 and image.ndim == 2
            seen.append(key)
    assert sorted(seen) == sorted(rows)
    with tarfile.open(out / "images" / "val-000000.tar") as tar:
        assert {m.name.rsplit(".", 1)[1] for m in tar} == {"hot", "json", "png"}  # no .cls


def test_refecg_y_is_the_targets_of_each_split(fold_dataset):
    out, _ = fold_dataset
    rows = manifest_of(out)
    for split in SPLITS:
        x, y, keys = read_refecg(out / "refecg.h5", split)
        mine = [r for r in rows if r["split"] == split]
        assert keys == [r["key"] for r in mine]
        assert y.shape == (len(mine), 5) and x.shape == (len(mine), 1000)
        np.testing.assert_array_equal(y, [[int(t) for t in r["targets"]] for r in mine])


def test_missing_classes_in_a_split_are_refused_without_the_flag(synth_ptbxl, tmp_path):
    out = tmp_path / "dataset"
    line = refused(build(synth_ptbxl, out, "--split-by", "fold"), "has no window in", "--allow-missing-classes")
    assert "class" in line
    assert not (out / "dataset.json").exists()


def test_rerun_with_the_same_options_has_nothing_to_do(synth_ptbxl, dataset_copy):
    before = tree_bytes(dataset_copy)
    result = build(synth_ptbxl, dataset_copy, "--split-by", "fold", "--allow-missing-classes")
    assert result.exit_code == 0, result.output + result.stderr
    assert "complete (same settings): nothing to do" in result.output
    assert tree_bytes(dataset_copy) == before


def test_rerun_with_another_task_is_refused(synth_ptbxl, dataset_copy):
    before = tree_bytes(dataset_copy)
    refused(build(synth_ptbxl, dataset_copy, "--split-by", "fold", "--allow-missing-classes", "--task", "rhythm"),
            "other settings")
    assert tree_bytes(dataset_copy) == before


# --- folds ----------------------------------------------------------------------------------------------------


def test_folds_val_and_test_move_those_folds(synth_ptbxl, tmp_path):
    card, rows, _ = built(synth_ptbxl, tmp_path / "dataset", "--split-by", "fold", "--folds-val", "2",
                          "--folds-test", "1", "--allow-missing-classes")
    assert {r["record"]: r["split"] for r in rows} == {
        name(k): {1: "test", 2: "val"}.get(synth.PTBXL_RECORDS[k][2], "train") for k in TARGETS}
    assert {ecg_id(r["record"]) for r in rows if r["split"] == "val"} == {2, 66}
    assert {ecg_id(r["record"]) for r in rows if r["split"] == "test"} == {4, 45}
    assert card["split_windows"] == {"train": 12, "val": 2, "test": 2}
    assert card["build"]["folds_val"] == [2] and card["build"]["folds_test"] == [1]


def test_several_folds_per_split(synth_ptbxl, tmp_path):
    _, rows, _ = built(synth_ptbxl, tmp_path / "dataset", "--split-by", "fold", "--folds-val", "8,9",
                       "--folds-test", "10,1", "--allow-missing-classes")
    for row in rows:
        assert row["split"] == fold_split(row["record"], val=(8, 9), test=(10, 1)), row["record"]


@pytest.mark.parametrize(("options", "expected"), [
    (("--folds-test", "11"), "fold 11 is outside 1-10"),
    (("--folds-val", "0"), "fold 0 is outside 1-10"),
    (("--folds-val", "9", "--folds-test", "9"), "fold 9 is in both"),
])
def test_bad_folds_are_one_line_errors(synth_ptbxl, tmp_path, options, expected):
    out = tmp_path / "dataset"
    refused(build(synth_ptbxl, out, "--split-by", "fold", "--allow-missing-classes", *options), expected)
    assert not (out / "dataset.json").exists()


def test_folds_without_split_by_fold_are_refused(synth_ptbxl, tmp_path):
    out = tmp_path / "dataset"
    refused(build(synth_ptbxl, out, "--folds-val", "2"), "--split-by fold")
    refused(build(synth_ptbxl, out, "--split-by", "patient", "--folds-test", "1"), "--split-by fold")
    assert not (out / "dataset.json").exists()


def test_split_by_fold_needs_a_database_with_folds(synth_mitdb, tmp_path):
    out = tmp_path / "dataset"
    result = ecgrender("build", "--db", "mitdb", "--source", synth_mitdb, "--records", "100", "--out", out,
                       "--jobs", 1, "--split-by", "fold")
    refused(result, "needs a database with folds", "record 100")
    assert not (out / "dataset.json").exists()


def test_patient_with_records_in_folds_of_two_splits_is_refused(tmp_path):
    records = {k: synth.PTBXL_RECORDS[k] for k in (1, 8, 26, 30)}
    patient, codes, _ = records[26]
    records[26] = (patient, codes, 4)  # 13619's record 26 in a train fold ...
    records[17] = synth.PTBXL_RECORDS[17]  # ... and 17 in fold 9 (val): with task rhythm both are used
    source = synth.write_ptbxl(tmp_path / "ptbxl", records, rates=(100,))
    out = tmp_path / "dataset"
    line = refused(build(source, out, "--split-by", "fold", "--task", "rhythm", "--allow-missing-classes"),
                   "patient 13619", name(26), name(17))
    assert "train" in line and "val" in line
    assert not (out / "dataset.json").exists()
    # the same folds split by patient build (one patient, one split)
    card, rows, _ = built(source, tmp_path / "by-patient", "--split-by", "patient", "--task", "rhythm",
                          "--allow-missing-classes")
    assert len({r["split"] for r in rows if r["patient"] == "13619"}) == 1 and card["split_by"] == "patient"


def test_no_record_in_a_val_fold_moves_no_train_fold_record(synth_ptbxl, tmp_path):
    chosen = [name(k) for k in (1, 2, 3, 4, 66, 65)]  # folds 3, 2, 5, 1, 2 and 10: none in fold 9
    result = build(synth_ptbxl, tmp_path / "dataset", "--split-by", "fold", "--allow-missing-classes",
                   "--records", ",".join(chosen))
    if result.exit_code != 0:  # refusing the build is as good as keeping the folds
        refused(result, "val")
        return
    rows = manifest_of(tmp_path / "dataset")
    assert {r["record"]: r["split"] for r in rows} == {r: fold_split(r) for r in chosen}


# --- rates, windows, resampling --------------------------------------------------------------------------------

SUBSET_500 = ",".join(name(k, 500) for k in (1, 8, 65))  # folds 3, 9, 10: one record per split


def test_500_hz_window_of_the_whole_record(synth_ptbxl, tmp_path):
    card, rows, _ = built(synth_ptbxl, tmp_path / "dataset", "--fs", "500", "--window", "5000", "--split-by", "fold",
                          "--records", SUBSET_500, "--allow-missing-classes")
    assert sorted((r["record"], r["start"], r["length"], r["fs"], r["split"]) for r in rows) == [
        (name(1, 500), "0", "5000", "500.0", "train"), (name(8, 500), "0", "5000", "500.0", "val"),
        (name(65, 500), "0", "5000", "500.0", "test")]
    assert card["window"] == {"length": 5000, "fs": 500.0} and card["source"]["fs"] == 500
    assert card["classes"] == ["NORM", "MI"]  # STTC, CD, HYP have no window in these records
    assert {r["record"]: r["targets"] for r in rows} == {name(1, 500): "10", name(8, 500): "01", name(65, 500): "10"}


def test_500_hz_shorter_windows_are_several_per_record(synth_ptbxl, tmp_path):
    out = tmp_path / "dataset"
    _, rows, _ = built(synth_ptbxl, out, "--fs", "500", "--window", "1000", "--split-by", "fold",
                       "--records", SUBSET_500, "--allow-missing-classes")
    per_record = Counter(r["record"] for r in rows)
    assert set(per_record) == {name(k, 500) for k in (1, 8, 65)}
    assert all(n > 1 for n in per_record.values()), per_record
    for record in per_record:
        starts = sorted(int(r["start"]) for r in rows if r["record"] == record)
        assert all(0 <= s and s + 1000 <= 5000 for s in starts)
        assert all(b - a >= 500 for a, b in zip(starts, starts[1:]))  # --max-overlap 0.5
    assert {r["length"] for r in rows} == {"1000"}
    assert {r["record"]: r["split"] for r in rows} == {r: fold_split(r) for r in per_record}
    assert ecgrender("verify", out).exit_code == 0


def test_resample_500_hz_records_to_250_hz(synth_ptbxl, tmp_path):
    out = tmp_path / "dataset"
    card, rows, _ = built(synth_ptbxl, out, "--fs", "500", "--resample", "250", "--window", "500", "--split-by",
                          "fold", "--records", SUBSET_500, "--allow-missing-classes")
    assert {r["fs"] for r in rows} == {"250.0"} and {r["length"] for r in rows} == {"500"}
    assert all(int(r["start"]) + 500 <= 2500 for r in rows)  # 5000 samples at 500 Hz are 2500 at 250 Hz
    assert card["window"] == {"length": 500, "fs": 250.0}
    assert card["source"]["fs"] == 500 and card["source"]["resampled_to_hz"] == 250.0
    x, _, _ = read_refecg(out / "refecg.h5", "train")
    assert x.shape[1] == 500
    assert ecgrender("verify", out).exit_code == 0


# --- tasks and classes -----------------------------------------------------------------------------------------


def test_rhythm_task(synth_ptbxl, tmp_path):
    card, rows, output = built(synth_ptbxl, tmp_path / "dataset", "--task", "rhythm", "--split-by", "fold",
                               "--allow-missing-classes")
    assert card["classes"] == ["AFIB", "AFLT", "SBRAD", "SR"]  # the rhythm statements present, sorted
    assert card["source"]["task"] == "rhythm" and "records_left_out" not in card["source"]
    expected = {17: "1100", 18: "0100", 2: "0010"}
    assert {ecg_id(r["record"]): r["targets"] for r in rows} == {
        k: expected.get(k, "0001") for k in synth.PTBXL_RECORDS}
    assert {r["record"]: r["label"] for r in rows}[name(17)] == "AFIB;AFLT"
    assert card["counts"]["val"] == {"AFIB": 1, "AFLT": 2, "SBRAD": 0, "SR": 3}  # 17, 18, 26 and 67, 8 in fold 9
    assert "no windows for class BIGU" in output


def test_classes_restrict_the_rows_and_leave_out_records_without_them(synth_ptbxl, tmp_path):
    card, rows, output = built(synth_ptbxl, tmp_path / "dataset", "--classes", "MI,NORM", "--split-by", "fold",
                               "--allow-missing-classes")
    assert card["classes"] == ["MI", "NORM"]
    mi, norm = {8, 50, 61, 66}, {1, 2, 3, 4, 65, 67}
    assert {ecg_id(r["record"]): (r["label"], r["targets"]) for r in rows} == {
        **dict.fromkeys(mi, ("MI", "10")), **dict.fromkeys(norm, ("NORM", "01"))}  # 50 and 61 keep only MI
    assert "left out 6 record(s): none of the classes MI,NORM" in output
    assert card["split_windows"] == {"train": 7, "val": 2, "test": 1}
    assert card["counts"] == {"train": {"MI": 3, "NORM": 4}, "val": {"MI": 1, "NORM": 1},
                              "test": {"MI": 0, "NORM": 1}}


def test_unknown_class_is_refused(synth_ptbxl, tmp_path):
    out = tmp_path / "dataset"
    refused(build(synth_ptbxl, out, "--classes", "MI,AFIB", "--split-by", "fold"), "'AFIB'", "--classes")
    assert not (out / "dataset.json").exists()


def test_repeated_class_is_refused_before_anything_is_written(synth_ptbxl, tmp_path):
    out = tmp_path / "dataset"
    refused(build(synth_ptbxl, out, "--classes", "MI,MI,NORM", "--split-by", "fold", "--allow-missing-classes"),
            "--classes")
    assert not (out / "manifest.csv").exists() and not (out / "dataset.json").exists()


@pytest.mark.parametrize("options", [("--per-class", "5"), ("--spacing", "NORM=500")])
def test_per_class_budgets_are_refused_for_ptbxl(synth_ptbxl, tmp_path, options):
    out = tmp_path / "dataset"
    refused(build(synth_ptbxl, out, *options), "multi-label")
    assert not (out / "dataset.json").exists()


def test_labels_and_fs_options_are_refused(synth_ptbxl, synth_mitdb, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(f"{name(1)},MI\n")
    refused(build(synth_ptbxl, tmp_path / "a", "--labels", labels), "--labels", "ptbxl")
    refused(build(synth_ptbxl, tmp_path / "b", "--fs", "250"), "--fs 250")
    refused(build(synth_ptbxl, tmp_path / "c", "--task", "beats"), "'beats'")
    result = ecgrender("build", "--db", "mitdb", "--source", synth_mitdb, "--out", tmp_path / "d", "--fs", "100")
    refused(result, "--fs applies to --db ptbxl")


# --- verify on multi-label damage -----------------------------------------------------------------------------


def edit_manifest(out, change) -> None:
    """Rewrite manifest.csv with `change(rows)` applied (same columns, same line ending)."""
    rows = manifest_of(out)
    change(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (out / "manifest.csv").write_text(buffer.getvalue())


def replace_member(shard, member_name: str, data: bytes) -> None:
    """Replace the content of one member of a tar, keeping the others and the member order."""
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    assert member_name in [m.name for m, _ in members]
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, content in members:
            if member.name == member_name:
                content = data
                member.size = len(data)
            tar.addfile(member, io.BytesIO(content))


def verify_errors(out) -> list[str]:
    result = ecgrender("verify", out)
    assert result.exit_code == 1, result.output + result.stderr
    return error_lines(result.stderr)


def test_verify_catches_targets_that_disagree_with_the_label(dataset_copy):
    edit_manifest(dataset_copy, lambda rows: rows[0].update(targets="11111"))
    reseal_card(dataset_copy)
    errors = verify_errors(dataset_copy)
    assert any("manifest.csv line 2" in e and "disagrees with targets" in e for e in errors), errors


def test_verify_catches_a_manifest_row_relabelled_consistently(dataset_copy):
    rows = manifest_of(dataset_copy)
    first = rows[0]
    other = "10000" if first["targets"] != "10000" else "01000"

    def relabel(rows):
        rows[0].update(targets=other, label=CLASSES[other.index("1")])

    edit_manifest(dataset_copy, relabel)
    reseal_card(dataset_copy)

    def recount(card):
        for c, (was, now) in zip(CLASSES, zip(first["targets"], other)):
            card["counts"][first["split"]][c] += int(now) - int(was)

    edit_card(dataset_copy, recount)
    errors = verify_errors(dataset_copy)
    assert any(e.startswith(f"error: images/{first['split']}-000000.tar: sample {first['key']}") for e in errors), errors
    assert any("refecg.h5" in e and first["key"] in e for e in errors), errors
    assert not any("manifest.csv line" in e or "counts" in e for e in errors), errors  # the manifest itself is sound


def test_verify_catches_a_hot_member_that_disagrees_with_its_row(dataset_copy):
    row = next(r for r in manifest_of(dataset_copy) if r["split"] == "test")
    flipped = "".join("1" if t == "0" else "0" for t in row["targets"])
    shard = dataset_copy / "images" / "test-000000.tar"
    replace_member(shard, f"{row['key']}.hot", flipped.encode())
    reseal_card(dataset_copy)
    errors = verify_errors(dataset_copy)
    assert errors == [f"error: images/test-000000.tar: sample {row['key']} has a label or .json row that differs "
                      "from manifest.csv"]


def test_verify_catches_a_hot_member_that_is_not_multi_hot(dataset_copy):
    row = next(r for r in manifest_of(dataset_copy) if r["split"] == "val")
    replace_member(dataset_copy / "images" / "val-000000.tar", f"{row['key']}.hot", b"0120x")
    reseal_card(dataset_copy)
    errors = verify_errors(dataset_copy)
    assert any("images/val-000000.tar" in e and row["key"] in e and ".hot" in e for e in errors), errors


def test_verify_catches_a_sample_with_a_cls_instead_of_a_hot(dataset_copy):
    row = next(r for r in manifest_of(dataset_copy) if r["split"] == "val")
    shard = dataset_copy / "images" / "val-000000.tar"
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, content in members:
            if member.name == f"{row['key']}.hot":
                member.name, content = f"{row['key']}.cls", b"0"
                member.size = 1
            tar.addfile(member, io.BytesIO(content))
    reseal_card(dataset_copy)
    errors = verify_errors(dataset_copy)
    assert any("images/val-000000.tar" in e and row["key"] in e for e in errors), errors


def test_manifest_rebuild_with_another_task_is_refused(synth_ptbxl, tmp_path):
    first = tmp_path / "rhythm"
    result = ecgrender("build", "--db", "ptbxl", "--source", synth_ptbxl, "--task", "rhythm", "--split-by", "fold",
                       "--allow-missing-classes", "--jobs", 1, "--out", first)
    assert result.exit_code == 0, result.output
    again = ecgrender("build", "--db", "ptbxl", "--source", synth_ptbxl, "--manifest", first / "manifest.csv",
                      "--allow-missing-classes", "--jobs", 1, "--out", tmp_path / "again")
    refused(again, "was built with --task rhythm", "this build has --task superdiagnostic")
    assert not (tmp_path / "again" / "dataset.json").exists()
