"""How closely, and how fast, the fast renderer reproduces the matplotlib reference on real windows.

    .venv/bin/python benchmarks/bench_fast_fidelity.py [--n 20] [--data ../shared/data] [--seed 0]
        [--subcolumns 1 2 4 8]

Same windows as bench_render.py (MIT-BIH 2-lead, PTB 15-lead, the PTB windows cut to 12 leads).
For every kind and every `subcolumns` setting of FastRenderer (stroke samples per frame pixel
column; the default is ecgrender.render.fast.SUBCOLUMNS) it prints the PSNR against
MatplotlibRenderer (min / median over the windows), the largest grey-level difference, the mean
difference (fast - matplotlib; > 0 means the fast image is lighter) and the fast renderer's
images/s per core (CPU time, one process, one thread). bench_render.py gives the ratio to the
naive paper pipeline.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import REPO, psnr, window_kinds  # noqa: E402

from ecgrender.render.fast import SUBCOLUMNS, FastRenderer  # noqa: E402
from ecgrender.render.mpl import MatplotlibRenderer  # noqa: E402


def _rate(render, windows: list[np.ndarray], repeat: int = 5) -> float:
    """Images per CPU second of `render` over `windows` (best of `repeat` passes, after a warm-up)."""
    render(windows[0])
    best = float("inf")
    for _ in range(repeat):
        cpu0 = time.process_time()
        for w in windows:
            render(w)
        best = min(best, time.process_time() - cpu0)
    return len(windows) / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="windows per kind (default 20)")
    parser.add_argument(
        "--data", type=Path, default=REPO.parent / "shared" / "data", help="folder with mitdb/ and ptbdb/"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the window offsets")
    parser.add_argument(
        "--subcolumns", type=int, nargs="+", default=[SUBCOLUMNS], help=f"settings to compare (default {SUBCOLUMNS})"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or min(args.subcolumns) < 1:
        parser.error("--n and --subcolumns must be at least 1")

    reference = MatplotlibRenderer()
    kinds = window_kinds(args.data, args.n, args.seed)
    print("\n| windows | subcolumns | PSNR min (dB) | PSNR median (dB) | max abs diff | mean diff | fast img/s/core |")
    print("|---|---|---|---|---|---|---|")
    for kind, windows in kinds.items():
        expected = [reference.render(w) for w in windows]
        for sub in args.subcolumns:
            fast = FastRenderer(subcolumns=sub)
            got = [fast.render(w) for w in windows]
            values = [psnr(a, b) for a, b in zip(expected, got)]
            diffs = np.stack(got).astype(np.int16) - np.stack(expected)
            print(
                f"| {kind} ({len(windows)}) | {sub} | {min(values):.2f} | {np.median(values):.2f} | "
                f"{np.abs(diffs).max()} | {diffs.mean():+.3f} | {_rate(fast.render, windows):.0f} |"
            )


if __name__ == "__main__":
    main()
