"""Window plan: aligned random windows inside labelled spans, a per-class budget, quality checks.

A window is `window` consecutive samples at the same offset in every lead of a record, lying
entirely inside one labelled span. The rules (offsets, budget, spacing, overlap, quality checks)
are documented in docs/windows.md; `make_manifest` turns a plan and its splits into manifest rows.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from shards.layout import SPLITS
from shards.manifest import MULTI_LABEL_ID, SEPARATOR, Window, multi_hot

from .errors import EcgError
from .sources.base import RecordInfo, Scan, Source, Span

FLAT_PTP = 0.01  # a lead whose peak-to-peak over the window is below this (physical units, mV) is flat
SATURATION_FRACTION = 0.02  # share of a window's samples sitting at the lead's record min or max
REFILL_ROUNDS = 4  # rounds of replacement draws for windows rejected by the quality checks
REFILL_TRIES = 20  # random tries per missing window in one refill round
REASONS = ("nan", "flat", "saturated")
_CHUNK_VALUES = 1 << 21  # float32 values checked at once (8 MB)


def window_key(record: str, start: int) -> str:
    """Stable sample key: record path with '/' and '.' -> '-', then the start sample (webdataset keys
    may hold no dots)."""
    return f"{record.replace('/', '-').replace('.', '-')}_{start:09d}"


def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on `seed` and `names` (e.g. a record name), never on call order."""
    words: list[int] = []
    for name in names:
        digest = hashlib.sha256(name.encode()).digest()
        words.extend(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.default_rng(np.random.SeedSequence([seed, *words]))


@dataclass(frozen=True)
class Candidate:
    """A planned window (before splits): `start` is the first sample, the same in every lead."""

    record: str
    patient: str
    start: int
    label: str
    fs: float


@dataclass
class WindowPlan:
    """The windows drawn from a scan, with everything a build summary reports about them."""

    database: str
    classes: list[str]
    window: int
    seed: int
    windows: list[Candidate]  # sorted by (record, start)
    targets: dict[str, int]  # windows aimed at per class after budget and spacing
    rejected: dict[str, int]  # quality reason -> windows rejected (refill draws included)
    records_used: list[str]
    records_without_windows: list[tuple[str, str]]  # (record, why)
    ignored_labels: dict[str, int] = field(default_factory=dict)  # label not in classes -> spans
    short_spans: dict[str, int] = field(default_factory=dict)  # class -> spans shorter than the window

    def counts(self) -> dict[str, int]:
        """Windows per class, in class order."""
        got = Counter(c.label for c in self.windows)
        return {c: got.get(c, 0) for c in self.classes}

    def summary_lines(self) -> list[str]:
        """Human-readable summary: windows per class, rejections, records without windows, skips."""
        counts = self.counts()
        lines = [
            f"windows: {len(self.windows)} from {len(self.records_used)} records "
            f"(window {self.window} samples, seed {self.seed})"
        ]
        for c in self.classes:
            lines.append(f"  {c}: {counts[c]} windows (aimed at {self.targets.get(c, 0)})")
        lines.append("rejected by quality checks: " + ", ".join(f"{r} {self.rejected.get(r, 0)}" for r in REASONS))
        if self.records_without_windows:
            shown = "; ".join(f"{name}: {why}" for name, why in self.records_without_windows[:10])
            more = len(self.records_without_windows) - 10
            lines.append(
                f"records without windows: {len(self.records_without_windows)} ({shown}"
                + (f"; and {more} more)" if more > 0 else ")")
            )
        if self.ignored_labels:
            labels = ", ".join(f"{k} {v}" for k, v in sorted(self.ignored_labels.items(), key=lambda kv: (-kv[1], kv[0])))
            lines.append(f"spans of other labels ignored: {labels}")
        if self.short_spans:
            lines.append(
                "spans shorter than the window skipped: " + ", ".join(f"{c} {n}" for c, n in self.short_spans.items())
            )
        lines += [f"warning: class {c} has no windows" for c in self.classes if counts[c] == 0]
        return lines


@dataclass
class _SpanJob:
    record: RecordInfo
    index: int  # position of the span among the record's spans (names its random stream)
    span: Span
    capacity: int  # most windows the span holds at the overlap bound
    target: int = 0


def _check_args(classes, window, per_class, seed, max_overlap, spacing) -> dict[str, float | None]:
    """Validate the options; returns the mean start distance per class (None: no density limit)."""
    if not classes or len(set(classes)) != len(classes):
        raise EcgError(f"classes {list(classes)} must be a non-empty list without repeats: fix --classes")
    if not isinstance(window, (int, np.integer)) or window < 2:
        raise EcgError(f"window {window!r} must be an integer of at least 2 samples: fix --window")
    if per_class is not None and (not isinstance(per_class, (int, np.integer)) or per_class < 1):
        raise EcgError(f"per-class budget {per_class!r} must be a positive integer: fix --per-class")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EcgError(f"seed {seed!r} must be a non-negative integer: fix --seed")
    if not 0 <= max_overlap < 1:
        raise EcgError(f"max overlap {max_overlap!r} must be in [0, 1): fix --max-overlap")
    if spacing is None:
        spacing = {}
    elif not isinstance(spacing, Mapping):
        spacing = {c: spacing for c in classes}
    unknown = sorted(set(spacing) - set(classes))
    if unknown:
        raise EcgError(f"spacing names classes {unknown} that are not in {list(classes)}: fix --spacing")
    for c, s in spacing.items():
        if not isinstance(s, (int, float, np.integer, np.floating)) or not s > 0:
            raise EcgError(f"spacing {s!r} for class {c} must be a positive number of samples: fix --spacing")
    default = None if per_class is not None else float(window)
    return {c: float(spacing[c]) if c in spacing else default for c in classes}


def _check_spans(record: RecordInfo, spans: list[Span]) -> None:
    previous_end = 0
    for span in sorted(spans, key=lambda s: s.start):
        if not 0 <= span.start < span.end <= record.n_samples:
            raise EcgError(
                f"record {record.name}: span {span} lies outside samples [0, {record.n_samples}); fix the adapter or labels"
            )
        if span.start < previous_end:
            raise EcgError(f"record {record.name}: labelled spans overlap at sample {span.start}; fix the adapter or labels")
        previous_end = span.end


def _allocate(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split `total` into integers proportional to `weights`, none above its cap: quotas capped by
    water-filling, then floors plus one each for the largest fractional parts (ties: first)."""
    total = min(int(total), int(caps.sum()))
    fixed = np.zeros(len(weights), dtype=bool)  # quotas held at their cap
    quota = caps.astype(np.float64)
    while not fixed.all():
        rest = total - caps[fixed].sum()
        quota = np.where(fixed, caps, rest * weights / weights[~fixed].sum())
        over = ~fixed & (quota > caps)
        if not over.any():
            break
        fixed |= over
    alloc = np.minimum(np.floor(quota).astype(np.int64), caps)
    order = np.argsort(-(quota - alloc), kind="stable")
    alloc[order[: total - int(alloc.sum())]] += 1
    return alloc


def _budget(jobs: list[_SpanJob], classes, per_class, spacing, seed) -> dict[str, int]:
    """Set each span's target: density `length / spacing` (stochastically rounded, capped by
    capacity), then the class's `per_class` cap spread over its spans in proportion to length."""
    targets = {}
    for c in classes:
        mine = [j for j in jobs if j.span.label == c]
        if not mine:
            targets[c] = 0
            continue
        caps = np.array([j.capacity for j in mine], dtype=np.int64)
        if spacing[c] is not None:
            for k, j in enumerate(mine):
                expected = (j.span.end - j.span.start) / spacing[c]
                whole = math.floor(expected)
                extra = seeded_rng(seed, "count", j.record.name, str(j.index)).random() < expected - whole
                caps[k] = min(caps[k], whole + int(extra))
        total = int(caps.sum()) if per_class is None else min(per_class, int(caps.sum()))
        lengths = np.array([j.span.end - j.span.start for j in mine], dtype=np.float64)
        for j, n in zip(mine, _allocate(total, lengths, caps)):
            j.target = int(n)
        targets[c] = total
    return targets


def _spread(rng: np.random.Generator, lo: int, hi: int, k: int, gap: int) -> np.ndarray:
    """`k` random starts in [lo, hi], sorted, consecutive ones at least `gap` apart."""
    slack = hi - lo - (k - 1) * gap
    base = np.sort(rng.integers(0, slack + 1, size=k))
    return lo + base + gap * np.arange(k)


def _quality(sig: np.ndarray, starts: np.ndarray, window: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Reason index per window: -1 accepted, else the index in REASONS of the first failed check."""
    n_sat = max(2, math.ceil(SATURATION_FRACTION * window))
    out = np.full(len(starts), -1, dtype=np.int64)
    step = max(1, _CHUNK_VALUES // (window * sig.shape[1]))
    offsets = np.arange(window)
    for i in range(0, len(starts), step):
        x = sig[starts[i : i + step, None] + offsets]  # (k, window, leads)
        bad_nan = ~np.isfinite(x).all(axis=(1, 2))
        flat = ((x.max(axis=1) - x.min(axis=1)) < FLAT_PTP).any(axis=1)
        saturated = (((x == hi).sum(axis=1) >= n_sat) | ((x == lo).sum(axis=1) >= n_sat)).any(axis=1)
        out[i : i + step] = np.where(bad_nan, 0, np.where(flat, 1, np.where(saturated, 2, -1)))
    return out


def _draw_span(job: _SpanJob, sig, window, gap, seed, lo, hi, rejected: Counter) -> list[int]:
    """Draw the span's target windows; rejected ones are replaced by further random draws away from
    every start tried so far, for at most REFILL_ROUNDS rounds."""
    rng = seeded_rng(seed, "offsets", job.record.name, str(job.index))
    first, last = job.span.start, job.span.end - window  # inclusive range of starts
    tried = _spread(rng, first, last, job.target, gap)
    accepted: list[int] = []
    fresh = tried
    for _ in range(REFILL_ROUNDS + 1):
        reasons = _quality(sig, fresh, window, lo, hi)
        accepted += fresh[reasons < 0].tolist()
        for r in reasons[reasons >= 0]:
            rejected[REASONS[r]] += 1
        missing = job.target - len(accepted)
        if missing == 0:
            break
        taken = np.sort(tried)
        picks = []
        for s in rng.integers(first, last + 1, size=REFILL_TRIES * missing):
            at = np.searchsorted(taken, s)
            near = [taken[k] for k in (at - 1, at) if 0 <= k < len(taken)]
            if all(abs(int(s) - int(t)) >= gap for t in near):
                picks.append(int(s))
                taken = np.insert(taken, at, s)
                if len(picks) == missing:
                    break
        if not picks:
            break
        fresh = np.array(picks, dtype=np.int64)
        tried = np.concatenate([tried, fresh])
    return accepted


def _extremes(sig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-lead minimum and maximum over the finite samples of the whole record."""
    finite = np.isfinite(sig)
    return np.where(finite, sig, np.inf).min(axis=0), np.where(finite, sig, -np.inf).max(axis=0)


@dataclass
class _Survey:
    """Which spans can hold a window, and what the summary says about the rest."""

    jobs: list[_SpanJob] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)  # label not in classes -> spans
    short: Counter = field(default_factory=Counter)  # class -> spans shorter than the window
    without: dict[str, str] = field(default_factory=dict)  # record -> why it has no window
    longest: tuple[int, str, float] = (0, "", 0.0)  # (samples, record, fs) of the longest kept span


def _survey(scan: Scan, classes: list[str], window: int, gap: int) -> _Survey:
    """One _SpanJob per span of a kept class that holds at least one window (records sorted by name)."""
    keep = set(classes)
    survey = _Survey()
    for record in sorted(scan.records, key=lambda r: r.name):
        spans = [s for s in record.spans if s.label in keep]
        survey.ignored.update(s.label for s in record.spans if s.label not in keep)
        if not spans:
            labels = sorted({s.label for s in record.spans})
            survey.without[record.name] = (
                f"no span of classes {','.join(classes)} (labels: {','.join(labels) or 'none'})"
            )
            continue
        _check_spans(record, spans)
        fits = [(i, s) for i, s in enumerate(record.spans) if s.label in keep and s.end - s.start >= window]
        survey.short.update(s.label for s in spans if s.end - s.start < window)
        best = max(s.end - s.start for s in spans)
        survey.longest = max(survey.longest, (best, record.name, record.fs))
        if not fits:
            survey.without[record.name] = f"too short: longest span {best} samples < window {window}"
            continue
        survey.jobs += [_SpanJob(record, i, s, (s.end - s.start - window) // gap + 1) for i, s in fits]
    return survey


def _nothing_fits(scan: Scan, classes: list[str], window: int, survey: _Survey) -> EcgError:
    """The error for a scan where no span can hold a window: no span of the classes, or all too short."""
    best, name, fs = survey.longest
    if best == 0:
        found = sorted(survey.ignored)
        return EcgError(
            f"{scan.database}: no record has a span labelled {','.join(classes)} (labels found: "
            f"{','.join(found) or 'none'}): check --classes or --labels"
        )
    return EcgError(
        f"{scan.database}: window of {window} samples is longer than every record and labelled span "
        f"(longest: {best} samples = {best / fs:.2f} s in record {name}): choose a smaller --window"
    )


def _record_signal(source: Source, record: RecordInfo) -> np.ndarray:
    """The record's signal, checked against the shape its header announced."""
    sig = np.asarray(source.read_signal(record.name))
    if sig.ndim != 2 or sig.shape != (record.n_samples, len(record.leads)):
        raise EcgError(
            f"record {record.name}: signal has shape {sig.shape} but the header says "
            f"({record.n_samples}, {len(record.leads)}): the record files disagree; re-copy the record"
        )
    return sig


def _draw_records(source: Source, survey: _Survey, window: int, gap: int, seed: int, progress: bool):
    """Draw every span's target windows, reading each record once; returns (windows, rejected, used)."""
    by_record: dict[str, list[_SpanJob]] = {}
    for j in survey.jobs:
        by_record.setdefault(j.record.name, []).append(j)
    windows: list[Candidate] = []
    rejected: Counter = Counter()
    used = []
    for name, record_jobs in tqdm(by_record.items(), desc="plan windows", unit="record", disable=not progress):
        record = record_jobs[0].record
        wanted = [j for j in record_jobs if j.target > 0]
        if not wanted:
            survey.without[name] = "the per-class budget gave it no windows"
            continue
        sig = _record_signal(source, record)
        lo, hi = _extremes(sig)
        before = len(windows)
        for j in wanted:
            for start in _draw_span(j, sig, window, gap, seed, lo, hi, rejected):
                windows.append(Candidate(name, record.patient, int(start), j.span.label, float(record.fs)))
        if len(windows) == before:
            survey.without[name] = "every drawn window failed the quality checks"
        else:
            used.append(name)
    return windows, rejected, used


def plan_windows(
    source: Source,
    scan: Scan,
    classes: Sequence[str],
    window: int = 1000,
    per_class: int | None = None,
    seed: int = 0,
    max_overlap: float = 0.5,
    spacing: Mapping[str, float] | float | None = None,
    progress: bool = False,
) -> WindowPlan:
    """Draw windows from the labelled spans of `scan` (signals via `source.read_signal`, once per record).

    `classes`: labels to keep, in label-id order. `per_class`: most windows per class.
    `spacing`: mean distance in samples between window starts, per class (a mapping) or for all
    classes (a number); a class without spacing gets one window per `window` samples of span when
    `per_class` is None, else only the `per_class` cap. `max_overlap`: largest share of a window two
    windows of a record may share. Raises EcgError when no window can be drawn.
    """
    classes = list(classes)
    spacing_per_class = _check_args(classes, window, per_class, seed, max_overlap, spacing)
    if not scan.records:
        raise EcgError(f"{scan.database}: no usable records to draw windows from; see the records left out above")
    gap = window - math.floor(max_overlap * window)  # least distance between two starts of a record
    survey = _survey(scan, classes, window, gap)
    if not survey.jobs:
        raise _nothing_fits(scan, classes, window, survey)
    targets = _budget(survey.jobs, classes, per_class, spacing_per_class, seed)
    if not any(targets.values()):
        raise EcgError(f"{scan.database}: spacing {spacing} leaves no window in any span: choose a smaller --spacing")
    windows, rejected, used = _draw_records(source, survey, window, gap, seed, progress)
    if not windows:
        raise EcgError(
            f"{scan.database}: every drawn window failed the quality checks "
            f"({', '.join(f'{r} {rejected[r]}' for r in REASONS)}): check the records' signals"
        )
    windows.sort(key=lambda c: (c.record, c.start))
    return WindowPlan(
        database=scan.database,
        classes=classes,
        window=int(window),
        seed=int(seed),
        windows=windows,
        targets=targets,
        rejected={r: rejected[r] for r in REASONS},
        records_used=used,
        records_without_windows=sorted(survey.without.items()),
        ignored_labels=dict(survey.ignored),
        short_spans={c: survey.short[c] for c in classes if survey.short[c]},
    )


def make_manifest(
    plan: WindowPlan, splits: Sequence[str | None], classes: Sequence[str], database: str, seed: int,
    multi_label: bool = False,
) -> list[Window]:
    """Manifest rows: train, then val, then test; inside a split in a seeded random order, so every
    shard mixes records. `splits[i]` is the split of `plan.windows[i]` (`assign_splits(...).splits`);
    windows whose split is None (dropped for sharing samples with another split) get no row.
    `multi_label`: the plan's labels are class sets joined with ';' (their classes must be in `classes`);
    rows get label id -1 and the multi-hot `targets`."""
    splits = list(splits)
    classes = list(classes)
    if len(splits) != len(plan.windows):
        raise EcgError(f"{len(splits)} split names for {len(plan.windows)} windows: assign splits to this plan")
    bad = sorted(str(s) for s in set(splits) - set(SPLITS) - {None})
    if bad:
        raise EcgError(f"unknown split names {bad}: use {', '.join(SPLITS)}")
    ids = {c: i for i, c in enumerate(classes)}
    rows: dict[str, list[Window]] = {s: [] for s in SPLITS}
    for cand, split in sorted(zip(plan.windows, splits), key=lambda p: (p[0].record, p[0].start)):
        if split is None:
            continue
        members = cand.label.split(SEPARATOR) if multi_label else [cand.label]
        if any(c not in ids for c in members):
            raise EcgError(f"record {cand.record}: label {cand.label!r} is not in classes {classes}")
        key = window_key(cand.record, cand.start)
        label_id, targets = (MULTI_LABEL_ID, multi_hot(members, classes)) if multi_label else (ids[cand.label], "")
        rows[split].append(Window(key, database, cand.record, cand.patient, cand.start, plan.window, cand.fs,
                                  cand.label, label_id, split, targets))
    out: list[Window] = []
    for split in SPLITS:
        order = seeded_rng(seed, "manifest", split).permutation(len(rows[split]))
        out += [rows[split][i] for i in order]
    keys = [w.key for w in out]
    if len(set(keys)) != len(keys):
        dup = Counter(keys).most_common(1)[0][0]
        raise EcgError(f"two windows share the key {dup}: record names collide after '/' and '.' -> '-'; rename one")
    return out
