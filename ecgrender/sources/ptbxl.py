"""PTB-XL 1.0.3: records and patients from `ptbxl_database.csv`, multi-label classes from its `scp_codes`
through `scp_statements.csv`, folds from `strat_fold`.

Label tasks follow the PTB-XL benchmark (Strodthoff et al., IEEE JBHI 2021): every statement a record's
`scp_codes` lists counts, whatever its likelihood (0 means "not given" for form and rhythm statements);
a diagnostic statement maps to itself (`diagnostic`), its `diagnostic_subclass` (`subdiagnostic`) or
its `diagnostic_class` (`superdiagnostic`); `form` and `rhythm` keep the statements of that kind; `all`
keeps every statement. A record without a statement of the task is left out (docs/databases.md).
"""

from __future__ import annotations

import ast
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shards.manifest import SEPARATOR

from ..errors import EcgError
from .base import RecordInfo, Scan, Source, Span
from .registry import register_database
from .wfdbfiles import HeaderCache, check_source_dir, lead_order, read_physical, select_records

DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"
RATES = {100: "filename_lr", 500: "filename_hr"}  # --fs -> the column naming the record at that rate
TASKS = ("superdiagnostic", "subdiagnostic", "diagnostic", "form", "rhythm", "all")
SUPERDIAGNOSTIC = ("NORM", "MI", "STTC", "CD", "HYP")  # the order of the PTB-XL paper
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")  # stored as AVR, AVL, AVF
FOLDS = range(1, 11)
_DATABASE_COLUMNS = ("ecg_id", "patient_id", "scp_codes", "strat_fold", "filename_lr", "filename_hr")
_STATEMENT_COLUMNS = ("diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass")


CITATION = """@article{wagner2020ptbxl,
  author = {Wagner, Patrick and Strodthoff, Nils and Bousseljot, Ralf-Dieter and Kreiseler, Dieter and
            Lunze, Fatima I. and Samek, Wojciech and Schaeffter, Tobias},
  title = {{PTB-XL}, a large publicly available electrocardiography dataset},
  journal = {Scientific Data}, volume = {7}, pages = {154}, year = {2020}, doi = {10.1038/s41597-020-0495-6}
}"""


@dataclass(frozen=True)
class Statement:
    """One row of scp_statements.csv: the kinds it belongs to and its diagnostic aggregation."""

    code: str
    diagnostic: bool
    form: bool
    rhythm: bool
    diagnostic_class: str
    diagnostic_subclass: str


@dataclass(frozen=True)
class Entry:
    """One row of ptbxl_database.csv."""

    line: int
    ecg_id: str
    patient: str
    codes: dict[str, float]  # SCP statement -> likelihood
    fold: int
    record: str  # path of the record at the chosen rate, without extension


def _flag(value: str) -> bool:
    return value.strip() not in ("", "0", "0.0")


