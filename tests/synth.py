"""Synthetic WFDB databases in the exact conventions of mitdb, ptbdb and incartdb, for tests.

Each writer makes a small, seeded database with ECG-like beats (P-QRS-T templates, premature wide
ventricular beats for bigeminy/trigeminy, irregular RR without P waves for AFIB) written with wfdb:

    write_mitdb(dir)      2 leads, 360 Hz, format 212, rhythm aux notes "(N\\0", "(AFIB\\0", ... in `.atr`
    write_ptbdb(dir)      patientNNN/sNNNNxre: 12 leads in `.dat` + vx, vy, vz in `.xyz`, 1000 Hz,
                          the PTB comment block with `Reason for admission: ...`, RECORDS file
    write_incartdb(dir)   I01..: 12 leads, 257 Hz, `#<age>: 65 <sex>: F <diagnoses> ...`, `# patient N`

Pass `records=` to choose records; the module-level defaults show the expected shapes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

MITDB_FS = 360
PTBDB_FS = 1000
INCARTDB_FS = 257
MITDB_FIRST_ANNOTATION = 7  # real mitdb records open their first rhythm a few samples in

# record -> rhythm episodes (label, seconds); 102 is paced ("(P"), 201/202 are one patient.
MITDB_RECORDS: dict[str, list[tuple[str, float]]] = {
    "100": [("N", 30)],
    "102": [("P", 20)],
    "106": [("N", 12), ("B", 20), ("N", 8)],
    "119": [("N", 8), ("T", 15), ("B", 12), ("N", 8)],
    "201": [("AFIB", 20), ("N", 12), ("T", 12), ("SVTA", 2), ("N", 8)],
    "202": [("N", 12), ("AFIB", 20), ("B", 10)],
    "203": [("AFIB", 25), ("VT", 3), ("AFIB", 10)],
}

# record -> Reason for admission (as written in the real headers, including "n/a").
PTBDB_RECORDS: dict[str, str] = {
    "patient001/s0010_re": "Myocardial infarction",
    "patient001/s0014lre": "Myocardial infarction",
    "patient002/s0015lre": "Heart failure (NYHA 2)",
    "patient104/s0306lre": "Healthy control",
    "patient105/s0303lre": "Bundle branch block",
    "patient106/s0030_re": "n/a",
    "patient107/s0400lre": "Palpitation",
}
PTBDB_LEADS = ["i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6", "vx", "vy", "vz"]

# record -> (patient number, age, sex, <diagnoses> text or None when the token is absent, findings)
INCARTDB_RECORDS: dict[str, tuple[int, int, str, str | None, str]] = {
    "I01": (1, 65, "F", "Coronary artery disease, arterial hypertension", "PVCs, noise"),
    "I02": (1, 65, "F", "Coronary artery disease, arterial hypertension",
            "ventricular trigeminy, ventricular couplets"),
    "I03": (2, 59, "M", "Acute MI", "ST elevation, PVCs"),
    "I06": (3, 80, "M", "Transient ischemic attack", "ST changes, PVCs"),
    "I08": (4, 51, "F", None, "ventricular bigeminy, ventricular couplets"),
    "I09": (5, 68, "M", None, "ventricular couplets, ventricular escape beats, AV nodal block 2 degree Moebits 1"),
    "I20": (10, 59, "F", "Coronary artery disease, arterial hypertension, left ventricular hypertrophy",
            "ventricular couplets, fusion beats"),
    "I23": (11, 52, "M", "Earlier MI", "polymorphic PVCs, intraventricular block"),
    "I25": (12, 66, "F", "Sinus node dysfunction", "paroxysmal VT"),
}
INCARTDB_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]

_LEAD_GAINS = np.array([1.0, 1.3, 0.4, -0.9, 0.5, 0.8, -0.6, 0.9, 1.4, 1.6, 1.2, 0.9, 0.7, 1.1, -0.5])


def _template(fs: float, kind: str) -> np.ndarray:
    """One beat in mV, 0.8 s long with the R peak at 0.3 s: "N" normal, "A" no P wave, "V" ventricular."""
    t = np.arange(int(0.8 * fs)) / fs - 0.3
    waves = {
        "N": [(0.15, -0.18, 0.025), (-0.1, -0.03, 0.01), (1.0, 0.0, 0.012), (-0.25, 0.03, 0.012), (0.3, 0.25, 0.05)],
        "A": [(-0.1, -0.03, 0.01), (1.0, 0.0, 0.012), (-0.25, 0.03, 0.012), (0.3, 0.25, 0.05)],
        "V": [(-0.4, -0.04, 0.03), (1.4, 0.02, 0.035), (-0.6, 0.09, 0.03), (-0.35, 0.3, 0.06)],
    }[kind]
    return sum(a * np.exp(-0.5 * ((t - mu) / sd) ** 2) for a, mu, sd in waves)


def _beats(rhythm: str, start: int, end: int, fs: float, rng: np.random.Generator) -> list[tuple[int, str]]:
    """(R-peak sample, template kind) of the beats of one rhythm episode."""
    beats, pos, i = [], start + int(0.3 * fs), 0
    while pos < end:
        kind = "N"
        rr = 0.8 * rng.uniform(0.97, 1.03)
        if rhythm == "AFIB":
            kind, rr = "A", rng.uniform(0.45, 1.0)
        elif rhythm in ("B", "T"):
            period = 2 if rhythm == "B" else 3
            if i % period == period - 1:
                kind = "V"
        elif rhythm in ("VT", "P"):
            kind, rr = "V", (0.4 if rhythm == "VT" else 0.85)
        elif rhythm == "SVTA":
            rr = 0.45
        beats.append((pos, kind))
        nxt_premature = rhythm in ("B", "T") and (i + 1) % (2 if rhythm == "B" else 3) == (1 if rhythm == "B" else 2)
        pos += int(rr * fs * (0.65 if nxt_premature else 1.0))
        i += 1
    return beats


def ecg_like(episodes: list[tuple[str, int, int]], n_samples: int, fs: float, n_leads: int,
             seed: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Signal (n_samples, n_leads) in mV and its beats for rhythm episodes (label, start, end) in samples."""
    rng = np.random.default_rng(seed)
    templates = {k: _template(fs, k) for k in "NAV"}
    base = np.zeros(n_samples + len(templates["N"]))
    beats = []
    for label, start, end in episodes:
        for pos, kind in _beats(label, start, end, fs, rng):
            onset = pos - int(0.3 * fs)
            if onset >= 0:
                base[onset:onset + len(templates[kind])] += templates[kind]
                beats.append((pos, kind))
    base = base[:n_samples]
    t = np.arange(n_samples) / fs
    gains = np.resize(_LEAD_GAINS, n_leads)
    wander = 0.05 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6.28, (n_leads, 1)))
    noise = rng.normal(0, 0.01, (n_leads, n_samples))
    return (gains[:, None] * base + wander + noise).T, beats


