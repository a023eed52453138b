"""WFDB file access shared by the adapters: record lists, headers, signals, each failure an EcgError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from ..errors import EcgError
from .base import Source


def check_source_dir(root: Path | str, database: str) -> Path:
    """The source directory as a Path; an EcgError when it is not an existing directory."""
    root = Path(root)
    if not root.is_dir():
        raise EcgError(
            f"{database} source directory {root} not found: give the folder holding the WFDB files "
            f"(a local copy, or `ecgrender fetch {database} --dest DIR`)"
        )
    return root


def list_records(root: Path, pattern: str) -> list[str]:
    """Record names relative to `root`: the lines of `RECORDS` if present, else the `.hea` files
    matching `pattern` (e.g. "*.hea", "*/*.hea"), sorted."""
    records_file = root / "RECORDS"
    if records_file.is_file():
        names = [line.strip() for line in records_file.read_text().splitlines()]
        names = [n for n in names if n]
    else:
        names = sorted(str(p.relative_to(root).with_suffix("")).replace("\\", "/") for p in root.glob(pattern))
    if not names:
        raise EcgError(
            f"no WFDB records in {root}: expected a RECORDS file or {pattern} headers; "
            "check --source points at the database folder"
        )
    return names


def select_records(all_names: list[str], wanted: list[str] | None, root: Path) -> list[str]:
    """`wanted` in the given order (all records when None); an unknown name is an EcgError."""
    if wanted is None:
        return list(all_names)
    known = set(all_names)
    for name in wanted:
        if name not in known:
            raise EcgError(
                f"record {name!r} is not in {root} ({len(all_names)} records, e.g. {all_names[0]!r}): "
                "fix --records"
            )
    return list(dict.fromkeys(wanted))


def read_header(root: Path, name: str) -> wfdb.Record:
    """Header of record `name` (checked: readable, every signal file present)."""
    hea = root / f"{name}.hea"
    if not hea.is_file():
        raise EcgError(f"header {hea} not found: check the record path (a listed record needs its .hea file)")
    try:
        header = wfdb.rdheader(str(root / name))
    except Exception as exc:  # wfdb raises many types on a malformed header
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EcgError(f"cannot read header {hea}: {detail}; replace the file with a valid WFDB header") from None
    if not header.sig_name or not header.fs or not header.sig_len:
        raise EcgError(f"header {hea} has no signals, sampling frequency or length; replace the file")
    for file_name in dict.fromkeys(header.file_name or []):
        path = hea.parent / file_name
        if not path.is_file():
            raise EcgError(f"signal file {path} not found (named in {hea.name}): copy the complete record")
    return header


def read_physical(root: Path, name: str) -> np.ndarray:
    """Whole record as float32 (n_samples, n_leads) in physical units; NaN where samples are missing."""
    try:
        record = wfdb.rdrecord(str(root / name))
    except FileNotFoundError as exc:
        raise EcgError(f"signal file {exc.filename or name} not found: copy the complete record") from None
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EcgError(f"cannot read record {root / name}: {detail}; check its .hea/.dat files") from None
    signal = np.asarray(record.p_signal, dtype=np.float32)
    if signal.ndim != 2 or signal.shape[1] != record.n_sig:
        raise EcgError(f"record {root / name}: signal shape {signal.shape} does not match its {record.n_sig} leads")
    return signal


class DirectorySource(Source):
    """A WFDB database folder: record list, `--records` subset and CSV labels; subclasses scan."""

    record_pattern = "*.hea"

    def __init__(self, root: Path | str, records: list[str] | None = None, labels: dict[str, str] | None = None):
        self.root = check_source_dir(root, self.database)
        self.all_records = list_records(self.root, self.record_pattern)
        self.records = select_records(self.all_records, records, self.root)
        self.labels = dict(labels or {})

    def read_signal(self, name: str) -> np.ndarray:
        """Whole record as float32 (n_samples, n_leads) in physical units (NaN kept)."""
        if name not in self.records:
            raise EcgError(f"record {name!r} is not among the selected {self.database} records in {self.root}")
        return read_physical(self.root, name)
