"""Training and inference loop: SGD + StepLR, AMP bf16 and channels_last on CUDA, DDP, resume.

Shaped after torchvision's references/classification/train.py: a plain epoch loop, one
checkpoint dict (model, optimizer, lr_scheduler, epoch, args, card hash) written every
epoch, `--resume` from it, and DistributedDataParallel initialised from torchrun's env.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from shards import layout
from shards.card import read_card
from shards.errors import DatasetError

from .data import Standardize, card_info, dist_info, make_batches
from .errors import TrainError
from .models import IMAGE_MODELS, MODELS, build_model, default_weights

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
ARGS = "args.json"
RUN_CARD = "dataset.json"
# Settings a resumed run must share with its checkpoint (--epochs may grow, --workers/--device may change).
RUN_DEFINING = ("model", "batch_size", "lr", "momentum", "weight_decay", "lr_step", "lr_gamma", "seed", "amp", "channels_last")  # copy of the dataset card: classes, render settings (used by predict)


@dataclass
class FitConfig:
    """Everything that defines a run (stored in args.json and in every checkpoint)."""

    dataset: str
    model: str
    out: str
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_step: int = 3
    lr_gamma: float = 0.1
    workers: int = 4
    device: str = "auto"
    weights: str | None = None  # None: imagenet for image models, none for refecg
    seed: int = 0
    amp: bool = True
    channels_last: bool = True
    resume: bool = False
    report: bool = True
    progress: bool = True


def card_sha256(dataset) -> str:
    """sha256 of the dataset's card file: ties a checkpoint to the exact dataset it was trained on."""
    path = Path(dataset) / layout.CARD
    if not path.is_file():
        raise DatasetError(f"{dataset} has no {layout.CARD}: give a dataset directory made by `ecgrender build`")
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when `amp`; nothing on CPU (float32 there)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _is_main() -> bool:
    return dist_info()[0] == 0


def _atomic_save(obj, path: Path) -> None:
    with layout.atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _write_json(obj, path: Path) -> None:
    layout.write_atomic(path, json.dumps(obj, indent=2) + "\n")


