"""`ecgrender build`: source -> windows -> manifest -> refecg.h5 + staging -> shards -> card.

Every stage leaves a complete file or none (temporary names, renamed when complete), and the
settings of a build (with the sha256 of the source files it reads) are stored with it, so re-running
the same command after an interruption finishes only what is missing and ends with the same bytes as
an uninterrupted build. One build at a time holds `--out` (an flock on a hidden lock file), and
a failing disk or permission is one `EcgError` line (docs/build.md).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from shards.card import file_digest, read_card, write_card
from shards.layout import CARD, IMAGES, MANIFEST, REFECG, SPLITS, TEMP_SUFFIX, write_atomic
from shards.manifest import Window, iter_manifest, manifest_classes, read_manifest, write_manifest

from . import __version__
from .errors import EcgError
from .extract import extract_windows
from .render.geometry import PAPER
from .render_shards import render_shards
from .sources import database_spec, open_source
from .splits import assign_splits, read_split_file, split_file_path
from .windows import make_manifest, plan_windows

WORK = ".build"  # settings and staging of an unfinished build
LOCK = ".ecgrender.lock"  # flock'ed by the build that holds --out; holds its pid
PARAMS = "params.json"
STAGING = "windows.npy"


@dataclass
class BuildConfig:
    """Everything `ecgrender build` takes; `settings()` is what determines the output bytes."""

    db: str
    out: Path
    source: Path | None = None
    records: list[str] | None = None
    labels: Path | None = None
    classes: list[str] | None = None
    window: int = 1000
    per_class: int | None = None
    spacing: dict[str, int] | None = None
    max_overlap: float = 0.5
    split_by: str = "patient"
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    seed: int = 0
    renderer: str = "fast"
    shard_size: int | None = None
    manifest: Path | None = None
    split_file: Path | None = None
    allow_missing_classes: bool = False
    jobs: int = -1
    force: bool = False

    def __post_init__(self):
        if self.split_file is not None:
            self.split_by = "file"  # --split-file: the file decides, by record

    def settings(self, source_sha256: str) -> dict:
        """The options that decide the dataset's content (not where or how fast it is built), and the
        combined digest of the source files it reads (`source_digest`)."""
        return {
            "db": self.db,
            "source_sha256": source_sha256,
            "records": self.records,
            "labels_sha256": _sha256(self.labels) if self.labels else None,
            "classes": self.classes,
            "window": self.window,
            "per_class": self.per_class,
            "spacing": self.spacing,
            "max_overlap": self.max_overlap,
            "split_by": self.split_by,
            "test_fraction": self.test_fraction,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "renderer": self.renderer,
            "shard_size": self.shard_size,
            "manifest_sha256": _sha256(self.manifest) if self.manifest else None,
            "split_file_sha256": _sha256(split_file_path(self.split_file)) if self.split_file else None,
        }


def _sha256(path: Path) -> str:
    if not Path(path).is_file():
        raise EcgError(f"{path} not found: check the path")
    return file_digest(path)[0]


def source_files(source, progress: bool = False) -> dict[str, str]:
    """sha256 of every file the build reads from `source` (header, signal and annotation files of the
    selected records), keyed by path relative to the source folder, sorted."""
    files = {}
    for name in tqdm(source.records, desc="hash source", unit="record", disable=not progress):
        for path in source.record_files(name):
            files[path.relative_to(source.root).as_posix()] = file_digest(path)[0]
    return dict(sorted(files.items()))


def source_digest(files: dict[str, str]) -> str:
    """One sha256 for a {relative path: sha256} map: it changes when any file, name or the set changes."""
    return hashlib.sha256("".join(f"{rel}\t{sha}\n" for rel, sha in sorted(files.items())).encode()).hexdigest()


@contextlib.contextmanager
def locked_out(out: Path) -> Iterator[None]:
    """Hold `out` (created if missing) for one build: an exclusive, non-blocking flock on `out/LOCK`,
    which holds this process's pid. A second build fails at once with an EcgError naming the holder.
    The lock file is removed on release (a killed build leaves it, unlocked: the next build takes it)."""
    if out.exists() and not out.is_dir():
        raise EcgError(f"--out {out} is a file: give a directory")
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    fd = _acquire(path, out)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # still locked: a build that opens it now finds it gone and opens a new one
        os.close(fd)


def _acquire(path: Path, out: Path) -> int:
    """Open and flock `path`; retry when the file was replaced meanwhile (its holder removed it)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise EcgError(
                f"--out {out} is in use by another ecgrender build (pid {holder}): wait for it to end, "
                "or choose another --out"
            ) from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _remove_stale_temps(out: Path) -> None:
    """Delete temp files a killed build left next to the dataset's files (only under the lock)."""
    for pattern in (f"{CARD}.*{TEMP_SUFFIX}", f"{MANIFEST}.*{TEMP_SUFFIX}", f"{REFECG}.*{TEMP_SUFFIX}",
                    f"{IMAGES}/*{TEMP_SUFFIX}"):
        for stale in out.glob(pattern):
            stale.unlink()


