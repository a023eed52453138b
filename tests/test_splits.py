"""Splits: whole patients/records per split, stratified by class, fractions, few groups, warnings and
gaps, determinism, and the window and time modes (no sample shared between splits)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from ecgrender.errors import EcgError
from ecgrender.splits import assign_splits, read_split_file
from ecgrender.windows import Candidate


def cohort(n_patients: int = 120, seed: int = 0) -> list[Candidate]:
    """Patients with 1-2 records each; most windows N, a rare class T in about one patient in ten,
    AFIB in one in four; window counts per record vary (as record lengths do)."""
    rng = random.Random(seed)
    out = []
    for p in range(n_patients):
        for r in range(rng.choice([1, 1, 2])):
            name = f"p{p:03d}/r{r}"
            labels = ["N"] * rng.randint(5, 60)
            if p % 4 == 1:
                labels += ["AFIB"] * rng.randint(5, 30)
            if p % 10 == 3:
                labels += ["T"] * rng.randint(1, 8)
            out += [Candidate(name, f"p{p:03d}", 1000 * i, label, 360.0) for i, label in enumerate(labels)]
    return out


def shares(cands, splits, label=None) -> dict[str, float]:
    picked = [s for c, s in zip(cands, splits) if label is None or c.label == label]
    n = Counter(picked)
    return {s: n[s] / len(picked) for s in ("train", "val", "test")}


@pytest.mark.parametrize("split_by", ["patient", "record"])
def test_groups_never_straddle_splits_and_fractions_and_classes_are_honoured(split_by):
    cands = cohort()
    splits, warnings, gaps = assign_splits(cands, split_by=split_by, test_fraction=0.2, val_fraction=0.1, seed=0)
    where = defaultdict(set)
    for c, s in zip(cands, splits):
        where[c.patient if split_by == "patient" else c.record].add(s)
    assert all(len(v) == 1 for v in where.values())
    for label in (None, "N", "AFIB", "T"):
        got = shares(cands, splits, label)
        tolerance = 0.06 if label == "T" else 0.03  # T: ~12 patients of 1-8 windows
        assert abs(got["test"] - 0.2) <= tolerance and abs(got["val"] - 0.1) <= tolerance, (label, got)
    assert warnings == [] and gaps == []


def test_same_seed_same_splits_in_any_input_order_and_other_seed_differs():
    cands = cohort()
    a = assign_splits(cands, seed=3)
    shuffled = cands[:]
    random.Random(1).shuffle(shuffled)
    b = assign_splits(shuffled, seed=3)
    assert dict(zip(cands, a.splits)) == dict(zip(shuffled, b.splits))
    assert a.splits != assign_splits(cands, seed=4).splits
    for mode in ("window", "time"):
        w1 = assign_splits(cands, split_by=mode, seed=3, window=1000)
        w2 = assign_splits(shuffled, split_by=mode, seed=3, window=1000)
        assert dict(zip(cands, w1.splits)) == dict(zip(shuffled, w2.splits))


def _shared_samples(cands, splits, window):
    """Pairs of windows of one record in different splits that share a sample."""
    kept = [(c.record, c.start, s) for c, s in zip(cands, splits) if s is not None]
    return [(a, b) for a in kept for b in kept if a[0] == b[0] and a[2] != b[2] and a[1] <= b[1] < a[1] + window]


def test_window_mode_keeps_overlapping_windows_together_and_honours_class_fractions():
    # starts every 500 samples: each window shares half of itself with the next (the plan's overlap bound)
    cands = [Candidate("100", "100", 500 * i, "N" if i < 200 else "T", 360.0) for i in range(250)]
    cands += [Candidate(f"r{k}", f"r{k}", 1500 * i, "N" if i % 3 else "T", 360.0) for k in range(40) for i in range(6)]
    splits, warnings, gaps = assign_splits(cands, split_by="window", test_fraction=0.2, val_fraction=0.1, seed=0,
                                           window=1000)
    assert None not in splits  # nothing dropped: overlapping windows move together
    assert _shared_samples(cands, splits, 1000) == []
    assert len({s for c, s in zip(cands, splits) if c.record == "100" and c.label == "N"}) == 1  # one chain
    for label in ("N", "T"):
        got = shares(cands, splits, label)
        assert abs(got["test"] - 0.2) <= 0.05 and abs(got["val"] - 0.1) <= 0.05, (label, got)
    assert gaps == []


def test_time_mode_takes_each_class_of_a_record_in_time_order_with_a_one_window_gap():
    cands = [Candidate("100", "100", 700 * i, "N", 360.0) for i in range(100)]
    cands += [Candidate("100", "100", 200_000 + 1000 * i, "T", 360.0) for i in range(30)]
    splits, warnings, gaps = assign_splits(cands, split_by="time", test_fraction=0.2, val_fraction=0.1, window=1000)
    assert gaps == []
    for label in ("N", "T"):
        order = [s for c, s in sorted(zip(cands, splits), key=lambda p: p[0].start) if c.label == label and s]
        assert order == sorted(order, key=["train", "val", "test"].index)  # earliest train, then val, then test
        kept = [(c.start, s) for c, s in sorted(zip(cands, splits), key=lambda p: p[0].start) if c.label == label and s]
        for (a, sa), (b, sb) in zip(kept, kept[1:]):
            assert sa == sb or b - (a + 1000) >= 1000  # at least one window of gap between splits
    got = shares(cands, splits)
    assert abs(got["test"] - 0.2) < 0.05 and abs(got["val"] - 0.1) < 0.05
    dropped = splits.count(None)
    assert 0 < dropped < 10  # only the windows next to a boundary go


def test_window_and_time_modes_need_the_window_length():
    cands = cohort(5)
    for mode in ("window", "time"):
        with pytest.raises(EcgError, match=f"--split-by {mode} needs the window length"):
            assign_splits(cands, split_by=mode)


def test_few_groups_still_fill_test_then_val():
    three = [Candidate(f"r{g}", f"p{g}", 1000 * i, "N", 360.0) for g, n in enumerate([50, 40, 30]) for i in range(n)]
    splits, warnings, gaps = assign_splits(three, split_by="patient", seed=0)
    assert set(splits) == {"train", "val", "test"}
    assert len({s for c, s in zip(three, splits) if c.patient == "p0"}) == 1
    assert warnings == [  # 3 patients cannot make 70/10/20: the build says how far off it is
        "split val holds 33% of the windows, not 10%: whole patients of very different sizes; "
        "use more records or --split-by window"
    ]
    assert gaps == []
    two = three[:90]
    splits, warnings, gaps = assign_splits(two, split_by="patient", seed=0)
    assert set(splits) == {"train", "test"}
    assert gaps == ["split val is empty: only 2 patients to share; use more records or --split-by window"]
    assert warnings[0].startswith("split test holds 44% of the windows, not 20%")
    # a tiny second group the greedy step would put in val goes to test instead
    tiny = three[:50] + [Candidate("r9", "p9", 0, "N", 360.0)]
    splits, _, _ = assign_splits(tiny, split_by="patient", test_fraction=0.2, val_fraction=0.25, seed=0)
    assert splits.count("test") == 1 and splits.count("train") == 50


def test_a_class_missing_from_a_split_is_warned_about():
    cands = [Candidate(f"r{g}", f"p{g}", 1000 * i, "N", 360.0) for g in range(20) for i in range(20)]
    cands += [Candidate("r3", "p3", 1000 * (100 + i), "T", 360.0) for i in range(15)]  # one patient carries T
    splits, warnings, gaps = assign_splits(cands, split_by="patient", seed=0)
    assert set(splits) == {"train", "val", "test"}
    t_split = {s for c, s in zip(cands, splits) if c.label == "T"}
    assert len(t_split) == 1
    missing = [s for s in ("train", "val", "test") if s not in t_split]
    assert gaps == [
        f"class T has no window in {s}: only 1 patients carry it; use more records or --split-by window"
        for s in missing
    ]
    # zero fractions leave a split empty on purpose: no gap
    splits, warnings, gaps = assign_splits(cands, split_by="patient", test_fraction=0.0, val_fraction=0.0, seed=0)
    assert set(splits) == {"train"} and gaps == []


def test_bad_split_options_are_errors():
    cands = cohort(10)
    for kwargs, text in [
        ({"split_by": "subject"}, "split-by"),
        ({"test_fraction": 0.6, "val_fraction": 0.4}, "nothing for train"),
        ({"test_fraction": -0.1}, "test-fraction"),
        ({"val_fraction": 1.0}, "val-fraction"),
        ({"seed": -2}, "seed"),
    ]:
        with pytest.raises(EcgError, match=text):
            assign_splits(cands, **kwargs)
    with pytest.raises(EcgError, match="no windows"):
        assign_splits([])


MITDB_DS1_PER_CLASS_300 = {  # windows per (patient, class) planned from the 22 DS1 records, --per-class 300
    ("101", "N"): 16, ("106", "B"): 121, ("106", "N"): 13, ("106", "T"): 4, ("108", "N"): 16, ("109", "N"): 16,
    ("112", "N"): 16, ("114", "N"): 16, ("115", "N"): 16, ("116", "N"): 16, ("118", "N"): 16, ("119", "B"): 63,
    ("119", "N"): 10, ("119", "T"): 65, ("122", "N"): 16, ("124", "N"): 17, ("124", "T"): 6, ("201", "AFIB"): 88,
    ("201", "N"): 7, ("201", "T"): 117, ("203", "AFIB"): 212, ("203", "T"): 1, ("205", "N"): 17, ("207", "B"): 44,
    ("207", "N"): 12, ("208", "N"): 13, ("208", "T"): 95, ("209", "N"): 16, ("215", "N"): 16, ("220", "N"): 16,
    ("223", "B"): 72, ("223", "N"): 14, ("223", "T"): 12, ("230", "N"): 5,
}


def test_a_class_of_two_patients_reaches_test():
    """MIT-BIH DS1 has AFIB in two patients only (201, 203): one of them must be tested on."""
    cands = [
        Candidate(patient, patient, 1000 * i, label, 360.0)
        for (patient, label), n in MITDB_DS1_PER_CLASS_300.items()
        for i in range(n)
    ]
    splits, warnings, gaps = assign_splits(cands, split_by="patient", seed=0)
    held = defaultdict(set)
    for c, s in zip(cands, splits):
        held[c.label].add(s)
    assert held["AFIB"] == {"train", "test"}
    assert held["N"] == held["B"] == held["T"] == {"train", "val", "test"}
    assert gaps[0] == "class AFIB has no window in val: only 2 patients carry it; use more records or --split-by window"


def test_split_file_assigns_records_and_draws_val_from_train_patients(tmp_path):
    cands = cohort(30)
    records = sorted({c.record for c in cands})
    path = tmp_path / "splits.csv"
    path.write_text("record,split\n" + "".join(f"{r},{'test' if i % 4 == 0 else 'train'}\n" for i, r in enumerate(records)))
    assignment = read_split_file(path)
    splits, _, gaps = assign_splits(cands, split_by="file", assignment=assignment, val_fraction=0.1, seed=0)
    for c, s in zip(cands, splits):
        assert (s == "test") == (assignment[c.record] == "test")  # test exactly as the file says
    val_patients = {c.patient for c, s in zip(cands, splits) if s == "val"}
    assert val_patients and not val_patients & {c.patient for c, s in zip(cands, splits) if s == "train"}
    # explicit val rows are kept as they are
    path.write_text("record,split\n" + "".join(f"{r},{['train', 'val', 'test'][i % 3]}\n" for i, r in enumerate(records)))
    splits, _, _ = assign_splits(cands, split_by="file", assignment=read_split_file(path), seed=0)
    assert all(s == ["train", "val", "test"][records.index(c.record) % 3] for c, s in zip(cands, splits))


def test_the_shipped_mitdb_inter_patient_lists():
    assignment = read_split_file("mitdb-ds1-ds2")
    assert len(assignment) == 44 and sum(s == "test" for s in assignment.values()) == 22
    assert assignment["101"] == "train" and assignment["100"] == "test"
    assert not {"102", "104", "107", "217"} & set(assignment)  # the paced records are in neither list


def test_bad_split_files_are_one_line_errors(tmp_path):
    path = tmp_path / "s.csv"
    for text, error in [
        ("record,split\n100,holdout\n", "line 2: split 'holdout' is not one of train, val, test"),
        ("record,split\n100,train\n100,test\n", "line 3: record '100' is given two splits"),
        ("rec,fold\n100,train\n", "the first line must be the header 'record,split'"),
        ("record,split\n100\n", "line 2: expected .record,split."),
        ("record,split\n100,train,x\n", "line 2: expected .record,split."),
        ("record,split\n\n", "has no record,split rows"),
    ]:
        path.write_text(text)
        with pytest.raises(EcgError, match=error):
            read_split_file(path)
    with pytest.raises(EcgError, match=r"not found: .*shipped one \(mitdb-ds1-ds2\)"):
        read_split_file(tmp_path / "missing.csv")
    path.write_text("record,split\np000/r0,train\n")
    with pytest.raises(EcgError, match="record p001/r0 has windows but no row in the split file"):
        assign_splits(cohort(3), split_by="file", assignment=read_split_file(path))
