"""Add the noise of a `--noise` spec to one window, reproducibly: the draw of window `key`, noise type T
and seed s comes from its own random stream (seeded by s, the key and T), so a window's noise does
not depend on the order of the build, on the other windows, or on the other types in the spec."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .models import generator
from .nstdb import NoiseRecords
from .snr import snr_gain
from .spec import NoiseComponent


def _stream(*parts: str | int) -> int:
    """A stable 64-bit integer of `parts` (not Python's salted hash)."""
    return int.from_bytes(hashlib.sha256("\0".join(map(str, parts)).encode()).digest()[:8], "little")


class WindowNoise:
    """`noise(key, window)`: the (length, leads) `window` with every component added at its SNR (snr.py)."""

    def __init__(self, components: list[NoiseComponent], fs: float, seed: int, mains_hz: float,
                 source: Path | None = None):
        self.components, self.fs, self.seed, self.mains_hz = components, float(fs), int(seed), float(mains_hz)
        self.records = NoiseRecords(source, [c.kind for c in components], self.fs) if source is not None else None

    def origin(self, kind: str) -> str:
        """'nstdb' when noise type `kind` comes from a real NSTDB record, else 'synthetic'."""
        return "nstdb" if self.records is not None and kind in self.records.kinds else "synthetic"

    def unit_noise(self, key: str, kind: str, length: int, n_leads: int) -> np.ndarray:
        """The unscaled noise of type `kind` drawn for window `key`."""
        rng = np.random.default_rng(_stream(self.seed, key, kind))
        if self.origin(kind) == "nstdb":
            assert self.records is not None
            return self.records.segment(kind, rng, length, n_leads)
        return generator(kind)(rng, length, n_leads, self.fs, self.mains_hz)

    def check(self, length: int, n_leads: int) -> None:
        """Draw every type once for a (length, n_leads) window: EcgError now for a rate a model cannot hold or a
        noise record that cannot serve, before a build writes anything."""
        for c in self.components:
            self.unit_noise("", c.kind, length, n_leads)

    def __call__(self, key: str, window: np.ndarray) -> np.ndarray:
        clean = np.asarray(window, dtype=np.float64)
        noisy = clean.copy()
        for c in self.components:
            if c.snr_db == np.inf:
                continue  # +inf dB adds nothing: the clean window, bit for bit
            noise = self.unit_noise(key, c.kind, *clean.shape)
            noisy += noise * snr_gain(clean, noise, self.fs, c.snr_db)
        return noisy
