"""Table I of the paper from run reports (one row per model, one column per dataset and split scheme) with
every run's balanced accuracy, macro-F1 and majority baseline; paired comparisons from per-window predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import TrainError
from .metrics import INTERVAL_METRICS, N_BOOTSTRAP, cluster_groups, group_confusions, paired_bootstrap
from .metrics_multilabel import MULTILABEL_INTERVAL_METRICS, multilabel_metrics, paired_multilabel_bootstrap
from .models import get_model, model_names
from .predictions import Predictions, read_predictions

# report.json keys written since reports give balanced accuracy and patient-level intervals
_NEEDED = ("accuracy", "accuracy_ci95", "balanced_accuracy", "balanced_accuracy_ci95", "macro_f1", "macro_f1_ci95",
           "majority_accuracy", "ci_unit", "ci_groups")
_NEEDED_MULTI = ("auroc_macro", "auroc_macro_ci95", "auprc_macro", "auprc_macro_ci95", "fmax", "fmax_ci95", "ci_unit",
                 "ci_groups")
_LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1",
           "auroc_macro": "macro AUROC", "auprc_macro": "macro AUPRC", "fmax": "F-max"}


def read_report(run) -> dict:
    """A run's test report on its own dataset (RUN/report.json, written by `fit` or `ecgtrain evaluate RUN`)."""
    path = Path(run) / "report.json"
    if not path.is_file():
        raise TrainError(f"{run} has no report.json: run `ecgtrain evaluate {run}` first")
    try:
        report = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainError(f"{path} is not valid JSON ({exc}): run `ecgtrain evaluate {run}` again") from None
    needed = _NEEDED_MULTI if is_multi_label(report) else _NEEDED
    missing = [k for k in needed if k not in report.get("metrics", {})]
    if missing:
        raise TrainError(f"{path} lacks {', '.join(missing)} (an older report): run `ecgtrain evaluate {run}` again")
    return report


def is_multi_label(report: dict) -> bool:
    """True for the report of a multi-label run (AUROC, AUPRC and F-max instead of accuracies)."""
    return report.get("metrics", {}).get("label_type") == "multi-label"


def _model_key(name: str) -> tuple[int, str]:
    """Registry order (the paper's Table I order); unknown names after, alphabetically."""
    names = model_names()
    return (names.index(name) if name in names else len(names), name)


def display_name(name: str) -> str:
    return get_model(name).display if name in model_names() else name


def format_metric(metric: str, x: float, signed: bool = False) -> str:
    """Accuracies in %, macro-F1, AUROC, AUPRC and F-max as fractions; `signed` for differences."""
    sign = "+" if signed else ""
    percent = metric in ("accuracy", "balanced_accuracy", "majority_accuracy")
    return format(100 * x + 0.0, f"{sign}.2f") if percent else format(x + 0.0, f"{sign}.4f")


def _with_ci(metrics: dict, metric: str) -> str:
    if metrics[metric] is None:  # e.g. macro AUROC of a test split where no class has positives and negatives
        return "-"
    lo, hi = metrics[f"{metric}_ci95"]
    return f"{format_metric(metric, metrics[metric])} ({format_metric(metric, lo)}-{format_metric(metric, hi)})"


