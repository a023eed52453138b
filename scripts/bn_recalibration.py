"""Is a run held back by its BatchNorm running statistics? Evaluate it as trained, then again after
re-estimating every BatchNorm layer's running mean and variance on the training split (averages over
one pass, dropout off, weights unchanged: what `ecgtrain fit --precise-bn` does after every epoch).

A large gain means the running averages lag behind the weights (e.g. Ref-ECG's Keras-style momentum
0.01 on a short run); no gain means the weights themselves under- or over-fit. Used for docs/results.md:

    python scripts/bn_recalibration.py RUN [RUN ...]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ecgtrain.data import make_batches
from ecgtrain.inference import load_run, predict_batches
from ecgtrain.precise_bn import recalibrate_batchnorm


def accuracy(run, dataset: str, split: str) -> float:
    batches = make_batches(dataset, split, run.spec.name, 64, workers=0)
    logits, labels, _ = predict_batches(run.model, run.standardize(), batches, run.device, False, progress=False)
    return float(np.mean(logits.argmax(1) == labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories of `ecgtrain fit`")
    args = parser.parse_args()
    print("| run | train acc % | test acc % | after recalibration: train acc % | test acc % |")
    print("| --- | --- | --- | --- | --- |")
    for path in args.runs:
        run = load_run(path, torch.device("cpu"))
        dataset = run.checkpoint["args"]["dataset"]
        before = [accuracy(run, dataset, s) for s in ("train", "test")]
        recalibrate_batchnorm(run.model, run.standardize(), make_batches(dataset, "train", run.spec.name, 64, workers=0),
                              run.device, False)
        after = [accuracy(run, dataset, s) for s in ("train", "test")]
        print(f"| {path} | " + " | ".join(f"{100 * a:.2f}" for a in before + after) + " |")


if __name__ == "__main__":
    main()
