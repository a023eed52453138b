"""Noise models and their scaling (ecgrender.noise): SNR as documented, seeded, the published shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from synth import MITDB_FS, ecg_like, mitdb_spans, write_nstdb

from ecgrender.errors import EcgError
from ecgrender.noise import NoiseComponent, WindowNoise, measured_snr, noise_names, parse_noise_spec
from ecgrender.noise.nstdb import NSTDB_RECORDS

SNRS = (-3.0, 0.0, 6.0, 12.0, 24.0)


def _clean(fs: float = MITDB_FS, seconds: float = 2.8, leads: int = 2, seed: int = 0) -> np.ndarray:
    n = int(fs * seconds)
    signal, _ = ecg_like(mitdb_spans([("N", seconds)], fs), n, fs, leads, seed)
    return signal.astype(np.float32).astype(np.float64)


def _nst_snr(clean: np.ndarray, noisy: np.ndarray, fs: float) -> np.ndarray:
    """docs/noise.md's definition, written out lead by lead: S = ptp^2 / 8; N = (mean RMS of ~1-s chunks)^2."""
    out = []
    for lead in range(clean.shape[1]):
        x, e = clean[:, lead], noisy[:, lead] - clean[:, lead]
        s = (x.max() - x.min()) ** 2 / 8
        parts = max(1, round(len(e) / fs))
        rms = [math.sqrt(np.mean((c - c.mean()) ** 2)) for c in np.array_split(e, parts)]
        out.append(10 * math.log10(s / np.mean(rms) ** 2))
    return np.array(out)


@pytest.mark.parametrize("kind", noise_names())
@pytest.mark.parametrize("fs,seconds", [(MITDB_FS, 2.8), (500, 10.0), (257, 0.8)])
def test_each_synthetic_type_lands_at_the_requested_snr_per_lead(kind, fs, seconds):
    clean = _clean(fs, seconds, leads=3)
    for snr in SNRS:
        noisy = WindowNoise([NoiseComponent(kind, snr)], fs, seed=1, mains_hz=50)("rec_000000100", clean)
        assert np.abs(_nst_snr(clean, noisy, fs) - snr).max() < 1e-6, (kind, snr)  # exact up to rounding
        assert np.allclose(measured_snr(clean, noisy, fs), snr, atol=1e-6)


@pytest.mark.parametrize("kind", NSTDB_RECORDS)
def test_real_nstdb_noise_lands_at_the_requested_snr_and_is_resampled(kind, tmp_path):
    nstdb = write_nstdb(tmp_path / "nstdb")
    for fs in (MITDB_FS, 257):
        clean = _clean(fs, 3.0, leads=3)
        noise = WindowNoise([NoiseComponent(kind, 6.0)], fs, seed=0, mains_hz=60, source=nstdb)
        assert noise.origin(kind) == "nstdb"
        noisy = noise("k", clean)
        assert np.abs(_nst_snr(clean, noisy, fs) - 6.0).max() < 1e-6
        # lead j takes noise signal j mod 2: leads 0 and 2 carry the same noise shape, lead 1 the other signal
        e = (noisy - clean) / np.abs(noisy - clean).max(axis=0)
        assert np.allclose(e[:, 0], e[:, 2], atol=1e-9) and not np.allclose(e[:, 0], e[:, 1], atol=1e-3)


def test_the_same_seed_gives_the_same_bytes_and_types_do_not_disturb_each_other():
    clean = _clean()
    both = parse_noise_spec("bw:6,ma:12")
    a = WindowNoise(both, MITDB_FS, seed=3, mains_hz=60)("100_000000360", clean)
    b = WindowNoise(both, MITDB_FS, seed=3, mains_hz=60)("100_000000360", clean)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, WindowNoise(both, MITDB_FS, seed=4, mains_hz=60)("100_000000360", clean))
    assert not np.array_equal(a, WindowNoise(both, MITDB_FS, seed=3, mains_hz=60)("100_000000720", clean))
    bw_only = WindowNoise(parse_noise_spec("bw:6,ma:inf"), MITDB_FS, seed=3, mains_hz=60)("100_000000360", clean)
    ma_only = WindowNoise(parse_noise_spec("ma:12"), MITDB_FS, seed=3, mains_hz=60)("100_000000360", clean)
    assert np.allclose(a - clean, (bw_only - clean) + (ma_only - clean), atol=1e-12)


