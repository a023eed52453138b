"""Training throughput per model (images/s, fraction of time waiting for data, share of the GPU's bf16 peak) and loader speed.

    python benchmarks/bench_train.py --synthetic 6144 --models imecgnet,imresnet50,imresnet34,refecg
    python benchmarks/bench_train.py --synthetic 24576 --models imecgnet,imresnet50 --compile
    python benchmarks/bench_train.py --synthetic 2048 --check-compile 60 --models imecgnet   # loss curves
    python benchmarks/bench_train.py --dataset out/demo/dataset --models refecg
    python benchmarks/bench_train.py --synthetic 2048 --loader-only --workers 1,2

The training figure is the second of two epochs of `ecgtrain.engine.train_one_epoch` (the
loop `ecgtrain fit` runs: loader -> device -> bf16 autocast -> SGD step), so it counts the
loader, the host-to-device copy and the standardization as `fit` does. "compute img/s" is the
same step on a batch already on the device (no loader): the model's ceiling. `--synthetic N`
writes a dataset of N train windows (N/4 val and test): 256 distinct ECG-like 2-lead windows
drawn by the paper's matplotlib renderer at 314 x 384, reused, so PNG sizes and decode cost are
those of rendered windows.

"train GFLOP/img" is counted by torch's FlopCounterMode over one forward and backward pass at the
dataset's image size; "bf16 peak" is images/s x that count / the GPU's dense bf16 peak (PEAK_BF16_TFLOPS,
from NVIDIA's data sheets; unknown GPUs print no fraction). `--check-compile N` trains the model eagerly
and compiled (`ecgtrain fit --compile`'s `compile_model`) from the same weights on the same N batches
and prints both loss curves: the check that a compiled run trains as the eager one does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecgrender.render import make_renderer
from ecgrender.render.geometry import PAPER
from ecgtrain.data import ImageBatches, Standardize, card_info, make_batches
from ecgtrain.engine import compile_model, seed_everything, train_one_epoch
from ecgtrain.inference import autocast
from ecgtrain.models import build_model, get_model, model_names
from shards.card import read_card, write_card
from shards.layout import MANIFEST, REFECG, SPLITS, shard_name
from shards.manifest import COLUMNS as MANIFEST_COLUMNS
from shards.refecg import RefEcgWriter
from shards.writer import encode_png, write_shard

WINDOW, N_LEADS = 1000, 2
# Dense bf16 tensor-core peak in TFLOP/s by GPU name (NVIDIA data sheets, without sparsity).
PEAK_BF16_TFLOPS = {"H100 80GB HBM3": 989.4, "H100 SXM": 989.4, "H200": 989.4, "H100 NVL": 835.5, "H100 PCIe": 756.5,
                    "A100": 312.0, "L40S": 362.1}


def peak_bf16_tflops(device: torch.device) -> float | None:
    """The dense bf16 peak of `device` (None: a CPU or a GPU not in PEAK_BF16_TFLOPS)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def train_flops_per_image(name: str, card, height: int, width: int) -> float:
    """FLOPs of one training step per image (forward + backward), counted on meta tensors (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(name, len(card.classes), n_leads=card.n_leads, weights="none", input_length=card.window)
    model.to("meta")
    shape = (2, 3, height, width) if get_model(name).input == "image" else (2, 1, card.window)
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(shape, device="meta")).float().sum().backward()
    return counter.get_total_flops() / 2


def ecg_window(rng: np.random.Generator) -> np.ndarray:
    """(1000, 2) float32 ECG-like window: QRS-like spikes and T waves on a wandering baseline, with noise."""
    t = np.arange(WINDOW)
    base = 0.2 * np.sin(2 * np.pi * t / rng.uniform(300, 900) + rng.uniform(0, 6)) + 0.02 * rng.standard_normal(WINDOW)
    beats = np.zeros(WINDOW)
    for c in np.arange(rng.uniform(0, 250), WINDOW, rng.uniform(180, 320)):
        beats += 1.2 * np.exp(-0.5 * ((t - c) / 3) ** 2) + 0.25 * np.exp(-0.5 * ((t - c - 60) / 15) ** 2)
    lead = base + beats
    return np.stack([lead, 0.6 * lead + 0.05 * rng.standard_normal(WINDOW)], axis=1).astype(np.float32)


def write_synthetic(root: Path, n: int, per_shard: int = 256, seed: int = 0, distinct: int = 256) -> Path:
    """A 2-class dataset directory with `n` train windows, n // 4 val and test (images and refecg.h5); the images
    are `distinct` rendered windows, reused."""
    rng = np.random.default_rng(seed)
    counts = {"train": n, "val": max(2, n // 4), "test": max(2, n // 4)}
    renderer = make_renderer("matplotlib", PAPER)  # the paper's picture: real PNG sizes and decode cost
    pool = [encode_png(renderer.render(ecg_window(rng))) for _ in range(distinct)]
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = {s: [{"key": f"{s}-r{i // 50}_{i:09d}", "database": "synthetic", "record": f"{s}-r{i // 50}",
                 "patient": f"{s}-r{i // 50}", "start": i, "length": WINDOW, "fs": 360.0,
                 "label": "ab"[i % 2], "label_id": i % 2, "split": s} for i in range(counts[s])] for s in SPLITS}
    with RefEcgWriter(root / REFECG, counts, WINDOW) as h5:
        for s in SPLITS:
            h5.put_batch(s, 0, rng.standard_normal((counts[s], WINDOW)).astype(np.float32),
                         [r["label_id"] for r in rows[s]], [r["key"] for r in rows[s]])
    for s in SPLITS:
        for k, lo in enumerate(range(0, counts[s], per_shard)):
            write_shard(root / shard_name(s, k), [(r["key"], pool[i % len(pool)], r["label_id"], r)
                                                    for i, r in enumerate(rows[s][lo:lo + per_shard], lo)])
    with open(root / MANIFEST, "w") as f:
        f.write(",".join(MANIFEST_COLUMNS) + "\n")
        for s in SPLITS:
            f.writelines(",".join(str(r[c]) for c in MANIFEST_COLUMNS) + "\n" for r in rows[s])
    write_card(root, {"software_version": "bench", "source": {"database": "synthetic", "version": "0"},
                      "database": "synthetic", "classes": ["a", "b"], "window": {"length": WINDOW},
                      "counts": {s: {"a": (counts[s] + 1) // 2, "b": counts[s] // 2} for s in SPLITS},
                      "n_leads": N_LEADS, "leads": ["I", "II"], "split_by": "record", "fs": 360.0,
                      "render": PAPER.as_dict(), "renderer": "matplotlib", "seed": seed})
    return root


def compute_only(model, prep, batch, device, steps: int = 20) -> float:
    """Images/s of the training step on a batch already on the device (after min(5, steps) untimed steps)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss()
    x, y = batch.x.to(device), batch.y.to(device)
    warm = min(5, steps)
    for i in range(steps + warm):
        if i == warm:
            torch.cuda.synchronize(device) if device.type == "cuda" else None
            start = time.perf_counter()
        with autocast(device, True):
            loss = criterion(model(prep(x)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    return steps * len(y) / (time.perf_counter() - start)


def bench_model(name: str, root: Path, device: torch.device, batch_size: int, workers: int, compile: bool = False,
                compute_steps: int = 20) -> dict:
    seed_everything(0)
    card = card_info(read_card(root))
    image = get_model(name).input == "image"
    cl = image and device.type == "cuda"
    model = build_model(name, len(card.classes), n_leads=card.n_leads, weights="none", input_length=card.window)
    model.to(device, memory_format=torch.channels_last if cl else torch.contiguous_format)
    if compile:
        compile_model(model)
    prep = Standardize(image, cl).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    batches = make_batches(root, "train", name, batch_size, workers, train=True, pin_memory=device.type == "cuda")
    train_one_epoch(model, prep, batches, optimizer, device, True, 0, progress=False)  # warm-up: cuDNN autotune, workers
    stats = train_one_epoch(model, prep, batches, optimizer, device, True, 1, progress=False)
    ceiling = compute_only(model, prep, next(iter(batches)), device, compute_steps)
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    render = read_card(root)["render"]
    flops = train_flops_per_image(name, card, render["out_h"], render["out_w"])
    peak = peak_bf16_tflops(device)
    return {"model": name, "compile": compile, "batch_size": batch_size, "workers": workers, "images_per_s": stats["images_per_s"],
            "data_wait": stats["data_wait"], "first_batch_wait_s": stats["first_batch_wait_s"],
            "epoch_time_s": stats["epoch_time_s"], "train_loss": stats["train_loss"], "compute_images_per_s": ceiling,
            "max_mem_gib": mem, "train_gflop_per_image": flops / 1e9,
            "bf16_peak_fraction": stats["images_per_s"] * flops / (peak * 1e12) if peak else None,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}


def check_compile(name: str, root: Path, device: torch.device, batch_size: int, steps: int) -> dict:
    """Loss per step of the eager and the compiled model trained from the same weights on the same batches."""
    card = card_info(read_card(root))
    image = get_model(name).input == "image"
    cl = image and device.type == "cuda"
    prep = Standardize(image, cl).to(device)
    batches = []
    for batch in make_batches(root, "train", name, batch_size, 0, train=True):
        batches.append((batch.x, batch.y))
        if len(batches) == steps:
            break
    curves = {}
    for mode in ("eager", "compiled"):
        seed_everything(0)
        model = build_model(name, len(card.classes), n_leads=card.n_leads, weights="none", input_length=card.window)
        model.to(device, memory_format=torch.channels_last if cl else torch.contiguous_format).train()
        if mode == "compiled":
            compile_model(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        losses = []
        for x, y in batches:
            with autocast(device, True):
                loss = torch.nn.functional.cross_entropy(model(prep(x.to(device))), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        curves[mode] = losses
    gaps = [abs(c - e) for e, c in zip(curves["eager"], curves["compiled"])]
    return {"model": name, "check": "compile", "steps": len(gaps), "eager_loss": curves["eager"],
            "compiled_loss": curves["compiled"], "max_abs_gap": max(gaps), "finite": bool(np.isfinite(curves["compiled"]).all()),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}


def bench_loader(root: Path, workers: int, batch_size: int) -> dict:
    """Decoded samples/s of the image loader alone (two epochs, the second timed)."""
    batches = ImageBatches(root, "train", batch_size, workers, train=True)
    for _ in batches:
        pass
    start, n = time.perf_counter(), 0
    for b in batches:
        n += len(b.y)
    rate = n / (time.perf_counter() - start)
    return {"loader_workers": batches.workers, "samples_per_s": rate, "per_worker": rate / max(1, batches.workers)}


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark named by `argv` (the command line's arguments); print and return one dict per result."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, help="existing dataset directory (else --synthetic)")
    p.add_argument("--synthetic", type=int, default=4096, help="train windows of a synthetic dataset")
    p.add_argument("--synthetic-dir", type=Path, help="write the synthetic dataset here and keep it (reused if present)")
    p.add_argument("--models", default=",".join(model_names()))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", default=str(min(14, os.cpu_count() or 1)), help="comma list for --loader-only")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="train the models compiled, as `ecgtrain fit --compile`")
    p.add_argument("--check-compile", type=int, metavar="STEPS",
                   help="instead of timing: loss curves of eager and compiled training over STEPS batches (image models: "
                        "Ref-ECG's dropout draws other masks when compiled, so its curves differ by design)")
    p.add_argument("--loader-only", action="store_true", help="measure the loader's samples/s per worker count")
    p.add_argument("--smoke", action="store_true",
                   help="a tiny run that checks the benchmark works (64 windows, refecg, batch 16): no meaningful figures")
    p.add_argument("--json", type=Path, help="append one JSON line per result")
    args = p.parse_args(argv)
    if args.smoke:
        args.synthetic, args.batch_size, args.workers = 64, 16, "0" if not args.loader_only else "1"
        args.models = "refecg"
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    torch.backends.cudnn.benchmark = True
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dataset
        if root is None and args.synthetic_dir and (args.synthetic_dir / "dataset.json").is_file():
            root = args.synthetic_dir
        if root is None:
            t = time.perf_counter()
            root = write_synthetic(args.synthetic_dir or Path(tmp) / "ds", args.synthetic,
                                   distinct=8 if args.smoke else 256)
            print(f"synthetic dataset: {args.synthetic} train windows in {time.perf_counter() - t:.1f} s", flush=True)
        for name in ([] if args.loader_only else args.models.split(",")):
            if args.check_compile:
                results.append(check_compile(name, root, device, args.batch_size, args.check_compile))
            else:
                results.append(bench_model(name, root, device, args.batch_size, int(args.workers.split(",")[0]),
                                           args.compile, 1 if args.smoke else 20))
            print(json.dumps(results[-1]), flush=True)
            torch.cuda.empty_cache() if device.type == "cuda" else None
        for w in (int(v) for v in args.workers.split(",")) if args.loader_only else ():
            results.append(bench_loader(root, w, args.batch_size))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        with open(args.json, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in results)
    timed = [r for r in results if "images_per_s" in r]
    if timed:
        print(f"\n{'model':<11} {'img/s':>8} {'data wait':>10} {'compute img/s':>14} {'GFLOP/img':>10} {'bf16 peak':>10} {'GiB':>6}")
        for r in timed:
            peak = "-" if r["bf16_peak_fraction"] is None else f"{100 * r['bf16_peak_fraction']:.1f}%"
            print(f"{r['model']:<11} {r['images_per_s']:8.0f} {100 * r['data_wait']:9.1f}% "
                  f"{r['compute_images_per_s']:14.0f} {r['train_gflop_per_image']:10.1f} {peak:>10} "
                  f"{'-' if r['max_mem_gib'] is None else format(r['max_mem_gib'], '.1f'):>6}")
    return results


if __name__ == "__main__":
    main()
