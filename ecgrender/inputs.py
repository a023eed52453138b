"""Model inputs for a new WFDB record, made the way a dataset card says its windows were made.

`record_inputs` is the one function the trainer's `predict` uses from ecgrender: it reads the
record, takes the card's leads, cuts non-overlapping windows of the card's length and returns them
rendered with the card's renderer and render settings, or as lead sums (the Ref-ECG input).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EcgError
from .render import make_renderer
from .render.geometry import RenderSpec
from .sources import database_names, database_spec
from .sources.resample import resample_signal
from .sources.wfdbfiles import lead_order, read_header, read_physical


@dataclass(frozen=True)
class RecordInputs:
    """Window starts (samples) and the inputs: uint8 (N, out_h, out_w) images or float32 (N, L) lead sums."""

    starts: list[int]
    x: np.ndarray


def select_leads(signal: np.ndarray, names: list[str], card: dict, record: str) -> np.ndarray:
    """The card's leads, in the card's order: the card's database's canonical order first (as its
    builds store them), then by name when the record has them all, else by position."""
    spec = database_spec(card["source"]["database"]) if card["source"]["database"] in database_names() else None
    if spec is not None and spec.leads:
        order, missing = lead_order(names, spec.leads)
        if missing:
            raise EcgError(f"record {record} lacks the {'/'.join(missing)} lead every {spec.name} record starts "
                           "with: give a record of the same database")
        signal, names = signal[:, order], [names[i] for i in order]
    want = list(card["leads"])
    if want and all(n in names for n in want):
        return signal[:, [names.index(n) for n in want]]
    if signal.shape[1] == card["n_leads"]:
        return signal
    raise EcgError(
        f"record {record} has leads {names}, the dataset has {card['n_leads']} ({want}): "
        "give a record of the same database"
    )


def tile_windows(signal: np.ndarray, length: int, max_windows: int, record: str) -> tuple[np.ndarray, list[int]]:
    """Non-overlapping windows from the start of the record, evenly thinned to at most `max_windows`;
    windows holding NaN (missing samples) are skipped."""
    starts = [s for s in range(0, signal.shape[0] - length + 1, length) if np.isfinite(signal[s:s + length]).all()]
    if len(starts) > max_windows:
        starts = [starts[i] for i in np.linspace(0, len(starts) - 1, max_windows).round().astype(int)]
    if not starts:
        raise EcgError(f"record {record} has no complete {length}-sample window without missing samples: "
                       "give a longer record")
    return np.stack([signal[s:s + length] for s in starts]), starts


def record_inputs(record_path, card: dict, max_windows: int, images: bool) -> RecordInputs:
    """At most `max_windows` windows of the WFDB record `record_path` (path without extension), as the
    dataset `card` (a dataset.json dict) describes: rendered images when `images`, else lead sums."""
    if max_windows < 1:
        raise EcgError(f"max_windows must be at least 1, got {max_windows}")
    record_path = Path(record_path)
    root, name = record_path.parent, record_path.name.removesuffix(".hea")
    header = read_header(root, name)
    fs = card["window"].get("fs")
    resampled = card["source"].get("resampled_to_hz")  # a --resample build: its records are resampled the same way
    if fs and abs(float(header.fs) - float(fs)) > 1e-6 and not resampled:
        raise EcgError(f"record {record_path} is sampled at {header.fs} Hz, the dataset at {fs} Hz: "
                       "give a record of the same database")
    signal, names = read_physical(root, name)
    if resampled:
        signal = resample_signal(signal, float(header.fs), float(resampled))
    signal = select_leads(signal, names, card, str(record_path))
    windows, starts = tile_windows(signal, int(card["window"]["length"]), max_windows, str(record_path))
    if not images:
        return RecordInputs(starts, windows.sum(axis=2, dtype=np.float32))
    try:
        spec = RenderSpec(**card["render"])
    except TypeError as exc:
        raise EcgError(f"the dataset card's render settings do not fit this ecgrender ({exc}): "
                       "upgrade ecgrender or use a card written by it") from None
    renderer = make_renderer(card["renderer"], spec)
    return RecordInputs(starts, np.stack([renderer.render(w) for w in windows]))
