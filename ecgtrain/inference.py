"""Inference shared by training, reports and predict: device set-up, autocast, loading a run, predicting.

Both engine.py (validation) and report.py / predict.py (a finished run) use it; it imports neither.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from shards.card import read_card

from .data import CardInfo, Standardize, card_info, dist_info
from .errors import TrainError
from .models import ModelSpec, build_model, get_model
from .rundir import CHECKPOINT, load_model_state, read_checkpoint


def setup_device(name: str = "auto") -> torch.device:
    """`auto` -> CUDA when present; under torchrun, the GPU of LOCAL_RANK. Initialises DDP from env."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError(f"--device {name}: no CUDA device is visible; use --device cpu or auto")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        if name.startswith("cuda"):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            name = f"cuda:{torch.cuda.current_device()}"
        torch.distributed.init_process_group("nccl" if name.startswith("cuda") else "gloo")
    return torch.device(name)


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when `amp`; nothing on CPU (float32 there)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def is_main() -> bool:
    """True on rank 0 (and when not distributed): the process that writes files and shows progress."""
    return dist_info()[0] == 0


def unwrap(model):
    """The plain module inside a DDP wrapper."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def memory_format(spec: ModelSpec, channels_last: bool, device: torch.device) -> torch.memory_format:
    """channels_last for image models on CUDA when asked, else contiguous."""
    wanted = spec.input == "image" and channels_last and device.type == "cuda"
    return torch.channels_last if wanted else torch.contiguous_format


@dataclass
class LoadedRun:
    """A finished (or interrupted) run: its model in eval mode on a device and what it was trained with."""

    model: torch.nn.Module
    checkpoint: dict
    card: CardInfo  # the trainer's fields of RUN/dataset.json
    card_dict: dict  # the whole card (predict hands it to ecgrender)
    spec: ModelSpec
    device: torch.device

    @property
    def amp(self) -> bool:
        return bool(self.checkpoint["args"].get("amp", True))

    def standardize(self) -> Standardize:
        """The device-side input preparation this run's model was trained with."""
        image = self.spec.input == "image"
        return Standardize(image, image and self.device.type == "cuda").to(self.device)


def load_run(run, device: torch.device) -> LoadedRun:
    """The model of a run directory's checkpoint (loaded without running code) and the run's card."""
    run = Path(run)
    path = run / CHECKPOINT
    if not path.is_file():
        raise TrainError(f"{run} is not a training run (no {CHECKPOINT}): give the --out directory of `ecgtrain fit`")
    ckpt = read_checkpoint(path)
    card_dict = read_card(run)
    card = card_info(card_dict)
    if ckpt["classes"] != card.classes:
        raise TrainError(f"{path} was trained on classes {ckpt['classes']}, {run / 'dataset.json'} names "
                         f"{card.classes}: the run directory is inconsistent; train the run again")
    spec = get_model(ckpt["args"]["model"])
    model = build_model(spec.name, num_classes=len(card.classes), n_leads=card.n_leads, weights="none",
                        input_length=card.window)
    load_model_state(model, ckpt, path)
    fmt = memory_format(spec, ckpt["args"].get("channels_last", True), device)
    model.to(device, memory_format=fmt).eval()  # type: ignore[call-overload]  # torch's stubs lack this overload
    return LoadedRun(model, ckpt, card, card_dict, spec, device)


@torch.inference_mode()
def predict_batches(model, prep, batches, device, amp: bool, desc: str = "eval", progress: bool = True):
    """Logits for every sample of `batches` (gathered over DDP ranks): (logits float32 (N, C), labels (N,), keys)."""
    model = unwrap(model).eval()  # the plain module: DDP's forward would wait for the other ranks
    logits, labels, keys = [], [], []
    for batch in tqdm(batches, desc=desc, unit="batch", disable=not (progress and is_main()), leave=False):
        x = prep(batch.x.to(device, non_blocking=True))
        with autocast(device, amp):
            out = model(x)
        logits.append(out.float().cpu())
        labels.append(batch.y)
        keys += batch.keys
    part = (torch.cat(logits).numpy() if logits else np.zeros((0, 0), np.float32),
            torch.cat(labels).numpy() if labels else np.zeros(0, np.int64), keys)
    if dist_info()[1] > 1:
        parts: list[Any] = [None] * dist_info()[1]
        torch.distributed.all_gather_object(parts, part)
        parts = [p for p in parts if len(p[1])]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), [k for p in parts for k in p[2]]
    return part
