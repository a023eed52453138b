"""Child process of bench_decode.py: time the PNG codec of the `shards` package on PYTHONPATH.

bench_decode.py runs this file with PYTHONPATH set to the tree it measures. It encodes the given grey
images with that tree's `shards.writer.encode_png`, then decodes the PNGs with that tree's reader
(`shards.reader.MEMBER_DECODERS["png"]`), with Pillow and with pyspng (when installed). The answer is
one JSON line: the best seconds per image of each, and the mean PNG size.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable

import numpy as np
from PIL import Image


def best_seconds_per_item(function: Callable, items: list, repeat: int) -> float:
    """The best over `repeat` passes of the wall-clock seconds per item of `function` over `items`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items)


def pillow(data: bytes) -> np.ndarray:
    """Decode a PNG with Pillow, as the reader did before pyspng."""
    with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
        return np.asarray(image, dtype=np.uint8)


def run(request: dict) -> dict:
    """Encode, then decode with each decoder; check that every decoder gives the pixels back."""
    import shards
    from shards.reader import MEMBER_DECODERS
    from shards.writer import encode_png

    images = list(np.load(request["images"]))
    repeat = request["repeat"]
    pngs = [encode_png(image) for image in images]
    decoders = {"reader": MEMBER_DECODERS["png"], "Pillow": pillow}
    try:
        import pyspng

        decoders["pyspng"] = pyspng.load
    except ImportError:
        pass
    for name, decode in decoders.items():
        if not all(np.array_equal(decode(png), image) for png, image in zip(pngs, images)):
            raise SystemExit(f"{name} does not give the encoded pixels back")
    return {"module": shards.__file__, "png_bytes": float(np.mean([len(p) for p in pngs])),
            "encode_s": best_seconds_per_item(encode_png, images, repeat),
            "decode_s": {name: best_seconds_per_item(decode, pngs, repeat) for name, decode in decoders.items()}}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