def test_infinite_snr_returns_the_clean_window_bit_for_bit():
    clean = _clean()
    noisy = WindowNoise(parse_noise_spec("bw:inf,gauss:inf"), MITDB_FS, seed=0, mains_hz=60)("k", clean)
    assert noisy.tobytes() == clean.tobytes()


def _spectrum(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    power = np.abs(np.fft.rfft(x - x.mean(axis=0), axis=0)) ** 2
    return np.fft.rfftfreq(len(x), 1 / fs), power.sum(axis=1)


def test_models_have_their_published_shapes():
    fs, n = 500.0, 5000
    unit = WindowNoise([], fs, seed=0, mains_hz=50).unit_noise
    freq, pl = _spectrum(unit("k", "pl", n, 2), fs)
    assert freq[pl.argmax()] == pytest.approx(50, abs=0.2)
    freq, ma = _spectrum(unit("k", "ma", n, 2), fs)
    assert ma[(freq >= 20) & (freq <= 150)].sum() > 0.9 * ma.sum()
    bw = unit("k", "bw", 20 * n, 2)  # 200 s: several breaths
    freq, power = _spectrum(bw, fs)
    assert 0.15 <= freq[power.argmax()] <= 0.4
    em = unit("k", "em", n, 1)[:, 0]
    jumps = np.abs(np.diff(em))
    assert jumps.max() > 50 * np.median(jumps)  # abrupt steps ...
    assert np.abs(em[-1]) < np.abs(em).max()  # ... that decay
    freq, gauss = _spectrum(unit("k", "gauss", n, 2), fs)
    assert gauss[freq < fs / 4].sum() == pytest.approx(gauss[freq >= fs / 4].sum(), rel=0.15)  # white


@pytest.mark.parametrize("spec,expected", [
    ("xx:6", "unknown noise type 'xx'"),
    ("bw:six", "SNR 'six' of bw is not a number"),
    ("bw", "is not TYPE:SNR"),
    ("bw:6,bw:12", "bw is given twice"),
    ("bw:nan", "must be a number of dB or inf"),
])
def test_bad_specs_are_one_line_errors(spec, expected):
    with pytest.raises(EcgError, match=expected):
        parse_noise_spec(spec)


def test_rates_that_cannot_hold_a_noise_type_are_refused(tmp_path):
    clean = _clean(100, 10.0)
    with pytest.raises(EcgError, match="pl at 50 Hz mains needs windows sampled above 100 Hz"):
        WindowNoise(parse_noise_spec("pl:6"), 100, seed=0, mains_hz=50)("k", clean)
    with pytest.raises(EcgError, match="noise ma .* needs windows sampled above 44 Hz"):
        WindowNoise(parse_noise_spec("ma:6"), 40, seed=0, mains_hz=50)("k", _clean(40, 10.0))


def test_a_noise_source_without_the_needed_record_is_refused(tmp_path):
    nstdb = write_nstdb(tmp_path / "nstdb", records=("bw",))
    with pytest.raises(EcgError, match="lacks record em"):
        WindowNoise(parse_noise_spec("bw:6,em:6"), MITDB_FS, seed=0, mains_hz=60, source=nstdb)
    with pytest.raises(EcgError, match="real noise for bw, ma, em only"):
        WindowNoise(parse_noise_spec("gauss:6"), MITDB_FS, seed=0, mains_hz=60, source=nstdb)
    with pytest.raises(EcgError, match="is not a folder"):
        WindowNoise(parse_noise_spec("bw:6"), MITDB_FS, seed=0, mains_hz=60, source=tmp_path / "missing")
