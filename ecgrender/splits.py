"""Train/val/test assignment by patient, record, window, time, or an explicit record list.

In patient and record mode every window of a group goes to one split; groups are placed greedily,
those holding the largest share of the classes first, each into the split whose class deficit it
fills best. Window mode splits each class's windows at random; time mode gives the earliest windows
of each labelled span to train, then val, then test. In every mode no two windows of different
splits share a sample: windows that would are dropped (None) and counted. The rules are documented
in docs/windows.md.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from shards.layout import SPLITS

from .errors import EcgError
from .windows import Candidate, WindowPlan, seeded_rng

# "file": --split-file (read_split_file); "fold": the database's folds (PTB-XL's strat_fold, fold_assignment)
SPLIT_BY = ("patient", "record", "window", "time", "file", "fold")
DEFAULT_VAL_FOLDS = (9,)  # PTB-XL's recommendation: folds 1-8 train, 9 val, 10 test
DEFAULT_TEST_FOLDS = (10,)
_PRIORITY = {"train": 0, "val": 1, "test": 2}  # which window stays when two of different splits overlap


class SplitResult(NamedTuple):
    """`splits[i]` is the split of window i of the plan, None where the window was dropped because it
    shared samples with a window of another split. `warnings` are one-line notes (split sizes);
    `gaps` say which split is empty or lacks a class the others have (a build refuses those unless
    told to allow them)."""

    splits: list[str | None]
    warnings: list[str]
    gaps: list[str]

    @property
    def dropped(self) -> int:
        """Windows left out because they overlapped a window of another split."""
        return self.splits.count(None)


def _fractions(test_fraction: float, val_fraction: float) -> np.ndarray:
    for name, f in (("test", test_fraction), ("val", val_fraction)):
        if not 0 <= f < 1:
            raise EcgError(f"{name} fraction {f!r} must be in [0, 1): fix --{name}-fraction")
    if test_fraction + val_fraction >= 1:
        raise EcgError(
            f"test fraction {test_fraction} + val fraction {val_fraction} leave nothing for train: lower them"
        )
    return np.array([1 - test_fraction - val_fraction, val_fraction, test_fraction])  # in SPLITS order


def _by_groups(labels, keys, classes, fractions, seed, split_by) -> tuple[dict[str, int], np.ndarray]:
    """Greedy placement of whole groups; returns (group -> split index, group x class counts)."""
    groups = sorted(set(keys))
    g_index = {g: i for i, g in enumerate(groups)}
    c_index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(groups), len(classes)))
    for key, label in zip(keys, labels):
        counts[g_index[key], c_index[label]] += 1
    totals = counts.sum(axis=0)
    share = counts / totals  # each group's share of each class
    size = share.sum(axis=1)
    order = sorted(seeded_rng(seed, "splits", split_by).permutation(len(groups)).tolist(), key=lambda g: -size[g])
    target = fractions[:, None] * totals[None, :]
    filled = np.zeros_like(target)
    placed = np.zeros(len(groups), dtype=np.int64)
    used = fractions > 0
    for g in order:
        # growth of the chi-square distance sum_c sum_s (filled - target)^2 / (target * total_c)
        deficit = (target[used] - filled[used]) / totals
        cost = np.full(3, np.inf)
        cost[used] = ((share[g] - 2 * deficit) @ share[g]) / fractions[used]
        s = int(np.argmin(cost))  # ties go to the earlier split: train, val, test
        placed[g] = s
        filled[s] += counts[g]
    for s, least_groups in ((2, 2), (1, 3)):  # test needs 2 groups in all, val 3
        if fractions[s] > 0 and len(groups) >= least_groups and not (placed == s).any():
            held = [int((placed == d).sum()) for d in range(3)]
            # a split keeps its last group, except val giving it up for an empty test
            donors = [d for d in range(3) if held[d] >= 2 or (s == 2 and d == 1 and held[d] == 1)]
            donor = max(donors, key=lambda d: (held[d], -d))
            movable = [g for g in reversed(order) if placed[g] == donor]  # smallest first
            placed[movable[0]] = s
    _cover_classes(placed, counts, fractions)
    return {g: int(placed[g_index[g]]) for g in groups}, counts


def _cover_classes(placed: np.ndarray, counts: np.ndarray, fractions: np.ndarray) -> None:
    """Move groups so that a class carried by >= 2 groups reaches test (>= 3: val too), taking the
    carrier with the fewest windows of it from the split holding most carriers, never a group that
    is the last carrier of any class in its split."""
    for s, least in ((2, 2), (1, 3)):
        if fractions[s] == 0:
            continue
        for c in np.argsort(counts.sum(axis=0)):  # rarest class first
            carriers = np.flatnonzero(counts[:, c] > 0)
            if len(carriers) < least or (placed[carriers] == s).any():
                continue
            held = np.bincount(placed[carriers], minlength=3)
            donor = int(np.argmax(held))
            if held[donor] < 2:
                continue
            for g in sorted((g for g in carriers if placed[g] == donor), key=lambda g: (counts[g, c], g)):
                others = (placed == donor) & (np.arange(len(placed)) != g)
                if all(counts[others, k].any() for k in np.flatnonzero(counts[g] > 0)):
                    placed[g] = s
                    break


def _window_counts(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int]:
    """Test and val windows out of a class's `n`: rounded fractions, at least one each when the class
    has 2 (test) or 3 (val) windows, and always one left for train."""
    least_test = 1 if test_fraction > 0 and n >= 2 else 0
    least_val = 1 if val_fraction > 0 and n >= 3 else 0
    n_test = max(math.floor(n * test_fraction + 0.5), least_test)
    n_val = max(math.floor(n * val_fraction + 0.5), least_val)
    while n_test + n_val > max(n - 1, 0):
        if n_val > least_val:
            n_val -= 1
        elif n_test > least_test:
            n_test -= 1
        elif n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    return n_test, n_val


def _overlap_clusters(candidates, window: int) -> list[str]:
    """Window mode's groups: per record, runs of windows each overlapping the one before (the windows
    that share samples, directly or through a chain). Keeping a run in one split keeps every window
    and leaks no sample; runs are short (mean 2.7 windows, at most 24 on the MIT-BIH DS1 plan)."""
    keys = [""] * len(candidates)
    order = sorted(range(len(candidates)), key=lambda i: (candidates[i].record, candidates[i].start))
    run, previous = 0, None
    for i in order:
        c = candidates[i]
        if previous is None or previous.record != c.record or c.start >= previous.start + window:
            run += 1
        keys[i] = f"{c.record}#{run}"
        previous = c
    return keys


def _earliest_first(candidates, test_fraction, val_fraction) -> list[str | None]:
    """Time mode: of each class in each record, the earliest windows go to train, the next to val, the
    latest to test, in the counts `_window_counts` gives (all episodes of the class in the record
    together, so short episodes do not each pay for two split boundaries)."""
    result: list[str | None] = [None] * len(candidates)
    spans: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(candidates):
        spans.setdefault((c.record, c.label), []).append(i)
    for members in spans.values():
        members.sort(key=lambda i: candidates[i].start)
        n_test, n_val = _window_counts(len(members), test_fraction, val_fraction)
        n_train = len(members) - n_test - n_val
        for rank, i in enumerate(members):
            result[i] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return result


def _drop_overlaps(candidates, result: list[str | None], reach: int) -> None:
    """Drop (set to None) windows so that no two windows of one record in different splits start less
    than `reach` samples apart (time mode: two windows, i.e. a gap of one window between splits). Of
    two such windows the one of the lower-priority split goes (train, then val), so val and test keep
    their planned windows as far as possible."""
    priority = {i: _PRIORITY[s] for i, s in enumerate(result) if s is not None}
    by_record: dict[str, list[int]] = {}
    for i in priority:
        by_record.setdefault(candidates[i].record, []).append(i)
    for members in by_record.values():
        members.sort(key=lambda i: candidates[i].start)
        kept: list[int] = []  # kept windows that may still be within reach of later ones (no clash among them)
        for i in members:
            start, rank = candidates[i].start, priority[i]
            kept = [k for k in kept if candidates[k].start + reach > start]
            clash = [k for k in kept if result[k] != result[i]]
            if any(priority[k] >= rank for k in clash):
                result[i] = None
                continue
            for k in clash:
                result[k] = None
            kept = [k for k in kept if result[k] is not None] + [i]


def _groups(keys, labels, classes, fractions, seed, split_by):
    """Whole groups (patients, records or overlap clusters) per split: (splits, carriers per class,
    number of groups)."""
    placed, counts = _by_groups(labels, keys, classes, fractions, seed, split_by)
    carriers = {c: int((counts[:, i] > 0).sum()) for i, c in enumerate(classes)}
    return [SPLITS[placed[k]] for k in keys], carriers, len(placed)


def _check_gaps(result, labels, classes, fractions, carriers, n_groups, group_word, advice) -> list[str]:
    """One line per split that is empty, and per class missing from a split that is not."""
    gaps = []
    nonempty = {s for s in result if s is not None}
    for s, split in enumerate(SPLITS):
        if fractions[s] > 0 and split not in nonempty:
            gaps.append(f"split {split} is empty: only {n_groups} {group_word} to share; {advice}")
    filled = {(split, label) for split, label in zip(result, labels)}
    for c in classes:
        for s, split in enumerate(SPLITS):
            if fractions[s] > 0 and split in nonempty and (split, c) not in filled:
                gaps.append(f"class {c} has no window in {split}: only {carriers[c]} {group_word} carry it; {advice}")
    return gaps


def _size_warnings(result, fractions, group_word, advice) -> list[str]:
    kept = [s for s in result if s is not None]
    got = np.array([kept.count(split) for split in SPLITS]) / max(len(kept), 1)
    return [
        f"split {split} holds {got[s]:.0%} of the windows, not {fractions[s]:.0%}: {group_word} of very "
        f"different sizes; {advice}"
        for s, split in enumerate(SPLITS)
        if split in kept and not 0.5 * fractions[s] <= got[s] <= 1.5 * fractions[s]
    ]


def fold_assignment(records, val_folds=DEFAULT_VAL_FOLDS, test_folds=DEFAULT_TEST_FOLDS) -> dict[str, str]:
    """record -> split from the database's folds (RecordInfo.fold): `test_folds` test, `val_folds` val, the rest
    train. EcgError for a record without a fold, a fold outside 1-10, a fold in both lists, or a patient whose
    records fall into two splits."""
    val, test = set(val_folds), set(test_folds)
    for fold in sorted(val | test):
        if not 1 <= fold <= 10:
            raise EcgError(f"fold {fold} is outside 1-10: fix --folds-val / --folds-test")
    if val & test:
        raise EcgError(f"fold {sorted(val & test)[0]} is in both --folds-val and --folds-test: give it to one")
    assignment: dict[str, str] = {}
    where: dict[str, tuple[str, str]] = {}  # patient -> (split, record)
    for record in records:
        if record.fold is None:
            raise EcgError(f"record {record.name} has no fold: --split-by fold needs a database with folds (ptbxl)")
        split = "test" if record.fold in test else "val" if record.fold in val else "train"
        first = where.setdefault(record.patient, (split, record.name))
        if first[0] != split:
            raise EcgError(f"patient {record.patient} has record {first[1]} in {first[0]} and {record.name} in {split}: "
                           "the folds are not patient-wise; use the database's own folds or --split-by patient")
        assignment[record.name] = split
    return assignment


SHIPPED_SPLIT_FILES = Path(__file__).resolve().parent / "data" / "splits"


def split_file_path(value: str | Path) -> Path:
    """The CSV `value` names: a file, or the name of one shipped in ecgrender/data/splits."""
    path = Path(value)
    shipped = SHIPPED_SPLIT_FILES / f"{path.name}.csv"
    if not path.is_file() and path.parent == Path(".") and shipped.is_file():
        return shipped
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in SHIPPED_SPLIT_FILES.glob("*.csv")))
        raise EcgError(f"split file {path} not found: give a CSV with record,split rows or a shipped one ({names})")
    return path


def read_split_file(path: str | Path) -> dict[str, str]:
    """record -> split from a CSV with a `record,split` header (e.g. MIT-BIH's DS1/DS2 lists).

    `path` is a file, or the name of a file shipped in ecgrender/data/splits (`mitdb-ds1-ds2`). Splits
    must be train, val or test; a record may appear once. Blank lines are ignored.
    """
    path = split_file_path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EcgError(f"split file {path} is not a readable CSV ({exc}): write record,split rows") from None
    if not lines or [v.strip().lower() for v in lines[0]] != ["record", "split"]:
        raise EcgError(f"split file {path}: the first line must be the header 'record,split'")
    rows = [(line, [v.strip() for v in values]) for line, values in enumerate(lines[1:], start=2)]
    assignment: dict[str, str] = {}
    for line, values in rows:
        if not any(values):
            continue
        if len(values) != 2 or not all(values):
            raise EcgError(f"split file {path} line {line}: expected 'record,split', got {','.join(values)!r}")
        record, split = values
        if split not in SPLITS:
            raise EcgError(f"split file {path} line {line}: split {split!r} is not one of {', '.join(SPLITS)}")
        if assignment.setdefault(record, split) != split:
            raise EcgError(f"split file {path} line {line}: record {record!r} is given two splits; keep one row")
    if not assignment:
        raise EcgError(f"split file {path} has no record,split rows")
    return assignment


def _from_file(candidates: list[Candidate], labels: list[str], classes: list[str], assignment: Mapping[str, str],
               fractions: np.ndarray, seed: int, draw_val: bool = True) -> tuple[list[str | None], dict[str, int], int]:
    """File mode: each window goes where the file puts its record; when the file names no val record and
    `draw_val`, val is drawn from the train records by patient (--val-fraction of the windows). Fold mode does
    not draw: its folds alone decide."""
    missing = sorted({c.record for c in candidates} - set(assignment))
    if missing:
        raise EcgError(f"record {missing[0]} has windows but no row in the split file: add it, or leave it out "
                       f"with --records")
    result: list[str | None] = [assignment[c.record] for c in candidates]
    if draw_val and "val" not in assignment.values() and fractions[1] > 0:
        train = [i for i, s in enumerate(result) if s == "train"]
        share = min(fractions[1] / (fractions[0] + fractions[1]), 0.9)
        placed, _ = _by_groups([labels[i] for i in train], [candidates[i].patient for i in train], classes,
                               np.array([1 - share, share, 0.0]), seed, "file")
        for i in train:
            result[i] = SPLITS[placed[candidates[i].patient]]
    carriers = {c: len({w.record for w, label in zip(candidates, labels) if label == c}) for c in classes}
    return result, carriers, len({w.record for w in candidates})


def _length(window: int | None, split_by: str) -> int:
    if window is None:
        raise EcgError(f"--split-by {split_by} needs the window length to keep splits from sharing samples")
    return window


def assign_splits(
    plan_or_candidates: WindowPlan | Sequence[Candidate],
    split_by: str = "patient",
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    window: int | None = None,
    assignment: Mapping[str, str] | None = None,
) -> SplitResult:
    """Split name per window (aligned with the plan's windows; None for a dropped window), warnings and
    gaps. Window and time mode need `window` (samples) with a list of candidates; a plan carries it.
    File mode needs `assignment` (record -> split, from `read_split_file`). Deterministic: the
    same windows and seed give the same result in any input order."""
    if split_by not in SPLIT_BY:
        raise EcgError(f"--split-by {split_by!r} is not one of {', '.join(SPLIT_BY)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EcgError(f"seed {seed!r} must be a non-negative integer: fix --seed")
    fractions = _fractions(test_fraction, val_fraction)
    if isinstance(plan_or_candidates, WindowPlan):
        plan, candidates, window = plan_or_candidates, list(plan_or_candidates.windows), plan_or_candidates.window
    else:
        plan, candidates = None, list(plan_or_candidates)
    if not candidates:
        raise EcgError("no windows to split: the window plan is empty")
    labels = [c.label for c in candidates]
    present = set(labels)
    order = (plan.classes if plan else None) or sorted(present)
    classes = [c for c in order if c in present] + sorted(present - set(order))
    if split_by in ("patient", "record"):
        keys = [c.patient if split_by == "patient" else c.record for c in candidates]
        result, carriers, n_groups = _groups(keys, labels, classes, fractions, seed, split_by)
        group_word, advice = f"{split_by}s", "use more records or --split-by window"
    elif split_by in ("file", "fold"):
        if assignment is None:
            raise EcgError(f"--split-by {split_by} needs a record -> split assignment (--split-file CSV, or folds)")
        result, carriers, n_groups = _from_file(candidates, labels, classes, assignment, fractions, seed,
                                                draw_val=split_by == "file")
        group_word = "records"
        advice = "change the split file" if split_by == "file" else "choose other --folds-val / --folds-test"
    elif split_by == "window":
        keys = _overlap_clusters(candidates, _length(window, split_by))
        result, carriers, n_groups = _groups(keys, labels, classes, fractions, seed, split_by)
        group_word, advice = "overlap clusters", "draw more windows of it (--per-class, --spacing)"
    else:
        result = _earliest_first(candidates, test_fraction, val_fraction)
        _drop_overlaps(candidates, result, 2 * _length(window, split_by))
        group_word, advice = "windows", "draw more windows of it (--per-class, --spacing)"
        carriers = {c: sum(1 for s, lab in zip(result, labels) if s and lab == c) for c in classes}
        n_groups = sum(1 for s in result if s)
    gaps = _check_gaps(result, labels, classes, fractions, carriers, n_groups, group_word, advice)
    word = group_word if split_by == "time" else f"whole {group_word}"
    sizes = [] if split_by == "fold" else _size_warnings(result, fractions, word, advice)  # folds fix the sizes
    return SplitResult(result, sizes, gaps)
