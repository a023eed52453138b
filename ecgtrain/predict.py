"""Classify one WFDB record with a trained run: windows -> rendered images (or lead sums) -> votes.

ecgrender makes the inputs (`ecgrender.record_inputs`, from the run's copy of the dataset card);
this module only classifies them.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from ecgrender import record_inputs

from .data import Batch
from .inference import load_run, predict_batches, setup_device
from .report import sigmoid


def _batches(x: torch.Tensor, batch_size: int):
    for lo in range(0, len(x), batch_size):
        part = x[lo:lo + batch_size]
        yield Batch(part, torch.zeros(len(part), dtype=torch.int64), [str(i) for i in range(lo, lo + len(part))])


def predict_record(run, record_path, device: str = "auto", max_windows: int = 60, batch_size: int = 16) -> dict:
    """Per-window classes and probabilities and the record-level majority vote for one WFDB record."""
    loaded = load_run(run, setup_device(device))
    image = loaded.spec.input == "image"
    inputs = record_inputs(record_path, loaded.card_dict, max_windows, images=image)
    x = torch.from_numpy(inputs.x if image else inputs.x[:, None, :])
    logits, _, _ = predict_batches(loaded.model, loaded.standardize(), _batches(x, batch_size), loaded.device,
                                   loaded.amp, progress=False)
    classes = loaded.card.classes
    if loaded.card.multi_label:
        return _multi_label_result(record_path, loaded.spec.name, classes, inputs.starts, sigmoid(logits))
    probs = torch.softmax(torch.from_numpy(logits), 1).numpy()
    pred = probs.argmax(1)
    votes = Counter(int(p) for p in pred)
    best = max(votes.values())
    winner = min(c for c, v in votes.items() if v == best)
    return {
        "record": str(record_path),
        "model": loaded.spec.name,
        "classes": classes,
        "windows": [{"start": s, "label": classes[p], "prob": float(probs[i, p])}
                    for i, (s, p) in enumerate(zip(inputs.starts, pred))],
        "record_label": classes[winner],
        "votes": {classes[c]: v for c, v in sorted(votes.items())},
        "mean_prob": {c: float(np.mean(probs[:, i])) for i, c in enumerate(classes)},
    }


def _multi_label_result(record_path, model: str, classes: list[str], starts, probs: np.ndarray) -> dict:
    """A multi-label run's answer: per window the classes with probability >= 0.5; for the record, the mean
    probability of each class over its windows and the classes whose mean reaches 0.5."""
    mean = probs.mean(0)
    return {
        "record": str(record_path),
        "model": model,
        "classes": classes,
        "multi_label": True,
        "windows": [{"start": s, "labels": [c for c, p in zip(classes, row) if p >= 0.5],
                     "probs": {c: float(p) for c, p in zip(classes, row)}} for s, row in zip(starts, probs)],
        "record_labels": [c for c, p in zip(classes, mean) if p >= 0.5],
        "mean_prob": {c: float(p) for c, p in zip(classes, mean)},
    }


def format_prediction(result: dict) -> str:
    """Plain-text table: one line per window, then the record-level vote (multi-label: mean probabilities)."""
    if result.get("multi_label"):
        lines = [f"record {result['record']} ({result['model']}, {len(result['windows'])} windows, multi-label)",
                 f"{'start':>10}  classes with probability >= 0.5"]
        lines += [f"{w['start']:>10}  {', '.join(w['labels']) or '-'}" for w in result["windows"]]
        means = ", ".join(f"{c} {p:.3f}" for c, p in result["mean_prob"].items())
        lines.append(f"record-level (mean probability >= 0.5): {', '.join(result['record_labels']) or '-'}  "
                     f"[means: {means}]")
        return "\n".join(lines)
    lines = [f"record {result['record']} ({result['model']}, {len(result['windows'])} windows)",
             f"{'start':>10}  {'class':<12} prob"]
    lines += [f"{w['start']:>10}  {w['label']:<12} {w['prob']:.3f}" for w in result["windows"]]
    votes = ", ".join(f"{c} {v}" for c, v in result["votes"].items())
    lines.append(f"record-level (majority vote): {result['record_label']}  [votes: {votes}]")
    return "\n".join(lines)
