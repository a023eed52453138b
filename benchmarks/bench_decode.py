"""PNG codec speed on rendered windows: encode_png, and decoding with the reader, Pillow and pyspng, new vs old code.

The images are real renders: a dataset is built (with this tree) and its images decoded once. Each
tree measured (this one, and with `--compare-with DIR` an older checkout) encodes them with its own
`encode_png` and decodes its own PNGs with its own reader (`MEMBER_DECODERS["png"]`), with Pillow and
with pyspng, in a process of its own (`_timed_decode.py`), one core; trees are interleaved repetition
by repetition and the best time is kept. The old reader on the old PNGs against the new reader on the
new PNGs is the loader's decode before and after. `main()` returns one dict per measurement;
`--smoke` is a seconds-long run for CI.

    .venv/bin/python benchmarks/bench_decode.py --db mitdb --source ../shared/data/mitdb --per-class 500 \
        --compare-with /tmp/old-code
    .venv/bin/python benchmarks/bench_decode.py --smoke
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from bench_build import common_arguments, machine, run_child, smoke_and_paths


def rendered_images(args: argparse.Namespace, work: Path) -> np.ndarray:
    """The images of a dataset built for the purpose: uint8 (N, H, W), manifest order."""
    from ecgrender.build import BuildConfig, build_dataset
    from shards.layout import SPLITS
    from shards.reader import iter_samples

    cfg = BuildConfig(db=args.db, source=args.source, out=work / "dataset", per_class=args.per_class,
                      split_by="window", renderer="fast", jobs=1)
    build_dataset(cfg, echo=lambda _line: None, progress=False)
    return np.stack([image for split in SPLITS for _key, image, _target, _row in iter_samples(cfg.out, split)])


def measure(args: argparse.Namespace, trees: dict[str, Path], images: Path, work: Path) -> dict[str, dict]:
    """Per tree: mean PNG size and the best seconds per image of encoding and of each decoder."""
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for label, tree in trees.items():
            got = run_child("_timed_decode.py", tree, {"images": str(images), "repeat": 3}, work)
            if label not in best:
                best[label] = got
                continue
            best[label]["encode_s"] = min(best[label]["encode_s"], got["encode_s"])
            for name, seconds in got["decode_s"].items():
                best[label]["decode_s"][name] = min(best[label]["decode_s"][name], seconds)
    return best


def results_of(best: dict[str, dict], n: int, db: str) -> list[dict]:
    """One dict per (tree, operation); `ratio_new_old` is the old time over the new (a speed-up) for the new
    tree's encoder and reader."""
    results = []
    for label, got in best.items():
        timings = {"encode_png": got["encode_s"], **{f"decode {name}": s for name, s in got["decode_s"].items()}}
        for operation, seconds in timings.items():
            result = {"benchmark": "png-codec", "name": f"{operation} on {label} PNGs ({db})", "tree": label,
                      "operation": operation, "images": n, "png_kB": round(got["png_bytes"] / 1000, 2),
                      "ms_per_image": round(1000 * seconds, 4), "images_per_s": round(1 / seconds, 1)}
            old = best.get("old")
            if label == "new" and old and operation in ("encode_png", "decode reader"):
                before = old["encode_s"] if operation == "encode_png" else old["decode_s"]["reader"]
                result["ratio_new_old"] = round(before / seconds, 2)
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    """Measure, print a Markdown table with the machine and return one dict per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    args = parser.parse_args(argv)
    trees = smoke_and_paths(args)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench_decode_"))
    try:
        images = rendered_images(args, work)
        np.save(work / "images.npy", images)
        results = results_of(measure(args, trees, work / "images.npy", work), len(images), args.db)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = machine(load_before)
    print(f"\nPNG codec, {len(images)} rendered {args.db} windows, one core; {info['cpu']}, {info['cores']} cores; "
          f"load average (1, 5, 15 min) before {info['load_before']}, after {info['load_after']}")
    print("| operation | PNGs of | PNG kB | ms per image | images/s | new/old speed-up |\n|---|---|---:|---:|---:|---:|")
    for r in results:
        r["machine"] = info
        print(f"| {r['operation']} | {r['tree']} | {r['png_kB']} | {r['ms_per_image']:.3f} | {r['images_per_s']:.0f} | "
              f"{r.get('ratio_new_old', '-')} |")
    return results


if __name__ == "__main__":
    main()
