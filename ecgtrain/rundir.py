"""The run directory `ecgtrain fit --out RUN` writes: file names, the checkpoint dict, the run's card.

A run directory may come from another lab, so nothing in it is unpickled: checkpoint.pt is read
with `torch.load(..., weights_only=True)` (tensors, numbers, strings, lists and dicts only) and
checked field by field; RUN/dataset.json is read and checked by `shards.card.read_card`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch

from shards import layout
from shards.errors import DatasetError

from .errors import TrainError
from .models.weights import difference

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
ARGS = "args.json"
RUN_CARD = "dataset.json"  # copy of the dataset card: classes, leads, window, render settings (used by predict)
# The checkpoint dict: field -> type (docs/training.md).
CHECKPOINT_FIELDS = {"model": dict, "optimizer": dict, "lr_scheduler": dict, "epoch": int, "args": dict,
                     "card_sha256": str, "classes": list}
_FIX = "use the checkpoint.pt written by `ecgtrain fit`, or train the run again"


def read_metrics_rows(path: Path) -> list[dict]:
    """The per-epoch rows of a run's metrics.jsonl ([] when absent); TrainError naming a damaged file."""
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainError(f"{path} is damaged ({exc}): remove it or train the run again") from None


def card_sha256(dataset) -> str:
    """sha256 of a dataset's card file: ties a checkpoint (and a report) to the exact dataset."""
    path = Path(dataset) / layout.CARD
    if not path.is_file():
        raise DatasetError(f"{dataset} has no {layout.CARD}: give a dataset directory made by `ecgrender build`")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(ckpt: dict, path: Path) -> None:
    """Write the checkpoint dict atomically (temp file, fsync, rename)."""
    with layout.atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def _refusal(exc: Exception) -> str:
    """Why torch's weights-only unpickler refused a file, in a few words."""
    found = re.search(r"GLOBAL (\S+)", str(exc))
    if found:
        return f"it would call {found.group(1)}"
    first = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def read_checkpoint(path: Path) -> dict:
    """The checkpoint dict of `path`, loaded without running code; a TrainError naming the file otherwise."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, ...: the file is not a plain checkpoint
        raise TrainError(f"{path} is not an ecgtrain checkpoint ({_refusal(exc)}); it may hold only tensors, "
                         f"numbers, strings, lists and dicts: {_FIX}") from None
    if not isinstance(ckpt, dict):
        raise TrainError(f"{path} is not an ecgtrain checkpoint (it holds a {type(ckpt).__name__}, not a dict): {_FIX}")
    wrong = [k for k, kind in CHECKPOINT_FIELDS.items() if not isinstance(ckpt.get(k), kind)]
    if wrong:
        raise TrainError(f"{path} is not an ecgtrain checkpoint (missing or mistyped: {', '.join(wrong)}): {_FIX}")
    if not all(isinstance(k, str) and torch.is_tensor(v) for k, v in ckpt["model"].items()):
        raise TrainError(f"{path} is not an ecgtrain checkpoint ('model' is not a state dict of tensors): {_FIX}")
    if not isinstance(ckpt["args"].get("model"), str):
        raise TrainError(f"{path} is not an ecgtrain checkpoint (its args name no model): {_FIX}")
    return ckpt


def load_model_state(model: torch.nn.Module, ckpt: dict, path: Path) -> None:
    """Load the checkpoint's model weights into `model` (strictly), or stop naming the file."""
    found = difference(model, ckpt["model"])
    if found:
        raise TrainError(f"{path} does not fit the {ckpt['args']['model']} its run describes ({found}): {_FIX}")
    model.load_state_dict(ckpt["model"])
