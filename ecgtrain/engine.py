"""Training: SGD + StepLR, AMP bf16 and channels_last on CUDA, DDP, resume.

Shaped after torchvision's references/classification/train.py: `fit` runs the same steps as its
`main` (check the inputs, prepare or resume the training state, build the loaders, the epoch loop
with one checkpoint dict written every epoch, then the test report), each step a function here;
DistributedDataParallel is initialised from torchrun's env. Inference helpers live in
inference.py, the run directory's files in rundir.py.
"""

from __future__ import annotations

import json
import random
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from shards import layout
from shards.card import read_card
from shards.manifest import read_manifest

from .data import CardInfo, Standardize, card_info, dist_info, make_batches
from .errors import TrainError
from .inference import autocast, is_main, memory_format, predict_batches, setup_device, unwrap
from .metrics_multilabel import auroc_per_class
from .models import build_model, get_model
from .precise_bn import recalibrate_batchnorm
from .report import evaluate_run
from .rundir import ARGS, CHECKPOINT, METRICS, RUN_CARD, card_sha256, load_model_state, read_checkpoint, save_checkpoint

__all__ = ["FitConfig", "build_loaders", "class_weights", "compile_model", "fit", "make_criterion", "seed_everything",
           "train_one_epoch", "write_metrics_row"]

# Settings a resumed run must share with its checkpoint (--epochs may grow, --workers/--device may change).
RUN_DEFINING = ("model", "batch_size", "lr", "momentum", "weight_decay", "lr_step", "lr_gamma", "seed", "amp",
                "channels_last", "balance")
BALANCE_MODES = ("none", "loss", "sampler")  # --balance: the paper's plain loss, class-weighted loss, balanced sampler


@dataclass
class FitConfig:
    """Everything that defines a run (stored in args.json and in every checkpoint)."""

    dataset: str  # the dataset's local directory (for a URL: its cache directory, shards.remote)
    model: str
    out: str
    dataset_url: str | None = None  # the URL the dataset was given as, if it was (recorded in args.json)
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_step: int = 3
    lr_gamma: float = 0.1
    workers: int = 4
    device: str = "auto"
    weights: str | None = None  # None: the model's default_weights (registry)
    seed: int = 0
    balance: str = "none"  # one of BALANCE_MODES
    precise_bn: bool = False  # BatchNorm statistics re-estimated on the train split every epoch (precise_bn.py)
    class_weights: list[float] | None = None  # --balance loss: set by fit from the card's train counts
    amp: bool = True
    channels_last: bool = True
    compile: bool = False  # TorchInductor for the training step (not run-defining: a resume may switch it)
    resume: bool = False
    report: bool = True
    progress: bool = True


@dataclass
class TrainState:
    """What the epoch loop works on: the (possibly DDP-wrapped) model, its input preparation,
    optimizer, scheduler, and the first epoch still to run."""

    model: torch.nn.Module
    prep: Standardize
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    start_epoch: int
    multi_label: bool = False  # BCE-with-logits on multi-hot targets, validated by macro AUROC


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def class_weights(classes: list, train_counts: dict) -> list[float]:
    """Cross-entropy weight per class (card order) for `--balance loss`: N / (C * n_c) from the train split's
    counts, 0 (with a warning) for a class without a training window."""
    counts = [int(train_counts.get(c, 0)) for c in classes]
    total = sum(counts)
    missing = [str(c) for c, n in zip(classes, counts) if n == 0]
    if missing:
        warnings.warn(f"class(es) {', '.join(missing)} have no training window: --balance loss gives them weight 0",
                      stacklevel=2)
    return [total / (len(classes) * n) if n else 0.0 for n in counts]


def positive_weights(classes: list, train_counts: dict, train_windows: int) -> list[float]:
    """BCE `pos_weight` per class for `--balance loss` on a multi-label dataset: negatives / positives among the
    train windows, so each class's positives weigh as much as its negatives (0, with a warning, without any)."""
    counts = [int(train_counts.get(c, 0)) for c in classes]
    missing = [str(c) for c, n in zip(classes, counts) if n == 0]
    if missing:
        warnings.warn(f"class(es) {', '.join(missing)} have no positive training window: --balance loss gives them "
                      "weight 0", stacklevel=2)
    return [(train_windows - n) / n if n else 0.0 for n in counts]