def _bounds(episodes: list[tuple[str, float]], fs: float) -> list[tuple[str, int, int]]:
    out, pos = [], 0
    for label, seconds in episodes:
        out.append((label, pos, pos + int(round(seconds * fs))))
        pos += int(round(seconds * fs))
    return out


def mitdb_spans(episodes: list[tuple[str, float]], fs: float = MITDB_FS) -> list[tuple[str, int, int]]:
    """The (label, start, end) rhythm spans an adapter should find for `episodes` written by write_mitdb."""
    bounds = _bounds(episodes, fs)
    label, _, end = bounds[0]
    return [(label, MITDB_FIRST_ANNOTATION, end)] + bounds[1:]


def _digital(signal_mv: np.ndarray, gain: np.ndarray, baseline: np.ndarray, bits: int) -> np.ndarray:
    lim = 2 ** (bits - 1) - 1
    return np.clip(np.round(signal_mv * gain + baseline), -lim, lim).astype(np.int32)


def _set_comments(hea: Path, lines: list[str]) -> None:
    """Replace the comment lines of a header by `lines`, written verbatim (as the real files have them)."""
    kept = [line for line in hea.read_text().splitlines() if not line.startswith("#") and line.strip()]
    hea.write_text("\n".join(kept + lines) + "\n")


def _write_records_file(root: Path, names: list[str]) -> None:
    (root / "RECORDS").write_text("".join(f"{n}\n" for n in names))


