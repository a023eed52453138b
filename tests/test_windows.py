"""Window plan: windows inside one labelled span, per-class budget and spacing, bounded overlap,
quality rejections, determinism, and the manifest rows made from a plan and its splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import wfdb
from synth import ecg_like

from ecgrender.errors import EcgError
from ecgrender.sources.base import RecordInfo, Scan, Source, Span
from ecgrender.splits import assign_splits
from ecgrender.windows import make_manifest, plan_windows, window_key
from shards.layout import SPLITS

FS = 360
MITDB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mitdb"

# record -> (patient, rhythm episodes (label, seconds)); like mitdb, episodes follow each other
EPISODES = {
    "100": ("100", [("N", 60)]),
    "106": ("106", [("N", 20), ("B", 25), ("N", 15)]),
    "119": ("119", [("N", 10), ("T", 8), ("(VT", 4), ("B", 12), ("N", 10)]),
    "201": ("201", [("AFIB", 30), ("N", 10), ("T", 6), ("N", 10)]),
    "202": ("201", [("N", 15), ("AFIB", 40)]),
}
CLASSES = ["N", "AFIB", "B", "T"]


class MemorySource(Source):
    """Records held in memory; counts how often each signal is read."""

    database = "mem"

    def __init__(self, records: list[RecordInfo], signals: dict[str, np.ndarray]):
        self.records, self.signals, self.reads = records, signals, Counter()

    def scan(self) -> Scan:
        return Scan(self.database, list(self.records), [])

    def read_signal(self, name: str) -> np.ndarray:
        self.reads[name] += 1
        return self.signals[name]


def record(name: str, patient: str, episodes: list[tuple[str, float]], seed: int = 0, n_leads: int = 2):
    """A RecordInfo with rhythm spans and its ECG-like signal in mV (quantised like mitdb, 5 uV)."""
    spans, pos = [], 0
    for label, seconds in episodes:
        spans.append(Span(pos, pos + int(seconds * FS), label))
        pos += int(seconds * FS)
    mv, _ = ecg_like([(s.label.lstrip("("), s.start, s.end) for s in spans], pos, FS, n_leads, seed)
    sig = (np.round(mv * 200) / 200).astype(np.float32)
    return RecordInfo(name, patient, ["MLII", "V1"][:n_leads], float(FS), pos, spans), sig


def memory_source(episodes=EPISODES) -> MemorySource:
    pairs = [record(name, patient, eps, seed=k) for k, (name, (patient, eps)) in enumerate(episodes.items())]
    return MemorySource([r for r, _ in pairs], {r.name: s for r, s in pairs})


def span_of(info: RecordInfo, start: int, window: int) -> Span | None:
    for span in info.spans:
        if span.start <= start and start + window <= span.end:
            return span
    return None


def test_windows_lie_inside_one_span_with_bounded_overlap_and_each_record_read_once():
    source = memory_source()
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, seed=3, max_overlap=0.25, spacing=300)
    infos = {r.name: r for r in source.records}
    assert plan.windows and set(source.reads.values()) == {1}
    for c in plan.windows:
        span = span_of(infos[c.record], c.start, 1000)
        assert span is not None and span.label == c.label, c
        assert c.patient == infos[c.record].patient and c.fs == FS
    for name in infos:
        starts = sorted(c.start for c in plan.windows if c.record == name)
        assert all(b - a >= 750 for a, b in zip(starts, starts[1:]))  # overlap <= 25 % of 1000
    assert plan.ignored_labels == {"(VT": 1}
    assert sorted(plan.records_used) == sorted(infos)


def test_default_density_is_one_window_per_window_length_of_span():
    source = memory_source()
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, seed=0)
    counts = plan.counts()
    for c in CLASSES:
        lengths = [s.end - s.start for r in source.records for s in r.spans if s.label == c and s.end - s.start >= 1000]
        expected = sum(lengths) / 1000
        assert abs(counts[c] - expected) <= max(2, 0.05 * expected), (c, counts[c], expected)
        assert plan.targets[c] == counts[c]  # clean synthetic signals: nothing rejected
    assert sum(plan.rejected.values()) == 0


def test_per_class_cap_is_honoured_and_spread_in_proportion_to_span_length():
    source = memory_source()
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, per_class=30, seed=1, max_overlap=0.9)
    assert plan.counts() == {"N": 30, "AFIB": 30, "B": 30, "T": 30}
    afib = Counter(c.record for c in plan.windows if c.label == "AFIB")
    assert afib == {"201": 13, "202": 17}  # 30 s and 40 s of AFIB: 30 * 3/7 = 12.9, 30 * 4/7 = 17.1
    # a cap above what the spans hold at the overlap bound gives every window they hold
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, per_class=10_000, seed=1, max_overlap=0.5)
    t_spans = [s for r in source.records for s in r.spans if s.label == "T"]
    assert plan.counts()["T"] == sum((s.end - s.start - 1000) // 500 + 1 for s in t_spans)


def test_class_dependent_spacing_draws_rare_classes_densely():
    source = memory_source()
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, spacing={"T": 200}, max_overlap=0.9, seed=2)
    t_samples = sum(s.end - s.start for r in source.records for s in r.spans if s.label == "T")
    n_samples = sum(s.end - s.start for r in source.records for s in r.spans if s.label == "N")
    counts = plan.counts()
    assert abs(counts["T"] - t_samples / 200) <= 2
    assert abs(counts["N"] - n_samples / 1000) <= 4  # classes without spacing keep the default density
    starts = sorted(c.start for c in plan.windows if c.record == "201" and c.label == "T")
    assert len(starts) >= 9 and min(np.diff(starts)) >= 100 and len(set(starts)) == len(starts)


def test_same_seed_gives_the_same_manifest_and_another_seed_other_offsets():
    def manifest(seed):
        source = memory_source()
        plan = plan_windows(source, source.scan(), CLASSES, window=1000, per_class=20, seed=seed)
        splits = assign_splits(plan, split_by="patient", seed=seed)
        return make_manifest(plan, splits.splits, CLASSES, "mem", seed)

    assert manifest(7) == manifest(7)
    assert {(w.record, w.start) for w in manifest(7)} != {(w.record, w.start) for w in manifest(8)}


def test_adding_a_record_leaves_the_other_records_windows_unchanged():
    small = dict(list(EPISODES.items())[:3])
    a = memory_source(small)
    b = memory_source(EPISODES)
    plan_a = plan_windows(a, a.scan(), CLASSES, seed=5)
    plan_b = plan_windows(b, b.scan(), CLASSES, seed=5)
    assert plan_a.windows == [c for c in plan_b.windows if c.record in small]


def test_nan_flat_and_saturated_windows_are_rejected_counted_and_absent():
    info, clean = record("300", "300", [("N", 120)], seed=9)
    sig = clean.copy()
    sig[5000:5400, 1] = np.nan
    sig[15000:22000, 0] = 0.0  # lead disconnected
    sig[30000:30300, 1] = 5.115  # clipped at the ADC limit: the record's maximum
    source = MemorySource([info], {"300": sig})
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, spacing=100, max_overlap=0.9, seed=0)
    assert all(plan.rejected[reason] > 0 for reason in ("nan", "flat", "saturated")), plan.rejected
    for c in plan.windows:
        end = c.start + 1000
        assert end <= 5000 or c.start >= 5400  # any NaN rejects
        assert not (c.start >= 15000 and end <= 22000)  # a lead flat over the whole window rejects
        assert min(30300, end) - max(30000, c.start) < 20  # >= 2 % of the window at the maximum rejects
    assert len(plan.windows) + sum(plan.rejected.values()) >= plan.targets["N"]
    # 19 samples (< 2 %) at the record's maximum are allowed
    light = clean.copy()
    light[40000:40019, 1] = 5.115
    source = MemorySource([info], {"300": light})
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, spacing=100, max_overlap=0.9, seed=0)
    assert plan.rejected["saturated"] == 0
    assert any(c.start <= 40000 and 40019 <= c.start + 1000 for c in plan.windows)


def test_rejected_windows_are_replaced_by_other_draws():
    info, sig = record("301", "301", [("N", 60)], seed=4)
    sig = sig.copy()
    sig[3000:9000, 0] = np.nan
    source = MemorySource([info], {"301": sig})
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, per_class=10, seed=0)
    assert plan.counts()["N"] == 10 and plan.rejected["nan"] > 0


def test_short_records_are_reported_and_a_window_longer_than_every_record_is_an_error():
    source = memory_source({"100": ("100", [("N", 60)]), "105": ("105", [("N", 2), ("T", 2)])})
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, seed=0)
    assert dict(plan.records_without_windows)["105"].startswith("too short")
    assert plan.short_spans == {"N": 1, "T": 1}
    assert source.reads["105"] == 0
    assert any("105: too short" in line for line in plan.summary_lines())
    with pytest.raises(EcgError, match=r"longer than every record.*--window"):
        plan_windows(source, source.scan(), CLASSES, window=60 * FS + 1, seed=0)


def test_bad_options_and_unknown_classes_are_one_line_errors():
    source = memory_source()
    scan = source.scan()
    with pytest.raises(EcgError, match="no record has a span labelled X,Y"):
        plan_windows(source, scan, ["X", "Y"])
    for kwargs, text in [
        ({"max_overlap": 1.0}, "max-overlap"),
        ({"per_class": 0}, "per-class"),
        ({"spacing": {"VT": 100}}, "spacing"),
        ({"spacing": {"T": 0}}, "spacing"),
        ({"window": 1}, "window"),
        ({"seed": -1}, "seed"),
    ]:
        with pytest.raises(EcgError, match=text) as err:
            plan_windows(source, scan, CLASSES, **kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(EcgError, match="repeats"):
        plan_windows(source, scan, ["N", "N"])


def test_manifest_rows_are_ordered_by_split_and_shuffled_within():
    source = memory_source()
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, seed=0)
    splits = assign_splits(plan, split_by="window", seed=0)
    rows = make_manifest(plan, splits.splits, CLASSES, "mem", seed=0)
    assert len(rows) == len(plan.windows)
    assert [w.split for w in rows] == sorted((w.split for w in rows), key=SPLITS.index)
    for w in rows:
        assert w.key == window_key(w.record, w.start) and w.length == 1000 and w.database == "mem"
        assert w.label_id == CLASSES.index(w.label)
    train = [w for w in rows if w.split == "train"]
    assert train != sorted(train, key=lambda w: (w.record, w.start))
    assert len({w.record for w in train[:20]}) >= 3  # the first shard already mixes records
    assert {(w.record, w.start): w.split for w in rows} == {
        (c.record, c.start): s for c, s in zip(plan.windows, splits.splits)
    }
    with pytest.raises(EcgError, match="split names"):
        make_manifest(plan, splits.splits[:-1], CLASSES, "mem", 0)


@pytest.mark.skipif(not MITDB.is_dir(), reason=f"real MIT-BIH records not present at {MITDB}")
def test_real_mitdb_windows_lie_in_one_rhythm_episode_and_clipped_stretches_are_rejected():
    from ecgrender.sources import open_source

    names = ["116", "201", "203"]  # 116 is clipped at +-5.12 mV in places; 201/203 change rhythm often
    source = open_source("mitdb", MITDB, records=names)
    plan = plan_windows(source, source.scan(), CLASSES, window=1000, seed=0)
    assert plan.rejected["saturated"] > 0
    for name in names:
        ann = wfdb.rdann(str(MITDB / name), "atr")
        changes = [(int(s), a.rstrip("\x00")[1:]) for s, a in zip(ann.sample, ann.aux_note) if a.startswith("(")]
        signal = wfdb.rdrecord(str(MITDB / name)).p_signal
        extremes = signal.min(axis=0), signal.max(axis=0)
        for c in (c for c in plan.windows if c.record == name):
            before = [label for s, label in changes if s <= c.start]
            inside = [label for s, label in changes if c.start < s < c.start + 1000]
            assert before and before[-1] == c.label and not inside, (name, c.start)
            x = signal[c.start : c.start + 1000]
            assert c.start + 1000 <= len(signal)
            assert ((x == extremes[0]).sum(axis=0) < 20).all() and ((x == extremes[1]).sum(axis=0) < 20).all()
