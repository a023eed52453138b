"""Does a model trained on one renderer's images work on the other's? A 2 x 2 train/evaluate table.

Both datasets must hold the same windows (build the second with `--manifest` of the first):

    ecgrender build --db mitdb --source ../shared/data/mitdb --per-class 300 --split-by window \\
        --renderer fast --out fidelity/fast
    ecgrender build --db mitdb --source ../shared/data/mitdb --manifest fidelity/fast/manifest.csv \\
        --renderer matplotlib --out fidelity/mpl
    python benchmarks/bench_renderer_transfer.py fidelity/fast fidelity/mpl --model imecgnet --weights none

Trains one run per dataset with `ecgtrain fit`, evaluates each run on both test splits with
`ecgtrain evaluate --dataset`, and prints test accuracy for every (trained on, tested on) pair.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ECGTRAIN = [sys.executable, "-c", "from ecgtrain.cli import main; main()"]


def _run(*args) -> None:
    subprocess.run([*ECGTRAIN, *map(str, args)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs=2, type=Path, help="two datasets of the same manifest, e.g. fast and matplotlib")
    parser.add_argument("--model", default="imecgnet")
    parser.add_argument("--weights", default="none")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()

    manifests = {(d / "manifest.csv").read_bytes() for d in args.datasets}
    if len(manifests) != 1:
        sys.exit("error: the two datasets hold different windows: build the second with --manifest of the first")
    work = args.out or Path(tempfile.mkdtemp(prefix="renderer_transfer_"))
    accuracy = {}
    try:
        for trained in args.datasets:
            run = work / f"run-{trained.name}"
            _run("fit", trained, "--model", args.model, "--weights", args.weights, "--epochs", args.epochs,
                 "--lr", args.lr, "--batch-size", args.batch_size, "--workers", args.workers, "--out", run,
                 "--no-report", "--no-progress")
            for tested in args.datasets:
                _run("evaluate", run, "--dataset", tested, "--workers", args.workers, "--no-progress")
                report = json.loads((run / "report.json").read_text())
                accuracy[(trained.name, tested.name)] = report["metrics"]["accuracy"]
                shutil.copy(run / "report.json", run / f"report-on-{tested.name}.json")
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)

    names = [d.name for d in args.datasets]
    print(f"\n{args.model}, weights {args.weights}, {args.epochs} epochs, lr {args.lr}: test accuracy")
    print("| trained on \\ tested on | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for trained in names:
        print(f"| {trained} | " + " | ".join(f"{100 * accuracy[(trained, t)]:.2f} %" for t in names) + " |")


if __name__ == "__main__":
    main()
