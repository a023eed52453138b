"""Table I of the paper from run reports: one row per model, one column per dataset and split scheme."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import TrainError
from .models import get_model, model_names


def read_report(run) -> dict:
    """A run's test report on its own dataset (RUN/report.json, written by `fit` or `ecgtrain evaluate RUN`)."""
    path = Path(run) / "report.json"
    if not path.is_file():
        raise TrainError(f"{run} has no report.json: run `ecgtrain evaluate {run}` first")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainError(f"{path} is not valid JSON ({exc}): run `ecgtrain evaluate {run}` again") from None


def _model_key(name: str) -> tuple[int, str]:
    """Registry order (the paper's Table I order); unknown names after, alphabetically."""
    names = model_names()
    return (names.index(name) if name in names else len(names), name)


def _display(name: str) -> str:
    return get_model(name).display if name in model_names() else name


def compare_table(runs) -> str:
    """Markdown table of test accuracy (95 % bootstrap interval) per model and dataset/split scheme.

    A later run of the same model, database and split scheme replaces an earlier one.
    """
    reports = [read_report(r) for r in runs]
    if not reports:
        raise TrainError("compare needs at least one run directory")
    columns = sorted({(r["database"], r["split_by"]) for r in reports})
    models = sorted({r["model"] for r in reports}, key=_model_key)
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
        lines.append(f"| {_display(m)} | " + " | ".join(row) + " |")
    lines += ["", "Test accuracy in % with its 95 % bootstrap interval. Split by window puts windows of one "
              "patient in train and test (the paper's setting, optimistic); split by patient does not."]
    return "\n".join(lines) + "\n"
