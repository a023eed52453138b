"""The manifest rows of a build: a fresh plan (windows, then splits), or the rows of a given `--manifest`
checked against the source. Either way a split that is empty or lacks a class stops the build unless
`--allow-missing-classes` (docs/windows.md).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from shards.card import read_card
from shards.layout import CARD, SPLITS
from shards.manifest import SEPARATOR, Window, iter_manifest, manifest_classes, read_manifest

from .errors import EcgError
from .sources import Scan, Span
from .splits import DEFAULT_TEST_FOLDS, DEFAULT_VAL_FOLDS, assign_splits, fold_assignment, read_split_file
from .windows import make_manifest, plan_windows


def plan_rows(cfg, source, scan, echo, progress: bool) -> tuple[list[Window], list[str]]:
    """Manifest rows from a fresh window plan, or from `--manifest` (checked against `scan`), for the
    options of `cfg` (a build.BuildConfig); returns (rows, classes)."""
    if cfg.manifest:
        # shards and refecg.h5 take each split's rows in manifest order: group them train, val, test
        rows = sorted(read_manifest(cfg.manifest), key=lambda w: SPLITS.index(w.split))
        foreign = {w.database for w in rows} - {source.database}
        if foreign:
            raise EcgError(f"manifest {cfg.manifest} is for {sorted(foreign)}, not --db {cfg.db}")
        if any(w.length != cfg.window for w in rows):
            raise EcgError(f"manifest {cfg.manifest} has windows of {rows[0].length} samples: pass --window {rows[0].length}")
        if rows[0].multi_label != source.multi_label:
            raise EcgError(f"manifest {cfg.manifest} is {'multi' if rows[0].multi_label else 'single'}-label, --db "
                           f"{cfg.db} is not: use the source the manifest was made from")
        _check_manifest_source(cfg, source)
        classes = manifest_classes(rows, cfg.manifest, _card_classes(cfg.manifest) if source.multi_label else None)
        _check_manifest_rows(cfg.manifest, scan, cfg.source)
        splits = cfg.noise_splits_used or SPLITS  # a --noise build copies these splits only
        rows = [w for w in rows if w.split in splits]
        if not rows:
            raise EcgError(f"manifest {cfg.manifest} has no window in split {', '.join(splits)}: choose "
                           "--noise-splits that it has")
        _refuse_gaps(cfg, _manifest_gaps(rows, classes, splits), echo)
        echo(f"rebuilding {len(rows)} windows from {cfg.manifest}" + (f" with noise {cfg.noise}" if cfg.noise else ""))
        return rows, classes
    classes = cfg.classes or list(source.default_classes)
    if source.multi_label:
        return _plan_multi_label(cfg, source, scan, classes, echo, progress)
    _check_classes(cfg, classes, {span.label for record in scan.records for span in record.spans})
    for name, reason in scan.excluded:
        echo(f"left out {name}: {reason}")
    assignment = _assignment(cfg, source, scan)  # split file and fold errors before any signal is read
    plan = plan_windows(
        source, scan, classes, window=cfg.window, per_class=cfg.per_class, seed=cfg.seed,
        max_overlap=cfg.max_overlap, spacing=cfg.spacing, progress=progress,
    )
    for line in plan.summary_lines():
        echo(line)
    classes = _with_windows(classes, plan.counts(), echo)
    splits = _split(cfg, plan, assignment, echo)
    if splits.dropped:
        echo(f"left out {splits.dropped} windows next to split boundaries (time split: a gap of one window)")
    _refuse_gaps(cfg, splits.gaps, echo)
    return make_manifest(plan, splits.splits, classes, source.database, cfg.seed), classes


def _check_classes(cfg, classes: list[str], found: set[str]) -> None:
    """EcgError when a class given with --classes occurs in no selected record (`found`: the classes that do)."""
    unknown = [c for c in classes if c not in found]
    if cfg.classes and unknown:
        raise EcgError(f"class {unknown[0]!r} does not occur in the selected {cfg.db} records "
                       f"(labels found: {', '.join(sorted(found)) or 'none'}): check --classes")


def _with_windows(classes: list[str], counts, echo) -> list[str]:
    """The classes that got windows (`counts`: class -> windows); the others are dropped with a warning."""
    empty = [c for c in classes if not counts.get(c)]
    if empty:
        echo(f"warning: no windows for class {', '.join(empty)}: left out of this dataset's classes")
    return [c for c in classes if counts.get(c)]


def _split(cfg, plan, assignment: dict[str, str] | None, echo):
    """The plan's splits (assign_splits with the options of `cfg`), their warnings echoed."""
    splits = assign_splits(plan, split_by=cfg.split_by, test_fraction=cfg.test_fraction,
                           val_fraction=cfg.val_fraction, seed=cfg.seed, assignment=assignment)
    for warning in splits.warnings:
        echo(f"warning: {warning}")
    return splits