def write_mitdb(root: Path, records: dict[str, list[tuple[str, float]]] | None = None, seed: int = 0,
                records_file: bool = True) -> Path:
    """A mitdb-style folder: NNN.hea/.dat (212, gain 200, baseline 1024) and .atr with beats and rhythm notes."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    records = MITDB_RECORDS if records is None else records
    for k, (name, episodes) in enumerate(records.items()):
        bounds = _bounds(episodes, MITDB_FS)
        n = bounds[-1][2]
        mv, beats = ecg_like(bounds, n, MITDB_FS, 2, seed + k)
        gain, baseline = np.array([200.0, 200.0]), np.array([1024, 1024])
        wfdb.wrsamp(name, fs=MITDB_FS, units=["mV", "mV"], sig_name=["MLII", "V1"],
                    d_signal=_digital(mv, gain, baseline, 12), fmt=["212", "212"], adc_gain=list(gain),
                    baseline=list(baseline), comments=["69 M 1085 1629 x1", "Aldomet, Inderal"],
                    write_dir=str(root))
        notes = [(MITDB_FIRST_ANNOTATION if i == 0 else start, "+", f"({label}\x00")
                 for i, (label, start, _) in enumerate(bounds)]
        paced = any(label == "P" for label, _ in episodes)
        notes += [(pos, "V" if kind == "V" and not paced else ("/" if paced else "N"), "") for pos, kind in beats]
        notes.sort(key=lambda x: (x[0], x[1] != "+"))
        wfdb.wrann(name, "atr", np.array([s for s, _, _ in notes]), symbol=[s for _, s, _ in notes],
                   aux_note=[a for _, _, a in notes], fs=MITDB_FS, write_dir=str(root))
    if records_file:
        _write_records_file(root, list(records))
    return root


def ptbdb_comments(reason: str) -> list[str]:
    """The PTB header comment block (shape of patient001/s0010_re) with the given reason."""
    return [
        "# age: 81", "# sex: female", "# ECG date: 01/10/1990", "",
        "# Diagnose:", f"# Reason for admission: {reason}",
        "# Acute infarction (localization): infero-latera", "# Former infarction (localization): no",
        "# Additional diagnoses: Diabetes mellitus", "# Smoker: no",
        "# Number of coronary vessels involved: 1", "# Infarction date (acute): 29-Sep-90", "",
        "# Hemodynamics:", "# Catheterization date: 16-Oct-90", "# Ventriculography: Akinesia inferior wall",
        "# Chest X-ray: Heart size upper limit of norm", "", "# Therapy:", "# Admission date: 29-Sep-90",
        "# Medication after discharge: ASA Isosorbit-Mononitrate Amiloride+Chlorothiazide Glibenclamide",
    ]


def write_ptbdb(root: Path, records: dict[str, str] | None = None, seconds: float = 4.0, seed: int = 0,
                records_file: bool = True) -> Path:
    """A ptbdb-style folder: patientNNN/<rec>.hea + .dat (12 leads) + .xyz (vx, vy, vz), 16-bit, gain 2000."""
    root = Path(root)
    records = PTBDB_RECORDS if records is None else records
    n = int(round(seconds * PTBDB_FS))
    for k, (name, reason) in enumerate(records.items()):
        folder, base = name.split("/")
        (root / folder).mkdir(parents=True, exist_ok=True)
        mv, _ = ecg_like([("N", 0, n)], n, PTBDB_FS, 15, seed + k)
        d = _digital(mv, np.full(15, 2000.0), np.zeros(15), 16)
        rec = wfdb.Record(
            record_name=base, n_sig=15, fs=PTBDB_FS, sig_len=n, d_signal=d,
            file_name=[f"{base}.dat"] * 12 + [f"{base}.xyz"] * 3, fmt=["16"] * 15, adc_gain=[2000.0] * 15,
            baseline=[0] * 15, units=["mV"] * 15, sig_name=PTBDB_LEADS, adc_res=[16] * 15, adc_zero=[0] * 15,
            block_size=[0] * 15, init_value=[int(v) for v in d[0]],
        )
        rec.checksum = [int(c) - 65536 if c > 32767 else int(c) for c in rec.calc_checksum()]
        rec.wrsamp(write_dir=str(root / folder))
        _set_comments(root / folder / f"{base}.hea", ptbdb_comments(reason))
    if records_file:
        _write_records_file(root, list(records))
    return root


def incartdb_comments(patient: int, age: int, sex: str, diagnoses: str | None, findings: str) -> list[str]:
    """The three INCART comment lines; without diagnoses the token is absent and a space trails."""
    first = f"#<age>: {age} <sex>: {sex} " + (f"<diagnoses> {diagnoses}" if diagnoses else "")
    return [first, f"# patient {patient}", f"# {findings}"]


def write_incartdb(root: Path, records: dict[str, tuple] | None = None, seconds: float = 20.0, seed: int = 0,
                   records_file: bool = True) -> Path:
    """An incartdb-style folder: Inn.hea/.dat (12 leads, 257 Hz, 16-bit, gains 250-1100) and .atr beats."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    records = INCARTDB_RECORDS if records is None else records
    n = int(round(seconds * INCARTDB_FS))
    for k, (name, meta) in enumerate(records.items()):
        rng = np.random.default_rng(seed + 1000 + k)
        gain = rng.choice([250.0, 306.0, 612.0, 1100.0], 12)
        mv, beats = ecg_like([("N", 0, n)], n, INCARTDB_FS, 12, seed + k)
        wfdb.wrsamp(name, fs=INCARTDB_FS, units=["mV"] * 12, sig_name=INCARTDB_LEADS,
                    d_signal=_digital(mv, gain, np.zeros(12), 16), fmt=["16"] * 12, adc_gain=list(gain),
                    baseline=[0] * 12, write_dir=str(root))
        _set_comments(root / f"{name}.hea", incartdb_comments(*meta))
        wfdb.wrann(name, "atr", np.array([p for p, _ in beats]),
                   symbol=["V" if kind == "V" else "N" for _, kind in beats],
                   fs=INCARTDB_FS, write_dir=str(root))
    if records_file:
        _write_records_file(root, list(records))
    return root


