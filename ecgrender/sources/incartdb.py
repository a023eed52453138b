"""St.-Petersburg INCART 12-lead Arrhythmia Database: label from `<diagnoses>`, patient from `# patient N`."""

from __future__ import annotations

import re

from ..errors import EcgError
from .base import RecordInfo, Scan, Span
from .registry import register_database
from .wfdbfiles import DirectorySource

DEFAULT_CLASSES = [
    "Coronary artery disease",
    "Myocardial infarction",
    "Transient ischemic attack",
    "Sinus node dysfunction",
]

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")  # the standard 12

# Every `<diagnoses>` text found in the 75 INCART headers -> record label (whole text, lower-cased,
# white space folded). Both coronary-disease variants share one class, acute and earlier MI another.
DIAGNOSES_TO_CLASS = {
    "coronary artery disease, arterial hypertension": "Coronary artery disease",
    "coronary artery disease, arterial hypertension, left ventricular hypertrophy": "Coronary artery disease",
    "acute mi": "Myocardial infarction",
    "earlier mi": "Myocardial infarction",
    "transient ischemic attack": "Transient ischemic attack",
    "sinus node dysfunction": "Sinus node dysfunction",
}
_DIAGNOSES = re.compile(r"<diagnoses>(.*)$", re.IGNORECASE)
_PATIENT = re.compile(r"^\s*patient\s+(\d+)\s*$", re.IGNORECASE)


def parse_comments(comments: list[str]) -> tuple[str | None, str | None]:
    """(diagnoses text or None when the token is absent or empty, patient number or None)."""
    diagnoses = patient = None
    for comment in comments:
        match = _DIAGNOSES.search(comment)
        if match and match.group(1).strip():
            diagnoses = match.group(1).strip()
        match = _PATIENT.match(comment)
        if match:
            patient = match.group(1)
    return diagnoses, patient


def diagnosis_class(diagnoses: str) -> str | None:
    """Record label of a `<diagnoses>` text, or None when the text is not in the mapping."""
    return DIAGNOSES_TO_CLASS.get(" ".join(diagnoses.lower().split()))


@register_database("incartdb", title="St.-Petersburg INCART 12-lead Arrhythmia Database", version="1.0.0",
                   default_classes=DEFAULT_CLASSES, leads=LEADS, annotators=("atr",), licence="ODC-By-1.0",
                   url="https://physionet.org/content/incartdb/1.0.0/", doi="10.13026/C2V88N",
                   citation="""@misc{incartdb,
  title = {St {Petersburg} {INCART} 12-lead Arrhythmia Database (version 1.0.0)},
  howpublished = {PhysioNet}, doi = {10.13026/C2V88N}
}""")
class IncartdbSource(DirectorySource):
    """Records `I01`..`I75` in one folder, 12 leads at 257 Hz; one whole-record span per record."""


    def scan(self) -> Scan:
        """Headers and labels: labels CSV first, else the mapped `<diagnoses>`; records without one left out."""
        records, excluded = [], []
        for name in self.records:
            header = self.header(name)
            hea = self.root / f"{name}.hea"
            diagnoses, patient = parse_comments(header.comments or [])
            if patient is None:
                raise EcgError(f"{hea} has no '# patient N' comment: the patient id is needed for "
                               "patient-level splits; restore the original header")
            if name in self.labels:
                label = self.labels[name]
            elif diagnoses is None:
                excluded.append((name, "no <diagnoses> in header"))
                continue
            else:
                mapped = diagnosis_class(diagnoses)
                if mapped is None:
                    raise EcgError(f"record {name}: unknown '<diagnoses> {diagnoses}' in {hea}; "
                                   "label it with --labels FILE.csv")
                label = mapped
            n = int(header.sig_len)
            leads, why = self.stored_leads(header)
            if why:
                excluded.append((name, why))
                continue
            records.append(RecordInfo(name, f"patient{int(patient):02d}", leads, float(header.fs), n,
                                      [Span(0, n, label)]))
        return Scan(self.database, records, excluded)