def _unwrap(model):
    """The plain module inside a DDP wrapper."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def train_one_epoch(model, prep, batches, optimizer, device, amp: bool, epoch: int, progress: bool = True) -> dict:
    """One exact pass over `batches`; returns mean loss, images/s and the fraction of time spent waiting for data."""
    model.train()
    criterion = torch.nn.CrossEntropyLoss()
    loss_sum = torch.zeros((), device=device)
    seen, wait, first_wait, start = 0, 0.0, None, time.perf_counter()
    join = model.join() if isinstance(model, torch.nn.parallel.DistributedDataParallel) else nullcontext()
    bar = tqdm(total=len(batches), desc=f"epoch {epoch} train", unit="batch", disable=not (progress and _is_main()), leave=False)
    with join:
        it = iter(batches)
        while True:
            t0 = time.perf_counter()
            batch = next(it, None)
            wait += time.perf_counter() - t0
            first_wait = wait if first_wait is None else first_wait
            if batch is None:
                break
            x = prep(batch.x.to(device, non_blocking=True))
            y = batch.y.to(device, non_blocking=True)
            with autocast(device, amp):
                loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().float() * len(y)
            seen += len(y)
            bar.update(1)
            if bar.n % 20 == 0 and not bar.disable:
                bar.set_postfix(loss=f"{loss.item():.4f}")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    bar.close()
    totals = torch.tensor([loss_sum.item(), seen, elapsed, wait, first_wait or 0.0], dtype=torch.float64)
    if dist_info()[1] > 1:
        summed = totals.to(device)
        torch.distributed.all_reduce(summed)
        totals = summed.cpu()
    world = dist_info()[1]
    return {
        "train_loss": totals[0].item() / max(totals[1].item(), 1),
        "images_per_s": totals[1].item() / (totals[2].item() / world),
        "data_wait": totals[3].item() / totals[2].item(),
        "epoch_time_s": totals[2].item() / world,
        "first_batch_wait_s": totals[4].item() / world,  # start-of-epoch latency (workers opening shards)
    }


@torch.inference_mode()
def predict_batches(model, prep, batches, device, amp: bool, desc: str = "eval", progress: bool = True):
    """Logits for every sample of `batches` (gathered over DDP ranks): (logits float32 (N, C), labels (N,), keys)."""
    model = _unwrap(model).eval()  # the plain module: DDP's forward would wait for the other ranks
    logits, labels, keys = [], [], []
    for batch in tqdm(batches, desc=desc, unit="batch", disable=not (progress and _is_main()), leave=False):
        x = prep(batch.x.to(device, non_blocking=True))
        with autocast(device, amp):
            out = model(x)
        logits.append(out.float().cpu())
        labels.append(batch.y)
        keys += batch.keys
    part = (torch.cat(logits).numpy() if logits else np.zeros((0, 0), np.float32),
            torch.cat(labels).numpy() if labels else np.zeros(0, np.int64), keys)
    if dist_info()[1] > 1:
        parts = [None] * dist_info()[1]
        torch.distributed.all_gather_object(parts, part)
        parts = [p for p in parts if len(p[1])]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), [k for p in parts for k in p[2]]
    return part


def _check_config(cfg: FitConfig) -> None:
    if cfg.model not in MODELS:
        raise TrainError(f"--model {cfg.model!r} is unknown: choose one of {', '.join(MODELS)}")
    for name in ("epochs", "batch_size", "lr_step"):
        if getattr(cfg, name) < 1:
            raise TrainError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if cfg.batch_size < 2:
        raise TrainError("--batch-size must be at least 2 (batch norm needs two samples)")
    if cfg.lr <= 0:
        raise TrainError(f"--lr must be positive, got {cfg.lr}")
    if cfg.workers < 0:
        raise TrainError(f"--workers must be 0 or more, got {cfg.workers}")


def _load_checkpoint(path: Path, cfg: FitConfig, sha: str) -> dict:
    if not path.is_file():
        raise TrainError(f"--resume: {path} not found; start the run without --resume")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt["card_sha256"] != sha:
        raise TrainError(f"--resume: {path} was trained on a different dataset card than {cfg.dataset}; use the same dataset or a new --out")
    stored = ckpt["args"]
    for name in RUN_DEFINING:
        if stored[name] != getattr(cfg, name):
            flag = "--" + name.replace("_", "-")
            raise TrainError(f"--resume: {path} was trained with {flag} {stored[name]}, not {getattr(cfg, name)}; "
                           f"resume with the same value or start a new run")
    return ckpt


def fit(cfg: FitConfig) -> Path:
    """Train `cfg.model` on `cfg.dataset`, checkpoint every epoch into `cfg.out`, then write the test report."""
    _check_config(cfg)
    raw_card = read_card(cfg.dataset)
    card = card_info(raw_card)
    empty = [split for split in ("train", "val", "test") if not sum(raw_card["counts"][split].values())]
    if empty:
        raise TrainError(f"dataset {cfg.dataset} has no {' or '.join(empty)} windows: rebuild it with more patients "
                       "or records, or larger --test-fraction / --val-fraction")
    sha = card_sha256(cfg.dataset)
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    if not cfg.resume and ckpt_path.exists():
        raise TrainError(f"{out} already holds a run: pass --resume to continue it or choose another --out")
    ckpt = _load_checkpoint(ckpt_path, cfg, sha) if cfg.resume else None
    device = setup_device(cfg.device)
    seed_everything(cfg.seed)
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
    image = cfg.model in IMAGE_MODELS
    channels_last = image and cfg.channels_last and device.type == "cuda"

    if cfg.weights is None:
        cfg.weights = default_weights(cfg.model)
    model = build_model(cfg.model, num_classes=len(card.classes), n_leads=card.n_leads,
                        weights="none" if ckpt else cfg.weights, input_length=card.window)
    if ckpt:
        model.load_state_dict(ckpt["model"])
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    if dist_info()[1] > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    prep = Standardize(image, channels_last).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    start_epoch = 0
    if ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["lr_scheduler"])
        start_epoch = ckpt["epoch"] + 1

    if _is_main():
        out.mkdir(parents=True, exist_ok=True)
        _write_json(asdict(cfg) | {"card_sha256": sha, "torch": torch.__version__, "device": str(device),
                                   "world_size": dist_info()[1]}, out / ARGS)
        shutil.copyfile(Path(cfg.dataset) / layout.CARD, out / RUN_CARD)

    pin = device.type == "cuda"
    train = make_batches(cfg.dataset, "train", cfg.model, cfg.batch_size, cfg.workers, train=True,
                         seed=cfg.seed, start_epoch=start_epoch, pin_memory=pin)
    val = make_batches(cfg.dataset, "val", cfg.model, cfg.batch_size, max(1, cfg.workers // 2) if cfg.workers else 0,
                       pin_memory=pin)
    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout etc.: same draws after a resume
        lr = optimizer.param_groups[0]["lr"]
        stats = train_one_epoch(model, prep, train, optimizer, device, cfg.amp, epoch, cfg.progress)
        scheduler.step()
        logits, labels, _ = predict_batches(model, prep, val, device, cfg.amp, f"epoch {epoch} val", cfg.progress)
        val_acc = float((logits.argmax(1) == labels).mean()) if len(labels) else float("nan")
        row = {"epoch": epoch, "lr": lr, **stats, "val_accuracy": val_acc, "val_samples": int(len(labels))}
        if _is_main():
            _atomic_save({"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                          "lr_scheduler": scheduler.state_dict(), "epoch": epoch, "args": asdict(cfg),
                          "card_sha256": sha, "classes": card.classes}, ckpt_path)
            with open(out / METRICS, "a") as f:
                f.write(json.dumps(row) + "\n")
            tqdm.write(f"epoch {epoch}: loss {stats['train_loss']:.4f}  val acc {val_acc:.4f}  "
                       f"{stats['images_per_s']:.0f} img/s  data wait {100 * stats['data_wait']:.1f} %")
    if dist_info()[1] > 1:
        torch.distributed.barrier()  # the last checkpoint is on disk before any rank reads it
    if cfg.report:
        from .report import evaluate_run

        evaluate_run(out, device=str(device), batch_size=cfg.batch_size, workers=cfg.workers, progress=cfg.progress)
    return out


def load_run(run, device: torch.device):
    """(model in eval mode on `device`, checkpoint dict, CardInfo of the run's dataset) of a run directory."""
    run = Path(run)
    path = run / CHECKPOINT
    if not path.is_file():
        raise TrainError(f"{run} is not a training run (no {CHECKPOINT}): give the --out directory of `ecgtrain fit`")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    card = card_info(json.loads((run / RUN_CARD).read_text()))
    args = ckpt["args"]
    model = build_model(args["model"], num_classes=len(card.classes), n_leads=card.n_leads,
                        weights="none", input_length=card.window)
    model.load_state_dict(ckpt["model"])
    channels_last = args["model"] in IMAGE_MODELS and args.get("channels_last", True) and device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format).eval()
    return model, ckpt, card
