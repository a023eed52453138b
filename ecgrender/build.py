"""`ecgrender build`: source -> windows -> manifest -> refecg.h5 + staging -> shards -> card.

Every stage leaves a complete file or none (temporary names, renamed when complete), and the
settings of a build are stored with it, so re-running the same command after an interruption
finishes only what is missing and ends with the same bytes as an uninterrupted build.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shards.card import read_card, write_card
from shards.layout import CARD, IMAGES, MANIFEST, REFECG, SPLITS
from shards.manifest import Window, manifest_classes, read_manifest, write_manifest

from . import __version__
from .errors import EcgError
from .extract import extract_windows
from .render.geometry import PAPER
from .render_shards import render_shards
from .sources import database_spec, open_source
from .splits import assign_splits
from .windows import make_manifest, plan_windows

WORK = ".build"  # settings and staging of an unfinished build
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
    jobs: int = -1
    force: bool = False

    def settings(self) -> dict:
        """The options that decide the dataset's content (not where or how fast it is built)."""
        return {
            "db": self.db,
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
        }


def _sha256(path: Path) -> str:
    if not Path(path).is_file():
        raise EcgError(f"{path} not found: check the path")
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _prepare_out(cfg: BuildConfig, settings: dict, echo: Callable[[str], None]) -> bool:
    """Check (or, with --force, clear) `cfg.out`; returns False when an identical finished dataset is there."""
    out = cfg.out
    work = out / WORK
    if out.exists() and not out.is_dir():
        raise EcgError(f"--out {out} is a file: give a directory")
    ours = [out / n for n in (CARD, MANIFEST, REFECG, IMAGES, WORK)]
    if work.is_dir() and not (work / PARAMS).exists() and not any(p.exists() for p in ours if p != work):
        shutil.rmtree(work)  # a build that stopped before it wrote anything
    if out.is_dir() and any(out.iterdir()):
        if not any(p.exists() for p in ours):
            raise EcgError(f"--out {out} is not empty and holds no ecgrender build: choose a new or empty directory")
        if cfg.force:
            for p in ours:
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        elif (out / CARD).exists():
            if read_card(out).get("build") != settings:
                raise EcgError(f"{out} holds a finished dataset built with other settings: use another --out or --force")
            shutil.rmtree(work, ignore_errors=True)
            echo(f"{out} is complete (same settings): nothing to do")
            return False
        elif (work / PARAMS).exists():
            if json.loads((work / PARAMS).read_text()) != settings:
                raise EcgError(
                    f"{out} holds an unfinished build with other settings: re-run it with its own options or use --force"
                )
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
        known = {r.name for r in scan.records}
        missing = sorted({w.record for w in rows} - known)
        if missing:
            raise EcgError(f"manifest {cfg.manifest} names record {missing[0]} that {cfg.source} does not provide")
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
    splits, warnings = assign_splits(
        plan, split_by=cfg.split_by, test_fraction=cfg.test_fraction, val_fraction=cfg.val_fraction, seed=cfg.seed
    )
    for warning in warnings:
        echo(f"warning: {warning}")
    return make_manifest(plan, splits, classes, source.database, cfg.seed), classes


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
    """Run (or resume) a build; returns the dataset directory."""
    if cfg.test_fraction + cfg.val_fraction >= 1:
        raise EcgError(f"--test-fraction {cfg.test_fraction} + --val-fraction {cfg.val_fraction} leave nothing "
                       "for train: lower them")
    if cfg.jobs == 0:
        raise EcgError("--jobs 0 runs nothing: give a number of jobs, or -1 for all cores")
    settings = cfg.settings()
    if not _prepare_out(cfg, settings, echo):
        return cfg.out
    out, work = cfg.out, cfg.out / WORK
    source = open_source(cfg.db, cfg.source, records=cfg.records, labels_csv=cfg.labels)
    scan = source.scan()
    if (out / MANIFEST).exists():
        rows = read_manifest(out / MANIFEST)
        classes = manifest_classes(rows, out / MANIFEST)
    else:
        rows, classes = _plan(cfg, source, scan, echo, progress)
        work.mkdir(parents=True, exist_ok=True)  # from here on a re-run with the same settings resumes
        (work / PARAMS).write_text(json.dumps(settings, sort_keys=True))
        write_manifest(out / MANIFEST, rows)
    leads = _leads(scan, rows)
    staging = work / STAGING
    if not staging.exists():
        extract_windows(source, rows, len(leads), out / REFECG, staging, progress=progress)
    render_shards(out, rows, staging, cfg.renderer, PAPER, cfg.shard_size, cfg.jobs, progress=progress)
    staging.unlink()
    counts = summarize(rows, classes)
    card = {
        "software_version": f"ecgrender {__version__}",
        "source": {"database": source.database, "version": source.version, "records": len({w.record for w in rows})},
        "classes": classes,
        "counts": counts,
        "total": len(rows),
        "n_leads": len(leads),
        "leads": leads,
        "window": {"length": rows[0].length, "fs": rows[0].fs},
        "split_by": split_scheme(rows) if cfg.manifest else cfg.split_by,
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
    return out
