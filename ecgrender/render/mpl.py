"""The paper-faithful reference renderer: one matplotlib line plot per window, read from the Agg canvas.

The picture is the paper's: all leads concatenated on the horizontal axis and drawn as one
`plot` line (linear interpolation between the (index, value) points) on axes that fill a
2,199 x 2,725 px frame at 600 dpi, axis off, matplotlib's default style. The RGBA canvas is
turned into grey with Pillow's ITU-R 601-2 luma (`convert("L")`) and reduced to 314 x 384 by
area averaging (`Image.BOX`). docs/rendering.md lists every number.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import EcgError
from .geometry import PAPER, RenderSpec, plot_series
from .registry import register_renderer

# rcParams read while drawing (not stored on the artists): pinned to matplotlib's defaults so a
# user's matplotlibrc cannot change the stored images.
_DRAW_RC: dict = {
    "path.simplify": True,
    "path.simplify_threshold": 1.0 / 9.0,
    "path.snap": True,
    "agg.path.chunksize": 0,
}


def to_stored_image(rgba: np.ndarray, spec: RenderSpec = PAPER) -> np.ndarray:
    """Frame RGBA (frame_h, frame_w, 4) uint8 -> stored grey (out_h, out_w) uint8: luma, then area average."""
    if rgba.shape != (spec.frame_h, spec.frame_w, 4) or rgba.dtype != np.uint8:
        raise EcgError(
            f"frame of shape {rgba.shape} ({rgba.dtype}) is not the {spec.frame_h}x{spec.frame_w} RGBA uint8 "
            "frame of this RenderSpec: pass the canvas buffer of a figure made with the same spec"
        )
    # Zero-copy view of the RGBA buffer; "L" from RGBA ignores alpha (the canvas is opaque).
    frame = Image.frombuffer("RGBA", (spec.frame_w, spec.frame_h), np.ascontiguousarray(rgba), "raw", "RGBA", 0, 1)
    return np.asarray(frame.convert("L").resize((spec.out_w, spec.out_h), Image.Resampling.BOX))


@register_renderer("matplotlib", "the paper's pipeline: a matplotlib line plot at 600 dpi, reduced to 314 x 384")
class MatplotlibRenderer:
    """Render windows with a reused matplotlib Figure and Agg canvas (one instance per worker)."""

    name = "matplotlib"

    def __init__(self, spec: RenderSpec = PAPER):
        import matplotlib as mpl  # here, not at module level: listing the renderers stays cheap
        import matplotlib.style
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if (spec.resample, spec.grey) != (PAPER.resample, PAPER.grey):
            raise EcgError(
                f"the matplotlib renderer converts with {PAPER.grey!r} and resamples with {PAPER.resample!r}, "
                f"not {spec.grey!r} / {spec.resample!r}: keep those two RenderSpec fields at their defaults"
            )
        self.spec = spec
        with mpl.style.context("default"), mpl.rc_context(_DRAW_RC):
            fig = Figure(
                figsize=(spec.frame_w / spec.dpi, spec.frame_h / spec.dpi),
                dpi=spec.dpi,
                facecolor="white",
            )
            canvas = FigureCanvasAgg(fig)
            ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
            ax.set_axis_off()
            ax.margins(spec.margin, spec.margin)
            (line,) = ax.plot(
                [0.0, 1.0],
                [0.0, 1.0],
                linewidth=spec.line_width_pt,
                color=spec.line_color,
                antialiased=True,
            )
            canvas.draw()
        if tuple(canvas.get_width_height()) != (spec.frame_w, spec.frame_h):
            raise EcgError(
                f"matplotlib made a {canvas.get_width_height()} px canvas instead of "
                f"{spec.frame_w}x{spec.frame_h}: report this matplotlib version as unsupported"
            )
        self._fig, self._canvas, self._ax, self._line = fig, canvas, ax, line
        self._rc_context = mpl.rc_context
        self._x = np.empty(0)

    def _draw(self, window) -> np.ndarray:
        """Draw one window; return a view of the canvas's RGBA buffer (valid until the next draw)."""
        y = plot_series(window)
        if self._x.size != y.size:
            self._x = np.arange(y.size, dtype=np.float64)
        with self._rc_context(_DRAW_RC):
            self._line.set_data(self._x, y)
            self._ax.relim()
            self._ax.autoscale_view()
            self._canvas.draw()
        return np.asarray(self._canvas.buffer_rgba())

    def frame(self, window) -> np.ndarray:
        """Draw one window; return the full-resolution RGBA frame (frame_h, frame_w, 4) uint8 (a copy)."""
        return self._draw(window).copy()

    def render(self, window) -> np.ndarray:
        """(length, n_leads) window -> stored grey image (out_h, out_w) uint8."""
        return to_stored_image(self._draw(window), self.spec)
