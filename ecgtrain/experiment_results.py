"""An experiment's results: the Table-I-style table (mean and spread over seeds), intervals over test patients,
the majority baseline, paired differences, and two figures (test metrics per seed; learning curves).

Seeds of one model and recipe are pooled for intervals and paired differences: all runs of a split scheme
are evaluated on the same test windows, so their per-patient confusion matrices add up, and the cluster
bootstrap resamples patients (records where patients are unknown) with every seed's windows together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shards import layout

from .compare import align_predictions, display_name, format_metric, read_report, read_run_predictions
from .experiment import Experiment, PlannedRun, fit_command, run_finished
from .metrics import INTERVAL_METRICS, cluster_bootstrap, cluster_groups, group_confusions, paired_bootstrap, per_class
from .predictions import Predictions
from .report import new_figure, save_png
from .rundir import ARGS, METRICS, read_metrics_rows

_LABELS = {"accuracy": "accuracy %", "balanced_accuracy": "balanced accuracy %", "macro_f1": "macro-F1"}


@dataclass
class Cell:
    """The finished runs of one model x recipe on one split scheme."""

    seeds: list[int] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)  # report.json metrics per finished seed
    group_cms: dict[int, np.ndarray] = field(default_factory=dict)  # seed -> (G, C, C)
    train_s: float = 0.0
    devices: set[str] = field(default_factory=set)


def _row_name(model: str, recipe: str, recipes: int) -> str:
    return display_name(model) + (f" ({recipe})" if recipes > 1 else "")


def collect(exp: Experiment, runs: list[PlannedRun], out: Path) -> tuple[dict, dict]:
    """Cells keyed (scheme, model, recipe), and per scheme the reference predictions (test windows, groups)."""
    cells: dict[tuple[str, str, str], Cell] = {}
    refs: dict[str, tuple[Path, Predictions, str, list[str]]] = {}
    for run in runs:
        cell = cells.setdefault((run.scheme, run.model, run.recipe), Cell())
        directory = run.directory(out)
        if not run_finished(run, out):  # also: one-line errors for a damaged args.json or other settings
            continue
        report, pred = read_report(directory), read_run_predictions(directory)
        if run.scheme not in refs:
            refs[run.scheme] = (directory, pred, *cluster_groups(pred.records, pred.patients))
        ref_dir, ref, _, groups = refs[run.scheme]
        pred = align_predictions(ref, pred, ref_dir, directory)
        cell.seeds.append(run.seed)
        cell.metrics.append(report["metrics"])
        cell.group_cms[run.seed] = group_confusions(pred.y_true, pred.y_pred, groups, len(ref.classes))
        cell.train_s += sum(r.get("epoch_time_s", 0.0) for r in read_metrics_rows(directory / METRICS))
        cell.devices.add(json.loads((directory / ARGS).read_text()).get("device", "?"))
    return cells, refs


def _mean_sd(metric: str, values: list[float]) -> str:
    if len(values) == 1:
        return format_metric(metric, values[0])
    return f"{format_metric(metric, float(np.mean(values)))} ± {format_metric(metric, float(np.std(values, ddof=1)))}"


def _pooled(cell: Cell) -> dict[str, list[float]]:
    return cluster_bootstrap(np.sum(list(cell.group_cms.values()), axis=0))


def _table_one(exp: Experiment, cells: dict, schemes: list[str], rows: list[tuple[str, str]]) -> list[str]:
    paper = exp.paper.get("accuracy", {})
    head = "| model | " + " | ".join(f"split by {s}" for s in schemes) + (" | paper |" if paper else " |")
    lines = [head, "| --- |" + " --- |" * (len(schemes) + bool(paper))]
    for model, recipe in rows:
        row = []
        for s in schemes:
            cell = cells.get((s, model, recipe))
            if cell is None:
                row.append("")
            elif not cell.seeds:
                row.append("not run")
            else:
                row.append(f"{_mean_sd('accuracy', [m['accuracy'] for m in cell.metrics])} ({len(cell.seeds)})")
        if paper:
            row.append(f"{paper[model]:.2f}" if model in paper and recipe == exp.recipes[0].name else "")
        lines.append(f"| {_row_name(model, recipe, len(exp.recipes))} | " + " | ".join(row) + " |")
    majority = []
    for s in schemes:
        done = [c for (sc, _, _), c in cells.items() if sc == s and c.seeds]
        majority.append(format_metric("accuracy", done[0].metrics[0]["majority_accuracy"]) if done else "")
    lines.append("| majority-class baseline | " + " | ".join(majority) + (" | |" if paper else " |"))
    return lines


def _detail(exp: Experiment, cells: dict, schemes: list[str], rows: list[tuple[str, str]]) -> list[str]:
    lines = ["| split | model | seeds | " + " | ".join(_LABELS.values()) + " | majority % | test groups | training |",
             "| --- | --- | --- |" + " --- |" * len(_LABELS) + " --- | --- | --- |"]
    for s in schemes:
        for model, recipe in rows:
            cell = cells.get((s, model, recipe))
            if cell is None or not cell.seeds:
                continue
            ci = _pooled(cell)
            values = [f"{_mean_sd(k, [m[k] for m in cell.metrics])} [{format_metric(k, ci[k][0])}-{format_metric(k, ci[k][1])}]"
                      for k in INTERVAL_METRICS]
            m0 = cell.metrics[0]
            lines.append(f"| {s} | {_row_name(model, recipe, len(exp.recipes))} | {','.join(map(str, cell.seeds))} | "
                         + " | ".join(values) + f" | {format_metric('accuracy', m0['majority_accuracy'])} | "
                         f"{m0['ci_groups']} {m0['ci_unit']}s | {cell.train_s / 60:.1f} min on {', '.join(sorted(cell.devices))} |")
    return lines


def _per_class(exp: Experiment, cells: dict, schemes: list[str], rows: list[tuple[str, str]], classes: list[str]) -> list[str]:
    lines = ["| split | model | " + " | ".join(f"{c} sens / PPV (n)" for c in classes) + " |",
             "| --- | --- |" + " --- |" * len(classes)]
    for s in schemes:
        for model, recipe in rows:
            cell = cells.get((s, model, recipe))
            if cell is None or not cell.seeds:
                continue
            cm = np.sum(list(cell.group_cms.values()), axis=0).sum(0)
            ppv, sens, _ = per_class(cm)
            n = cm.sum(1) // len(cell.seeds)
            values = [f"{sens[i]:.2f} / {ppv[i]:.2f} ({n[i]})" if n[i] else f"- ({n[i]})" for i in range(len(classes))]
            lines.append(f"| {s} | {_row_name(model, recipe, len(exp.recipes))} | " + " | ".join(values) + " |")
    return lines


def _pairs(exp: Experiment, rows: list[tuple[str, str]]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """(reference row, compared row): each model against the reference model with the same recipe, and each
    later recipe against the first recipe for the same model."""
    first = exp.recipes[0].name
    pairs = []
    if exp.reference:
        pairs += [((exp.reference, r), (m, r)) for m, r in rows if m != exp.reference and (exp.reference, r) in rows]
    pairs += [((m, first), (m, r)) for m, r in rows if r != first and (m, first) in rows]
    return pairs


def _paired(exp: Experiment, cells: dict, schemes: list[str], rows: list[tuple[str, str]]) -> list[str]:
    lines = ["| split | compared | reference | common seeds | " + " | ".join(f"Δ {v}" for v in _LABELS.values()) + " |",
             "| --- | --- | --- | --- |" + " --- |" * len(_LABELS)]
    n = len(exp.recipes)
    for s in schemes:
        for (rm, rr), (cm, cr) in _pairs(exp, rows):
            ref, other = cells.get((s, rm, rr)), cells.get((s, cm, cr))
            if ref is None or other is None:
                continue
            common = sorted(set(ref.seeds) & set(other.seeds))
            if not common:
                continue
            diffs = paired_bootstrap(np.sum([ref.group_cms[k] for k in common], axis=0),
                                     np.sum([other.group_cms[k] for k in common], axis=0))
            values = [f"{format_metric(k, d, True)} [{format_metric(k, lo, True)}, {format_metric(k, hi, True)}]"
                      + (" *" if lo > 0 or hi < 0 else "") for k, (d, (lo, hi)) in diffs.items()]
            lines.append(f"| {s} | {_row_name(cm, cr, n)} | {_row_name(rm, rr, n)} | {','.join(map(str, common))} | "
                         + " | ".join(values) + " |")
    return lines if len(lines) > 2 else ["No pair of rows has runs with common seeds yet."]


def plot_results(cells: dict, schemes: list[str], rows: list[tuple[str, str]], recipes: int, path: Path) -> None:
    """results.png: one panel per split scheme; accuracy and balanced accuracy of every seed per row, majority line."""
    fig, grid = new_figure(max(5.0, 2.0 + 1.4 * len(rows)) * len(schemes), 4.5, cols=len(schemes), squeeze=False)
    axes = grid[0]
    for ax, s in zip(axes, schemes):
        for x, (model, recipe) in enumerate(rows):
            cell = cells.get((s, model, recipe))
            if cell is None or not cell.seeds:
                ax.text(x, 50, "not run", rotation=90, ha="center", va="center", fontsize=8, color="grey")
                continue
            acc = [100 * m["accuracy"] for m in cell.metrics]
            bal = [100 * m["balanced_accuracy"] for m in cell.metrics]
            ax.scatter([x - 0.12] * len(acc), acc, color="C0", label="accuracy" if x == 0 else None)
            ax.scatter([x + 0.12] * len(bal), bal, color="C1", marker="s", label="balanced accuracy" if x == 0 else None)
            ax.axhline(100 * cell.metrics[0]["majority_accuracy"], color="grey", ls="--", lw=0.8)
        ax.set_xticks(range(len(rows)), [_row_name(m, r, recipes) for m, r in rows], rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_ylim(0, 100)
        ax.set_title(f"split by {s}", fontsize=9)
        ax.set_ylabel("test %")
    axes[0].plot([], [], color="grey", ls="--", lw=0.8, label="majority baseline")
    axes[0].legend(fontsize=7, loc="lower left")
    save_png(fig, path)


def plot_learning(runs: list[PlannedRun], out: Path, schemes: list[str], path: Path) -> bool:
    """learning.png: training loss and validation accuracy per epoch of every finished run, one column per scheme."""
    fig, grid = new_figure(4.0 * len(schemes), 6.0, cols=len(schemes), rows=2, squeeze=False)
    drawn = False
    rows_order = sorted({(r.model, r.recipe) for r in runs})
    for j, s in enumerate(schemes):
        loss_ax, val_ax = grid[0][j], grid[1][j]
        for run in (r for r in runs if r.scheme == s):
            rows = read_metrics_rows(run.directory(out) / METRICS)
            if not rows:
                continue
            color = f"C{rows_order.index((run.model, run.recipe)) % 10}"
            epochs = [r["epoch"] + 1 for r in rows]
            loss_ax.plot(epochs, [r["train_loss"] for r in rows], color=color, lw=1, label=f"{run.model} {run.recipe}"
                         if run.seed == min(p.seed for p in runs if p.model == run.model and p.recipe == run.recipe) else None)
            val_ax.plot(epochs, [100 * r["val_accuracy"] for r in rows], color=color, lw=1)
            drawn = True
        loss_ax.set_title(f"split by {s}", fontsize=9)
        loss_ax.set_ylabel("train loss")
        val_ax.set_ylabel("val accuracy %")
        val_ax.set_xlabel("epoch")
        if loss_ax.get_legend_handles_labels()[0]:
            loss_ax.legend(fontsize=7)
    if drawn:
        save_png(fig, path)
    return drawn


def write_results(exp: Experiment, runs: list[PlannedRun], out: Path) -> Path:
    """OUT/results.md (+ results.png, learning.png); returns results.md."""
    cells, refs = collect(exp, runs, out)
    classes = next(iter(refs.values()))[1].classes if refs else []
    schemes = [s for s in exp.schemes if any(k[0] == s for k in cells)]
    rows = [(m, r.name) for r in exp.recipes for m in exp.models if m in r.models]
    rows = [row for row in rows if any((s, *row) in cells for s in schemes)]
    plot_results(cells, schemes, rows, len(exp.recipes), out / "results.png")
    learning = plot_learning(runs, out, schemes, out / "learning.png")
    missing = [r for r in runs if not (r.directory(out) / "report.json").is_file()]
    lines = [f"# Experiment {exp.name}", "", exp.description.strip(), "",
             f"Experiment file: `{exp.path}`; datasets under `{out / 'datasets'}`, runs under `{out / 'runs'}`.", "",
             "## Test accuracy % (mean ± sd over seeds, number of seeds in brackets)", "",
             *_table_one(exp, cells, schemes, rows), "",
             "## Every metric with its 95 % interval over test patients", "",
             *_detail(exp, cells, schemes, rows), "",
             "Mean ± sd over seeds; in square brackets the 95 % percentile cluster-bootstrap interval of the "
             "seed-pooled metric (1,000 resamples of the test groups, all windows and seeds of a group drawn together). "
             "Majority: always predicting the training split's most frequent class. Training: summed epoch times.", "",
             "## Per-class sensitivity and PPV (seeds pooled; n: test windows)", "",
             *_per_class(exp, cells, schemes, rows, classes), "",
             "## Paired differences (compared minus reference, on the same test windows)", "",
             *_paired(exp, cells, schemes, rows), "",
             "Seeds common to both rows pooled; 95 % paired cluster-bootstrap interval in brackets (the same "
             "resampled groups for both rows); * marks an interval that excludes 0.", "",
             "Figures: `results.png` (every seed's test accuracy and balanced accuracy, majority baseline dashed)"
             + (", `learning.png` (training loss and validation accuracy per epoch of every run)." if learning else ".")]
    if missing:
        lines += ["", f"## Not run yet ({len(missing)})", "", "Each command trains one missing run by hand "
                  "(`ecgtrain experiment` with the same file and --out runs them all):", "", "```",
                  *(fit_command(r, out) for r in missing), "```"]
    path = out / "results.md"
    layout.write_atomic(path, "\n".join(lines) + "\n")
    return path
