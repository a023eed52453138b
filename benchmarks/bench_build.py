"""Whole-build throughput: read + window + render + encode + write, per renderer and job count, new vs old code.

Every configuration rebuilds exactly the same windows (one manifest), so the figures compare like with
like. Each build runs in a fresh Python process (`_timed_build.py`) whose PYTHONPATH is the tree being
measured, after one untimed warm-up build in that process. `--compare-with DIR` (a checkout of older
code, e.g. `git worktree add /tmp/old-code HEAD`) builds the same manifest with that tree too,
interleaved with this one, repetition by repetition; the best of `--repeat` runs is kept. `--stages`
adds a cProfile of one 1-job build per tree, split into stages. The machine (CPU model, cores) and the
load average before and after are printed with the table. `main()` returns one dict per measured
configuration (for benchmarks/run_all.py); `--smoke` is a seconds-long run for CI.

    .venv/bin/python benchmarks/bench_build.py --db mitdb --source ../shared/data/mitdb --per-class 500 \
        --compare-with /tmp/old-code --stages
    .venv/bin/python benchmarks/bench_build.py --db demo --per-class 60       # no ../shared needed
    .venv/bin/python benchmarks/bench_build.py --smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NEW_TREE = HERE.parent  # the checkout this file belongs to


def machine(load_before: tuple[float, ...] | None = None) -> dict:
    """CPU model, core count and load averages (1, 5, 15 min) of this machine; `load_before` if given."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": model, "cores": os.cpu_count(), "load_after": [round(x, 2) for x in os.getloadavg()]}
    if load_before is not None:
        info["load_before"] = [round(x, 2) for x in load_before]
    return info


def plan_manifest(args: argparse.Namespace, work: Path) -> tuple[Path, int]:
    """Plan the windows once (with this tree) and return (manifest path, number of windows)."""
    from ecgrender.build import BuildConfig, build_dataset
    from shards.manifest import read_manifest

    plan = BuildConfig(db=args.db, source=args.source, out=work / "plan", per_class=args.per_class,
                       split_by=args.split_by, renderer="fast", jobs=1)
    build_dataset(plan, echo=lambda _line: None, progress=False)
    manifest = work / "manifest.csv"
    shutil.copy(plan.out / "manifest.csv", manifest)
    shutil.rmtree(plan.out)
    return manifest, len(read_manifest(manifest))


def run_child(script: str, tree: Path, request: dict, cwd: Path) -> dict:
    """Run benchmarks/`script` with `tree` first on PYTHONPATH; its JSON answer (checked to come from `tree`)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, str(HERE / script), json.dumps(request)], env=env, cwd=cwd,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{script} with {tree} failed:\n{done.stderr[-3000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(answer["module"]).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"the child imported {answer['module']}, not the code in {tree}: check PYTHONPATH")
    return answer


def timed_build(tree: Path, request: dict) -> dict:
    """Time builds of the request's manifest with the code in `tree` (`_timed_build.py`)."""
    return run_child("_timed_build.py", tree, request, Path(request["out_parent"]))


def _request(args: argparse.Namespace, manifest: Path, work: Path, renderer: str, jobs: int, profile: bool) -> dict:
    return {"db": args.db, "source": str(args.source) if args.source else None, "manifest": str(manifest),
            "out": str(work / "out"), "out_parent": str(work), "renderer": renderer, "jobs": jobs,
            "builds": 0 if profile else 1, "profile": profile}


