"""`ecgtrain robustness`: every run evaluated on noisy copies of its test windows, one curve per model.

For each noise type and SNR, `ecgrender build --manifest CLEAN/manifest.csv --noise TYPE:SNR` makes (or a
finished earlier build is reused) OUT/datasets/TYPE-SNRdB: the clean test windows with noise added to the
raw signal, so images and Ref-ECG lead sums stay matched. Each run is evaluated there with `evaluate_run`
(its report lands in RUN/eval-...), and OUT/robustness.{json,csv,md,png} collect accuracy and macro-F1
(multi-label runs: macro AUROC and F-max) with their patient-cluster intervals against SNR.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ecgrender import NSTDB_RECORDS, noise_names
from shards import layout
from shards.card import file_digest, read_card

from .compare import display_name, format_metric
from .errors import TrainError
from .report import evaluate_run, new_figure, save_png
from .rundir import CHECKPOINT, card_sha256, read_checkpoint

DATASETS = "datasets"
METRICS = {False: ("accuracy", "macro_f1"), True: ("auroc_macro", "fmax")}  # by multi-label
LABELS = {"accuracy": "accuracy (%)", "macro_f1": "macro-F1", "auroc_macro": "macro AUROC", "fmax": "F-max"}


@dataclass(frozen=True)
class NoisySet:
    """One noisy copy of the clean test windows."""

    kind: str
    snr_db: float

    @property
    def snr_text(self) -> str:
        """The SNR as the shortest text that reads back to the same float (as ecgrender writes it)."""
        return repr(float(self.snr_db)).removesuffix(".0")

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.snr_text}dB"


def check_noise(kinds: list[str], snrs: list[float]) -> list[NoisySet]:
    """The noisy sets of `kinds` x `snrs`; TrainError for an unknown type or an SNR that is not finite."""
    unknown = [k for k in kinds if k not in noise_names()]
    if unknown:
        raise TrainError(f"--noise: unknown noise type {unknown[0]!r}; choose from {', '.join(noise_names())}")
    bad = [s for s in snrs if not math.isfinite(s)]
    if bad:
        raise TrainError(f"--snr {bad[0]}: give finite SNRs in dB (the clean test set is the +inf point)")
    return [NoisySet(k, s) for k in kinds for s in snrs]


def check_runs(runs: list[Path], clean: Path) -> tuple[str, dict[Path, tuple[int, int]]]:
    """The clean card's sha256 and each run's checkpoint (epoch, epochs); TrainError for a run that was not
    trained on `clean` (its card differs)."""
    sha = card_sha256(clean)
    state = {}
    for run in runs:
        if not (run / CHECKPOINT).is_file():
            raise TrainError(f"{run} is not a training run (no {CHECKPOINT}): give --out directories of `ecgtrain fit`")
        ckpt = read_checkpoint(run / CHECKPOINT)
        if ckpt["card_sha256"] != sha:
            raise TrainError(f"run {run} was trained on another dataset than {clean} (card sha256 "
                             f"{ckpt['card_sha256'][:12]}, not {sha[:12]}): give --dataset the dataset the run was "
                             "trained on")
        state[run] = (int(ckpt["epoch"]), int(ckpt["args"]["epochs"]))
    return sha, state


def build_command(card: dict, clean: Path, noisy: NoisySet, out: Path, source: Path | None,
                  noise_source: Path | None, seed: int, jobs: int | None) -> list[str]:
    """The `ecgrender build` arguments that make `noisy` from the clean dataset's manifest and card."""
    settings = card.get("build") or {}
    cmd = ["build", "--db", card["source"]["database"], "--manifest", str(clean / layout.MANIFEST),
           "--window", str(card["window"]["length"]), "--renderer", card["renderer"],
           "--noise", f"{noisy.kind}:{noisy.snr_text}", "--seed", str(seed), "--allow-missing-classes",
           "--out", str(out)]
    for option in ("fs", "task", "resample", "shard_size"):
        if settings.get(option) is not None:
            cmd += [f"--{option.replace('_', '-')}", str(settings[option])]
    if settings.get("records"):
        cmd += ["--records", ",".join(settings["records"])]
    if source is not None:
        cmd += ["--source", str(source)]
    if noise_source is not None and noisy.kind in NSTDB_RECORDS:
        cmd += ["--noise-source", str(noise_source)]
    return cmd + (["--jobs", str(jobs)] if jobs is not None else [])


def _reusable(path: Path, noisy: NoisySet, clean_sha: str, seed: int, noise_source: Path | None) -> bool:
    """True when `path` holds a finished noisy copy of the clean card with this type, SNR, seed and noise origin
    (real noise: from the same NSTDB files)."""
    if not (path / layout.CARD).is_file():
        return False
    noise = read_card(path).get("noise") or {}
    wanted = [{"type": noisy.kind, "snr_db": noisy.snr_db, "origin": "nstdb" if noise_source else "synthetic"}]
    if noise.get("of_card_sha256") != clean_sha or noise.get("seed") != seed or noise.get("components") != wanted:
        return False
    files = noise.get("noise_source_files") or {}
    return all((noise_source / name).is_file() and _digest(noise_source / name) == sha
               for name, sha in files.items()) if noise_source else True