def _assignment(cfg, source, scan) -> dict[str, str] | None:
    """The record -> split map of --split-file or --split-by fold; None for the other modes."""
    if cfg.split_by == "fold":
        return fold_assignment(scan.records, cfg.folds_val if cfg.folds_val is not None else DEFAULT_VAL_FOLDS,
                               cfg.folds_test if cfg.folds_test is not None else DEFAULT_TEST_FOLDS)
    return _split_file(cfg, source)


def _check_manifest_source(cfg, source) -> None:
    """EcgError when the dataset card next to `--manifest` says its records were read with another --task, --fs or
    --resample than this build's (the same rows would then mean other labels or samples)."""
    if not (cfg.manifest.parent / CARD).is_file():
        return
    stored = read_card(cfg.manifest.parent)["source"]
    for option, value in (("task", getattr(source, "task", None)), ("fs", getattr(source, "fs", None)),
                          ("resample", cfg.resample)):
        before = stored.get("resampled_to_hz" if option == "resample" else option)
        if before != value:
            raise EcgError(f"manifest {cfg.manifest} was built with --{option} {before}, this build has --{option} "
                           f"{value}: give the manifest's --{option}")


def _card_classes(manifest: Path) -> list[str]:
    """The classes of the dataset card next to a multi-label manifest (the manifest alone does not list them)."""
    if not (manifest.parent / CARD).is_file():
        raise EcgError(f"manifest {manifest} is multi-label: its classes are in the dataset.json next to it; "
                       "keep the card with the manifest")
    return list(read_card(manifest.parent)["classes"])


def restrict_classes(scan: Scan, classes: list[str]) -> Scan:
    """A multi-label scan whose span labels keep only `classes` (in that order); spans left without a class are
    dropped, and records left without a span are moved to `excluded`."""
    keep = set(classes)
    records, excluded = [], list(scan.excluded)
    for record in scan.records:
        spans = []
        for span in record.spans:
            members = set(span.label.split(SEPARATOR)) & keep
            if members:
                spans.append(Span(span.start, span.end, SEPARATOR.join(c for c in classes if c in members)))
        if spans:
            records.append(type(record)(record.name, record.patient, record.leads, record.fs, record.n_samples, spans,
                                        record.fold))
        else:
            excluded.append((record.name, f"none of the classes {','.join(classes)}"))
    return Scan(scan.database, records, excluded)


def _plan_multi_label(cfg, source, scan, classes: list[str], echo, progress: bool) -> tuple[list[Window], list[str]]:
    """Manifest rows of a multi-label database: windows are drawn per span as for single-label data, their
    label being the span's class set; classes without windows are dropped; gaps are per class."""
    if cfg.per_class is not None or cfg.spacing:
        raise EcgError("--per-class and --spacing budget single-label classes; a multi-label dataset draws windows "
                       "per record (--window, --max-overlap)")
    if len(set(classes)) != len(classes):
        raise EcgError(f"classes {classes} must be a list without repeats: fix --classes")
    _check_classes(cfg, classes, {c for record in scan.records for span in record.spans
                                  for c in span.label.split(SEPARATOR)})
    scan = restrict_classes(scan, classes)
    assignment = _assignment(cfg, source, scan)  # fold errors before any signal is read
    left_out = Counter(why for _, why in scan.excluded)
    for why, n in sorted(left_out.items()):
        echo(f"left out {n} record(s): {why}")
    if not scan.records:
        raise EcgError(f"{cfg.db}: no selected record has a statement of classes {', '.join(classes)}: check --classes")
    sets = sorted({s.label for r in scan.records for s in r.spans},
                  key=lambda label: [classes.index(c) for c in label.split(SEPARATOR)])
    plan = plan_windows(source, scan, sets, window=cfg.window, seed=cfg.seed, max_overlap=cfg.max_overlap,
                        progress=progress)
    positives = Counter(c for w in plan.windows for c in w.label.split(SEPARATOR))
    echo(f"windows: {len(plan.windows)} from {len(plan.records_used)} records (window {plan.window} samples, "
         f"seed {plan.seed}; {len(sets)} class combinations)")
    echo("rejected by quality checks: " + ", ".join(f"{r} {n}" for r, n in plan.rejected.items()))
    echo("windows per class: " + ", ".join(f"{c} {positives[c]}" for c in classes))
    if plan.records_without_windows:
        name, why = plan.records_without_windows[0]
        echo(f"records without windows: {len(plan.records_without_windows)} (first: {name}: {why})")
    classes = _with_windows(classes, positives, echo)
    splits = _split(cfg, plan, assignment, echo)
    rows = make_manifest(plan, splits.splits, classes, source.database, cfg.seed, multi_label=True)
    _refuse_gaps(cfg, _manifest_gaps(rows, classes), echo)
    return rows, classes