def measure(args: argparse.Namespace, trees: dict[str, Path], manifest: Path, n: int, work: Path) -> list[dict]:
    """Best seconds of `--repeat` builds per (renderer, jobs, tree), trees interleaved within each repetition."""
    seconds: dict[tuple[str, int, str], list[float]] = {}
    for rep in range(args.repeat):
        for renderer in args.renderers.split(","):
            for jobs in (int(j) for j in args.jobs.split(",")):
                for label, tree in trees.items():
                    got = timed_build(tree, _request(args, manifest, work, renderer, jobs, profile=False))["seconds"]
                    seconds.setdefault((renderer, jobs, label), []).extend(got)
                    print(f"  rep {rep + 1}: {renderer:>10} jobs={jobs} {label}: {got[0]:6.2f} s "
                          f"({n / got[0]:6.1f} windows/s), load {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    for (renderer, jobs, label), runs in seconds.items():
        best = min(runs)
        results.append({"benchmark": "build", "name": f"build {args.db} {renderer} jobs={jobs} {label}",
                        "tree": label, "tree_path": str(trees[label]), "db": args.db, "renderer": renderer,
                        "jobs": jobs, "windows": n, "seconds": round(best, 3), "all_seconds": [round(s, 3) for s in runs],
                        "windows_per_s": round(n / best, 1)})
    _add_ratios(results)
    return results


def _add_ratios(results: list[dict]) -> None:
    """new/old ratio of the best runs for the same renderer and jobs, the median of the per-repetition ratios
    (each old build against the new build run next to it: steadier on a machine whose speed drifts), and the
    ratio to 1 job of the same tree and renderer."""
    rate = {(r["renderer"], r["jobs"], r["tree"]): r["windows_per_s"] for r in results}
    runs = {(r["renderer"], r["jobs"], r["tree"]): r["all_seconds"] for r in results}
    for r in results:
        old = rate.get((r["renderer"], r["jobs"], "old"))
        if r["tree"] == "new" and old:
            r["ratio_new_old"] = round(r["windows_per_s"] / old, 2)
            paired = [o / n for o, n in zip(runs[(r["renderer"], r["jobs"], "old")], r["all_seconds"])]
            r["ratio_new_old_paired_median"] = round(statistics.median(paired), 2)
        one = rate.get((r["renderer"], 1, r["tree"]))
        if one and r["jobs"] != 1:
            r["ratio_vs_1_job"] = round(r["windows_per_s"] / one, 2)


def stage_profiles(args: argparse.Namespace, trees: dict[str, Path], manifest: Path, work: Path) -> list[dict]:
    """One cProfile'd 1-job build (fast renderer) per tree: cumulative seconds per stage."""
    results = []
    for label, tree in trees.items():
        stages = timed_build(tree, _request(args, manifest, work, "fast", 1, profile=True))["stages"]
        results.append({"benchmark": "build-stages", "name": f"build stages {args.db} fast jobs=1 {label} (cProfile)",
                        "tree": label, "tree_path": str(tree), "db": args.db, "jobs": 1, "stages": stages})
    return results


def print_tables(results: list[dict], info: dict, n: int, db: str) -> None:
    """The throughput table, the stage table and the machine, in Markdown."""
    print(f"\nwhole build, {db}, {n} windows; {info['cpu']}, {info['cores']} cores; load average (1, 5, 15 min) "
          f"before {info['load_before']}, after {info['load_after']}")
    print("| renderer | jobs | code | windows/s | best s | new/old, best | new/old, median of pairs | vs 1 job |\n"
          "|---|---|---|---:|---:|---:|---:|---:|")
    for r in (r for r in results if r["benchmark"] == "build"):
        print(f"| {r['renderer']} | {r['jobs']} | {r['tree']} | {r['windows_per_s']:.1f} | {r['seconds']:.2f} | "
              f"{r.get('ratio_new_old', '-')} | {r.get('ratio_new_old_paired_median', '-')} | "
              f"{r.get('ratio_vs_1_job', '-')} |")
    profiles = [r for r in results if r["benchmark"] == "build-stages"]
    if profiles:
        labels = list(dict.fromkeys(label for r in profiles for label in r["stages"]))
        print("\nstages of one 1-job build (cProfile, seconds):")
        print("| stage | " + " | ".join(r["tree"] for r in profiles) + " |\n|---|" + "---:|" * len(profiles))
        for label in labels:
            print(f"| {label} | " + " | ".join(f"{r['stages'].get(label, 0):.2f}" for r in profiles) + " |")


def common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options bench_build.py and bench_decode.py share: the windows, the old tree, repetitions, --smoke."""
    parser.add_argument("--db", default="demo")
    parser.add_argument("--source", type=Path)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions per tree; the best is kept")
    parser.add_argument("--compare-with", type=Path, help="a tree of older code to measure the same windows with")
    parser.add_argument("--smoke", action="store_true", help="tiny run: demo, 3 windows per class, once, 1 job")


def smoke_and_paths(args: argparse.Namespace) -> dict[str, Path]:
    """Apply --smoke to `args`, make --source absolute; the trees to measure: {"new": this checkout} and, with
    --compare-with, {"old": that tree}."""
    if args.smoke:
        args.db, args.source, args.per_class, args.repeat, args.compare_with = "demo", None, 3, 1, None
    if args.source is not None:
        args.source = args.source.resolve()
    return {"new": NEW_TREE} | ({"old": args.compare_with.resolve()} if args.compare_with else {})


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, Path]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--split-by", default="window", help="split scheme of the planned manifest (default window)")
    parser.add_argument("--renderers", default="fast", help="comma-separated: fast, matplotlib")
    parser.add_argument("--jobs", default="1,2", help="comma-separated job counts")
    parser.add_argument("--stages", action="store_true", help="also profile one 1-job build per tree")
    args = parser.parse_args(argv)
    if args.smoke:
        args.jobs, args.renderers = "1", "fast"
    return args, smoke_and_paths(args)


def main(argv: list[str] | None = None) -> list[dict]:
    """Measure, print the tables and return one dict per measured configuration."""
    args, trees = parse_args(argv)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench_build_"))
    try:
        manifest, n = plan_manifest(args, work)
        results = measure(args, trees, manifest, n, work)
        if args.stages:
            results += stage_profiles(args, trees, manifest, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = machine(load_before)
    for r in results:
        r["machine"] = info
    print_tables(results, info, n, args.db)
    return results


if __name__ == "__main__":
    main()
