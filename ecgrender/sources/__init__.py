"""WFDB database adapters: `open_source(db, source_dir)` -> a `Source` listing records, leads, fs,
patients and labelled spans, and reading signals in physical units.

Every module of this package but the support modules below is an adapter that registers its Source
class with `@register_database` (registry.py); importing the package imports them all, so adding a
database is adding its module (docs/extending.md).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from ..errors import EcgError
from .base import RecordInfo, Scan, Source, Span
from .demo import demo_dir
from .labels import check_known, read_labels_csv
from .registry import DatabaseSpec, database_help, database_names, database_spec
from .resample import ResampledSource

_SUPPORT = ("base", "labels", "registry", "resample", "wfdbfiles")  # the modules here that are not adapters
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in _SUPPORT:
        importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "DatabaseSpec", "RecordInfo", "Scan", "Source", "Span", "database_help", "database_names", "database_spec",
    "demo_dir", "open_source",
]


def open_source(
    db: str,
    source_dir: Path | str | None,
    records: list[str] | None = None,
    labels_csv: Path | str | None = None,
    resample: float | None = None,
    **options,
) -> Source:
    """Open a database folder (`source_dir=None` only for databases that ship with the toolkit: `demo`).

    `records` selects a subset (unknown names are an error); `labels_csv` is a record,label CSV whose
    labels win over the database's own (its records must exist in the source); `resample` (Hz) resamples
    every record (resample.py); `options` are the database's own settings (e.g. PTB-XL's `fs`, `task`),
    None meaning its default.
    """
    spec = database_spec(db)
    if source_dir is None and spec.fetchable:
        raise EcgError(f"--db {db} needs --source DIR: the folder holding its WFDB files (e.g. from `ecgrender fetch {db}`)")
    given = {k: v for k, v in options.items() if v is not None}
    for name in given:
        if name not in spec.options:
            owners = [n for n in database_names() if name in database_spec(n).options]
            raise EcgError(f"--{name} applies to --db {' or '.join(owners) or '(none)'}, not to --db {db}: drop it")
    labels = read_labels_csv(labels_csv) if labels_csv is not None else {}
    source = spec.source(source_dir, records=records, labels=labels, **given)
    if labels_csv is not None:
        check_known(labels, source.all_records, labels_csv, db)
    return source if resample is None else ResampledSource(source, resample)