PTBXL_STATEMENTS = Path(__file__).resolve().parent / "data" / "ptbxl" / "scp_statements.csv"
PTBXL_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
PTBXL_COLUMNS = [
    "ecg_id", "patient_id", "age", "sex", "height", "weight", "nurse", "site", "device", "recording_date", "report",
    "scp_codes", "heart_axis", "infarction_stadium1", "infarction_stadium2", "validated_by", "second_opinion",
    "initial_autogenerated_report", "validated_by_human", "baseline_drift", "static_noise", "burst_noise",
    "electrodes_problems", "extra_beats", "pacemaker", "strat_fold", "filename_lr", "filename_hr",
]
# ecg_id -> (patient_id, scp_codes, strat_fold): real statement combinations (from ptbxl_database.csv's first
# rows), a patient with three records (13619), records without a diagnostic statement (17: AFLT, ABQRS and
# AFIB only), multi-statement records, and every fold. Superdiagnostic classes in the comments.
PTBXL_RECORDS: dict[int, tuple[float, dict[str, float], int]] = {
    1: (15709.0, {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}, 3),  # NORM
    2: (13243.0, {"NORM": 80.0, "SBRAD": 0.0}, 2),  # NORM
    3: (20372.0, {"NORM": 100.0, "SR": 0.0}, 5),  # NORM
    4: (17014.0, {"NORM": 100.0, "SR": 0.0}, 1),  # NORM
    8: (11275.0, {"IMI": 35.0, "ABQRS": 0.0, "SR": 0.0}, 9),  # MI
    17: (13619.0, {"AFLT": 100.0, "ABQRS": 0.0, "AFIB": 0.0}, 9),  # no diagnostic statement
    18: (13619.0, {"AFLT": 100.0}, 9),  # no diagnostic statement
    26: (13619.0, {"NST_": 100.0, "DIG": 100.0, "SR": 0.0}, 9),  # STTC
    30: (19053.0, {"LVH": 100.0, "SR": 0.0}, 10),  # HYP
    45: (18794.0, {"IRBBB": 100.0, "RAO/RAE": 50.0, "RVH": 35.0, "SR": 0.0}, 1),  # CD, HYP
    50: (16961.0, {"LMI": 15.0, "IVCD": 100.0, "SR": 0.0}, 7),  # MI, CD
    61: (16000.0, {"ASMI": 100.0, "ISC_": 50.0, "SR": 0.0}, 4),  # MI, STTC
    62: (16001.0, {"CLBBB": 100.0, "SR": 0.0}, 6),  # CD
    63: (16002.0, {"NDT": 100.0, "SR": 0.0}, 8),  # STTC
    64: (16003.0, {"LAFB": 100.0, "LVH": 50.0, "SR": 0.0}, 10),  # CD, HYP
    65: (16004.0, {"NORM": 100.0, "SR": 0.0}, 10),  # NORM
    66: (16005.0, {"AMI": 100.0, "SR": 0.0}, 2),  # MI
    67: (16006.0, {"NORM": 100.0, "SR": 0.0}, 9),  # NORM
}
_PTBXL_KIND = {"NORM": "N", "MI": "B", "STTC": "T", "CD": "AFIB", "HYP": "T"}


