"""The paper's picture, as numbers both renderers share (docs/rendering.md explains each)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import EcgError


@dataclass(frozen=True)
class RenderSpec:
    """Frame, line and output geometry of one rendered window."""

    dpi: int = 600
    frame_h: int = 2199  # px at dpi, as in the paper
    frame_w: int = 2725
    out_h: int = 314  # stored image, as in the paper
    out_w: int = 384
    line_width_pt: float = 1.5  # matplotlib's default lines.linewidth: 12.5 px at 600 dpi
    line_color: str = "#1f77b4"  # matplotlib's default first colour (C0)
    margin: float = 0.05  # matplotlib's default axes.xmargin / axes.ymargin (axes fill the frame, axis off)
    resample: str = "box"  # area average from frame to output (Pillow Image.BOX)
    grey: str = "ITU-R 601-2 luma"  # Pillow convert("L"): L = R*299/1000 + G*587/1000 + B*114/1000

    def as_dict(self) -> dict:
        return asdict(self)


PAPER = RenderSpec()


def concatenate_leads(window):
    """(length, n_leads) window -> 1-D series: lead 1's samples, then lead 2's, ... (the paper's x axis)."""
    return window.T.reshape(-1)


def lead_columns(spec: RenderSpec, n_leads: int, length: int) -> list[float]:
    """The n_leads + 1 x positions (in stored-image pixels, 0 = left edge) where lead 1 starts, each lead meets
    the next and the last ends: the plot's x axis spans the concatenated samples 0 .. n_leads * length - 1
    plus `margin` of that span on both sides, across the whole frame (axis off)."""
    span = n_leads * length - 1
    left, width = -spec.margin * span, (1 + 2 * spec.margin) * span
    edges = [-0.5] + [i * length - 0.5 for i in range(1, n_leads)] + [span + 0.5]
    return [spec.out_w * (x - left) / width for x in edges]


def check_window(window) -> np.ndarray:
    """Return `window` as a finite float64 (length, n_leads) array, or raise EcgError."""
    try:
        arr = np.asarray(window, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EcgError(f"window is not a numeric array ({exc}): pass samples x leads as floats") from exc
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise EcgError(
            f"window of shape {arr.shape} cannot be rendered: expected (length >= 2, n_leads >= 1); "
            "pass one window as samples x leads"
        )
    if not np.isfinite(arr).all():
        raise EcgError("window holds NaN or infinite samples: drop or repair the window before rendering")
    return arr


def plot_series(window) -> np.ndarray:
    """The y values both renderers draw at x = 0, 1, ...: the checked window's leads concatenated."""
    return concatenate_leads(check_window(window))
