"""`ecgrender build`: source -> windows -> manifest -> refecg.h5 + staging -> shards -> card.

Every stage leaves a complete file or none (temporary names, renamed when complete), and the
settings of a build (with the sha256 of the source files it reads) are stored with it, so re-running
the same command after an interruption finishes only what is missing and ends with the same bytes as
an uninterrupted build. The manifest rows come from rows.py, the `--out` lock and disk errors from
outdir.py (docs/build.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from tqdm import tqdm

from shards.card import file_digest, read_card, write_card
from shards.layout import CARD, IMAGES, MANIFEST, REFECG, SPLITS, write_atomic
from shards.manifest import Window, manifest_classes, read_manifest, write_manifest

from . import __version__
from .errors import EcgError
from .extract import extract_windows
from .noise import WindowNoise, parse_noise_spec
from .noise.nstdb import noise_record_digests
from .outdir import LOCK, disk_error, locked_out, remove_stale_temps
from .render.geometry import PAPER
from .render_shards import render_shards
from .rows import check_card_leads, dataset_leads, plan_rows, restrict_classes, split_scheme
from .sources import open_source
from .sources.registry import database_spec, provenance
from .splits import split_file_path

WORK = ".build"  # settings and staging of an unfinished build
PARAMS = "params.json"
CLASSES = "classes.json"
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
    fs: int | None = None  # a database's stored rate to read (PTB-XL: 100 or 500); None: its default
    task: str | None = None  # a multi-label database's label task (PTB-XL: superdiagnostic, ...); None: default
    resample: float | None = None  # Hz: every record resampled to this rate (sources/resample.py)
    folds_val: list[int] | None = None  # --split-by fold: validation folds (None: 9)
    folds_test: list[int] | None = None  # --split-by fold: test folds (None: 10)
    noise: str | None = None  # --noise SPEC: noisy copies of --manifest's windows (noise/, docs/noise.md)
    noise_splits: list[str] | None = None  # the manifest's splits to copy with --noise (None: test)
    noise_source: Path | None = None  # MIT-BIH Noise Stress Test Database folder: real bw/ma/em noise
    description: str | None = None  # free text for the card (not a setting: it does not change the data)
    creators: list[str] | None = None  # who made the dataset, for the card (not a setting)
    jobs: int = -1
    force: bool = False

    def __post_init__(self):
        if self.split_file is not None:
            self.split_by = "file"  # --split-file: the file decides, by record

    def settings(self, source_sha256: str, noise_sha256: dict[str, str] | None = None) -> dict:
        """The options that decide the dataset's content (not where or how fast it is built), the
        combined digest of the source files it reads (`source_digest`) and those of the noise records."""
        settings: dict = {
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
            "fs": self.fs,
            "task": self.task,
            "resample": self.resample,
            "folds_val": self.folds_val,
            "folds_test": self.folds_test,
        }
        if self.noise:  # only then: builds made before --noise existed keep their settings
            settings |= {"noise": ",".join(map(str, parse_noise_spec(self.noise))),
                         "noise_splits": self.noise_splits_used, "noise_source_sha256": noise_sha256}
        return settings

    @property
    def noise_splits_used(self) -> list[str] | None:
        """The splits a --noise build copies, in split order (test unless --noise-splits); None without --noise."""
        return [s for s in SPLITS if s in (self.noise_splits or ["test"])] if self.noise else None


# BuildConfig fields that are not options of the data: where and how fast it is built, and what the card says.
_NOT_DATA = ("db", "source", "out", "jobs", "force", "description", "creators", "noise_source")


def reproduce_command(cfg: BuildConfig) -> str:
    """The `ecgrender build` command that makes the dataset again: every option that decides its content and
    differs from the default, with SOURCE and OUT standing for the source folder and the output directory."""
    default = BuildConfig(db=cfg.db, out=cfg.out)
    parts = ["ecgrender", "build", "--db", cfg.db] + (["--source", "SOURCE"] if cfg.source is not None else [])
    parts += ["--noise-source", "NSTDB"] if cfg.noise_source is not None else []
    for f in fields(BuildConfig):
        value = getattr(cfg, f.name)
        if f.name in _NOT_DATA or value == getattr(default, f.name) or (f.name == "split_by" and cfg.split_file):
            continue
        option = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(option)
        elif isinstance(value, dict):
            parts += [option, ",".join(f"{k}={v}" for k, v in value.items())]
        elif isinstance(value, list):
            parts += [option, ",".join(map(str, value))]
        else:
            parts += [option, str(value)]
    return shlex.join(parts + ["--out", "OUT"])


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
            rel = path.relative_to(source.root).as_posix()
            if rel not in files:  # files shared by records (PTB-XL's tables) are hashed once
                files[rel] = file_digest(path)[0]
    return dict(sorted(files.items()))


def source_digest(files: dict[str, str]) -> str:
    """One sha256 for a {relative path: sha256} map: it changes when any file, name or the set changes."""
    return hashlib.sha256("".join(f"{rel}\t{sha}\n" for rel, sha in sorted(files.items())).encode()).hexdigest()


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


def summarize(rows: list[Window], classes: list[str]) -> dict:
    """Windows per split and class (a multi-label window counts for each of its classes)."""
    counts = Counter((w.split, c) for w in rows for c in w.classes)
    return {s: {c: counts[(s, c)] for c in classes} for s in SPLITS}


def _stored_classes(work: Path) -> list[str]:
    """The classes of an unfinished multi-label build (written with its manifest)."""
    path = work / CLASSES
    if not path.is_file():
        raise EcgError(f"{path.parent.parent} holds a multi-label manifest without its classes: use --force")
    return json.loads(path.read_text())


def _source_options(cfg: BuildConfig, source, scan, classes: list[str]) -> dict:
    """The card's record of how the source was read: database options, resampling, records left out (by why;
    a multi-label build also leaves out the records without any of its classes)."""
    if source.multi_label:
        scan = restrict_classes(scan, classes)
    extra: dict = {}
    for name in ("fs", "task"):
        value = getattr(source, name, None)
        if value is not None:
            extra[name] = value
    if cfg.resample is not None:
        extra["resampled_to_hz"] = cfg.resample
    if scan.excluded:
        extra["records_left_out"] = dict(sorted(Counter(why for _, why in scan.excluded).items()))
    return extra


def build_dataset(cfg: BuildConfig, echo: Callable[[str], None] = print, progress: bool = True) -> Path:
    """Run (or resume) a build; returns the dataset directory. An OSError (full disk, permissions, in
    this process or a render worker) becomes an EcgError naming the file (`disk_error`)."""
    if cfg.test_fraction + cfg.val_fraction >= 1:
        raise EcgError(f"--test-fraction {cfg.test_fraction} + --val-fraction {cfg.val_fraction} leave nothing "
                       "for train: lower them")
    if cfg.jobs == 0:
        raise EcgError("--jobs 0 runs nothing: give a number of jobs, or -1 for all cores")
    try:
        if (cfg.folds_val is not None or cfg.folds_test is not None) and cfg.split_by != "fold":
            raise EcgError("--folds-val and --folds-test go with --split-by fold")
        _check_noise_options(cfg)
        source = open_source(cfg.db, cfg.source, records=cfg.records, labels_csv=cfg.labels, resample=cfg.resample,
                             fs=cfg.fs, task=cfg.task)
        with locked_out(cfg.out):
            _build(cfg, source, echo, progress)
    except OSError as exc:
        raise disk_error(exc, cfg.out) from exc
    return cfg.out


def _check_noise_options(cfg: BuildConfig) -> None:
    """EcgError for --noise without --manifest, a bad SPEC, or --noise-splits/--noise-source without --noise."""
    if not cfg.noise:
        if cfg.noise_splits or cfg.noise_source is not None:
            raise EcgError("--noise-splits and --noise-source go with --noise SPEC (e.g. --noise bw:6)")
        return
    parse_noise_spec(cfg.noise)
    if cfg.manifest is None:
        raise EcgError("--noise makes noisy copies of a dataset's windows: give its manifest with --manifest "
                       "(e.g. --manifest datasets/mitdb/manifest.csv)")
    unknown = [s for s in cfg.noise_splits or [] if s not in SPLITS]
    if unknown:
        raise EcgError(f"--noise-splits {unknown[0]!r} is not a split: choose from {', '.join(SPLITS)}")


def _window_noise(cfg: BuildConfig, rows: list[Window]) -> WindowNoise:
    """The noise a --noise build adds to each window."""
    return WindowNoise(parse_noise_spec(cfg.noise or ""), rows[0].fs, cfg.seed, database_spec(cfg.db).mains_hz,
                       cfg.noise_source)


def _noise_card(cfg: BuildConfig, noise: WindowNoise, noise_files: dict[str, str] | None) -> dict:
    """The card's record of a --noise build: components, seed, splits, SNR definition, the clean card it copies."""
    assert cfg.manifest is not None
    clean = cfg.manifest.parent / CARD
    card = {
        "components": [{"type": c.kind, "snr_db": c.snr_db if math.isfinite(c.snr_db) else "inf",
                        "origin": noise.origin(c.kind)} for c in noise.components],
        "seed": cfg.seed,
        "splits": cfg.noise_splits_used,
        "snr_definition": "nst's (WFDB), per window and lead: S = (peak-to-peak amplitude)^2 / 8, N = (mean over "
                          "~1-s chunks of the RMS about the chunk mean)^2 (docs/noise.md)",
        "mains_hz": noise.mains_hz,
        "of_card_sha256": file_digest(clean)[0] if clean.is_file() else None,
    }
    if noise_files:
        card["noise_source_files"] = noise_files
    return card