def make_criterion(weights: list[float] | None, device: torch.device, multi_label: bool = False) -> torch.nn.Module:
    """The training loss: cross-entropy (class-weighted when `weights` is given), or for a multi-label dataset
    BCE-with-logits over the classes (`weights`: its pos_weight)."""
    weight = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=device)
    if multi_label:
        return torch.nn.BCEWithLogitsLoss(pos_weight=weight)
    return torch.nn.CrossEntropyLoss(weight=weight)


def train_one_epoch(model, prep, batches, optimizer, device, amp: bool, epoch: int, progress: bool = True,
                    criterion: torch.nn.Module | None = None) -> dict:
    """One exact pass over `batches`; returns mean loss, images/s and the fraction of time spent waiting for data.
    `criterion` defaults to plain cross-entropy (the paper's)."""
    model.train()
    if criterion is None:
        criterion = torch.nn.CrossEntropyLoss()
    loss_sum = torch.zeros((), device=device)
    seen, wait, first_wait, start = 0, 0.0, None, time.perf_counter()
    join = model.join() if isinstance(model, torch.nn.parallel.DistributedDataParallel) else nullcontext()
    bar = tqdm(total=len(batches), desc=f"epoch {epoch} train", unit="batch", disable=not (progress and is_main()), leave=False)
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


def check_config(cfg: FitConfig) -> None:
    """Refuse bad settings before anything is read or written."""
    get_model(cfg.model)
    for name in ("epochs", "batch_size", "lr_step"):
        if getattr(cfg, name) < 1:
            raise TrainError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if cfg.batch_size < 2:
        raise TrainError("--batch-size must be at least 2 (batch norm needs two samples)")
    if cfg.lr <= 0:
        raise TrainError(f"--lr must be positive, got {cfg.lr}")
    if cfg.workers < 0:
        raise TrainError(f"--workers must be 0 or more, got {cfg.workers}")
    if cfg.balance not in BALANCE_MODES:
        raise TrainError(f"--balance must be one of {', '.join(BALANCE_MODES)}, got {cfg.balance!r}")


def check_dataset(dataset) -> tuple[CardInfo, str, dict]:
    """The dataset's card (checked), its sha256 and its train counts per class; refuses a dataset with an
    empty split."""
    raw_card = read_card(dataset)
    empty = [split for split in ("train", "val", "test") if not sum(raw_card["counts"].get(split, {}).values())]
    if empty:
        raise TrainError(f"dataset {dataset} has no {' or '.join(empty)} windows: rebuild it with more patients "
                         "or records, or larger --test-fraction / --val-fraction")
    return card_info(raw_card), card_sha256(dataset), dict(raw_card["counts"]["train"])


def resume_checkpoint(cfg: FitConfig, sha: str) -> dict | None:
    """The checkpoint to continue from (`--resume`), None for a new run; checks it fits `cfg` and the dataset."""
    path = Path(cfg.out) / CHECKPOINT
    if not cfg.resume:
        if path.exists():
            raise TrainError(f"{cfg.out} already holds a run: pass --resume to continue it or choose another --out")
        return None
    if not path.is_file():
        raise TrainError(f"--resume: {path} not found; start the run without --resume")
    ckpt = read_checkpoint(path)
    if ckpt["card_sha256"] != sha:
        raise TrainError(f"--resume: {path} was trained on a different dataset card than {cfg.dataset}; "
                         "use the same dataset or a new --out")
    stored = ckpt["args"]
    for name in RUN_DEFINING:
        value = stored.get(name, getattr(FitConfig, name, None))  # a run from before a setting existed: its default
        if value != getattr(cfg, name):
            raise TrainError(f"--resume: {path} was trained with --{name.replace('_', '-')} {value}, "
                             f"not {getattr(cfg, name)}; resume with the same value or start a new run")
    return ckpt


def prepare_state(cfg: FitConfig, card: CardInfo, device: torch.device, ckpt: dict | None) -> TrainState:
    """Model (on the device, DDP-wrapped under torchrun), optimizer and scheduler: fresh, or from `ckpt`."""
    spec = get_model(cfg.model)
    model = build_model(cfg.model, num_classes=len(card.classes), n_leads=card.n_leads,
                        weights="none" if ckpt else cfg.weights, input_length=card.window)
    if ckpt:
        load_model_state(model, ckpt, Path(cfg.out) / CHECKPOINT)
    fmt = memory_format(spec, cfg.channels_last, device)
    model.to(device, memory_format=fmt)  # type: ignore[call-overload]  # torch's stubs lack this overload
    if cfg.compile:
        compile_model(model)
    if dist_info()[1] > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    prep = Standardize(spec.input == "image", fmt == torch.channels_last).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    if not ckpt:
        return TrainState(model, prep, optimizer, scheduler, 0, card.multi_label)
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["lr_scheduler"])
    return TrainState(model, prep, optimizer, scheduler, ckpt["epoch"] + 1, card.multi_label)


