"""The fast renderer draws the matplotlib reference's picture: same size, PSNR >= 35 dB, stable goldens."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecgrender.errors import EcgError
from ecgrender.render import make_renderer
from ecgrender.render.fast import FastRenderer, box_blocks, view_limits
from ecgrender.render.geometry import PAPER, RenderSpec

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
MIN_PSNR = 35.0
KINDS = ("ecg", "flat_segments", "spikes", "steep_qrs", "noise", "walk")
LEADS = (2, 3, 6, 12, 15)
SCALES = (1e-9, 1e-3, 1.0, 1.0, 1e3, 1e9)  # very small to very large amplitudes, drawn per window


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def synthetic_window(kind: str, n_leads: int, seed: int, length: int = 1000) -> np.ndarray:
    """A (length, n_leads) window of one shape family, deterministic in seed."""
    rng = np.random.default_rng(seed)
    scale = rng.choice(SCALES)
    t = np.arange(length, dtype=np.float64)
    out = np.empty((length, n_leads))
    for lead in range(n_leads):
        if kind == "ecg":  # beats: P, sharp QRS, T, plus wander and noise
            period = rng.uniform(150, 400)
            phase = (t + rng.uniform(0, period)) % period
            gain = rng.uniform(0.3, 2.0) * rng.choice((-1, 1))
            y = gain * (
                0.15 * np.exp(-(((phase - 0.2 * period) / 8) ** 2))
                + np.exp(-(((phase - 0.35 * period) / rng.uniform(1.0, 4.0)) ** 2))
                + 0.3 * np.exp(-(((phase - 0.6 * period) / 20) ** 2))
            )
            y += 0.1 * np.sin(t / rng.uniform(100, 300)) + rng.normal(0, 0.01, length)
        elif kind == "flat_segments":  # plateaus joined by steps, some leads entirely flat
            y = np.repeat(rng.normal(0, 1, 8), length // 8 + 1)[:length]
            if rng.random() < 0.3:
                y = np.full(length, rng.normal())
        elif kind == "spikes":  # zero line with isolated one-sample spikes
            y = np.zeros(length)
            at = rng.choice(length, size=rng.integers(1, 6), replace=False)
            y[at] = rng.normal(0, 3, at.size)
        elif kind == "steep_qrs":  # tall, 1 to 3 samples wide triangles
            y = rng.normal(0, 0.02, length)
            for at in rng.choice(length - 3, size=rng.integers(2, 8), replace=False):
                y[at + 1] += rng.uniform(-5, 5)
                y[at + 2] += rng.uniform(-1, 1)
        elif kind == "noise":
            y = rng.normal(0, 1, length)
        else:  # "walk"
            y = np.cumsum(rng.normal(0, 1, length))
        out[:, lead] = y
    return (out + rng.normal()) * scale


@pytest.fixture(scope="module")
def reference():
    return make_renderer("matplotlib", PAPER)


@pytest.fixture(scope="module")
def fast():
    return make_renderer("fast", PAPER)


@pytest.mark.parametrize("seed", range(30))  # every kind with every lead count once
def test_matches_matplotlib_on_random_windows(seed, reference, fast):
    kind, n_leads = KINDS[seed % len(KINDS)], LEADS[(seed // len(KINDS)) % len(LEADS)]
    window = synthetic_window(kind, n_leads, seed)
    expected, got = reference.render(window), fast.render(window)
    assert got.shape == (PAPER.out_h, PAPER.out_w) and got.dtype == np.uint8
    value = psnr(expected, got)
    assert value >= MIN_PSNR, f"{kind} window with {n_leads} leads (seed {seed}): PSNR {value:.1f} dB"


def test_flat_short_window_is_snapped_like_matplotlib(reference, fast):
    window = np.full((300, 1), 0.7)  # few vertices, all horizontal: matplotlib snaps to pixel centres
    assert psnr(reference.render(window), fast.render(window)) >= 50


def test_other_output_size_matches_matplotlib():
    spec = RenderSpec(out_h=157, out_w=192)
    window = synthetic_window("ecg", 3, 7)
    value = psnr(make_renderer("matplotlib", spec).render(window), FastRenderer(spec).render(window))
    assert value >= MIN_PSNR


def test_matches_matplotlib_on_real_windows(shared_data, reference, fast):
    import wfdb

    mit = wfdb.rdrecord(str(shared_data / "mitdb" / "101")).p_signal
    ptb = wfdb.rdrecord(str(shared_data / "ptbdb" / "patient001" / "s0010_re")).p_signal
    windows = {
        "mitdb 2 leads": mit[100_000:101_000],
        "ptbdb 12 leads": ptb[20_000:21_000, :12],
        "ptbdb 15 leads": ptb[30_000:31_000],
    }
    for name, window in windows.items():
        value = psnr(reference.render(window), fast.render(window))
        assert value >= 45, f"{name}: PSNR {value:.1f} dB"


GOLDEN_CASES = {"ecg2": ("ecg", 2, 101), "ecg15": ("ecg", 15, 102), "qrs12": ("steep_qrs", 12, 103)}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_images(name, fast, reference):
    """Stored images guard against drift; ECGRENDER_UPDATE_GOLDEN=1 rewrites them (then review the diff)."""
    window = synthetic_window(*GOLDEN_CASES[name])
    got = fast.render(window)
    path = GOLDEN / f"fast_{name}.png"
    if os.environ.get("ECGRENDER_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(got, "L").save(path)
    stored = np.asarray(Image.open(path))
    assert psnr(reference.render(window), stored) >= MIN_PSNR  # the golden itself is faithful
    assert np.abs(got.astype(int) - stored).max() <= 1


def test_box_blocks_are_pillows_box_filter():
    rng = np.random.default_rng(0)
    for n_in, n_out in ((PAPER.frame_w, PAPER.out_w), (PAPER.frame_h, PAPER.out_h), (1000, 7)):
        row = rng.random((1, n_in)).astype(np.float32)
        pillow = np.asarray(Image.fromarray(row, "F").resize((n_out, 1), Image.BOX))[0]
        edges = box_blocks(n_in, n_out)
        ours = np.array([row[0, a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
        np.testing.assert_allclose(ours, pillow, rtol=1e-5)


@pytest.mark.parametrize("lo,hi", [(0.0, 0.0), (3.0, 3.0), (-2.5, -2.5), (1e-300, 1e-300), (-1.0, 4.0), (1e-12, 3e-12)])
def test_view_limits_are_matplotlibs(lo, hi):
    from matplotlib.figure import Figure

    ax = Figure().add_axes((0, 0, 1, 1))
    ax.margins(PAPER.margin)
    ax.plot([0.0, 1.0, 2.0], [lo, hi, lo])
    assert view_limits(lo, hi, PAPER.margin) == pytest.approx(ax.get_ylim(), rel=1e-12, abs=1e-300)


def test_bad_input_is_an_ecg_error(fast):
    with pytest.raises(EcgError):
        fast.render(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(EcgError):
        fast.render(np.zeros(1000))
    with pytest.raises(EcgError):
        FastRenderer(subcolumns=0)
