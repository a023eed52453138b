"""PTB Diagnostic ECG Database: 15 leads (`.dat` 12 + `.xyz` 3), label from `Reason for admission`."""

from __future__ import annotations

import re

from ..errors import EcgError
from .base import RecordInfo, Scan, Span
from .registry import register_database
from .wfdbfiles import DirectorySource

DEFAULT_CLASSES = [
    "Myocardial infarction",
    "Cardiomyopathy/Heart failure",
    "Bundle branch block",
    "Dysrhythmia",
    "Myocardial hypertrophy",
    "Valvular heart disease",
    "Myocarditis",
    "Miscellaneous",
    "Healthy control",
]

# The 12 standard leads (.dat) and the 3 Frank leads (.xyz), as every PTB header names them.
LEADS = ("i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6", "vx", "vy", "vz")

# Every `Reason for admission` value found in the 549 PTB headers -> PhysioNet's diagnostic class.
# Keys are compared lower-cased with runs of white space folded to one space.
REASON_TO_CLASS = {
    "myocardial infarction": "Myocardial infarction",
    "cardiomyopathy": "Cardiomyopathy/Heart failure",
    "heart failure (nyha 2)": "Cardiomyopathy/Heart failure",
    "heart failure (nyha 3)": "Cardiomyopathy/Heart failure",
    "heart failure (nyha 4)": "Cardiomyopathy/Heart failure",
    "bundle branch block": "Bundle branch block",
    "dysrhythmia": "Dysrhythmia",
    "hypertrophy": "Myocardial hypertrophy",
    "myocardial hypertrophy": "Myocardial hypertrophy",
    "valvular heart disease": "Valvular heart disease",
    "myocarditis": "Myocarditis",
    "stable angina": "Miscellaneous",
    "unstable angina": "Miscellaneous",
    "palpitation": "Miscellaneous",
    "healthy control": "Healthy control",
}
NO_DIAGNOSIS = "n/a"
_REASON = re.compile(r"^\s*reason for admission\s*:(.*)$", re.IGNORECASE)


def reason_for_admission(comments: list[str]) -> str | None:
    """The `Reason for admission:` value of a PTB header's comments, or None when the line is absent."""
    for comment in comments:
        match = _REASON.match(comment)
        if match:
            return match.group(1).strip()
    return None


def diagnostic_class(reason: str) -> str | None:
    """PhysioNet diagnostic class of a `Reason for admission` value; None for n/a or unknown."""
    return REASON_TO_CLASS.get(" ".join(reason.lower().split()))


CITATION = """@article{bousseljot1995ptb,
  author = {Bousseljot, R. and Kreiseler, D. and Schnabel, A.},
  title = {Nutzung der {EKG}-Signaldatenbank {CARDIODAT} der {PTB} {\\"u}ber das Internet},
  journal = {Biomedizinische Technik}, volume = {40}, number = {S1}, pages = {317}, year = {1995}
}"""


@register_database("ptbdb", title="PTB Diagnostic ECG Database", version="1.0.0", default_classes=DEFAULT_CLASSES,
                   leads=LEADS, licence="ODC-By-1.0", url="https://physionet.org/content/ptbdb/1.0.0/",
                   doi="10.13026/C28C71", citation=CITATION)
class PtbdbSource(DirectorySource):
    """Records `patientNNN/sNNNN_re`; patient = the folder; one whole-record span per record."""

    record_pattern = "*/*.hea"

    def scan(self) -> Scan:
        """Headers and labels: labels CSV first, else the mapped `Reason for admission`; n/a left out."""
        records, excluded = [], []
        for name in self.records:
            header = self.header(name)
            hea = self.root / f"{name}.hea"
            if name in self.labels:
                label = self.labels[name]
            else:
                reason = reason_for_admission(header.comments or [])
                if reason is None:
                    raise EcgError(f"{hea} has no 'Reason for admission' comment: label record {name} "
                                   "with --labels FILE.csv")
                if reason.lower() == NO_DIAGNOSIS:
                    excluded.append((name, "no diagnosis (Reason for admission: n/a)"))
                    continue
                mapped = diagnostic_class(reason)
                if mapped is None:
                    raise EcgError(f"record {name}: unknown 'Reason for admission: {reason}' in {hea}; "
                                   "label it with --labels FILE.csv")
                label = mapped
            if "/" not in name:
                raise EcgError(f"ptbdb record {name!r} is not inside a patientNNN folder; "
                               "point --source at the folder holding patient001, patient002, ...")
            n = int(header.sig_len)
            patient = name.split("/", 1)[0]
            leads, why = self.stored_leads(header)
            if why:
                excluded.append((name, why))
                continue
            records.append(RecordInfo(name, patient, leads, float(header.fs), n, [Span(0, n, label)]))
        return Scan(self.database, records, excluded)