def _split_file(cfg, source) -> dict[str, str] | None:
    """--split-file's record -> split map, every record of it present in the source; None without it."""
    if cfg.split_file is None:
        return None
    assignment = read_split_file(cfg.split_file)
    unknown = sorted(set(assignment) - set(source.all_records))
    if unknown:
        raise EcgError(
            f"split file {cfg.split_file} names record {unknown[0]!r}, which is not in the {cfg.db} source "
            f"{cfg.source}: fix the file, or use a complete copy of the database"
        )
    return assignment


def _manifest_gaps(rows: list[Window], classes: list[str], splits=SPLITS) -> list[str]:
    """Empty splits (of `splits`), and classes missing from a non-empty split, of a manifest's rows (a multi-label
    row holds each of its classes)."""
    held = {(w.split, c) for w in rows for c in w.classes}
    used = [s for s in SPLITS if any(split == s for split, _ in held)]
    gaps = [f"split {s} is empty in the manifest" for s in splits if s not in used]
    return gaps + [f"class {c} has no window in {s} in the manifest" for s in used for c in classes
                   if (s, c) not in held]


def _refuse_gaps(cfg, gaps: list[str], echo) -> None:
    """An empty split or a class missing from a split stops the build, unless --allow-missing-classes."""
    if not gaps:
        return
    if cfg.allow_missing_classes:
        for gap in gaps:
            echo(f"warning: {gap} (allowed by --allow-missing-classes)")
        return
    more = f" (and {len(gaps) - 1} more)" if len(gaps) > 1 else ""
    raise EcgError(f"{gaps[0]}{more}: a model could not be trained or tested on every class; "
                   "pass --allow-missing-classes to build it anyway")


def _check_manifest_rows(path: Path, scan, source_dir) -> None:
    """EcgError naming the first line of manifest `path` whose window does not fit its record in `scan`:
    unknown record, other fs, samples outside the record, or another number of leads than line 2's."""
    records = {r.name: r for r in scan.records}
    first = None
    for line, w in iter_manifest(path):
        where = f"manifest {path} line {line}"
        record = records.get(w.record)
        if record is None:
            raise EcgError(f"{where} names record {w.record} that {source_dir or scan.database} does not provide "
                           "(or leaves out): use the source the manifest was made from")
        if not math.isclose(w.fs, record.fs, rel_tol=1e-9):
            raise EcgError(f"{where}: fs {w.fs:g} Hz, but record {w.record} is sampled at {record.fs:g} Hz: "
                           "the manifest is for other data; use its own source")
        if w.start < 0 or w.start + w.length > record.n_samples:
            raise EcgError(f"{where}: window [{w.start}, {w.start + w.length}) lies outside record {w.record} "
                           f"({record.n_samples} samples): the manifest is for other data; use its own source")
        first = first or (line, record)
        if len(record.leads) != len(first[1].leads):
            raise EcgError(f"{where}: record {w.record} has {len(record.leads)} leads, record {first[1].name} "
                           f"(line {first[0]}) has {len(first[1].leads)}: one dataset needs one lead count")


def check_card_leads(manifest: Path, leads: list[str]) -> None:
    """EcgError when the dataset card next to `manifest` (if any) names other leads than the records give."""
    if not (manifest.parent / CARD).is_file():
        return
    known = read_card(manifest.parent)["leads"]
    if known != leads:
        raise EcgError(f"manifest {manifest}: its dataset card names leads {', '.join(known)}, the records of "
                       f"--source give {', '.join(leads)}: the manifest is for other data; use its own source")


def dataset_leads(scan, rows: list[Window]) -> list[str]:
    """Lead names by position across the records used (MIT-BIH's second lead varies: 'V1/V5')."""
    records = {r.name: r for r in scan.records}
    names = [records[name].leads for name in dict.fromkeys(w.record for w in rows)]
    widths = {len(n) for n in names}
    if len(widths) != 1:
        raise EcgError(f"records of this build have {sorted(widths)} leads: build records with equal lead counts")
    return ["/".join(dict.fromkeys(position)) for position in zip(*names)]


def split_scheme(rows: list[Window]) -> str:
    """The strictest grouping the splits respect: patient, record, or window (a patient in several splits)."""
    for scheme in ("patient", "record"):
        groups: dict[str, set] = {}
        for w in rows:
            groups.setdefault(getattr(w, scheme), set()).add(w.split)
        if all(len(s) == 1 for s in groups.values()):
            return scheme
    return "window"
