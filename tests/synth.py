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