def compile_model(model: torch.nn.Module) -> torch.nn.Module:
    """Compile `model` in place with TorchInductor (`fit --compile`) and return it.

    In place (`nn.Module.compile`), so the state dict keeps its keys and checkpoints load into a plain model;
    static shapes, so each batch size gets its own graph (a run has two or three) instead of a dynamic-shape one.
    Only the training step runs compiled: `run_epoch` validates and re-estimates BatchNorm statistics eagerly.
    """
    model.compile(dynamic=False)
    return model


def check_compiler(device: torch.device) -> None:
    """Refuse `--compile` where TorchInductor cannot build kernels (no C++ compiler, no Triton), before training."""
    try:
        torch.compile(lambda t: t * 2 + 1, dynamic=False)(torch.ones(4, device=device))
    except Exception as exc:  # a missing compiler surfaces as any of several torch exception types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainError(f"--compile: TorchInductor cannot compile for {device} ({reason[:200]}); install a C++ "
                         "compiler (CPU) or Triton (CUDA), or train without --compile") from None


def set_balance(cfg: FitConfig, card: CardInfo, train_counts: dict) -> None:
    """`cfg.class_weights` for `--balance loss` (None otherwise): cross-entropy class weights, or BCE pos_weight
    for a multi-label dataset; warns when the sampler cannot draw a class, refuses it for multi-label data."""
    classes = card.classes
    if card.multi_label:
        if cfg.balance == "sampler":
            raise TrainError("--balance sampler draws windows by their class; a multi-label window has several: use "
                             "--balance loss (BCE pos_weight = negatives / positives per class)")
        if cfg.balance == "loss":
            windows = sum(w.split == "train" for w in read_manifest(Path(cfg.dataset) / layout.MANIFEST))
            cfg.class_weights = positive_weights(classes, train_counts, windows)
        else:
            cfg.class_weights = None
        return
    cfg.class_weights = class_weights(classes, train_counts) if cfg.balance == "loss" else None
    missing = [str(c) for c in classes if not train_counts.get(c)]
    if cfg.balance == "sampler" and missing:
        warnings.warn(f"class(es) {', '.join(missing)} have no training window: --balance sampler never draws them",
                      stacklevel=2)


