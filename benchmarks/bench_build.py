"""Whole-build throughput: read + window + render + encode + write, per renderer and job count.

Every configuration rebuilds exactly the same windows (one manifest), so the ratios compare like
with like. Prints windows/s for each configuration and the ratio to the matplotlib renderer.

    .venv/bin/python benchmarks/bench_build.py --db mitdb --source ../shared/data/mitdb --per-class 100
    .venv/bin/python benchmarks/bench_build.py --db demo --per-class 60       # no ../shared needed
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import joblib

from ecgrender.build import BuildConfig, build_dataset
from shards.manifest import read_manifest


def _timed_build(cfg: BuildConfig) -> float:
    shutil.rmtree(cfg.out, ignore_errors=True)
    start = time.perf_counter()
    build_dataset(cfg, echo=lambda _line: None, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="demo")
    parser.add_argument("--source", type=Path)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--renderers", default="fast,matplotlib")
    parser.add_argument("--jobs", default="1,2")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_build_"))
    try:
        base = BuildConfig(db=args.db, source=args.source, out=work / "plan", per_class=args.per_class,
                           renderer="fast", jobs=1)
        build_dataset(base, echo=lambda _line: None, progress=False)
        manifest = work / "manifest.csv"
        shutil.copy(base.out / "manifest.csv", manifest)
        n = len(read_manifest(manifest))
        rates = {}
        for renderer in args.renderers.split(","):
            for jobs in (int(j) for j in args.jobs.split(",")):
                cfg = BuildConfig(db=args.db, source=args.source, out=work / "out", manifest=manifest,
                                  renderer=renderer, jobs=jobs)
                with joblib.parallel_config(backend="loky"):
                    _timed_build(cfg)  # warm: worker start-up and JIT out of the figure
                    seconds = _timed_build(cfg)
                rates[(renderer, jobs)] = n / seconds
                print(f"{renderer:>10}  jobs={jobs}  {n} windows  {seconds:7.2f} s  {n / seconds:8.1f} windows/s",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nwhole build, {args.db}, {n} windows, {os.cpu_count()} cores:")
    print("| renderer | jobs | windows/s | vs matplotlib, same jobs |")
    print("|---|---|---|---|")
    for (renderer, jobs), rate in rates.items():
        reference = rates.get(("matplotlib", jobs))
        ratio = f"{rate / reference:.1f}x" if reference else "-"
        print(f"| {renderer} | {jobs} | {rate:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
