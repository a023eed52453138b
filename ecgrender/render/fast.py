"""The fast renderer: the matplotlib reference's picture computed straight at the stored 314 x 384 size.

No 2,199 x 2,725 frame is drawn. The line's vertices go through the same data -> pixel transform
as matplotlib's (5% margins, Agg's y flip), the stroke (12.5 px wide at 600 dpi, round joins,
projecting caps) is intersected with every frame pixel column (`raster.stroke_envelope`), and the
covered length is integrated over each output pixel's block of frame pixels, the blocks being the
ones Pillow's BOX filter averages (`raster.box_coverage`). Grey = 255 - coverage * (255 - luma of
the line colour), which is what Agg's blend followed by Pillow's luma gives. docs/rendering.md
("Fast renderer") gives the derivation, the error budget and the measured PSNR and throughput.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import ImageColor

from ..errors import EcgError
from .geometry import PAPER, RenderSpec, plot_series
from .registry import register_renderer

SUBCOLUMNS = 4  # stroke samples per frame pixel column (see docs/rendering.md, "Fast renderer")
_SNAP_MAX_VERTICES = 1024  # matplotlib snaps a path to pixel centres only up to this many vertices


def box_blocks(in_size: int, out_size: int) -> np.ndarray:
    """Edges (out_size + 1,) of the runs of input pixels Pillow's BOX filter averages into each output pixel.

    Mirrors Pillow's `precompute_coeffs` with the box filter (weight 1 where
    -0.5 < (i + 0.5 - centre) / scale <= 0.5) and checks that the runs tile the input.
    """
    return np.array(_box_edges(in_size, out_size), dtype=np.int64)


@functools.lru_cache(maxsize=16)
def _box_edges(in_size: int, out_size: int) -> tuple[int, ...]:
    """box_blocks' edges, computed once per size pair (every render job makes a renderer)."""
    if out_size > in_size:
        raise EcgError(f"output size {out_size} exceeds frame size {in_size}: the fast renderer only reduces")
    scale = in_size / out_size
    edges = [0] * (out_size + 1)
    for xx in range(out_size):
        centre = (xx + 0.5) * scale
        support = 0.5 * scale
        xmin = max(int(centre - support + 0.5), 0)
        xmax = min(int(centre + support + 0.5), in_size)
        taps = [i for i in range(xmin, xmax) if -0.5 < (i + 0.5 - centre) / scale <= 0.5]
        if not taps or taps != list(range(taps[0], taps[-1] + 1)) or (xx and taps[0] != edges[xx]):
            raise EcgError(f"Pillow BOX runs for {in_size} -> {out_size} px do not tile: use --renderer matplotlib")
        edges[xx], edges[xx + 1] = taps[0], taps[-1] + 1
    if edges[0] != 0 or edges[-1] != in_size:
        raise EcgError(f"Pillow BOX runs for {in_size} -> {out_size} px do not tile: use --renderer matplotlib")
    return tuple(edges)


def view_limits(vmin: float, vmax: float, margin: float) -> tuple[float, float]:
    """matplotlib's autoscaled view interval of data [vmin, vmax]: `nonsingular` widening, then margins."""
    maxabs = max(abs(vmin), abs(vmax))
    if maxabs < 1e21 * np.finfo(float).tiny:  # (1e6 / tiny) * smallest normal float, as matplotlib
        vmin, vmax = -0.05, 0.05
    elif vmax - vmin <= maxabs * 1e-15:
        vmin, vmax = vmin - 0.05 * abs(vmin), vmax + 0.05 * abs(vmax)
    delta = (vmax - vmin) * margin
    return vmin - delta, vmax + delta


@register_renderer("fast", "the matplotlib picture computed straight at 314 x 384, 200-550x faster (default)")
class FastRenderer:
    """Render windows like `MatplotlibRenderer`, some 40x faster (one instance per worker process)."""

    name = "fast"

    def __init__(self, spec: RenderSpec = PAPER, subcolumns: int = SUBCOLUMNS):
        try:  # numba is imported when a renderer is made, not when the renderers are listed
            from . import raster
        except ImportError as exc:
            raise EcgError(
                f"the fast renderer cannot be loaded ({exc}): reinstall the package with `make setup` "
                "or use --renderer matplotlib"
            ) from exc
        self._raster = raster
        if int(subcolumns) != subcolumns or subcolumns < 1:
            raise EcgError(f"subcolumns={subcolumns!r} is not a positive whole number: use 1 or more (default 4)")
        self.spec = spec
        self.subcolumns = int(subcolumns)
        self._width = spec.frame_w / spec.dpi * spec.dpi  # matplotlib's figure bbox, in pixels
        self._height = spec.frame_h / spec.dpi * spec.dpi
        self._linewidth = spec.line_width_pt * spec.dpi / 72.0
        col_edges = box_blocks(spec.frame_w, spec.out_w)
        self._row_edges = box_blocks(spec.frame_h, spec.out_h).astype(np.float64)
        self._col_block = np.repeat(np.arange(spec.out_w, dtype=np.int64), np.diff(col_edges) * self.subcolumns)
        self._row_block = np.repeat(np.arange(spec.out_h, dtype=np.int64), np.diff(self._row_edges).astype(np.int64))
        rgb = np.array(ImageColor.getrgb(spec.line_color)[:3], dtype=np.float64)
        ink = float(rgb @ np.array([0.299, 0.587, 0.114]))  # Pillow's convert("L") weights
        self._scale = (255.0 - ink) / (np.outer(np.diff(self._row_edges), np.diff(col_edges)) * self.subcolumns)
        self._lo = np.empty(spec.frame_w * self.subcolumns)
        self._hi = np.empty(spec.frame_w * self.subcolumns)
        self._cover = np.empty((spec.out_h, spec.out_w))
        self._full = np.empty((spec.out_h, spec.out_w), dtype=np.int32)
        self._block_h = np.diff(self._row_edges)
        self._n = -1
        self._px = np.empty(0)

    def _x_pixels(self, n: int) -> np.ndarray:
        """Frame x of samples 0..n-1 (cached per length)."""
        if n != self._n:
            x0, x1 = view_limits(0.0, float(n - 1), self.spec.margin)
            self._px = (np.arange(n, dtype=np.float64) - x0) * (self._width / (x1 - x0))
            self._n = n
        return self._px

    def render(self, window) -> np.ndarray:
        """(length, n_leads) window -> stored grey image (out_h, out_w) uint8."""
        y = plot_series(window)
        px = self._x_pixels(y.size)
        y0, y1 = view_limits(float(y.min()), float(y.max()), self.spec.margin)
        py = self._height - (y - y0) * (self._height / (y1 - y0))  # Agg's rows run downwards
        if y.size <= _SNAP_MAX_VERTICES and np.all(np.abs(np.diff(py)) < 1e-4):
            # matplotlib snaps an all-horizontal short path to pixel centres (odd rounded width)
            half = 0.5 if int(np.floor(self._linewidth + 0.5)) % 2 else 0.0
            px = np.floor(px + 0.5) + half
            py = np.floor(py + 0.5) + half
        self._cover.fill(0.0)
        self._full.fill(0)
        self._raster.stroke_envelope(px, py, self._linewidth / 2.0, float(self.subcolumns), self._lo, self._hi)
        self._raster.box_coverage(
            self._lo, self._hi, self._col_block, self._row_edges, self._row_block, self._cover, self._full
        )
        out = np.empty((self.spec.out_h, self.spec.out_w), dtype=np.uint8)
        self._raster.to_grey(self._cover, self._full, self._block_h, self._scale, out)
        return out
