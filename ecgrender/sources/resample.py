"""`--resample HZ`: any database read at a common sampling rate.

Signals are resampled with scipy's polyphase filter (`scipy.signal.resample_poly`) by the exact ratio
HZ / fs (reduced fraction up/down): upsample by `up`, low-pass with a Kaiser-window FIR (beta 5.0,
20 * max(up, down) + 1 taps, cut-off at the lower of the two Nyquist frequencies, i.e. an
anti-aliasing filter when the rate goes down), downsample by `down`. Span boundaries are scaled by the
same ratio and rounded. A NaN sample spreads over the filter's length; the window quality checks then
reject windows that touch it.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from ..errors import EcgError
from .base import RecordInfo, Scan, Source, Span

MAX_FACTOR = 1000  # numerator and denominator limit of the rate ratio (360 -> 500 Hz is 25/18)


def rate_ratio(fs: float, target: float) -> Fraction:
    """target / fs as a fraction of small integers; EcgError when the rates are not positive."""
    if not fs > 0 or not target > 0:
        raise EcgError(f"--resample {target:g}: rates must be positive (record at {fs:g} Hz)")
    return Fraction(target / fs).limit_denominator(MAX_FACTOR)


def resample_signal(signal: np.ndarray, fs: float, target: float) -> np.ndarray:
    """(n, leads) float32 at `fs` -> (ceil(n * target / fs), leads) float32 at `target` (module docstring)."""
    ratio = rate_ratio(fs, target)
    if ratio == 1:
        return signal
    out = resample_poly(signal.astype(np.float64), ratio.numerator, ratio.denominator, axis=0)
    return out.astype(np.float32)


def resampled_length(n: int, fs: float, target: float) -> int:
    """Samples of a record of `n` samples at `fs` after resampling to `target` (as resample_poly gives)."""
    ratio = rate_ratio(fs, target)
    return math.ceil(n * ratio.numerator / ratio.denominator)


def _record(record: RecordInfo, target: float) -> RecordInfo:
    n = resampled_length(record.n_samples, record.fs, target)
    scale = float(rate_ratio(record.fs, target))
    spans = [Span(min(round(s.start * scale), n), min(round(s.end * scale), n), s.label) for s in record.spans]
    return RecordInfo(record.name, record.patient, record.leads, float(target), n,
                      [s for s in spans if s.end > s.start], record.fold)


class ResampledSource(Source):
    """Another Source seen at `target` Hz: scans give resampled lengths and spans, signals are resampled."""

    def __init__(self, inner: Source, target: float):
        if not target > 0:
            raise EcgError(f"--resample {target:g}: give a positive rate in Hz")
        self.inner, self.target = inner, float(target)
        self.database, self.version, self.canonical_leads = inner.database, inner.version, inner.canonical_leads
        self.default_classes, self.multi_label = inner.default_classes, inner.multi_label
        self._fs: dict[str, float] = {}

    def __getattr__(self, name: str):
        inner = self.__dict__.get("inner")  # absent while unpickling or copying: no recursion
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)  # root, records, all_records, record_files, ...

    def scan(self) -> Scan:
        scan = self.inner.scan()
        self._fs = {r.name: r.fs for r in scan.records}
        return Scan(scan.database, [_record(r, self.target) for r in scan.records], scan.excluded)

    def read_signal(self, name: str) -> np.ndarray:
        if name not in self._fs:
            self.scan()
        fs = self._fs.get(name)
        if fs is None:
            raise EcgError(f"record {name!r} is not among the usable {self.database} records")
        return resample_signal(np.asarray(self.inner.read_signal(name)), fs, self.target)