def _build(cfg: BuildConfig, source, echo: Callable[[str], None], progress: bool) -> None:
    """The build itself, in the locked `cfg.out`."""
    files = source_files(source, progress)
    noise_files = None
    if cfg.noise and cfg.noise_source is not None:
        noise_files = noise_record_digests(cfg.noise_source, [c.kind for c in parse_noise_spec(cfg.noise)])
    settings = cfg.settings(source_digest(files), noise_files)
    if not _prepare_out(cfg, settings, echo):
        return
    out, work = cfg.out, cfg.out / WORK
    remove_stale_temps(out)
    scan = source.scan()
    if (out / MANIFEST).exists():
        rows = read_manifest(out / MANIFEST)
        classes = manifest_classes(rows, out / MANIFEST, _stored_classes(work) if source.multi_label else None)
        leads = dataset_leads(scan, rows)
        noise = _window_noise(cfg, rows) if cfg.noise else None
    else:
        rows, classes = plan_rows(cfg, source, scan, echo, progress)
        leads = dataset_leads(scan, rows)
        noise = _window_noise(cfg, rows) if cfg.noise else None
        if noise is not None:  # a rate or a noise record that cannot serve: refused before any file is written
            noise.check(rows[0].length, len(leads))
        if cfg.manifest:
            check_card_leads(cfg.manifest, leads)
        work.mkdir(parents=True, exist_ok=True)  # from here on a re-run with the same settings resumes
        write_atomic(work / PARAMS, json.dumps(settings, sort_keys=True))
        if source.multi_label:  # a multi-label manifest does not name its classes: keep them for a resume
            write_atomic(work / CLASSES, json.dumps(classes))
        write_manifest(out / MANIFEST, rows)
    staging = work / STAGING
    if not staging.exists():
        extract_windows(source, rows, len(leads), out / REFECG, staging, progress=progress,
                        n_classes=len(classes) if source.multi_label else None, noise=noise, jobs=cfg.jobs)
    shard_digests = render_shards(out, rows, staging, cfg.renderer, PAPER, cfg.shard_size, cfg.jobs, progress=progress)
    staging.unlink()
    counts = summarize(rows, classes)
    card = {
        "software_version": f"ecgrender {__version__}",
        "source": {"database": source.database, "version": source.version, "records": len({w.record for w in rows}),
                   "files": files, **_source_options(cfg, source, scan, classes), **provenance(source.database)},
        "label_type": "multi-label" if source.multi_label else "single-label",
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
    if source.multi_label:
        card["split_windows"] = {s: sum(w.split == s for w in rows) for s in SPLITS}
    if noise is not None:
        card["noise"] = _noise_card(cfg, noise, noise_files)
    card["command"] = reproduce_command(cfg)
    if cfg.description:
        card["description"] = cfg.description
    if cfg.creators:
        card["creators"] = list(cfg.creators)
    write_card(out, card, shard_digests)
    shutil.rmtree(work)
    for split in SPLITS:
        windows = sum(w.split == split for w in rows)  # a multi-label window counts for each of its classes
        echo(f"{split:>5}: " + ", ".join(f"{c} {counts[split][c]}" for c in classes) + f"  ({windows} windows)")
    echo(f"dataset complete: {out} ({len(rows)} windows)")
