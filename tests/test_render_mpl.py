"""The paper-faithful matplotlib renderer: geometry, grey values, reuse, agreement with the naive pipeline.

Regenerate the golden image (only after a deliberate change of the picture) with
`.venv/bin/python tests/test_render_mpl.py --update-golden`.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pytest
from PIL import Image

from ecgrender.errors import EcgError
from ecgrender.render import make_renderer, renderer_names
from ecgrender.render.geometry import PAPER, RenderSpec

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "mpl_2lead.png"
C0_RGB = (31, 119, 180)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ecg_like(length: int = 1000, leads: int = 2, fs: float = 360.0) -> np.ndarray:
    """A deterministic ECG-like window (P, QRS, T bumps at 75 bpm, slow baseline), no random numbers."""
    t = np.arange(length) / fs
    out = np.empty((length, leads))
    for lead in range(leads):
        phase = (t * 1.25 + 0.1 * lead) % 1.0
        wave = (
            0.15 * np.exp(-(((phase - 0.20) / 0.025) ** 2))
            + 1.2 * np.exp(-(((phase - 0.40) / 0.008) ** 2))
            - 0.25 * np.exp(-(((phase - 0.43) / 0.010) ** 2))
            + 0.35 * np.exp(-(((phase - 0.70) / 0.050) ** 2))
        )
        out[:, lead] = (1.0 - 0.4 * lead) * wave + 0.05 * np.sin(2 * np.pi * 0.3 * t) - 0.1 * lead
    return out


def load_naive():
    spec = importlib.util.spec_from_file_location("naive_paper", REPO / "benchmarks" / "naive_paper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render_naive


@pytest.fixture(scope="module")
def renderer():
    return make_renderer("matplotlib")


def test_output_shape_dtype_and_grey_values(renderer):
    img = renderer.render(ecg_like())
    assert img.shape == (PAPER.out_h, PAPER.out_w) == (314, 384)
    assert img.dtype == np.uint8
    # White background -> 255; the line's fully covered pixels are C0 blue -> luma 100.
    assert img.max() == 255 and img.min() == 100
    assert (img == 255).mean() > 0.8


def test_full_frame_is_exact_paper_size_with_c0_line(renderer):
    frame = renderer.frame(ecg_like(leads=3))
    assert frame.shape == (2199, 2725, 4)
    colours = {tuple(c) for c in np.unique(frame.reshape(-1, 4), axis=0)}
    assert (255, 255, 255, 255) in colours and (*C0_RGB, 255) in colours
    assert all(c[3] == 255 for c in colours)  # opaque: alpha plays no part in the grey image


def test_spike_darkens_only_its_columns(renderer):
    window = np.zeros((1000, 2))
    window[900, 1] = 1.0  # concatenated x = 1900 of 0..1999
    img = renderer.render(window)
    # x limits: -0.05*1999 .. 1999*1.05 -> spike at 0.9095 of the width; y: 0 at 0.045 from the bottom.
    spike_col = round((1900 + 0.05 * 1999) / (1.1 * 1999) * PAPER.out_w)
    top = img[: PAPER.out_h // 2]
    dark_cols = np.flatnonzero((top < 200).any(axis=0))
    assert dark_cols.size > 0 and abs(dark_cols.mean() - spike_col) <= 2 and np.ptp(dark_cols) <= 6
    baseline_row = round((1 - 0.05 / 1.1) * PAPER.out_h)
    assert (img[baseline_row - 2 : baseline_row + 3, 20:330] < 200).any(axis=0).all()  # the flat line
    assert (img[:, :10] == 255).all() and (img[:, -10:] == 255).all()  # margins stay white


def test_reused_renderer_is_deterministic(renderer):
    a, b = ecg_like(), ecg_like(leads=2)[::-1] * 3.0
    first = renderer.render(a)
    assert np.array_equal(renderer.render(a), first)
    other = renderer.render(b)
    assert not np.array_equal(other, first)
    assert np.array_equal(renderer.render(a), first)
    assert np.array_equal(make_renderer("matplotlib").render(a), first)
    # Different lengths and lead counts through the same figure.
    assert renderer.render(ecg_like(leads=15)).shape == (314, 384)
    assert np.array_equal(renderer.render(a), first)


def test_user_rcparams_do_not_change_the_picture(renderer):
    expected = renderer.render(ecg_like())
    rc = {"lines.linewidth": 4.0, "axes.xmargin": 0.2, "path.simplify": False}
    rc["axes.prop_cycle"] = mpl.cycler(color=["r"])
    with mpl.rc_context(rc):
        other = make_renderer("matplotlib")
        assert np.array_equal(other.render(ecg_like()), expected)
        assert np.array_equal(renderer.render(ecg_like()), expected)


def test_naive_pipeline_agrees_on_synthetic_window(renderer):
    window = ecg_like(leads=12, fs=500.0)
    assert psnr(load_naive()(window), renderer.render(window)) >= 40.0


@pytest.mark.skipif(not (SHARED / "mitdb" / "101.hea").exists(), reason="../shared/data/mitdb absent")
def test_naive_pipeline_agrees_on_real_mitdb_window(renderer):
    import wfdb

    window = wfdb.rdrecord(str(SHARED / "mitdb" / "101"), sampfrom=20_000, sampto=21_000).p_signal
    assert window.shape == (1000, 2)
    assert psnr(load_naive()(window), renderer.render(window)) >= 40.0


def test_golden_image(renderer):
    img = renderer.render(ecg_like())
    golden = np.asarray(Image.open(GOLDEN))
    assert golden.shape == img.shape
    value = psnr(img, golden)
    assert value > 45.0, f"PSNR {value:.2f} dB, max abs diff {np.abs(img.astype(int) - golden).max()}"


@pytest.mark.parametrize(
    "window",
    [np.zeros(1000), np.zeros((1, 2)), np.zeros((1000, 0)), np.array([[0.0, np.nan]] * 10), [["a", "b"]] * 3],
    ids=["1-D", "one sample", "no leads", "NaN", "text"],
)
def test_bad_windows_raise_ecgerror(renderer, window):
    with pytest.raises(EcgError):
        renderer.render(window)


def test_make_renderer_names(monkeypatch):
    assert set(renderer_names()) == {"matplotlib", "fast"}
    with pytest.raises(EcgError, match="unknown renderer"):
        make_renderer("svg")
    with pytest.raises(EcgError, match="resamples"):
        make_renderer("matplotlib", RenderSpec(resample="bilinear"))
    import ecgrender.render

    monkeypatch.setitem(sys.modules, "ecgrender.render.raster", None)  # simulate numba missing
    monkeypatch.delattr(ecgrender.render, "raster", raising=False)  # (an earlier import set the attribute)
    with pytest.raises(EcgError, match="fast renderer cannot be loaded"):
        make_renderer("fast")


if __name__ == "__main__" and sys.argv[1:] == ["--update-golden"]:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_renderer("matplotlib").render(ecg_like())).save(GOLDEN)
    print(f"wrote {GOLDEN}")