def start_run_dir(cfg: FitConfig, sha: str, device: torch.device) -> None:
    """RUN/args.json (the settings) and RUN/dataset.json (a copy of the dataset's card)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    args = asdict(cfg) | {"card_sha256": sha, "torch": torch.__version__, "device": str(device),
                          "world_size": dist_info()[1]}
    layout.write_atomic(out / ARGS, json.dumps(args, indent=2) + "\n")
    layout.write_atomic(out / RUN_CARD, (Path(cfg.dataset) / layout.CARD).read_bytes())


def build_loaders(cfg: FitConfig, start_epoch: int, device: torch.device):
    """(train, val, calibration) batches; the train order continues from `start_epoch`; calibration (the train
    split in file order, for --precise-bn) is None without that option."""
    pin = device.type == "cuda"
    train = make_batches(cfg.dataset, "train", cfg.model, cfg.batch_size, cfg.workers, train=True,
                         seed=cfg.seed, start_epoch=start_epoch, pin_memory=pin, balanced=cfg.balance == "sampler")
    eval_workers = max(1, cfg.workers // 2) if cfg.workers else 0
    val = make_batches(cfg.dataset, "val", cfg.model, cfg.batch_size, eval_workers, pin_memory=pin)
    calibration = (make_batches(cfg.dataset, "train", cfg.model, cfg.batch_size, eval_workers, pin_memory=pin)
                   if cfg.precise_bn else None)
    return train, val, calibration


def run_epoch(state: TrainState, train, val, device: torch.device, cfg: FitConfig, epoch: int, calibration=None) -> dict:
    """Train one epoch, step the scheduler, re-estimate BatchNorm statistics (`calibration` batches given),
    validate; the metrics.jsonl row of the epoch."""
    torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout etc.: same draws after a resume
    lr = state.optimizer.param_groups[0]["lr"]
    stats = train_one_epoch(state.model, state.prep, train, state.optimizer, device, cfg.amp, epoch, cfg.progress,
                            make_criterion(cfg.class_weights, device, state.multi_label))
    state.scheduler.step()
    with torch.compiler.set_stance("force_eager"):  # --compile covers the training step only
        if calibration is not None:
            recalibrate_batchnorm(state.model, state.prep, calibration, device, cfg.amp)
        logits, labels, _ = predict_batches(state.model, state.prep, val, device, cfg.amp, f"epoch {epoch} val",
                                            cfg.progress)
    row = {"epoch": epoch, "lr": lr, **stats}
    if state.multi_label:
        return row | {"val_auroc": val_macro_auroc(labels, logits), "val_samples": int(len(labels))}
    val_acc = float((logits.argmax(1) == labels).mean()) if len(labels) else float("nan")
    return row | {"val_accuracy": val_acc, "val_samples": int(len(labels))}


def val_macro_auroc(targets: np.ndarray, logits: np.ndarray) -> float:
    """Macro AUROC of multi-label validation logits (NaN when no class has both positives and negatives, or when
    a logit is not finite: training diverged)."""
    if not len(targets) or not np.isfinite(logits).all():
        return float("nan")
    values = auroc_per_class(np.asarray(targets), np.asarray(logits))
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def save_epoch(state: TrainState, cfg: FitConfig, sha: str, classes: list, row: dict) -> None:
    """Replace RUN/checkpoint.pt (plain tensors, numbers, strings, lists, dicts) and append the metrics row."""
    out = Path(cfg.out)
    write_metrics_row(out / METRICS, row)
    save_checkpoint({"model": unwrap(state.model).state_dict(), "optimizer": state.optimizer.state_dict(),
                     "lr_scheduler": state.scheduler.state_dict(), "epoch": row["epoch"], "args": asdict(cfg),
                     "card_sha256": sha, "classes": list(classes)}, out / CHECKPOINT)
    val = f"val AUROC {row['val_auroc']:.4f}" if "val_auroc" in row else f"val acc {row['val_accuracy']:.4f}"
    tqdm.write(f"epoch {row['epoch']}: loss {row['train_loss']:.4f}  {val}  "
               f"{row['images_per_s']:.0f} img/s  data wait {100 * row['data_wait']:.1f} %")


def write_metrics_row(path: Path, row: dict) -> None:
    """Rewrite metrics.jsonl atomically with `row` as its last line. Rows of this or a later epoch (left
    by a run stopped before its checkpoint, then resumed) are replaced, so every epoch has one row."""
    lines = path.read_text().splitlines() if path.is_file() else []
    kept = [line for line in lines if line.strip() and json.loads(line)["epoch"] < row["epoch"]]
    layout.write_atomic(path, "".join(f"{line}\n" for line in [*kept, json.dumps(row)]))


def fit(cfg: FitConfig) -> Path:
    """Train `cfg.model` on `cfg.dataset`, checkpoint every epoch into `cfg.out`, then write the test report."""
    check_config(cfg)
    card, sha, train_counts = check_dataset(cfg.dataset)
    ckpt = resume_checkpoint(cfg, sha)
    set_balance(cfg, card, train_counts)
    device = setup_device(cfg.device)
    if cfg.compile:
        check_compiler(device)
    seed_everything(cfg.seed)
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
    if cfg.weights is None:
        cfg.weights = get_model(cfg.model).default_weights
    state = prepare_state(cfg, card, device, ckpt)
    if is_main():
        start_run_dir(cfg, sha, device)
    train, val, calibration = build_loaders(cfg, state.start_epoch, device)
    for epoch in range(state.start_epoch, cfg.epochs):
        row = run_epoch(state, train, val, device, cfg, epoch, calibration)
        if is_main():
            save_epoch(state, cfg, sha, card.classes, row)
    if dist_info()[1] > 1:
        torch.distributed.barrier()  # the last checkpoint is on disk before any rank reads it
    out = Path(cfg.out)
    if cfg.report:
        evaluate_run(out, device=str(device), batch_size=cfg.batch_size, workers=cfg.workers, progress=cfg.progress)
    return out
