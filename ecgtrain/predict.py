"""Classify one WFDB record with a trained run: windows -> rendered images (or lead sums) -> votes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ecgrender.render import make_renderer
from ecgrender.render.geometry import RenderSpec
from ecgrender.sources.wfdbfiles import read_header, read_physical

from .data import Standardize
from .engine import autocast, load_run, setup_device
from .errors import TrainError
from .models import IMAGE_MODELS


def select_leads(signal: np.ndarray, names: list[str], card, record: str) -> np.ndarray:
    """The card's leads, in the card's order; by name when the record has them all, else by position."""
    want = card.leads
    if want and all(n in names for n in want):
        return signal[:, [names.index(n) for n in want]]
    if signal.shape[1] == card.n_leads:
        return signal
    raise TrainError(
        f"record {record} has leads {names}, the run's dataset has {card.n_leads} ({want}): "
        "give a record of the same database"
    )


def tile_windows(signal: np.ndarray, length: int, max_windows: int) -> tuple[np.ndarray, list[int]]:
    """Non-overlapping windows from the start of the record, evenly thinned to at most `max_windows`;
    windows holding NaN (missing samples) are skipped."""
    starts = [s for s in range(0, signal.shape[0] - length + 1, length) if np.isfinite(signal[s:s + length]).all()]
    if len(starts) > max_windows:
        starts = [starts[i] for i in np.linspace(0, len(starts) - 1, max_windows).round().astype(int)]
    if not starts:
        raise TrainError(f"the record has no complete {length}-sample window without missing samples")
    return np.stack([signal[s:s + length] for s in starts]), starts


def predict_record(run, record_path, device: str = "auto", max_windows: int = 60, batch_size: int = 16) -> dict:
    """Per-window classes and probabilities and the record-level majority vote for one WFDB record."""
    record_path = Path(record_path)
    root, name = record_path.parent, record_path.name.removesuffix(".hea")
    dev = setup_device(device)
    model, ckpt, card = load_run(run, dev)
    header = read_header(root, name)
    if card.fs and abs(float(header.fs) - float(card.fs)) > 1e-6:
        raise TrainError(f"record {record_path} is sampled at {header.fs} Hz, the run's dataset at {card.fs} Hz: "
                       "give a record of the same database")
    signal = select_leads(read_physical(root, name), list(header.sig_name), card, str(record_path))
    windows, starts = tile_windows(signal, card.window, max_windows)
    image = ckpt["args"]["model"] in IMAGE_MODELS
    if image:
        renderer = make_renderer(card.renderer, RenderSpec(**card.render))
        x = torch.from_numpy(np.stack([renderer.render(w) for w in windows]))
    else:
        x = torch.from_numpy(windows.sum(axis=2, dtype=np.float32)).unsqueeze(1)
    prep = Standardize(image, image and dev.type == "cuda").to(dev)
    probs = []
    with torch.inference_mode():
        for lo in range(0, len(x), batch_size):
            with autocast(dev, ckpt["args"].get("amp", True)):
                out = model(prep(x[lo:lo + batch_size].to(dev)))
            probs.append(torch.softmax(out.float(), 1).cpu())
    probs = torch.cat(probs).numpy()
    classes = card.classes
    pred = probs.argmax(1)
    votes = Counter(int(p) for p in pred)
    best = max(votes.values())
    winner = min(c for c, v in votes.items() if v == best)
    return {
        "record": str(record_path),
        "model": ckpt["args"]["model"],
        "classes": classes,
        "windows": [{"start": s, "label": classes[p], "prob": float(probs[i, p])} for i, (s, p) in enumerate(zip(starts, pred))],
        "record_label": classes[winner],
        "votes": {classes[c]: v for c, v in sorted(votes.items())},
        "mean_prob": {c: float(probs[:, i].mean()) for i, c in enumerate(classes)},
    }


def format_prediction(result: dict) -> str:
    """Plain-text table: one line per window, then the record-level vote."""
    lines = [f"record {result['record']} ({result['model']}, {len(result['windows'])} windows)",
             f"{'start':>10}  {'class':<12} prob"]
    lines += [f"{w['start']:>10}  {w['label']:<12} {w['prob']:.3f}" for w in result["windows"]]
    votes = ", ".join(f"{c} {v}" for c, v in result["votes"].items())
    lines.append(f"record-level (majority vote): {result['record_label']}  [votes: {votes}]")
    return "\n".join(lines)
