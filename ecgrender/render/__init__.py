"""Window -> 314 x 384 grey image renderers: `matplotlib` (the paper's reference) and `fast`.

Every renderer has `render(window float (length, n_leads)) -> uint8 (spec.out_h, spec.out_w)` and
owns its buffers: make one per worker process with `make_renderer`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import EcgError
from .geometry import PAPER, RenderSpec

RENDERERS = ("matplotlib", "fast")


class Renderer(Protocol):
    """What `make_renderer` returns."""

    spec: RenderSpec

    def render(self, window) -> np.ndarray: ...


def make_renderer(name: str, spec: RenderSpec = PAPER) -> Renderer:
    """A new renderer called `name` (one of RENDERERS) drawing with geometry `spec`."""
    if name == "matplotlib":
        from .mpl import MatplotlibRenderer

        return MatplotlibRenderer(spec)
    if name == "fast":
        try:
            from .fast import FastRenderer
        except ImportError as exc:
            raise EcgError(
                f"the fast renderer cannot be loaded ({exc}): reinstall the package with `make setup` "
                "or use --renderer matplotlib"
            ) from exc
        return FastRenderer(spec)
    raise EcgError(f"unknown renderer {name!r}: choose one of {', '.join(RENDERERS)}")