def disk_error(exc: OSError, out: Path) -> EcgError:
    """One line for an OSError met while building: the file, the reason, and what to do before rerunning."""
    path = exc.filename or out
    reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
    rerun = "then rerun the same command (it resumes)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = f"free space on that disk, {rerun}"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        todo = f"fix its permissions (or mount it read-write), {rerun}"
    elif exc.errno == errno.ENOTDIR:
        todo = "a part of that path is a file: choose another --out"
    else:
        todo = f"free space or fix permissions, {rerun}"
    return EcgError(f"build stopped at {path}: {reason}; {todo}")


def _differs(stored: dict, settings: dict) -> str:
    """What a stored build differs in: 'source data' when only the source files do, else 'settings'."""
    other = {k: v for k, v in stored.items() if k != "source_sha256"}
    same_options = other == {k: v for k, v in settings.items() if k != "source_sha256"}
    return "source data (the files of --source differ)" if same_options else "settings"


def _prepare_out(cfg: BuildConfig, settings: dict, echo: Callable[[str], None]) -> bool:
    """Check (or, with --force, clear) the locked `cfg.out`; returns False when an identical finished
    dataset is there."""
    out = cfg.out
    work = out / WORK
    ours = [out / n for n in (CARD, MANIFEST, REFECG, IMAGES, WORK)]
    if work.is_dir() and not (work / PARAMS).exists() and not any(p.exists() for p in ours if p != work):
        shutil.rmtree(work)  # a build that stopped before it wrote anything
    if any(p.name != LOCK for p in out.iterdir()):
        if not any(p.exists() for p in ours):
            raise EcgError(f"--out {out} is not empty and holds no ecgrender build: choose a new or empty directory")
        if cfg.force:
            for p in ours:
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        elif (out / CARD).exists():
            stored = read_card(out).get("build") or {}
            if stored != settings:
                raise EcgError(f"{out} holds a finished dataset built with other {_differs(stored, settings)}: "
                               "use the same options and source, another --out, or --force")
            shutil.rmtree(work, ignore_errors=True)
            echo(f"{out} is complete (same settings): nothing to do")
            return False
        elif (work / PARAMS).exists():
            stored = json.loads((work / PARAMS).read_text())
            if stored != settings:
                raise EcgError(f"{out} holds an unfinished build with other {_differs(stored, settings)}: "
                               "re-run it with its own options and source, or use --force")
            echo(f"resuming the unfinished build in {out}")
        else:
            raise EcgError(f"{out} holds a partial dataset of unknown settings: use --force or another --out")
    return True


