"""Render the same real ECG windows with the naive paper pipeline and with every project renderer.

    .venv/bin/python benchmarks/bench_render.py [--n 20] [--data ../shared/data] [--seed 0]

Window kinds: MIT-BIH 2-lead windows (every mitdb/*.hea record found, in turn), PTB 15-lead
windows (every ptbdb/patient*/*.hea record; here patient001/s0010_re) and the same PTB windows cut
to the 12 standard leads. Where ../shared/data is absent, the bundled demo sample
(ecgrender/data/demo, same layout) is used. Everything runs in one process on one thread
(OMP/MKL/OpenBLAS/numba threads = 1), so images/s is per core: CPU-time rate (process time) and
wall-clock rate are both printed. PSNR is over each window's stored 314 x 384 image; the worst
window and the pooled value are shown ("inf" = identical images).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import wfdb  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from naive_paper import render_naive  # noqa: E402

from ecgrender.errors import EcgError  # noqa: E402
from ecgrender.render import make_renderer, renderer_names  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WINDOW = 1000
DEMO = REPO / "ecgrender" / "data" / "demo"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _draw_windows(records: list[Path], n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`n` windows of WINDOW samples (all leads) at random offsets, taking the records in turn."""
    signals = []
    for path in records:
        rec = wfdb.rdrecord(str(path))
        sig = np.asarray(rec.p_signal, dtype=np.float64)
        if sig.shape[0] < WINDOW or not np.isfinite(sig).all():
            continue
        signals.append(sig)
    if not signals:
        raise SystemExit(f"no usable record among {[str(p) for p in records]}")
    out = []
    for i in range(n):
        sig = signals[i % len(signals)]
        start = int(rng.integers(0, sig.shape[0] - WINDOW + 1))
        out.append(sig[start : start + WINDOW])
    return out


def window_kinds(data: Path, n: int, seed: int) -> dict[str, list[np.ndarray]]:
    """Window kind name -> list of real windows from data/mitdb and data/ptbdb (else the bundled demo)."""
    for root in (data, DEMO):
        mitdb = sorted(p.with_suffix("") for p in (root / "mitdb").glob("*.hea"))
        ptbdb = sorted(p.with_suffix("") for p in (root / "ptbdb").glob("patient*/*.hea"))
        if mitdb or ptbdb:
            break
    else:
        raise SystemExit(f"no records under {data}/mitdb, {data}/ptbdb nor in {DEMO}: pass --data DIR")
    print(f"windows from {root}")
    rng = np.random.default_rng(seed)
    kinds: dict[str, list[np.ndarray]] = {}
    if mitdb:
        kinds["mitdb 2-lead"] = _draw_windows(mitdb, n, rng)
    if ptbdb:
        ptb = _draw_windows(ptbdb, n, rng)
        kinds["ptbdb 15-lead"] = ptb
        kinds["ptbdb 12-lead"] = [w[:, :12] for w in ptb]  # the 12 standard leads (.dat), without Frank's
    return kinds


def _time(render, windows: list[np.ndarray]) -> tuple[list[np.ndarray], float, float]:
    """Render every window after one untimed warm-up; return images, CPU seconds, wall seconds."""
    render(windows[0])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    images = [render(w) for w in windows]
    return images, time.process_time() - cpu0, time.perf_counter() - wall0


def main(argv: list[str] | None = None) -> list[dict]:
    """Print the comparison and return one dict per (window kind, renderer)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="windows per kind (default 20)")
    parser.add_argument("--smoke", action="store_true", help="2 windows per kind: checks the benchmark runs, no figures")
    parser.add_argument(
        "--data", type=Path, default=REPO.parent / "shared" / "data", help="folder with mitdb/ and ptbdb/"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the window offsets")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n = 2
    if args.n < 1:
        parser.error("--n must be at least 1")

    renderers = {}
    for name in renderer_names():
        try:
            renderers[name] = make_renderer(name)
        except EcgError as exc:
            print(f"[skip] renderer {name}: {exc}")

    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for kind, windows in window_kinds(args.data, args.n, args.seed).items():
            n = len(windows)
            print(f"\n{kind}: {n} windows of shape {windows[0].shape}")
            naive, cpu, wall = _time(lambda w: render_naive(w, workdir=workdir), windows)
            base_rate = n / cpu
            rows.append((kind, "naive (pyplot+savefig)", base_rate, n / wall, 1.0, None, None))
            print(f"  naive      {base_rate:8.2f} img/s/core (CPU)  {n / wall:8.2f} img/s (wall)")
            reference = None
            for name, renderer in renderers.items():
                images, cpu, wall = _time(renderer.render, windows)
                if name == "matplotlib":
                    reference = images
                rate = n / cpu
                worst = min(psnr(a, b) for a, b in zip(images, naive))
                pooled = psnr(np.stack(images), np.stack(naive))
                vs_ref = None
                if name != "matplotlib" and reference is not None:
                    vs_ref = min(psnr(a, b) for a, b in zip(images, reference))
                rows.append((kind, name, rate, n / wall, rate / base_rate, (worst, pooled), vs_ref))
                print(
                    f"  {name:10s} {rate:8.2f} img/s/core (CPU)  {n / wall:8.2f} img/s (wall)  "
                    f"x{rate / base_rate:.1f} vs naive  PSNR vs naive min {worst:.2f} dB, pooled {pooled:.2f} dB"
                    + (f", vs matplotlib min {vs_ref:.2f} dB" if vs_ref is not None else "")
                )

    print(
        "\nkind           renderer                 img/s/core  img/s wall  x naive"
        "  PSNR vs naive min/pooled  vs mpl min"
    )
    for kind, name, rate, wall_rate, ratio, vs_naive, vs_ref in rows:
        naive_col = "-" if vs_naive is None else f"{vs_naive[0]:.2f} / {vs_naive[1]:.2f}"
        ref_col = "-" if vs_ref is None else f"{vs_ref:.2f}"
        print(f"{kind:14s} {name:24s} {rate:10.2f} {wall_rate:11.2f} {ratio:8.1f}  {naive_col:>24s}  {ref_col:>10s}")
    return [{"kind": kind, "renderer": name, "images_per_s_per_core": rate, "images_per_s_wall": wall_rate,
             "x_naive": ratio, "psnr_vs_naive_worst_db": None if vs_naive is None else _finite(vs_naive[0]),
             "psnr_vs_naive_pooled_db": None if vs_naive is None else _finite(vs_naive[1]),
             "psnr_vs_matplotlib_worst_db": None if vs_ref is None else _finite(vs_ref)}
            for kind, name, rate, wall_rate, ratio, vs_naive, vs_ref in rows]


def _finite(db: float) -> float | str:
    """A PSNR for JSON: identical images ("inf") as the string "inf"."""
    return db if math.isfinite(db) else "inf"


if __name__ == "__main__":
    main()
