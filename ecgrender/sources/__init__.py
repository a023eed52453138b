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

_SUPPORT = ("base", "labels", "registry", "wfdbfiles")  # the modules here that are not adapters
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
) -> Source:
    """Open a database folder (`source_dir=None` only for databases that ship with the toolkit: `demo`).

    `records` selects a subset (unknown names are an error); `labels_csv` is a record,label CSV whose
    labels win over the database's own (its records must exist in the source).
    """
    spec = database_spec(db)
    if source_dir is None and spec.fetchable:
        raise EcgError(f"--db {db} needs --source DIR: the folder holding its WFDB files (e.g. from `ecgrender fetch {db}`)")
    if labels_csv is None:
        return spec.source(source_dir, records=records, labels={})
    labels = read_labels_csv(labels_csv)
    source = spec.source(source_dir, records=records, labels=labels)
    check_known(labels, source.all_records, labels_csv, db)
    return source