def _plan(cfg: BuildConfig, source, scan, echo, progress: bool) -> tuple[list[Window], list[str]]:
    """Manifest rows from a fresh window plan, or from `--manifest`; returns (rows, classes)."""
    if cfg.manifest:
        # shards and refecg.h5 take each split's rows in manifest order: group them train, val, test
        rows = sorted(read_manifest(cfg.manifest), key=lambda w: SPLITS.index(w.split))
        foreign = {w.database for w in rows} - {source.database}
        if foreign:
            raise EcgError(f"manifest {cfg.manifest} is for {sorted(foreign)}, not --db {cfg.db}")
        if any(w.length != cfg.window for w in rows):
            raise EcgError(f"manifest {cfg.manifest} has windows of {rows[0].length} samples: pass --window {rows[0].length}")
        classes = manifest_classes(rows, cfg.manifest)
        _check_manifest_rows(cfg.manifest, scan, cfg.source)
        _refuse_gaps(cfg, _manifest_gaps(rows, classes), echo)
        echo(f"rebuilding {len(rows)} windows from {cfg.manifest}")
        return rows, classes
    classes = cfg.classes or list(database_spec(cfg.db).default_classes)
    found = {span.label for record in scan.records for span in record.spans}
    unknown = [c for c in classes if c not in found]
    if cfg.classes and unknown:
        raise EcgError(
            f"class {unknown[0]!r} does not occur in the selected {cfg.db} records "
            f"(labels found: {', '.join(sorted(found)) or 'none'}): check --classes"
        )
    for name, reason in scan.excluded:
        echo(f"left out {name}: {reason}")
    plan = plan_windows(
        source, scan, classes, window=cfg.window, per_class=cfg.per_class, seed=cfg.seed,
        max_overlap=cfg.max_overlap, spacing=cfg.spacing, progress=progress,
    )
    for line in plan.summary_lines():
        echo(line)
    counts = plan.counts()
    empty = [c for c in classes if not counts.get(c)]
    if empty:
        echo(f"warning: no windows for class {', '.join(empty)}: left out of this dataset's classes")
        classes = [c for c in classes if counts.get(c)]
    splits = assign_splits(
        plan, split_by=cfg.split_by, test_fraction=cfg.test_fraction, val_fraction=cfg.val_fraction, seed=cfg.seed,
        assignment=_split_file(cfg, source),
    )
    for warning in splits.warnings:
        echo(f"warning: {warning}")
    if splits.dropped:
        echo(f"left out {splits.dropped} windows next to split boundaries (time split: a gap of one window)")
    _refuse_gaps(cfg, splits.gaps, echo)
    return make_manifest(plan, splits.splits, classes, source.database, cfg.seed), classes


def _split_file(cfg: BuildConfig, source) -> dict[str, str] | None:
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


def _manifest_gaps(rows: list[Window], classes: list[str]) -> list[str]:
    """Empty splits, and classes missing from a non-empty split, of a manifest's rows."""
    held = {(w.split, w.label) for w in rows}
    used = [s for s in SPLITS if any(split == s for split, _ in held)]
    gaps = [f"split {s} is empty in the manifest" for s in SPLITS if s not in used]
    return gaps + [f"class {c} has no window in {s} in the manifest" for s in used for c in classes
                   if (s, c) not in held]


def _refuse_gaps(cfg: BuildConfig, gaps: list[str], echo) -> None:
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


def _check_card_leads(manifest: Path, leads: list[str]) -> None:
    """EcgError when the dataset card next to `manifest` (if any) names other leads than the records give."""
    if not (manifest.parent / CARD).is_file():
        return
    known = read_card(manifest.parent)["leads"]
    if known != leads:
        raise EcgError(f"manifest {manifest}: its dataset card names leads {', '.join(known)}, the records of "
                       f"--source give {', '.join(leads)}: the manifest is for other data; use its own source")


def _leads(scan, rows: list[Window]) -> list[str]:
    """Lead names by position across the records used (MIT-BIH's second lead varies: 'V1/V5')."""
    records = {r.name: r for r in scan.records}
    names = [records[name].leads for name in dict.fromkeys(w.record for w in rows)]
    widths = {len(n) for n in names}
    if len(widths) != 1:
        raise EcgError(f"records of this build have {sorted(widths)} leads: build records with equal lead counts")
    return ["/".join(dict.fromkeys(position)) for position in zip(*names)]


