"""The signal-to-noise ratio of a noisy window: the nst tool's definition, applied per window and lead.

nst (WFDB; Moody, Muldrow & Mark 1984) defines SNR = 10 log10(S / N) with
  S = A^2 / 8, A the peak-to-peak QRS amplitude (the power of a sinusoid of that amplitude), and
  N = n^2, n the mean, over one-second chunks, of the noise's RMS about each chunk's mean.
Per window and lead, A is the clean lead's peak-to-peak amplitude within the window (the tallest QRS
plus any baseline shift inside it), and the chunks are the window cut into round(length / fs)
near-equal parts (one part for a window shorter than 1.5 s). Noise is scaled by a gain `a` per window
and lead so that 10 log10(S / (a^2 N)) is the requested SNR; N(a x) = a^2 N(x), so the match is exact.
"""

from __future__ import annotations

import numpy as np


def signal_power(clean: np.ndarray) -> np.ndarray:
    """S per lead of a clean (length, leads) window: (peak-to-peak amplitude)^2 / 8."""
    peak_to_peak = clean.max(axis=0) - clean.min(axis=0)
    return peak_to_peak.astype(np.float64) ** 2 / 8


def noise_power(noise: np.ndarray, fs: float) -> np.ndarray:
    """N per lead of a (length, leads) noise segment: (mean over ~1-s chunks of the RMS about the chunk mean)^2."""
    chunks = np.array_split(noise.astype(np.float64), max(1, round(len(noise) / fs)), axis=0)
    rms = [np.sqrt(((c - c.mean(axis=0)) ** 2).mean(axis=0)) for c in chunks]
    return np.mean(rms, axis=0) ** 2


def snr_gain(clean: np.ndarray, noise: np.ndarray, fs: float, snr_db: float) -> np.ndarray:
    """Gain per lead that puts `noise` at `snr_db` against `clean`; 0 for +inf, a flat lead or a silent noise."""
    s, n = signal_power(clean), noise_power(noise, fs)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.sqrt(s / (n * 10 ** (snr_db / 10)))
    return np.where((s > 0) & (n > 0), gain, 0.0)


def measured_snr(clean: np.ndarray, noisy: np.ndarray, fs: float) -> np.ndarray:
    """SNR in dB per lead of `noisy` against `clean` (both (length, leads)): the noise is their difference."""
    s, n = signal_power(clean), noise_power(np.asarray(noisy, np.float64) - clean, fs)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(s / n)