def ptbxl_record_path(ecg_id: int, fs: int) -> str:
    """The published path of a record, e.g. records100/00000/00001_lr (500 Hz: records500/.../00001_hr)."""
    return f"records{fs}/{ecg_id // 1000 * 1000:05d}/{ecg_id:05d}_{'lr' if fs == 100 else 'hr'}"


def write_ptbxl(root: Path, records: dict[int, tuple[float, dict[str, float], int]] | None = None,
                rates: tuple[int, ...] = (100, 500), seed: int = 0) -> Path:
    """A PTB-XL 1.0.3 folder: ptbxl_database.csv (all 28 columns, the real quoting), scp_statements.csv (the
    real one), records100/NNNNN/NNNNN_lr and records500/NNNNN/NNNNN_hr (12 leads, 10 s, 16-bit, gain 1000
    per mV, leads named I ... AVR AVL AVF V1 ... V6 as published), and a RECORDS file listing both rates."""
    import csv
    import shutil

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    records = PTBXL_RECORDS if records is None else records
    shutil.copyfile(PTBXL_STATEMENTS, root / "scp_statements.csv")
    listed = []
    with open(root / "ptbxl_database.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(PTBXL_COLUMNS)
        for k, (ecg_id, (patient, codes, fold)) in enumerate(records.items()):
            row = dict.fromkeys(PTBXL_COLUMNS, "")
            row.update(ecg_id=ecg_id, patient_id=repr(float(patient)), age="56.0", sex="1", device="CS-12   E",
                       report="sinusrhythmus, normales ekg", scp_codes=repr(codes), validated_by_human="True",
                       second_opinion="False", initial_autogenerated_report="False", strat_fold=fold,
                       filename_lr=ptbxl_record_path(ecg_id, 100), filename_hr=ptbxl_record_path(ecg_id, 500))
            writer.writerow([row[c] for c in PTBXL_COLUMNS])
            first = next(iter(codes))
            kind = next((v for c, v in _PTBXL_KIND.items() if c in first or first in ("IMI", "LMI", "ASMI", "AMI")
                         and c == "MI"), "N")
            for fs in rates:
                path = root / ptbxl_record_path(ecg_id, fs)
                path.parent.mkdir(parents=True, exist_ok=True)
                n = 10 * fs
                mv, _ = ecg_like([(kind, 0, n)], n, fs, 12, seed + k)
                d = _digital(mv, np.full(12, 1000.0), np.zeros(12), 16)
                rec = wfdb.Record(
                    record_name=path.name, n_sig=12, fs=fs, sig_len=n, d_signal=d,
                    file_name=[f"{path.name}.dat"] * 12, fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                    units=["mV"] * 12, sig_name=PTBXL_LEADS, adc_res=[16] * 12, adc_zero=[0] * 12,
                    block_size=[0] * 12, init_value=[int(v) for v in d[0]],
                )
                rec.checksum = [int(c) - 65536 if c > 32767 else int(c) for c in rec.calc_checksum()]
                rec.wrsamp(write_dir=str(path.parent))
                listed.append(ptbxl_record_path(ecg_id, fs))
    _write_records_file(root, sorted(listed))
    return root


NSTDB_FS = 360


def write_nstdb(root: Path, seconds: float = 120.0, seed: int = 0, records=("bw", "ma", "em")) -> Path:
    """An nstdb-style folder: noise records bw, ma, em with 2 signals ("noise1", "noise2"), 360 Hz, format 212,
    gain 200, baseline 1024, as PhysioNet's (bw slow drift, ma broadband, em drift plus steps)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(seconds * NSTDB_FS)
    t = np.arange(n)[:, None] / NSTDB_FS
    shapes = {
        "bw": 0.3 * np.sin(2 * np.pi * np.array([0.2, 0.27]) * t) + 0.05 * np.cumsum(rng.standard_normal((n, 2)), 0) / 60,
        "ma": 0.05 * rng.standard_normal((n, 2)),
        "em": 0.2 * np.sin(2 * np.pi * 0.3 * t) + 0.3 * (rng.random((n, 2)) < 0.001).cumsum(0) % 2,
    }
    gain, baseline = np.array([200.0, 200.0]), np.array([1024, 1024])
    for name in records:
        wfdb.wrsamp(name, fs=NSTDB_FS, units=["mV", "mV"], sig_name=["noise1", "noise2"],
                    d_signal=_digital(shapes[name], gain, baseline, 12), fmt=["212", "212"], adc_gain=list(gain),
                    baseline=list(baseline), write_dir=str(root))
    _write_records_file(root, list(records))
    return root