def split_scheme(rows: list[Window]) -> str:
    """The strictest grouping the splits respect: patient, record, or window (leaky)."""
    for scheme in ("patient", "record"):
        groups: dict[str, set] = {}
        for w in rows:
            groups.setdefault(getattr(w, scheme), set()).add(w.split)
        if all(len(s) == 1 for s in groups.values()):
            return scheme
    return "window"


def summarize(rows: list[Window], classes: list[str]) -> dict:
    """Counts per split and class."""
    counts = Counter((w.split, w.label) for w in rows)
    return {s: {c: counts[(s, c)] for c in classes} for s in SPLITS}


def build_dataset(cfg: BuildConfig, echo: Callable[[str], None] = print, progress: bool = True) -> Path:
    """Run (or resume) a build; returns the dataset directory. An OSError (full disk, permissions, in
    this process or a render worker) becomes an EcgError naming the file (`disk_error`)."""
    if cfg.test_fraction + cfg.val_fraction >= 1:
        raise EcgError(f"--test-fraction {cfg.test_fraction} + --val-fraction {cfg.val_fraction} leave nothing "
                       "for train: lower them")
    if cfg.jobs == 0:
        raise EcgError("--jobs 0 runs nothing: give a number of jobs, or -1 for all cores")
    try:
        source = open_source(cfg.db, cfg.source, records=cfg.records, labels_csv=cfg.labels)
        with locked_out(cfg.out):
            _build(cfg, source, echo, progress)
    except OSError as exc:
        raise disk_error(exc, cfg.out) from exc
    return cfg.out


def _build(cfg: BuildConfig, source, echo: Callable[[str], None], progress: bool) -> None:
    """The build itself, in the locked `cfg.out`."""
    files = source_files(source, progress)
    settings = cfg.settings(source_digest(files))
    if not _prepare_out(cfg, settings, echo):
        return
    out, work = cfg.out, cfg.out / WORK
    _remove_stale_temps(out)
    scan = source.scan()
    if (out / MANIFEST).exists():
        rows = read_manifest(out / MANIFEST)
        classes = manifest_classes(rows, out / MANIFEST)
        leads = _leads(scan, rows)
    else:
        rows, classes = _plan(cfg, source, scan, echo, progress)
        leads = _leads(scan, rows)
        if cfg.manifest:
            _check_card_leads(cfg.manifest, leads)
        work.mkdir(parents=True, exist_ok=True)  # from here on a re-run with the same settings resumes
        write_atomic(work / PARAMS, json.dumps(settings, sort_keys=True))
        write_manifest(out / MANIFEST, rows)
    staging = work / STAGING
    if not staging.exists():
        extract_windows(source, rows, len(leads), out / REFECG, staging, progress=progress)
    render_shards(out, rows, staging, cfg.renderer, PAPER, cfg.shard_size, cfg.jobs, progress=progress)
    staging.unlink()
    counts = summarize(rows, classes)
    card = {
        "software_version": f"ecgrender {__version__}",
        "source": {"database": source.database, "version": source.version, "records": len({w.record for w in rows}),
                   "files": files},
        "classes": classes,
        "counts": counts,
        "total": len(rows),
        "n_leads": len(leads),
        "leads": leads,
        "window": {"length": rows[0].length, "fs": rows[0].fs},
        "split_by": split_scheme(rows) if cfg.manifest or cfg.split_file else cfg.split_by,
        "seed": cfg.seed,
        "renderer": cfg.renderer,
        "render": PAPER.as_dict(),
        "build": settings,
    }
    write_card(out, card)
    shutil.rmtree(work)
    for split in SPLITS:
        echo(f"{split:>5}: " + ", ".join(f"{c} {counts[split][c]}" for c in classes) + f"  ({sum(counts[split].values())})")
    echo(f"dataset complete: {out} ({len(rows)} windows)")
