"""Table I of the paper from run reports: one row per model, one column per dataset and split scheme."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import TrainError

MODEL_ORDER = ("imecgnet", "imresnet50", "imresnet34", "refecg")
MODEL_NAMES = {"imecgnet": "ImECGnet", "imresnet50": "ImResNet50", "imresnet34": "ImResNet34", "refecg": "Ref-ECG"}


def read_report(run) -> dict:
    """A run's test report (report.json written by `ecgtrain evaluate` or at the end of `fit`)."""
    path = Path(run) / "report.json"
    if not path.is_file():
        raise TrainError(f"{run} has no report.json: run `ecgtrain evaluate {run}` first")
    return json.loads(path.read_text())


def compare_table(runs) -> str:
    """Markdown table of test accuracy (95 % bootstrap interval) per model and dataset/split scheme.

    A later run of the same model, database and split scheme replaces an earlier one.
    """
    reports = [read_report(r) for r in runs]
    if not reports:
        raise TrainError("compare needs at least one run directory")
    columns = sorted({(r["database"], r["split_by"]) for r in reports})
    models = sorted({r["model"] for r in reports}, key=lambda m: (MODEL_ORDER.index(m) if m in MODEL_ORDER else 99, m))
    cells = {(r["model"], r["database"], r["split_by"]): r["metrics"] for r in reports}
    head = "| model | " + " | ".join(f"{db} (split by {by})" for db, by in columns) + " |"
    lines = [head, "| --- |" + " --- |" * len(columns)]
    for m in models:
        row = []
        for db, by in columns:
            metrics = cells.get((m, db, by))
            if metrics is None:
                row.append("-")
            else:
                lo, hi = metrics["accuracy_ci95"]
                row.append(f"{100 * metrics['accuracy']:.2f} ({100 * lo:.1f}-{100 * hi:.1f})")
        lines.append(f"| {MODEL_NAMES.get(m, m)} | " + " | ".join(row) + " |")
    lines += ["", "Test accuracy in % with its 95 % bootstrap interval. Split by window puts windows of one "
              "patient in train and test (the paper's setting, optimistic); split by patient does not."]
    return "\n".join(lines) + "\n"
