"""`--labels FILE.csv`: record,label rows that complete or override the labels a database provides."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import EcgError


def read_labels_csv(path: Path | str) -> dict[str, str]:
    """Read `record,label` rows (an optional `record,label` header row, blank lines ignored).

    Every row must have exactly two non-empty fields and a record may appear only once.
    """
    path = Path(path)
    if not path.is_file():
        raise EcgError(f"labels file {path} not found: give a CSV with record,label rows")
    labels: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EcgError(f"labels file {path} is not a readable CSV ({exc}); write record,label rows") from None
    for line_no, row in enumerate(rows, start=1):
        fields = [field.strip() for field in row]
        if not any(fields):
            continue
        if line_no == 1 and [f.lower() for f in fields] == ["record", "label"]:
            continue
        if len(fields) != 2 or not all(fields):
            raise EcgError(
                f"labels file {path} line {line_no}: expected 'record,label', got {','.join(row)!r}"
            )
        record, label = fields
        if record in labels and labels[record] != label:
            raise EcgError(
                f"labels file {path} line {line_no}: record {record!r} labelled twice "
                f"({labels[record]!r} and {label!r}); keep one row per record"
            )
        labels[record] = label
    if not labels:
        raise EcgError(f"labels file {path} has no record,label rows")
    return labels


def check_known(labels: dict[str, str], known: list[str], path: Path | str, database: str) -> None:
    """An EcgError naming the first record of the labels file that the database does not have."""
    known_set = set(known)
    for record in labels:
        if record not in known_set:
            raise EcgError(
                f"labels file {path} names record {record!r}, which is not in the {database} source "
                f"(e.g. {known[0]!r}); fix or remove that row"
            )
