"""Regenerate the bundled demo sample (ecgrender/data/demo) from the real PhysioNet files.

    .venv/bin/python scripts/make_demo.py [--shared ../shared/data] [--out ecgrender/data/demo]

MIT-BIH excerpts: the digital samples of both leads copied unchanged (format 212, same gains and
baselines), the `.atr` annotations inside the excerpt shifted to start at 0, and the rhythm in force
at the excerpt start written as a `+` annotation at sample 0. PTB `patient001/s0010_re` is copied
byte for byte. `README.md` in the output folder (attribution, licence) is left as it is.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import wfdb

REPO = Path(__file__).resolve().parents[1]
FS = 360
MINUTE = 60 * FS

# (record, first minute, last minute): together N, AFIB, B and T, each in as many subjects as the
# 22 records in ../shared/data/mitdb allow (AFIB occurs only in 201 and 203 there).
EXCERPTS = [
    ("101", 5.0, 7.0),  # N
    ("106", 11.8, 15.3),  # N, B (2.4 min episode)
    ("119", 2.8, 6.8),  # N, B, T (five short trigeminy episodes)
    ("201", 5.6, 11.0),  # AFIB, NOD, N, T
    ("203", 5.2, 8.2),  # AFIB
    ("208", 17.6, 20.0),  # N, T
    ("223", 21.0, 24.5),  # N, B, VT
]
PTB_RECORD = "patient001/s0010_re"


def rhythm_at(ann: wfdb.Annotation, sample: int) -> str | None:
    """Aux note of the last rhythm change at or before `sample`."""
    current = None
    for s, sym, aux in zip(ann.sample, ann.symbol, ann.aux_note):
        if s > sample:
            break
        if sym == "+" and aux.rstrip("\x00").startswith("("):
            current = aux.rstrip("\x00")
    return current


def write_excerpt(src: Path, dst: Path, record: str, first_min: float, last_min: float) -> None:
    """One MIT-BIH excerpt: signal samples [start, end) and the annotations inside them."""
    start, end = int(round(first_min * MINUTE)), int(round(last_min * MINUTE))
    rec = wfdb.rdrecord(str(src / record), sampfrom=start, sampto=end, physical=False)
    rec.sig_len = end - start
    rec.init_value = [int(v) for v in rec.d_signal[0]]
    rec.checksum = [int(c) - 65536 if c > 32767 else int(c) for c in rec.calc_checksum()]  # 16-bit signed
    rec.comments = list(rec.comments or []) + [
        f"ecgrender demo: excerpt of MIT-BIH Arrhythmia Database 1.0.0 record {record}, "
        f"samples {start}-{end} ({first_min}-{last_min} min), digital values unchanged"
    ]
    rec.wrsamp(write_dir=str(dst))

    ann = wfdb.rdann(str(src / record), "atr")
    keep = (ann.sample >= start) & (ann.sample < end)
    samples = list(ann.sample[keep] - start)
    symbols = [s for s, k in zip(ann.symbol, keep) if k]
    subtypes = list(ann.subtype[keep])
    chans = list(ann.chan[keep])
    nums = list(ann.num[keep])
    aux = [a.rstrip("\x00") for a, k in zip(ann.aux_note, keep) if k]
    opening = rhythm_at(ann, start)
    if opening and not (samples and samples[0] == 0 and symbols[0] == "+"):
        samples, symbols = [0] + samples, ["+"] + symbols
        subtypes, chans, nums, aux = [0] + subtypes, [0] + chans, [0] + nums, [opening] + aux
    wfdb.wrann(record, "atr", np.array(samples, dtype=np.int64), symbol=symbols,
               subtype=np.array(subtypes), chan=np.array(chans), num=np.array(nums),
               aux_note=aux, fs=rec.fs, write_dir=str(dst))


def make_demo(shared: Path, out: Path) -> None:
    """Write `out/mitdb` and `out/ptbdb` (in a temporary folder first, then moved into place)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        tmp = Path(tmp)
        (tmp / "mitdb").mkdir()
        for record, first, last in EXCERPTS:
            write_excerpt(shared / "mitdb", tmp / "mitdb", record, first, last)
        (tmp / "mitdb" / "RECORDS").write_text("".join(f"{r}\n" for r, _, _ in EXCERPTS))
        ptb_dst = tmp / "ptbdb" / Path(PTB_RECORD).parent
        ptb_dst.mkdir(parents=True)
        for ext in (".hea", ".dat", ".xyz"):
            shutil.copyfile(shared / "ptbdb" / f"{PTB_RECORD}{ext}", ptb_dst / f"{Path(PTB_RECORD).name}{ext}")
        for part in ("mitdb", "ptbdb"):
            shutil.rmtree(out / part, ignore_errors=True)
            (tmp / part).rename(out / part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data",
                        help="folder holding mitdb/ and ptbdb/ (PhysioNet originals)")
    parser.add_argument("--out", type=Path, default=REPO / "ecgrender" / "data" / "demo",
                        help="demo folder to (re)write")
    args = parser.parse_args()
    make_demo(args.shared, args.out)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"demo written to {args.out}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
