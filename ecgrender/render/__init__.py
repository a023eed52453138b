"""Window -> 314 x 384 grey image renderers, one registry (`registry.py`) for all of them.

Every renderer has `render(window float (length, n_leads)) -> uint8 (spec.out_h, spec.out_w)` and
owns its buffers: make one per worker process with `make_renderer`. Every module of this package but
the support modules below is a renderer module that registers its class with `@register_renderer`;
importing the package imports them all, so adding a renderer is adding its module (docs/extending.md).
"""

from __future__ import annotations

import importlib
import pkgutil

from .registry import Renderer, make_renderer, register_renderer, renderer_help, renderer_names

_SUPPORT = ("geometry", "raster", "registry")  # the modules here that are not renderers
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in _SUPPORT:
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["Renderer", "make_renderer", "register_renderer", "renderer_help", "renderer_names"]
