"""The renderer registry: every renderer registers itself here under the name `--renderer` takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import EcgError
from .geometry import PAPER, RenderSpec


class Renderer(Protocol):
    """What a registered renderer class makes: `render(window float (length, n_leads)) -> uint8 (out_h, out_w)`."""

    spec: RenderSpec

    def render(self, window) -> np.ndarray: ...


@dataclass(frozen=True)
class RendererEntry:
    """A registered renderer: its name, a one-line description (for --help) and its class."""

    name: str
    description: str
    make: Callable[[RenderSpec], Renderer]


_RENDERERS: dict[str, RendererEntry] = {}


def register_renderer(name: str, description: str):
    """Class decorator: register a renderer class `cls(spec: RenderSpec)` under `name`.

    The class must import its heavy dependencies (matplotlib, numba, ...) when it is instantiated, not
    when its module is imported, so that listing renderers stays cheap.
    """

    def add(cls):
        if name in _RENDERERS:
            raise ValueError(f"renderer {name!r} is registered twice")
        _RENDERERS[name] = RendererEntry(name, description, cls)
        return cls

    return add


def renderer_names() -> tuple[str, ...]:
    """Registered renderer names, in registration order."""
    return tuple(_RENDERERS)


def renderer_help() -> str:
    """One line per renderer, 'name: description' (for the CLI's --help)."""
    return "; ".join(f"'{e.name}': {e.description}" for e in _RENDERERS.values())


def make_renderer(name: str, spec: RenderSpec = PAPER) -> Renderer:
    """A new renderer called `name` drawing with geometry `spec` (one per worker: it owns its buffers)."""
    entry = _RENDERERS.get(name)
    if entry is None:
        raise EcgError(f"unknown renderer {name!r}: choose one of {', '.join(_RENDERERS)}")
    return entry.make(spec)
