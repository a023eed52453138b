"""WFDB file access shared by the adapters: record lists, headers, signals, each failure an EcgError.

Two checks guard against a header that does not describe its signal files: every signal file must
have the size the header implies (`expected_dat_bytes`), and every lead's physical values must be
plausible for an ECG (`check_plausible`; the rule is in docs/databases.md).
"""

from __future__ import annotations

import math
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


# Bytes per sample of the WFDB signal formats (https://wfdb.io/spec/signal-files.html); 212 packs two
# 12-bit samples in 3 bytes, 310 and 311 three 10-bit samples in 4 bytes.
BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3}
# The plausibility rule: per lead, the 99.9th percentile of |x - median| must not exceed this (mV).
MAX_SPREAD_MV = 20.0
SPREAD_PERCENTILE = 99.9


def expected_dat_bytes(fmt: str, n_samples: int, byte_offset: int = 0) -> tuple[int, int] | None:
    """(smallest, largest) size of a signal file of `n_samples` samples in format `fmt` after `byte_offset`
    header bytes; None for formats it does not know (compressed 508/516/524). 310 and 311 end in whole
    4-byte groups or not, so they have a range."""
    per_sample = BYTES_PER_SAMPLE.get(str(fmt))
    if per_sample is None:
        return None
    low = math.ceil(n_samples * per_sample)
    high = 4 * math.ceil(low / 4) if str(fmt) in ("310", "311") else low
    return byte_offset + low, byte_offset + high


def check_signal_sizes(header: wfdb.Record, hea: Path) -> None:
    """EcgError unless every signal file named in `header` has the size its format, length, samples per
    frame and byte offset imply (a wrong format code or length gives another size)."""
    per_frame = header.samps_per_frame or [1] * header.n_sig
    offsets = header.byte_offset or [None] * header.n_sig
    files: dict[str, list[int]] = {}
    for i, file_name in enumerate(header.file_name):
        files.setdefault(file_name, []).append(i)
    for file_name, signals in files.items():
        first = signals[0]
        frame = sum(int(per_frame[i] or 1) for i in signals)
        expected = expected_dat_bytes(header.fmt[first], int(header.sig_len) * frame, int(offsets[first] or 0))
        path = hea.parent / file_name
        size = path.stat().st_size
        if expected is not None and not expected[0] <= size <= expected[1]:
            raise EcgError(
                f"signal file {path} has {size} bytes, but {hea.name} (format {header.fmt[first]}, "
                f"{header.sig_len} samples x {frame} per frame) implies {expected[0]}: the header's format "
                "or length is wrong; restore the original header"
            )


def read_header(root: Path, name: str) -> wfdb.Record:
    """Header of record `name` (checked: readable, every signal file present with the size it implies)."""
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
    check_signal_sizes(header, hea)
    return header


def lead_spread(values: np.ndarray) -> float | None:
    """The SPREAD_PERCENTILE-th percentile of |x - median| of one lead's values (NaN ignored, as nanpercentile
    does), or None when it is surely at most MAX_SPREAD_MV, which is found without computing it: the
    percentile interpolates between the deviations of ranks k and k + 1 (k = 0.999 (n - 1), rounded down), so
    it stays within the limit when fewer than n - k - 2 deviations reach it (one rank to spare for rounding)."""
    if np.isnan(values).any():
        values = values[~np.isnan(values)]
        if not values.size:
            return None  # an all-NaN lead has no spread: nothing to judge
    deviation = np.abs(values - np.median(values))
    rank = int(SPREAD_PERCENTILE / 100 * (values.size - 1))
    if np.count_nonzero(deviation >= MAX_SPREAD_MV) < values.size - rank - 2:
        return None
    return float(np.percentile(deviation, SPREAD_PERCENTILE))


def check_plausible(signal: np.ndarray, leads: list[str], where: Path) -> None:
    """EcgError when a lead's values are implausible for an ECG in mV: the 99.9th percentile of
    |x - median| above MAX_SPREAD_MV (a wrong gain, baseline or format in the header). NaN is ignored."""
    for lead, row in zip(leads, np.ascontiguousarray(signal.T)):  # a contiguous row per lead partitions faster
        value = lead_spread(row)
        if value is not None and value > MAX_SPREAD_MV:
            raise EcgError(
                f"record {where}: lead {lead} swings {value:.3g} mV around its median (99.9th percentile), "
                f"more than the {MAX_SPREAD_MV:g} mV an ECG can: the header's gain, baseline or units are wrong; "
                f"restore the original {where.name}.hea"
            )


def lead_order(names: list[str], canonical: tuple[str, ...]) -> tuple[list[int], list[str]]:
    """(column order putting the `canonical` leads first, in that order, then the record's other leads
    as stored; the canonical leads the record lacks). Names are compared without case."""
    lower = [n.strip().lower() for n in names]
    missing = [lead for lead in canonical if lead.lower() not in lower]
    first = [lower.index(lead.lower()) for lead in canonical if lead.lower() in lower]
    return first + [i for i in range(len(names)) if i not in first], missing


def read_physical(root: Path, name: str) -> tuple[np.ndarray, list[str]]:
    """Whole record as float32 (n_samples, n_leads) in physical units (NaN where samples are missing),
    and its lead names as stored. Values implausible for an ECG are an EcgError (`check_plausible`)."""
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
    check_plausible(signal, list(record.sig_name), root / name)
    return signal, list(record.sig_name)


class HeaderCache:
    """Each record's header read once per source: hashing the source, scanning it and listing a record's files
    all need it (PTB-XL has thousands of records). Sources that mix it in set `self._headers = {}`."""

    root: Path
    _headers: dict[str, wfdb.Record]

    def header(self, name: str) -> wfdb.Record:
        """The checked header of record `name` (read_header), read on first use."""
        if name not in self._headers:
            self._headers[name] = read_header(self.root, name)
        return self._headers[name]


class DirectorySource(HeaderCache, Source):
    """A WFDB database folder: record list, `--records` subset and CSV labels; subclasses scan."""

    record_pattern = "*.hea"

    def __init__(self, root: Path | str, records: list[str] | None = None, labels: dict[str, str] | None = None):
        self.root = check_source_dir(root, self.database)
        self.all_records = list_records(self.root, self.record_pattern)
        self.records = select_records(self.all_records, records, self.root)
        self.labels = dict(labels or {})
        self._headers = {}

    def record_files(self, name: str) -> list[Path]:
        """The files of record `name` a build reads: its header and the signal files the header names."""
        hea = self.root / f"{name}.hea"
        return [hea, *(hea.parent / f for f in dict.fromkeys(self.header(name).file_name))]

    def stored_leads(self, header: wfdb.Record) -> tuple[list[str], str | None]:
        """(the record's lead names in the database's canonical order, None), or ([], why the record
        is left out) when it lacks a canonical lead."""
        names = list(header.sig_name)
        order, missing = lead_order(names, self.canonical_leads)
        if missing:
            return [], f"lacks the {'/'.join(missing)} lead that leads every {self.database} record (has {', '.join(names)})"
        return [names[i] for i in order], None

    def read_signal(self, name: str) -> np.ndarray:
        """Whole record as float32 (n_samples, n_leads) in physical units (NaN kept), its leads in the
        database's canonical order (as `stored_leads`)."""
        if name not in self.records:
            raise EcgError(f"record {name!r} is not among the selected {self.database} records in {self.root}")
        signal, names = read_physical(self.root, name)
        order, missing = lead_order(names, self.canonical_leads)
        if missing:
            raise EcgError(f"record {self.root / name} lacks the {'/'.join(missing)} lead: leave it out with --records")
        return signal[:, order]
