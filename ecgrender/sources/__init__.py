"""WFDB database adapters: `open_source(db, source_dir)` -> a `Source` listing records, leads, fs,
patients and labelled spans, and reading signals in physical units."""

from __future__ import annotations

from pathlib import Path

from ..errors import EcgError
from . import incartdb, mitdb, ptbdb
from .base import RecordInfo, Scan, Source, Span
from .demo import DemoSource, demo_dir
from .labels import check_known, read_labels_csv

DATABASES = ("mitdb", "ptbdb", "incartdb", "demo")
DEFAULT_CLASSES: dict[str, list[str]] = {
    "mitdb": list(mitdb.DEFAULT_CLASSES),
    "ptbdb": list(ptbdb.DEFAULT_CLASSES),
    "incartdb": list(incartdb.DEFAULT_CLASSES),
    "demo": list(mitdb.DEFAULT_CLASSES),
}
_SOURCES = {
    "mitdb": mitdb.MitdbSource,
    "ptbdb": ptbdb.PtbdbSource,
    "incartdb": incartdb.IncartdbSource,
    "demo": DemoSource,
}

__all__ = ["DATABASES", "DEFAULT_CLASSES", "RecordInfo", "Scan", "Source", "Span", "demo_dir", "open_source"]


def open_source(
    db: str,
    source_dir: Path | str | None,
    records: list[str] | None = None,
    labels_csv: Path | str | None = None,
) -> Source:
    """Open a database folder (`source_dir=None` only for `demo`: the bundled sample).

    `records` selects a subset (unknown names are an error); `labels_csv` is a record,label CSV whose
    labels win over the database's own (its records must exist in the source).
    """
    if db not in _SOURCES:
        raise EcgError(f"unknown database {db!r}: choose one of {', '.join(DATABASES)}")
    if source_dir is None and db != "demo":
        raise EcgError(f"--source is required for {db}: give the folder holding its WFDB files")
    labels = read_labels_csv(labels_csv) if labels_csv is not None else {}
    source = _SOURCES[db](source_dir, records=records, labels=labels)
    if labels:
        check_known(labels, source.all_records, labels_csv, db)
    return source