@functools.cache
def _digest(path: Path) -> str:
    """sha256 of a noise record file, computed once per process (every noisy set of a type reads the same files)."""
    return file_digest(path)[0]


def build_noisy_sets(clean: Path, clean_sha: str, sets: list[NoisySet], out: Path, source: Path | None,
                     noise_source: Path | None, seed: int, jobs: int | None, echo: Callable[[str], None]) -> None:
    """Build (or reuse) OUT/datasets/NAME for every noisy set, with `ecgrender build` in a child process."""
    card = read_card(clean)
    for noisy in sets:
        path = out / DATASETS / noisy.name
        real = noise_source if noisy.kind in NSTDB_RECORDS else None
        if _reusable(path, noisy, clean_sha, seed, real):
            echo(f"noisy set {noisy.name}: complete ({path})")
            continue
        cmd = build_command(card, clean, noisy, path, source, noise_source, seed, jobs)
        echo(f"noisy set {noisy.name}: ecgrender {' '.join(cmd)}")
        if path.is_dir() and any(path.iterdir()):  # a copy of another clean set, seed or noise, finished or not
            cmd.append("--force")
        rc = subprocess.run([sys.executable, "-m", "ecgrender.cli", *cmd], check=False).returncode
        if rc != 0:
            raise TrainError(f"building the noisy set {noisy.name} failed (`ecgrender build` exit {rc}): its error is "
                             "above; fix what it names (e.g. --source, --noise) and run again")


_NEEDED = ("n_windows", "ci_unit", "ci_groups")


