"""Every benchmark in one command: one JSON file and one Markdown table, with the machine they ran on.

    python benchmarks/run_all.py --out bench-results                 # render, build, decode, loader; training where CUDA is
    python benchmarks/run_all.py --out bench-results --compare-with /tmp/old-checkout   # build and decode: old vs new code
    python benchmarks/run_all.py --smoke --out /tmp/smoke             # seconds per benchmark: checks they run (CI)

Each benchmark runs in a child process of its own (bench_render pins every thread pool to one thread, and
a timed build should not share its process with a loaded GPU run), through its `main(argv)`, which
returns one dict per measured configuration. `results.json` holds the machine, the commit, every
benchmark's arguments and results; `results.md` the same as tables. Figures in docs/ quote these files.
Where ../shared/data/mitdb exists, the build is timed on its records, else on the bundled demo sample.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
sys.path.insert(0, str(BENCHMARKS))  # bench_build's machine(), also when run_all is imported
MITDB = REPO.parent / "shared" / "data" / "mitdb"


def plan(smoke: bool, cuda: bool, compare_with: str | None) -> list[tuple[str, str, list[str]]]:
    """(name, module, argv) of every benchmark to run on this machine."""
    if smoke:
        return [("render", "bench_render", ["--smoke"]), ("build", "bench_build", ["--smoke"]),
                ("decode", "bench_decode", ["--smoke"]), ("loader", "bench_train", ["--smoke", "--loader-only"]),
                ("train", "bench_train", ["--smoke"])]
    source = ["--db", "mitdb", "--source", str(MITDB), "--per-class", "500"] if MITDB.is_dir() else \
        ["--db", "demo", "--per-class", "60"]
    compare = ["--compare-with", compare_with] if compare_with else []
    runs = [("render", "bench_render", ["--n", "20"]),
            ("build", "bench_build", [*source, "--jobs", "1,2", "--stages", *compare]),
            ("decode", "bench_decode", [*source, *compare]),
            ("loader", "bench_train", ["--synthetic", "2048", "--loader-only", "--workers", "1,2", "--batch-size", "64"])]
    if cuda:
        workers = str(min(14, os.cpu_count() or 1))
        train = ["--synthetic", "24576", "--batch-size", "128", "--workers", workers]
        runs += [("train", "bench_train", [*train, "--models", "imecgnet,imresnet50,imresnet34,refecg"]),
                 ("train compiled", "bench_train", [*train, "--models", "imecgnet,imresnet50", "--compile"]),
                 ("compile check", "bench_train", ["--synthetic", "2048", "--models", "imecgnet", "--batch-size", "128",
                                                   "--check-compile", "60"])]
    return runs


def run_benchmark(module: str, argv: list[str]) -> list[dict]:
    """`module.main(argv)` in a child process; its returned list of dicts."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        code = (f"import json, sys; sys.path[:0] = [{str(BENCHMARKS)!r}, {str(REPO)!r}]; import {module}; "
                f"open({str(out)!r}, 'w').write(json.dumps({module}.main({argv!r})))")
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
        return json.loads(out.read_text())


def machine() -> dict:
    """What the figures were measured on: CPU, cores and load (bench_build.machine), memory, GPUs, software
    versions and the commit."""
    import torch
    from bench_build import machine as cpu_and_load

    info = cpu_and_load()
    mem = next((int(line.split()[1]) / 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), None) if Path("/proc/meminfo").exists() else None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip())
    return {"cpu": info["cpu"], "cores": info["cores"], "memory_gib": mem and round(mem, 1),
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "commit": commit + ("+changes" if dirty else ""), "load_average": info["load_after"]}


def markdown(report: dict) -> str:
    """results.md: the machine, then one table per benchmark (scalar fields as columns)."""
    m = report["machine"]
    lines = [f"# Benchmarks, {report['started']}", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; GPUs: {', '.join(m['gpus']) or 'none'}; "
             f"Python {m['python']}, torch {m['torch']}; commit {m['commit']}; load average at start "
             f"{', '.join(f'{v:.2f}' for v in m['load_average'])}.", ""]
    if report["smoke"]:
        lines += ["**Smoke run**: tiny sizes that check the benchmarks run; the figures mean nothing.", ""]
    for bench in report["benchmarks"]:
        lines += [f"## {bench['name']} ({bench['seconds']:.0f} s)", "",
                  f"`python benchmarks/{bench['module']}.py {' '.join(bench['argv'])}`", ""]
        rows = bench["results"]
        columns = [key for key in dict.fromkeys(k for r in rows for k in r)
                   if all(not isinstance(r.get(key), (dict, list)) for r in rows)]
        if rows:
            lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(_cell(r.get(key)) for key in columns) + " |" for r in rows]
        lines.append("")
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "-" if value is None else str(value)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmarks, write OUT/results.json and OUT/results.md, return the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json and results.md")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every benchmark runs (CI)")
    parser.add_argument("--only", help="comma list of benchmark names to run (render, build, decode, loader, train, "
                                       "train compiled, compile check)")
    parser.add_argument("--compare-with", metavar="TREE", help="a checkout of older code: build and decode time it too")
    args = parser.parse_args(argv)
    import torch

    runs = plan(args.smoke, torch.cuda.is_available(), args.compare_with)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {name for name, _, _ in plan(False, True, None)}
        if unknown:
            parser.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}")
        runs = [r for r in runs if r[0] in wanted]
    report = {"started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "smoke": args.smoke, "machine": machine(), "benchmarks": []}
    for name, module, bench_argv in runs:
        print(f"== {name}: benchmarks/{module}.py {' '.join(bench_argv)}", flush=True)
        start = time.perf_counter()
        results = run_benchmark(module, bench_argv)
        report["benchmarks"].append({"name": name, "module": module, "argv": bench_argv,
                                     "seconds": time.perf_counter() - start, "results": results})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(report))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return report


if __name__ == "__main__":
    main()
