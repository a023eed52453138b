"""`--noise-source DIR`: real noise from the MIT-BIH Noise Stress Test Database (PhysioNet `nstdb` 1.0.0).

Its records `bw` (baseline wander), `ma` (muscle artefact) and `em` (electrode motion) hold two noise
signals each (360 Hz, 30 min) recorded on an active subject with the electrodes placed so that no ECG
shows. Each window gets a segment of the record starting at a seeded random sample; lead j takes
noise signal j mod 2, as nst pairs signals. Records at another rate than the windows are resampled
(sources/resample.py). Scaling to the SNR is snr.py's, as for synthetic noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shards.card import file_digest

from ..errors import EcgError
from ..sources.resample import resample_signal
from ..sources.wfdbfiles import read_header, read_physical

NSTDB_RECORDS = ("bw", "ma", "em")  # noise types with a real NSTDB record of the same name


def _record_files(root: Path, name: str) -> list[Path]:
    header = root / f"{name}.hea"
    if not header.is_file():
        raise EcgError(f"noise source {root} lacks record {name} ({header.name}): give the folder of the MIT-BIH Noise "
                       "Stress Test Database (records bw, ma, em; https://physionet.org/content/nstdb/1.0.0/)")
    return [header] + sorted({root / f for f in read_header(root, name).file_name or []})  # checked there


def noise_record_files(root: Path, kinds: list[str]) -> dict[str, list[Path]]:
    """The files of the NSTDB record of each of `kinds` that has one; EcgError when the folder or a record is
    missing, or when none of `kinds` has a real record."""
    root = Path(root)
    if not root.is_dir():
        raise EcgError(f"--noise-source {root} is not a folder: give the MIT-BIH Noise Stress Test Database folder")
    real = [k for k in kinds if k in NSTDB_RECORDS]
    if not real:
        raise EcgError(f"--noise-source gives real noise for {', '.join(NSTDB_RECORDS)} only; --noise asks for "
                       f"{', '.join(kinds)}: drop --noise-source or add one of them")
    return {k: _record_files(root, k) for k in real}


def noise_record_digests(root: Path, kinds: list[str]) -> dict[str, str]:
    """sha256 of every file of the NSTDB records `kinds` use, keyed by file name (for the card and settings)."""
    return {f.name: file_digest(f)[0] for files in noise_record_files(root, kinds).values() for f in files}


class NoiseRecords:
    """The NSTDB records of the noise types asked for, read once and held at the windows' rate."""

    def __init__(self, root: Path, kinds: list[str], fs: float):
        self.root, self.fs = Path(root), fs
        self.kinds = list(noise_record_files(self.root, kinds))
        self._signals: dict[str, np.ndarray] = {}

    def signal(self, kind: str) -> np.ndarray:
        """Noise record `kind` as float64 (samples, signals) at the windows' rate."""
        if kind not in self._signals:
            header = read_header(self.root, kind)
            signal, _ = read_physical(self.root, kind)
            if not np.isfinite(signal).all():
                raise EcgError(f"noise record {self.root / kind} holds missing samples: copy an intact record")
            self._signals[kind] = resample_signal(signal, float(header.fs), self.fs).astype(np.float64)
        return self._signals[kind]

    def segment(self, kind: str, rng: np.random.Generator, length: int, n_leads: int) -> np.ndarray:
        """(length, n_leads) noise of record `kind` from a random start; lead j takes signal j mod n_signals."""
        signal = self.signal(kind)
        if len(signal) < length:
            raise EcgError(f"noise record {self.root / kind} ({len(signal)} samples at {self.fs:g} Hz) is shorter than "
                           f"a window ({length} samples): use the complete NSTDB record")
        start = int(rng.integers(0, len(signal) - length + 1))
        return signal[start:start + length, [j % signal.shape[1] for j in range(n_leads)]]