def compare_table(runs) -> str:
    """Markdown: Table I (test accuracy with its 95 % interval per model and dataset/split scheme), then each
    cell's accuracy, balanced accuracy and macro-F1 with intervals, majority baseline and test patients.

    A later run of the same model, database and split scheme replaces an earlier one.
    """
    all_reports = [read_report(r) for r in runs]
    if not all_reports:
        raise TrainError("compare needs at least one run directory")
    multi = [r for r in all_reports if is_multi_label(r)]
    reports = [r for r in all_reports if not is_multi_label(r)]
    if not reports:
        return multilabel_table(multi)
    columns = sorted({(r["database"], r["split_by"]) for r in reports})
    models = sorted({r["model"] for r in reports}, key=_model_key)
    cells = {(r["model"], r["database"], r["split_by"]): r["metrics"] for r in reports}
    head = "| model | " + " | ".join(f"{db} (split by {by})" for db, by in columns) + " |"
    lines = [head, "| --- |" + " --- |" * len(columns)]
    for m in models:
        row = [_with_ci(cells[(m, db, by)], "accuracy") if (m, db, by) in cells else "-" for db, by in columns]
        lines.append(f"| {display_name(m)} | " + " | ".join(row) + " |")
    lines += ["", "| model | dataset | accuracy % | balanced accuracy % | macro-F1 | majority baseline % | test groups |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for (m, db, by), metrics in sorted(cells.items(), key=lambda kv: (_model_key(kv[0][0]), kv[0][1:])):
        lines.append(f"| {display_name(m)} | {db} (split by {by}) | {_with_ci(metrics, 'accuracy')} | "
                     f"{_with_ci(metrics, 'balanced_accuracy')} | {_with_ci(metrics, 'macro_f1')} | "
                     f"{format_metric('accuracy', metrics['majority_accuracy'])} | {metrics['ci_groups']} {metrics['ci_unit']}s |")
    lines += ["", "Test split; 95 % intervals in brackets: percentile cluster bootstrap over the test groups (patients, "
              "or records where patients are unknown), whose windows are drawn together. Majority baseline: always "
              "predicting the training split's most frequent class. Split by window puts windows of one patient in "
              "train and test (the paper's setting, optimistic); split by patient does not."]
    return "\n".join(lines) + "\n" + ("\n" + multilabel_table(multi) if multi else "")


def _dataset_label(report: dict) -> str:
    """'ptbxl superdiagnostic 100 Hz, 5 classes': database, label task and window rate where the report names
    them, and the number of classes (runs on other class subsets are other cells)."""
    parts = [report["database"], report.get("task") or ""]
    if report.get("window_fs"):
        parts.append(f"{report['window_fs']:g} Hz")
    return " ".join(p for p in parts if p) + f", {len(report['metrics']['per_class'])} classes"


def multilabel_table(reports: list[dict]) -> str:
    """Markdown: macro AUROC, macro AUPRC and F-max with intervals per multi-label run (model x dataset, task and
    rate x split scheme; a later run of the same cell replaces an earlier one)."""
    cells = {(r["model"], _dataset_label(r), r["split_by"]): r["metrics"] for r in reports}
    lines = ["Multi-label runs (test split):", "",
             "| model | dataset | macro AUROC | macro AUPRC | F-max | test groups |", "| --- | --- | --- | --- | --- | --- |"]
    for (m, db, by), metrics in sorted(cells.items(), key=lambda kv: (_model_key(kv[0][0]), kv[0][1:])):
        lines.append(f"| {display_name(m)} | {db} (split by {by}) | " + " | ".join(
            _with_ci(metrics, name) for name in MULTILABEL_INTERVAL_METRICS) + f" | {metrics['ci_groups']} {metrics['ci_unit']}s |")
    lines += ["", "95 % intervals in brackets: percentile cluster bootstrap over the test patients (records where "
              "patients are unknown). Macro AUROC is the PTB-XL benchmark's headline (Strodthoff et al., 2021); "
              "a random ranking scores 0.5."]
    return "\n".join(lines) + "\n"


def read_run_predictions(run) -> Predictions:
    """RUN/predictions.csv, the per-window test predictions `ecgtrain evaluate RUN` writes."""
    path = Path(run) / "predictions.csv"
    if not path.is_file():
        raise TrainError(f"{run} has no predictions.csv (per-window test predictions): run `ecgtrain evaluate {run}`")
    return read_predictions(path)


def align_predictions(ref: Predictions, other: Predictions, ref_run, run) -> Predictions:
    """`other` in the order of `ref`'s windows; TrainError unless both hold the same windows, labels and classes."""
    index = {k: i for i, k in enumerate(other.keys)}
    if set(index) != set(ref.keys):
        shared = len(set(index) & set(ref.keys))
        raise TrainError(f"runs {ref_run} and {run} were evaluated on different test windows ({len(ref.keys)} and "
                         f"{len(other.keys)} windows, {shared} shared): compare --paired needs the same test split")
    order = [index[k] for k in ref.keys]
    if other.classes != ref.classes or (other.y_true[order] != ref.y_true).any():
        raise TrainError(f"runs {ref_run} and {run} have other classes or labels for the same test windows: "
                         "compare --paired needs runs evaluated on the same dataset")
    return Predictions(ref.classes, ref.keys, ref.records, ref.patients, ref.y_true, other.y_pred[order],
                       other.proba[order])


def paired_table(runs) -> str:
    """Markdown: each run's accuracy, balanced accuracy and macro-F1 minus the first run's, with a paired
    cluster-bootstrap 95 % interval (the same resampled groups for both runs) and whether it excludes 0."""
    if len(runs) < 2:
        raise TrainError("compare --paired needs at least two runs: the first is the reference, the others are compared with it")
    ref = read_run_predictions(runs[0])
    others = [align_predictions(ref, read_run_predictions(r), runs[0], r) for r in runs[1:]]
    if ref.multi_label:
        return _paired_multilabel(runs, ref, others)
    unit, groups = cluster_groups(ref.records, ref.patients)
    ref_cms = group_confusions(ref.y_true, ref.y_pred, groups, len(ref.classes))
    lines = [f"Paired comparison with {runs[0]} on its {len(ref.keys)} test windows: each run minus the reference "
             "(accuracies in percentage points) with a 95 % paired cluster-bootstrap interval over the "
             f"{len(ref_cms)} test {unit}s ({N_BOOTSTRAP} resamples, the same draws for both runs).", "",
             "| run | metric | value | difference (95 % interval) | interval excludes 0 |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {runs[0]} (reference) | {_LABELS[m]} | {format_metric(m, float(fn(ref_cms.sum(0))))} | - | - |"
              for m, fn in INTERVAL_METRICS.items()]
    for run, pred in zip(runs[1:], others):
        cms = group_confusions(pred.y_true, pred.y_pred, groups, len(ref.classes))
        for m, (diff, (lo, hi)) in paired_bootstrap(ref_cms, cms).items():
            lines.append(f"| {run} | {_LABELS[m]} | {format_metric(m, float(INTERVAL_METRICS[m](cms.sum(0))))} | "
                         f"{format_metric(m, diff, True)} ({format_metric(m, lo, True)} to {format_metric(m, hi, True)}) | "
                         f"{'yes' if lo > 0 or hi < 0 else 'no'} |")
    return "\n".join(lines) + "\n"


def _paired_multilabel(runs, ref: Predictions, others: list[Predictions]) -> str:
    """paired_table for multi-label runs: macro AUROC, macro AUPRC and F-max differences from the reference."""
    unit, groups = cluster_groups(ref.records, ref.patients)
    lines = [f"Paired comparison with {runs[0]} on its {len(ref.keys)} test windows (multi-label): each run minus the "
             "reference with a 95 % paired cluster-bootstrap interval over the "
             f"{len(set(groups))} test {unit}s ({N_BOOTSTRAP} resamples, the same draws for both runs).", "",
             "| run | metric | value | difference (95 % interval) | interval excludes 0 |",
             "| --- | --- | --- | --- | --- |"]
    ref_values = multilabel_metrics(ref.y_true, ref.proba)
    lines += [f"| {runs[0]} (reference) | {_LABELS[m]} | {_value(ref_values, m)} | - | - |"
              for m in MULTILABEL_INTERVAL_METRICS]
    for run, pred in zip(runs[1:], others):
        values = multilabel_metrics(pred.y_true, pred.proba)
        for m, (diff, (lo, hi)) in paired_multilabel_bootstrap(ref.y_true, ref.proba, pred.proba, groups).items():
            if np.isnan(diff):
                lines.append(f"| {run} | {_LABELS[m]} | {_value(values, m)} | - (undefined on these windows) | - |")
                continue
            lines.append(f"| {run} | {_LABELS[m]} | {_value(values, m)} | "
                         f"{format_metric(m, diff, True)} ({format_metric(m, lo, True)} to {format_metric(m, hi, True)}) | "
                         f"{'yes' if lo > 0 or hi < 0 else 'no'} |")
    return "\n".join(lines) + "\n"


def _value(metrics: dict, name: str) -> str:
    return "-" if metrics[name] is None else format_metric(name, metrics[name])
