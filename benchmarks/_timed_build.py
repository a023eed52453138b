"""Child process of bench_build.py: time builds of one manifest with the `ecgrender` on PYTHONPATH.

bench_build.py runs this file with PYTHONPATH set to the tree it measures (this checkout or an older
one), so the same manifest can be built by two versions of the code. The request is one JSON argument;
the answer is one JSON line on standard output: the seconds of each timed build and, when asked, a
cProfile of one more build split into stages.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import shutil
import sys
import time
from pathlib import Path

# Stages of a profiled build: (label, file the function is in, function name); cumulative seconds.
STAGES = (
    ("whole build", "ecgrender/build.py", "build_dataset"),
    ("hash the source files", "ecgrender/build.py", "source_files"),
    ("scan headers and annotations", "ecgrender/sources/", "scan"),
    ("extract (read records, refecg.h5, staging)", "ecgrender/extract.py", "extract_windows"),
    ("  of which: read records", "ecgrender/sources/wfdbfiles.py", "read_signal"),
    ("render shards (render + encode + tar)", "ecgrender/render_shards.py", "render_shards"),
    ("  of which: render", "ecgrender/render/fast.py", "render"),
    ("  of which: PNG encoding", "shards/writer.py", "encode_png"),
    ("  of which: deflate", "", "<built-in method zlib.compress>"),
    ("  of which: deflate", "", "<built-in method zlib_ng.zlib_ng.compress>"),
    ("card (checksums)", "shards/card.py", "write_card"),
)


def _cumulative(stats: pstats.Stats, where: str, name: str) -> float:
    """Cumulative seconds of the functions called `name` in a file whose path contains `where`."""
    table = stats.stats  # type: ignore[attr-defined]  # {(file, line, function): (cc, nc, tt, ct, callers)}
    return sum(v[3] for (file, _line, function), v in table.items()
               if function == name and where in file.replace("\\", "/"))


def profile_stages(build) -> dict[str, float]:
    """Seconds per stage of one profiled call of `build()` (STAGES; a stage found nowhere is left out)."""
    profile = cProfile.Profile()
    profile.runcall(build)
    stats = pstats.Stats(profile)
    stages: dict[str, float] = {}
    for label, where, name in STAGES:
        seconds = _cumulative(stats, where, name)
        if seconds:
            stages[label] = stages.get(label, 0.0) + round(seconds, 3)
    return stages


def run(request: dict) -> dict:
    """Warm up with one untimed build, time `builds` more, then profile one if asked."""
    import joblib

    import ecgrender
    from ecgrender.build import BuildConfig, build_dataset

    source = Path(request["source"]) if request["source"] else None
    cfg = BuildConfig(db=request["db"], source=source, out=Path(request["out"]), manifest=Path(request["manifest"]),
                      renderer=request["renderer"], jobs=request["jobs"])

    def build() -> None:
        shutil.rmtree(cfg.out, ignore_errors=True)
        build_dataset(cfg, echo=lambda _line: None, progress=False)

    seconds = []
    with joblib.parallel_config(backend="loky"):
        build()  # warm: numba, worker start-up and the page cache out of the figure
        for _ in range(request["builds"]):
            start = time.perf_counter()
            build()
            seconds.append(time.perf_counter() - start)
        stages = profile_stages(build) if request.get("profile") else {}
    return {"module": ecgrender.__file__, "seconds": seconds, "stages": stages}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
