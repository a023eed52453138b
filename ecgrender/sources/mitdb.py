"""MIT-BIH Arrhythmia Database: rhythm episodes from the `.atr` aux notes are the labelled spans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from ..errors import EcgError
from .base import RecordInfo, Scan, Span
from .registry import register_database
from .wfdbfiles import DirectorySource

DEFAULT_CLASSES = ["N", "AFIB", "B", "T"]
LEADS = ("MLII",)  # stored first; the second lead (V1, V2, V4 or V5) follows. Record 114 stores V5 first.
PACED = frozenset({"102", "104", "107", "217"})
SAME_PATIENT = {"202": "201"}  # records 201 and 202 come from one subject


def rhythm_spans(samples: np.ndarray, symbols: list[str], aux_notes: list[str], n_samples: int) -> list[Span]:
    """Rhythm episodes: each `+` annotation whose aux note starts with "(" opens a rhythm that lasts
    until the next one (or the record end). Samples before the first rhythm annotation carry none."""
    changes = [
        (int(s), aux.rstrip("\x00").strip()[1:])
        for s, sym, aux in zip(samples, symbols, aux_notes)
        if sym == "+" and aux and aux.rstrip("\x00").strip().startswith("(")
    ]
    spans = []
    for i, (start, label) in enumerate(changes):
        end = changes[i + 1][0] if i + 1 < len(changes) else n_samples
        start, end = max(start, 0), min(end, n_samples)
        if end > start and label:
            spans.append(Span(start, end, label))
    return spans


CITATION = """@article{moody2001mitbih,
  author = {Moody, George B. and Mark, Roger G.},
  title = {The impact of the {MIT-BIH} Arrhythmia Database},
  journal = {IEEE Engineering in Medicine and Biology Magazine}, volume = {20}, number = {3}, pages = {45--50},
  year = {2001}, doi = {10.1109/51.932724}
}"""
URL, DOI = "https://physionet.org/content/mitdb/1.0.0/", "10.13026/C2F305"


@register_database("mitdb", title="MIT-BIH Arrhythmia Database", version="1.0.0", default_classes=DEFAULT_CLASSES,
                   leads=LEADS, annotators=("atr",), licence="ODC-By-1.0", url=URL, doi=DOI, citation=CITATION, mains_hz=60)
class MitdbSource(DirectorySource):
    """Records `NNN` in one folder, 2 leads at 360 Hz; labels per rhythm episode."""

    def patient(self, name: str) -> str:
        """Patient id: the record name, except 202 which is the subject of 201."""
        return SAME_PATIENT.get(name, name)

    def record_files(self, name: str) -> list[Path]:
        """Header, signal files and, when present, the `.atr` annotations (the rhythm labels)."""
        atr = self.root / f"{name}.atr"
        return super().record_files(name) + ([atr] if atr.is_file() else [])

    def _spans(self, name: str, n_samples: int) -> list[Span]:
        atr = self.root / f"{name}.atr"
        if not atr.is_file():
            raise EcgError(f"annotation file {atr} not found: mitdb rhythm labels come from .atr; copy it "
                           "or label the record with --labels")
        try:
            ann = wfdb.rdann(str(self.root / name), "atr")
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EcgError(f"cannot read annotations {atr}: {detail}; replace the file") from None
        return rhythm_spans(ann.sample, ann.symbol, ann.aux_note or [""] * len(ann.sample), n_samples)

    def scan(self) -> Scan:
        """Headers and rhythm episodes; a labels-CSV entry replaces the episodes by one whole-record span."""
        records, excluded = [], []
        for name in self.records:
            header = self.header(name)
            n = int(header.sig_len)
            if name in self.labels:
                spans = [Span(0, n, self.labels[name])]
            elif name.rsplit("/", 1)[-1] in PACED:
                excluded.append((name, "paced"))
                continue
            else:
                spans = self._spans(name, n)
                if not spans:
                    excluded.append((name, "no rhythm annotations in .atr"))
                    continue
            leads, why = self.stored_leads(header)
            if why:
                excluded.append((name, why))
                continue
            records.append(RecordInfo(name, self.patient(name), leads, float(header.fs), n, spans))
        return Scan(self.database, records, excluded)
