"""The noise types of `--noise`: each registers a synthetic generator of unit-scale noise.

A generator is `generate(rng, length, n_leads, fs, mains_hz) -> (length, n_leads) float64`; its scale
does not matter (snr.py scales every lead to the requested SNR). Leads get independent draws. The
models follow published definitions (docs/noise.md has the references):

- gauss: white Gaussian noise.
- pl: power-line interference, a sinusoid at the database's mains frequency with a random phase
  (Friesen et al. 1990).
- bw: baseline drift due to respiration, a sinusoid at a breathing rate drawn from 0.15-0.4 Hz
  (9-24 breaths a minute) with a random phase (Friesen et al. 1990).
- ma: muscle (EMG) artefact, random Gaussian noise (Friesen et al. 1990) band-limited here to 20-150 Hz,
  where surface EMG overlaps the QRS (4th-order Butterworth band-pass, the upper edge held below 0.45 fs).
- em: electrode motion, abrupt baseline shifts (Friesen et al. 1990) seen through the recorder's
  0.5 Hz high-pass: steps of N(0, 1) height at uniform random times (one plus a Poisson(0.5 per second)
  number per window), each decaying with time constant 1 / (2 pi 0.5 Hz) = 0.32 s. Real electrode
  motion is richer: use NSTDB's `em` record (`--noise-source`) for it.

`bw`, `ma` and `em` can come from the real NSTDB records instead (nstdb.py, `NSTDB_RECORDS`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.signal import butter, sosfilt

from ..errors import EcgError

Generator = Callable[[np.random.Generator, int, int, float, float], np.ndarray]

_GENERATORS: dict[str, Generator] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_noise(name: str, description: str):
    """Decorator on a generator: adds noise type `name` (a `--noise` TYPE) to the registry."""

    def add(generate: Generator) -> Generator:
        if name in _GENERATORS:
            raise ValueError(f"noise type {name!r} is registered twice")
        _GENERATORS[name], _DESCRIPTIONS[name] = generate, description
        return generate

    return add


def noise_names() -> tuple[str, ...]:
    """Every noise type, in registration order."""
    return tuple(_GENERATORS)


def noise_help() -> str:
    """'name (description)' for every noise type, for --help."""
    return "; ".join(f"{n}: {d}" for n, d in _DESCRIPTIONS.items())


def generator(name: str) -> Generator:
    """The synthetic generator of noise type `name`."""
    try:
        return _GENERATORS[name]
    except KeyError:
        raise EcgError(f"unknown noise type {name!r}; choose from {', '.join(_GENERATORS)}") from None


def _time(length: int, fs: float) -> np.ndarray:
    return np.arange(length)[:, None] / fs


@register_noise("bw", "baseline wander (respiration, 0.15-0.4 Hz)")
def baseline_wander(rng: np.random.Generator, length: int, n_leads: int, fs: float, mains_hz: float) -> np.ndarray:
    freq = rng.uniform(0.15, 0.4, n_leads)
    phase = rng.uniform(0, 2 * np.pi, n_leads)
    return np.sin(2 * np.pi * freq * _time(length, fs) + phase)


MA_BAND = (20.0, 150.0)


@register_noise("ma", "muscle artefact (EMG, Gaussian in 20-150 Hz)")
def muscle_artefact(rng: np.random.Generator, length: int, n_leads: int, fs: float, mains_hz: float) -> np.ndarray:
    high = min(MA_BAND[1], 0.45 * fs)
    if high <= MA_BAND[0]:
        raise EcgError(f"noise ma (EMG, {MA_BAND[0]:g}-{MA_BAND[1]:g} Hz) needs windows sampled above "
                       f"{MA_BAND[0] / 0.45:.0f} Hz; these are at {fs:g} Hz: choose another noise type")
    sos = butter(4, [MA_BAND[0], high], btype="bandpass", fs=fs, output="sos")
    settle = int(round(fs))  # one second of filter start-up, dropped
    return sosfilt(sos, rng.standard_normal((length + settle, n_leads)), axis=0)[settle:]


EM_RATE = 0.5  # steps per second, on top of one per window
EM_TIME_CONSTANT = 1 / (2 * np.pi * 0.5)  # s: a first-order 0.5 Hz high-pass


@register_noise("em", "electrode motion (baseline steps through a 0.5 Hz high-pass)")
def electrode_motion(rng: np.random.Generator, length: int, n_leads: int, fs: float, mains_hz: float) -> np.ndarray:
    t = _time(length, fs)[:, 0]
    out = np.zeros((length, n_leads))
    for lead in range(n_leads):
        n_steps = 1 + rng.poisson(EM_RATE * length / fs)
        for when, height in zip(rng.uniform(0, length / fs, n_steps), rng.standard_normal(n_steps)):
            after = t >= when
            out[after, lead] += height * np.exp(-(t[after] - when) / EM_TIME_CONSTANT)
    return out


@register_noise("pl", "power line (the database's 50/60 Hz mains)")
def power_line(rng: np.random.Generator, length: int, n_leads: int, fs: float, mains_hz: float) -> np.ndarray:
    if mains_hz >= fs / 2:
        raise EcgError(f"noise pl at {mains_hz:g} Hz mains needs windows sampled above {2 * mains_hz:g} Hz; these "
                       f"are at {fs:g} Hz: choose another noise type")
    phase = rng.uniform(0, 2 * np.pi, n_leads)
    return np.sin(2 * np.pi * mains_hz * _time(length, fs) + phase)


@register_noise("gauss", "white Gaussian noise")
def gaussian(rng: np.random.Generator, length: int, n_leads: int, fs: float, mains_hz: float) -> np.ndarray:
    return rng.standard_normal((length, n_leads))
