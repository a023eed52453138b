"""Whole-build time of a PTB-XL-shaped database: a synthetic tree in the published layout (the tests'
`synth.write_ptbxl`, real statement table, 12 leads, 10 s records) of N records at one rate, built with
`--split-by fold` at 1 and at all render jobs. Prints seconds, windows/s and the time the same rate would
take for PTB-XL's 21,799 records (a linear extrapolation: every stage is per record).

    .venv/bin/python benchmarks/bench_ptbxl_build.py --records 2000            # 100 Hz
    .venv/bin/python benchmarks/bench_ptbxl_build.py --records 500 --fs 500
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import synth  # the tests' synthetic WFDB writers

from ecgrender.build import BuildConfig, build_dataset
from shards.manifest import read_manifest

PTBXL_RECORDS = 21_799
# Real scp_codes combinations (superdiagnostic NORM, MI, STTC, HYP, CD+HYP, and AFLT without a diagnostic one).
CODES = [{"NORM": 100.0, "SR": 0.0}, {"IMI": 35.0, "ABQRS": 0.0, "SR": 0.0}, {"NST_": 100.0, "DIG": 100.0, "SR": 0.0},
         {"LVH": 100.0, "SR": 0.0}, {"IRBBB": 100.0, "RAO/RAE": 50.0, "RVH": 35.0, "SR": 0.0}, {"AFLT": 100.0}]


def write_tree(root: Path, n: int, fs: int) -> None:
    """n records (two per patient, folds 1-10 by patient, seeded statement combinations) at rate fs."""
    rng = np.random.default_rng(0)
    records = {i: (float(10_000 + i // 2), CODES[int(rng.integers(len(CODES)))], 1 + (i // 2) % 10)
               for i in range(1, n + 1)}
    synth.write_ptbxl(root, records=records, rates=(fs,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--fs", type=int, default=100, choices=(100, 500))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ptbxl-"))
    start = time.perf_counter()
    write_tree(work / "ptbxl", args.records, args.fs)
    print(f"wrote {args.records} records at {args.fs} Hz in {time.perf_counter() - start:.1f} s ({work})")
    for jobs in sorted({1, os.cpu_count() or 1}):
        cfg = BuildConfig(db="ptbxl", source=work / "ptbxl", out=work / f"ds-{jobs}", fs=args.fs, split_by="fold",
                          window=1000, allow_missing_classes=True, jobs=jobs)
        start = time.perf_counter()
        build_dataset(cfg, echo=lambda _line: None, progress=False)
        seconds = time.perf_counter() - start
        windows = len(read_manifest(cfg.out / "manifest.csv"))
        full = seconds * PTBXL_RECORDS / args.records / 60
        print(f"jobs {jobs}: {seconds:.1f} s, {windows} windows, {windows / seconds:.1f} windows/s; "
              f"{PTBXL_RECORDS} records at this rate: about {full:.0f} min")


if __name__ == "__main__":
    main()