def _current(path: Path, sha: str, epochs: tuple[int, int]) -> dict | None:
    """The report at `path` when it is a test report of the card `sha` by the checkpoint at (epoch, epochs)
    with every field robustness reads; else None (missing, unreadable, stale or from an older version)."""
    try:
        report = json.loads(path.read_text())
        m = report["metrics"]
        metrics = METRICS[m.get("label_type") == "multi-label"]
        complete = all(k in m for k in (*_NEEDED, *metrics, *(f"{x}_ci95" for x in metrics)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    same = (report.get("card_sha256"), report.get("split"), report.get("epoch"), report.get("epochs")) == \
        (sha, "test", *epochs)
    return report if same and complete else None


def _report(run: Path, dataset: Path, epochs: tuple[int, int], evaluate: Callable[[Path, Path], Path]) -> dict:
    """`run`'s test report on `dataset`: one already written for this card by the run's current checkpoint, or a
    new evaluation."""
    sha = card_sha256(dataset)
    for path in [run / "report.json", *sorted(run.glob("eval-*/report.json"))]:
        report = _current(path, sha, epochs)
        if report is not None:
            return report
    return json.loads(evaluate(run, dataset).with_suffix(".json").read_text())


def collect(runs: dict[Path, tuple[int, int]], clean: Path, out: Path, sets: list[NoisySet],
            evaluate: Callable[[Path, Path], Path]) -> list[dict]:
    """One row per run and test set (the clean one first, SNR +inf): the metrics and their intervals."""
    rows = []
    for run, epochs in runs.items():
        for noisy in [None, *sets]:
            dataset = clean if noisy is None else out / DATASETS / noisy.name
            report = _report(run, dataset, epochs, evaluate)
            m = report["metrics"]
            multi = m.get("label_type") == "multi-label"
            row = {"run": str(run), "model": report["model"], "display": display_name(report["model"]),
                   "noise": "clean" if noisy is None else noisy.kind,
                   "snr_db": math.inf if noisy is None else noisy.snr_db, "n_windows": m["n_windows"],
                   "ci_unit": m["ci_unit"], "ci_groups": m["ci_groups"], "multi_label": multi}
            for metric in METRICS[multi]:
                row[metric], row[f"{metric}_ci95"] = m[metric], m[f"{metric}_ci95"]
            rows.append(row)
    return rows


def _labels(rows: list[dict]) -> dict[str, str]:
    """Each run's legend entry: its model, and its directory's name when two runs share a model."""
    display = {r["run"]: r["display"] for r in rows}
    shared = {d for d in display.values() if list(display.values()).count(d) > 1}
    return {run: f"{d} ({Path(run).name})" if d in shared else d for run, d in display.items()}


def plot_robustness(rows: list[dict], kinds: list[str], path: Path) -> None:
    """robustness.png: one panel per noise type (columns) and metric (rows), one line per run with its 95 %
    interval band; the run's clean score is the dashed line of the same colour."""
    metrics = METRICS[rows[0]["multi_label"]]
    fig, axes = new_figure(3.6 * len(kinds), 3.0 * len(metrics), cols=len(kinds), rows=len(metrics), squeeze=False)
    labels = _labels(rows)
    for i, run in enumerate(labels):
        mine = [r for r in rows if r["run"] == run]
        clean = next(r for r in mine if r["noise"] == "clean")
        colour = f"C{i % 10}"
        for col, kind in enumerate(kinds):
            points = sorted((r for r in mine if r["noise"] == kind), key=lambda r: r["snr_db"])
            x = [r["snr_db"] for r in points]
            for row_i, metric in enumerate(metrics):
                ax = axes[row_i][col]
                scale = 100 if metric == "accuracy" else 1
                y = [scale * (r[metric] if r[metric] is not None else math.nan) for r in points]
                lo = [scale * r[f"{metric}_ci95"][0] for r in points]
                hi = [scale * r[f"{metric}_ci95"][1] for r in points]
                ax.plot(x, y, "o-", color=colour, label=labels[run])
                ax.fill_between(x, lo, hi, color=colour, alpha=0.15, linewidth=0)
                if clean[metric] is not None:
                    ax.axhline(scale * clean[metric], color=colour, linestyle="--", linewidth=1)
                ax.set_title(f"{kind}: {LABELS[metric]}", fontsize=10)
                ax.set_xlabel("SNR (dB)")
                ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, title="dashed: clean", title_fontsize=8)
    save_png(fig, path)


def _cell(row: dict, metric: str) -> str:
    if row[metric] is None:
        return "-"
    lo, hi = row[f"{metric}_ci95"]
    return f"{format_metric(metric, row[metric])} ({format_metric(metric, lo)}-{format_metric(metric, hi)})"


def robustness_markdown(rows: list[dict], clean: Path, seed: int) -> str:
    """robustness.md: one line per run and test set, clean first, with 95 % intervals."""
    metrics = METRICS[rows[0]["multi_label"]]
    unit, groups = rows[0]["ci_unit"], rows[0]["ci_groups"]
    lines = [f"# Robustness to noise: test windows of {clean}", "",
             f"Noise added to the raw test windows (seed {seed}) at each SNR (dB, per window and lead, nst's "
             f"definition: docs/noise.md); 95 % intervals: cluster bootstrap over {groups} test {unit}s.", "",
             "| run | model | noise | SNR (dB) | " + " | ".join(f"{LABELS[m]} (95 % CI)" for m in metrics) + " |",
             "|---|---|---|---:|" + "---|" * len(metrics)]
    for r in rows:
        snr = "clean" if r["noise"] == "clean" else f"{r['snr_db']:g}"
        lines.append(f"| {Path(r['run']).name} | {r['display']} | {r['noise']} | {snr} | "
                     + " | ".join(_cell(r, m) for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def _csv(rows: list[dict]) -> str:
    metrics = METRICS[rows[0]["multi_label"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["run", "model", "noise", "snr_db", "n_windows"]
                    + [c for m in metrics for c in (m, f"{m}_ci95_low", f"{m}_ci95_high")])
    for r in rows:
        writer.writerow([r["run"], r["model"], r["noise"], r["snr_db"], r["n_windows"]]
                        + [v for m in metrics for v in (r[m], *r[f"{m}_ci95"])])
    return buffer.getvalue()


def write_robustness(rows: list[dict], kinds: list[str], clean: Path, out: Path, seed: int) -> Path:
    """OUT/robustness.{json,csv,md,png}; returns the markdown file."""
    out.mkdir(parents=True, exist_ok=True)
    finite = [r | {"snr_db": r["snr_db"] if math.isfinite(r["snr_db"]) else "inf"} for r in rows]
    layout.write_atomic(out / "robustness.json", json.dumps({"clean": str(clean), "seed": seed, "rows": finite},
                                                            indent=2) + "\n")
    layout.write_atomic(out / "robustness.csv", _csv(rows))
    plot_robustness(rows, kinds, out / "robustness.png")
    layout.write_atomic(out / "robustness.md", robustness_markdown(rows, clean, seed))
    return out / "robustness.md"


def run_robustness(runs: list[Path], clean: Path, out: Path, kinds: list[str], snrs: list[float],
                   source: Path | None = None, noise_source: Path | None = None, seed: int = 0,
                   jobs: int | None = None, device: str = "auto", batch_size: int = 64, workers: int = 4,
                   progress: bool = True, echo: Callable[[str], None] = print) -> Path:
    """Build the noisy sets, evaluate every run on each and on the clean test split, write the table and plot."""
    sets = check_noise(kinds, snrs)
    clean_sha, state = check_runs([Path(r) for r in runs], clean)
    build_noisy_sets(clean, clean_sha, sets, out, source, noise_source, seed, jobs, echo)

    def evaluate(run: Path, dataset: Path) -> Path:
        echo(f"evaluating {run} on {dataset.name}")
        return evaluate_run(run, dataset, "test", device, batch_size, workers, progress)

    rows = collect(state, clean, out, sets, evaluate)
    return write_robustness(rows, kinds, clean, out, seed)