def _read_csv(path: Path, columns: tuple[str, ...], what: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with a header; EcgError naming the file when it is absent or lacks columns."""
    if not path.is_file():
        raise EcgError(f"{path} not found: a PTB-XL folder holds {DATABASE_CSV} and {STATEMENTS_CSV} next to "
                       f"records100/ and records500/ (`ecgrender fetch ptbxl --dest DIR`)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise EcgError(f"{path} lacks the column(s) {', '.join(missing)} of PTB-XL's {what}: "
                               "use the file of the published database (version 1.0.3)")
            return [(line, row) for line, row in enumerate(reader, start=2)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EcgError(f"{path} is not a readable CSV ({exc}): restore the published file") from None


def read_statements(root: Path) -> dict[str, Statement]:
    """scp_statements.csv: statement code (its first, unnamed column) -> Statement."""
    path = root / STATEMENTS_CSV
    rows = _read_csv(path, _STATEMENT_COLUMNS, "statement table")
    statements = {}
    for line, row in rows:
        code = (row.get("") or "").strip()
        if not code:
            raise EcgError(f"{path} line {line}: no statement code in the first column: restore the published file")
        statements[code] = Statement(code, _flag(row["diagnostic"]), _flag(row["form"]), _flag(row["rhythm"]),
                                     row["diagnostic_class"].strip(), row["diagnostic_subclass"].strip())
    if not statements:
        raise EcgError(f"{path} lists no statements: restore the published file")
    return statements


def parse_scp_codes(text: str, where: str) -> dict[str, float]:
    """A `scp_codes` cell ("{'NORM': 100.0, 'SR': 0.0}") -> {statement: likelihood}; parsed as a Python
    literal (never evaluated as code)."""
    try:
        codes = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        codes = None
    if not isinstance(codes, dict) or not all(isinstance(k, str) and isinstance(v, (int, float))
                                               and not isinstance(v, bool) for k, v in codes.items()):
        raise EcgError(f"{where}: scp_codes {text[:60]!r} is not a {{statement: likelihood}} dictionary: "
                       "restore the published ptbxl_database.csv")
    return {k: float(v) for k, v in codes.items()}


def read_database(root: Path, fs: int) -> list[Entry]:
    """ptbxl_database.csv, checked: ids, patients, scp_codes, folds 1-10, the record path of rate `fs`."""
    path = root / DATABASE_CSV
    entries = []
    for line, row in _read_csv(path, _DATABASE_COLUMNS, "database table"):
        where = f"{path} line {line} (ecg_id {row['ecg_id']})"
        try:
            patient = str(int(float(row["patient_id"])))
            fold = int(row["strat_fold"])
        except (ValueError, OverflowError):
            raise EcgError(f"{where}: patient_id {row['patient_id']!r} or strat_fold {row['strat_fold']!r} is not "
                           "a number: restore the published file") from None
        if fold not in FOLDS:
            raise EcgError(f"{where}: strat_fold {fold} is outside 1-10: restore the published file")
        record = row[RATES[fs]].strip()
        if not record:
            raise EcgError(f"{where}: no {RATES[fs]} record path: restore the published file")
        entries.append(Entry(line, row["ecg_id"].strip(), patient, parse_scp_codes(row["scp_codes"], where), fold,
                             record))
    if not entries:
        raise EcgError(f"{path} has no records: restore the published file")
    return entries


def _listed_records(root: Path) -> set[str] | None:
    """The record paths of the folder's RECORDS file (both rates on PhysioNet; those fetched after `ecgrender
    fetch`), or None without one."""
    path = root / "RECORDS"
    if not path.is_file():
        return None
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def task_classes(statements: dict[str, Statement], task: str) -> list[str]:
    """The classes of `task` in label-id order: superdiagnostic in the PTB-XL paper's order, others sorted."""
    if task == "superdiagnostic":
        return list(SUPERDIAGNOSTIC)
    return sorted({c for s in statements.values() for c in _classes_of(s, task)})


def _classes_of(statement: Statement, task: str) -> list[str]:
    if task == "all":
        return [statement.code]
    if task in ("form", "rhythm"):
        return [statement.code] if getattr(statement, task) else []
    if not statement.diagnostic:
        return []
    target = {"diagnostic": statement.code, "subdiagnostic": statement.diagnostic_subclass,
              "superdiagnostic": statement.diagnostic_class}[task]
    return [target] if target else []


def record_classes(codes: dict[str, float], statements: dict[str, Statement], task: str, where: str) -> set[str]:
    """The classes of `task` a record's statements give (every listed statement, whatever its likelihood)."""
    unknown = [c for c in codes if c not in statements]
    if unknown:
        raise EcgError(f"{where}: statement {unknown[0]!r} is not in {STATEMENTS_CSV}: use the statement table of "
                       "the same PTB-XL release")
    return {c for code in codes for c in _classes_of(statements[code], task)}


@register_database("ptbxl", title="PTB-XL 12-lead ECGs, multi-label SCP statements (--fs, --task)",
                   version="1.0.3", default_classes=SUPERDIAGNOSTIC, leads=LEADS, physionet="ptb-xl",
                   fetch_files=(DATABASE_CSV, STATEMENTS_CSV), options=("fs", "task"), multi_label=True,
                   licence="CC-BY-4.0", url="https://physionet.org/content/ptb-xl/1.0.3/", doi="10.13026/kfzx-aw45",
                   citation=CITATION)
class PtbxlSource(HeaderCache, Source):
    """A PTB-XL folder; records are the paths its database table names for rate `fs` (e.g.
    `records100/00000/00001_lr`), only those a RECORDS file lists where the folder has one (as PhysioNet's
    and `ecgrender fetch`'s do); one whole-record span per record, labelled with its classes of `task`."""

    def __init__(self, root: Path | str, records: list[str] | None = None, labels: dict[str, str] | None = None,
                 fs: int | None = None, task: str | None = None):
        fs, task = fs or 100, task or "superdiagnostic"
        if fs not in RATES:
            raise EcgError(f"--fs {fs}: PTB-XL is stored at 100 Hz (records100/) and 500 Hz (records500/); "
                           "choose one (--resample HZ renders at another rate)")
        if task not in TASKS:
            raise EcgError(f"--task {task!r} is not a PTB-XL task: choose one of {', '.join(TASKS)}")
        if labels:
            raise EcgError("--labels does not apply to --db ptbxl: its labels come from scp_codes (choose them with "
                           "--task and --classes)")
        self.root = check_source_dir(root, self.database)
        self._headers = {}
        self.fs, self.task = fs, task
        self.statements = read_statements(self.root)
        self.entries: dict[str, Entry] = {}
        listed = _listed_records(self.root)
        for entry in read_database(self.root, fs):
            if listed is not None and entry.record not in listed:
                continue
            first = self.entries.setdefault(entry.record, entry)
            if first is not entry:
                raise EcgError(f"{self.root / DATABASE_CSV} lines {first.line} and {entry.line} both name record "
                               f"{entry.record}: restore the published file")
        if not self.entries:
            raise EcgError(f"{self.root / 'RECORDS'} lists no record of {DATABASE_CSV} at {fs} Hz: fetch that rate "
                           f"(`ecgrender fetch ptbxl --fs {fs}`) or choose the --fs you fetched")
        self.all_records = list(self.entries)
        self.records = select_records(self.all_records, records, self.root)
        self.default_classes = tuple(task_classes(self.statements, task))

    @staticmethod
    def fetch_records(available: list[str], fs: int | None = None) -> list[str]:
        """The records `ecgrender fetch ptbxl --fs` downloads: those of one rate (records100/ or records500/)."""
        fs = fs or 100
        if fs not in RATES:
            raise EcgError(f"--fs {fs}: PTB-XL is stored at 100 Hz and 500 Hz; choose one")
        folder = f"records{fs}/"
        return [r for r in available if r.startswith(folder)]

    def record_files(self, name: str) -> list[Path]:
        """The tables (their labels decide the dataset) and the record's header and signal files."""
        hea = self.root / f"{name}.hea"
        tables = [self.root / DATABASE_CSV, self.root / STATEMENTS_CSV]
        return [*tables, hea, *(hea.parent / f for f in dict.fromkeys(self.header(name).file_name))]

    def scan(self) -> Scan:
        """Every selected record's header (checked), classes of the task, patient and fold; records without a
        statement of the task are left out."""
        records, excluded = [], []
        for name in self.records:
            entry = self.entries[name]
            where = f"{self.root / DATABASE_CSV} line {entry.line} (ecg_id {entry.ecg_id})"
            classes = record_classes(entry.codes, self.statements, self.task, where)
            if not classes:
                excluded.append((name, f"no {self.task} statement"))
                continue
            header = self.header(name)
            _, missing = lead_order(list(header.sig_name), LEADS)
            if missing:
                excluded.append((name, f"lacks the {'/'.join(missing)} lead (has {', '.join(header.sig_name)})"))
                continue
            n = int(header.sig_len)
            label = SEPARATOR.join(c for c in self.default_classes if c in classes)
            records.append(RecordInfo(name, entry.patient, list(LEADS), float(header.fs), n, [Span(0, n, label)],
                                      fold=entry.fold))
        if not records:
            raise EcgError(f"ptbxl: no selected record has a {self.task} statement ({len(excluded)} left out): "
                           "choose another --task or more --records")
        return Scan(self.database, records, excluded)

    def read_signal(self, name: str) -> np.ndarray:
        """Whole record as float32 (n_samples, 12) in mV, leads in the standard order."""
        if name not in self.entries:
            raise EcgError(f"record {name!r} is not in {self.root / DATABASE_CSV}")
        signal, names = read_physical(self.root, name)
        order, missing = lead_order(names, LEADS)
        if missing:
            raise EcgError(f"record {self.root / name} lacks the {'/'.join(missing)} lead: leave it out with --records")
        return signal[:, order[: len(LEADS)]]
