"""No split shares a sample with another, on the bundled demo and the real MIT-BIH records."""

from __future__ import annotations

import pytest

from ecgrender.sources import open_source
from ecgrender.splits import assign_splits
from ecgrender.windows import make_manifest, plan_windows

CLASSES = ["N", "AFIB", "B", "T"]


def _leaks(rows) -> list[tuple]:
    """Pairs of manifest rows of one record in different splits whose samples intersect."""
    by_record: dict[str, list] = {}
    for w in rows:
        by_record.setdefault(w.record, []).append(w)
    leaks = []
    for windows in by_record.values():
        windows.sort(key=lambda w: w.start)
        for i, a in enumerate(windows):
            for b in windows[i + 1:]:
                if b.start >= a.start + a.length:
                    break
                if a.split != b.split:
                    leaks.append((a.key, a.split, b.key, b.split))
    return leaks


def _plan(db, source_dir, records=None):
    source = open_source(db, source_dir, records=records)
    return plan_windows(source, source.scan(), CLASSES, window=1000, seed=0)


@pytest.mark.parametrize("split_by", ["window", "time", "patient", "record"])
def test_demo_splits_share_no_sample(split_by):
    plan = _plan("demo", None)
    result = assign_splits(plan, split_by=split_by, seed=0)
    rows = make_manifest(plan, result.splits, CLASSES, "demo", 0)
    assert _leaks(rows) == []
    assert len(rows) == len(plan.windows) - result.dropped
    assert {w.split for w in rows} == {"train", "val", "test"}
    if split_by != "time":
        assert result.dropped == 0  # overlapping windows move together; only the time gap drops windows


@pytest.mark.parametrize("split_by", ["window", "time"])
def test_real_mitdb_splits_share_no_sample(shared_data, split_by):
    plan = _plan("mitdb", shared_data / "mitdb")
    result = assign_splits(plan, split_by=split_by, seed=0)
    rows = make_manifest(plan, result.splits, CLASSES, "mitdb", 0)
    assert _leaks(rows) == []
    assert result.gaps == []  # every class in every split
    # how many windows the time gap costs: a small share of the plan
    assert result.dropped < 0.1 * len(plan.windows)
