"""Window -> 314 x 384 grey image renderers, one registry (`registry.py`) for all of them.

Every renderer has `render(window float (length, n_leads)) -> uint8 (spec.out_h, spec.out_w)` and
owns its buffers: make one per worker process with `make_renderer`. Adding a renderer means one new
module here that registers its class with `@register_renderer`, imported below (docs/extending.md).
"""

from __future__ import annotations

from . import fast, mpl  # noqa: F401  (importing a renderer module registers it)
from .registry import Renderer, make_renderer, register_renderer, renderer_help, renderer_names

__all__ = ["Renderer", "make_renderer", "register_renderer", "renderer_help", "renderer_names"]
