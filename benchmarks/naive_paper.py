"""The paper's pipeline as a researcher would write it: pyplot figure, `plot`, `savefig` PNG, reload, resize.

This is the baseline `bench_render.py` measures the project's renderers against. It rebuilds the
figure for every window and goes through a PNG file on disk, as a straightforward script does;
the picture is the same as `ecgrender.render.mpl.MatplotlibRenderer`'s (docs/rendering.md).
"""

from __future__ import annotations

import os
import tempfile

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import matplotlib.style
import numpy as np
from PIL import Image

from ecgrender.render.geometry import PAPER, RenderSpec, concatenate_leads


def render_naive(window, spec: RenderSpec = PAPER, workdir: str | None = None) -> np.ndarray:
    """(length, n_leads) window -> stored grey image (out_h, out_w) uint8, through a PNG file at spec.dpi."""
    series = concatenate_leads(np.asarray(window, dtype=np.float64))
    with matplotlib.style.context("default"):
        fig = plt.figure(figsize=(spec.frame_w / spec.dpi, spec.frame_h / spec.dpi), dpi=spec.dpi)
        try:
            ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
            ax.axis("off")
            ax.plot(series)
            fd, path = tempfile.mkstemp(suffix=".png", dir=workdir)
            os.close(fd)
            try:
                fig.savefig(path, dpi=spec.dpi)
                with Image.open(path) as png:
                    if png.size != (spec.frame_w, spec.frame_h):
                        raise RuntimeError(f"savefig wrote {png.size} px, expected {spec.frame_w}x{spec.frame_h}")
                    grey = png.convert("L")
            finally:
                os.remove(path)
        finally:
            plt.close(fig)
    return np.asarray(grey.resize((spec.out_w, spec.out_h), Image.BOX))
